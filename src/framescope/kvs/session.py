"""One run of the fragmenter process: start it, feed it frames, take its fragments."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import IO, Any

from framescope.kvs.fragmenter_process import FRAGMENT_FACTS, MESSAGE, SLOT_FREE
from framescope.kvs.fragments import Fragment
from framescope.video.session import FrameProcess

__all__ = ["FragmenterSession"]

_PIPE_SIZE = 1 << 20  # the most a pipe may hold without privileges (pipe-max-size)


def _widen(stdin: IO[bytes]) -> None:
    """Let the pipe hold 1 MiB: a 720p frame then goes in 3 writes, not 42.

    Between the writes the feeder thread takes Python's interpreter lock
    again, and each time it may make the frame loop wait for it.
    """
    with contextlib.suppress(ImportError, OSError):  # elsewhere, or refused: fine as it is
        import fcntl  # noqa: PLC0415 - POSIX only

        fcntl.fcntl(stdin.fileno(), getattr(fcntl, "F_SETPIPE_SZ", 1031), _PIPE_SIZE)


class FragmenterSession(FrameProcess):
    """A fragmenter child process and the thread that reads its fragments.

    Args:
        settings: the encoder settings (see :mod:`framescope.kvs.fragmenter_process`).
        on_fragment: called on the reader thread with (stream header, fragment).
        name: names the reader thread.
    """

    def __init__(
        self,
        settings: dict[str, Any],
        on_fragment: Callable[[bytes, Fragment], None],
        name: str,
    ) -> None:
        self._on_fragment = on_fragment
        self.error: str | None = None
        self.encoded: int | None = None  # frames, once it closed cleanly
        super().__init__(
            "framescope.kvs.fragmenter_process",
            settings,
            f"{name}-fragments",
            prepare=_widen,
            frame_bytes=settings["width"] * settings["height"] * 3,
        )

    def read(self, stdout: IO[bytes]) -> None:
        """Hand each fragment (with the stream header) to ``on_fragment``."""
        header: bytes | None = None
        while True:
            head = stdout.read(MESSAGE.size)
            if len(head) < MESSAGE.size:
                return
            kind, length = MESSAGE.unpack(head)
            body = stdout.read(length)
            if kind == b"H":
                header = body
            elif kind == b"F" and header is not None:
                timecode, frames = FRAGMENT_FACTS.unpack_from(body)
                self._on_fragment(header, Fragment(body[FRAGMENT_FACTS.size :], timecode, frames))
            elif kind == b"S":
                self.slot_free(SLOT_FREE.unpack(body)[0])
            elif kind == b"E":
                self.error = body.decode("utf-8", "replace")
            elif kind == b"C":
                self.encoded = int(body)

    def finish(self, timeout: float | None) -> bool:
        """Close the input (the encoder flushes its last fragment); True when it ended cleanly."""
        return super().finish(timeout) and self.error is None
