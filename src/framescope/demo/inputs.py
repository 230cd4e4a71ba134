"""The demo's input: the test clip it writes, or a video it opens and probes first."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from framescope._optional import require

__all__ = ["DemoError", "DemoInput", "default_out_dir", "demo_clip", "video_frames"]

_FALLBACK_FPS = 30.0  # a stream that states no rate


class DemoError(Exception):
    """The demo cannot run with what it was given (a video it cannot read); one line says why."""


def default_out_dir() -> Path:
    """Where the demo writes when no ``--out`` is given: ``$XDG_CACHE_HOME/framescope/demo``.

    (``~/.cache/framescope/demo`` when ``XDG_CACHE_HOME`` is not set.) One
    folder, reused: each run overwrites the clip, the annotated video and the
    trace of the last.
    """
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "framescope" / "demo"


def demo_clip(folder: Path, seconds: float = 4.0) -> Path:
    """Write the demo's input: a 640x480, 30 fps H.264 clip of a moving test pattern."""
    from framescope.video import SyntheticSource, VideoWriter  # noqa: PLC0415 - needs PyAV

    path = folder / "input.mp4"
    with VideoWriter(str(path), fps=30) as writer:
        for frame in SyntheticSource(640, 480, 30, frames=round(30 * seconds)):
            writer.write(frame)
    return path


class DemoInput:
    """The demo's video, opened and probed: its size and rate, and its frames in a loop.

    Opening decodes the first frame, so a file that is missing, empty, not a
    video, audio only or unreadable fails here, before anything starts, with
    a :class:`DemoError` naming the file and the reason. :meth:`items` yields
    the frames as the pipeline's items; an error part-way is kept in
    ``error`` (and raised on to the pipeline) with the frames read before it.
    """

    def __init__(self, path: str | Path) -> None:
        from framescope.video import VideoSource  # noqa: PLC0415 - needs PyAV

        av = require("av", "video", "framescope demo")
        self.path = str(path)
        self.error: str | None = None
        problems = (OSError, ValueError, av.FFmpegError)  # the file's fault, not ours
        try:
            source = VideoSource(self.path, loop=True).open()
        except problems as error:
            raise DemoError(_reason(self.path, error)) from error
        try:
            self._frames = iter(source)
            first = next(self._frames, None)
        except problems as error:
            source.close()
            raise DemoError(_reason(self.path, error)) from error
        if first is None:
            source.close()
            raise DemoError(f"--video {self.path!r}: no video frame could be decoded")
        self.source = source
        self._first: Any = first
        self.height, self.width = (int(n) for n in first.image.shape[:2])
        self.fps = float(self.source.fps or _FALLBACK_FPS)

    @property
    def frames_read(self) -> int:
        """Frames decoded so far (the source's own count)."""
        return int(self.source.frames_read)

    def items(self) -> Iterator[dict[str, Any]]:
        """The frames, decoded in a loop, as the demo's items (image, index, stream time)."""
        frame, frames = self._first, self._frames
        self._first = None
        try:
            while frame is not None:
                yield {"frame": frame.image, "index": frame.index, "time": frame.time}
                try:
                    frame = next(frames, None)
                except Exception as error:
                    self.error = f"{type(error).__name__}: {error}"
                    raise
        finally:  # ended, failed or dropped: the file is closed
            self.close()

    def problems(self) -> str | None:
        """What went wrong reading the input (errors, damaged frames), or None."""
        found = []
        if self.error is not None:
            found.append(f"decoding stopped on an error: {self.error}")
        skipped = self.source.decode_errors
        if skipped:
            found.append(f"{skipped} damaged packets or frames skipped")
        if self.source.ended_early and self.error is None:
            last = self.source.last_error
            found.append("it ended before its stated duration" + (f" ({last})" if last else ""))
        if not found:
            return None
        return f"{'; '.join(found)}; {self.frames_read} frames were read"

    def close(self) -> None:
        """Close the video."""
        self.source.close()


def video_frames(path: str | Path) -> Iterator[dict[str, Any]]:
    """The frames of ``path``, decoded in a loop, as the demo's items.

    Raises :class:`DemoError` at once (not at the first frame) when the video
    cannot be read.
    """
    return DemoInput(path).items()


def _reason(path: str, error: BaseException) -> str:
    text = " ".join(str(error).split()) or type(error).__name__
    text = text.removeprefix("uri: ")
    return f"--video: {text}" if repr(path) in text or path in text else f"--video {path!r}: {text}"
