"""Read video from a file, a network stream or a camera, frame by frame (PyAV)."""

from __future__ import annotations

import logging
import random
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

from framescope._optional import require
from framescope._validation import check_int_at_least, check_positive_seconds
from framescope.clock import SYSTEM_CLOCK, Clock, sleep_on
from framescope.video.frame import Frame

__all__ = ["VideoSource"]

logger = logging.getLogger(__name__)

_av = require("av", "video", "video input")

_NETWORK = ("rtsp", "rtsps", "rtmp", "rtmps", "http", "https", "udp", "tcp", "rtp", "srt")


class VideoSource:
    """The frames of a video file, a network stream or a V4L2 camera, as :class:`Frame` s.

    Example::

        for frame in pipeline.run(VideoSource("clip.mp4")):
            ...

    Iterating opens the source and yields frames until it ends (a file's
    end; a network stream that drops is reopened, see ``reconnect``).
    ``fps``, ``width``, ``height`` and ``duration`` are known once it is open
    (:meth:`open`, or the first frame).

    Args:
        uri: a file path, a URL (``rtsp://``, ``rtmp://``, ``http(s)://``,
            ``udp://`` ...), a V4L2 device (``/dev/video0``) or a camera number.
        realtime: pace a file at its own frame rate, like a camera (without
            it, frames come as fast as they are taken).
        loop: start a file again at its end (stream time keeps rising).
        format: the FFmpeg demuxer, when it cannot be told from the input.
        options: FFmpeg demuxer or protocol options (strings).
        pixel_format: the layout of ``Frame.image`` (``bgr24``: OpenCV's).
        reconnect: reopen a network stream that fails or ends, with
            back-off; None: for network URLs only.
        reconnect_initial, reconnect_max: the back-off bounds in seconds.
        max_reconnects: give up after this many reconnects in a row without
            a frame (None: never).
        timeout: seconds FFmpeg may wait on the network per operation.
        clock: paces ``realtime`` and the back-off, and stamps ``wall_time``.
    """

    def __init__(
        self,
        uri: str | Path | int,
        *,
        realtime: bool = False,
        loop: bool = False,
        format: str | None = None,
        options: dict[str, str] | None = None,
        pixel_format: str = "bgr24",
        reconnect: bool | None = None,
        reconnect_initial: float = 0.5,
        reconnect_max: float = 10.0,
        max_reconnects: int | None = None,
        timeout: float = 10.0,
        clock: Clock | None = None,
    ) -> None:
        self.uri, self.format = _normalise(uri, format)
        self.network = urlsplit(self.uri).scheme.lower() in _NETWORK
        self.realtime = bool(realtime)
        self.loop = bool(loop)
        self.options = {str(k): str(v) for k, v in (options or {}).items()}
        self.pixel_format = pixel_format
        self.reconnect = self.network if reconnect is None else bool(reconnect)
        self.reconnect_initial = check_positive_seconds(reconnect_initial, "reconnect_initial")
        self.reconnect_max = check_positive_seconds(reconnect_max, "reconnect_max")
        self.max_reconnects = check_int_at_least(max_reconnects, "max_reconnects", 0, or_none=True)
        self.timeout = check_positive_seconds(timeout, "timeout")
        self._clock = SYSTEM_CLOCK if clock is None else clock
        self._container: Any = None
        self._stream: Any = None
        self.fps: float | None = None
        self.width: int | None = None
        self.height: int | None = None
        self.duration: float | None = None
        self.frames_read = 0
        self.reconnects = 0  # times a network stream was reopened
        self.errors = 0  # failures that led to a reconnect
        self.last_error: str | None = None
        self._closed = False

    # -- opening -----------------------------------------------------------------------

    def open(self) -> VideoSource:
        """Open now (iterating does it otherwise); raises if it cannot be opened."""
        if self._container is None:
            self._open()
        return self

    def _open(self) -> None:
        container = _av.open(
            self.uri, format=self.format, options=dict(self.options), timeout=self.timeout
        )
        if not container.streams.video:
            container.close()
            raise ValueError(f"uri: {self.uri!r} has no video stream")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"  # decode on several cores where the codec allows
        rate = stream.average_rate or stream.guessed_rate
        self.fps = float(rate) if rate else None
        self.width = stream.codec_context.width or None
        self.height = stream.codec_context.height or None
        if container.duration:
            self.duration = container.duration / 1_000_000
        elif stream.duration and stream.time_base:
            self.duration = float(stream.duration * stream.time_base)
        self._container, self._stream = container, stream

    # -- reading -----------------------------------------------------------------------

    def __iter__(self) -> Iterator[Frame]:
        clock = self._clock
        offset = 0.0  # stream time of the loops before this one
        start_ns: int | None = None  # realtime pacing: when the first frame was due
        first_time: float | None = None
        failures = 0
        last_time = 0.0
        while not self._closed:
            try:
                if self._container is None:
                    self._open()
                for decoded in self._container.decode(self._stream):
                    failures = 0
                    stream_time = None if decoded.time is None else float(decoded.time) + offset
                    if self.realtime and stream_time is not None:
                        if start_ns is None or first_time is None:
                            start_ns, first_time = clock.monotonic_ns(), stream_time
                        delay = (start_ns - clock.monotonic_ns()) / 1e9 + stream_time - first_time
                        if delay > 0:
                            sleep_on(clock, delay)
                    image = decoded.to_ndarray(format=self.pixel_format)
                    frame = Frame(
                        image,
                        self.frames_read,
                        pts=decoded.pts,
                        time=stream_time,
                        wall_time=clock.wall().timestamp(),
                    )
                    self.frames_read += 1
                    if stream_time is not None:
                        last_time = stream_time
                    yield frame
                    if self._closed:
                        return
            except (_av.FFmpegError, OSError) as error:
                if not self.reconnect:
                    raise
                self.errors += 1
                self.last_error = f"{type(error).__name__}: {error}"
                logger.warning("video source %s failed (%s); reconnecting", self.uri, error)
            else:
                if self.loop and not self.network:
                    step = 1 / self.fps if self.fps else 0.0
                    offset = last_time + step
                    self._container.seek(0)
                    continue
                if not self.reconnect:
                    return
                logger.info("video source %s ended; reconnecting", self.uri)
            failures += 1
            if self.max_reconnects is not None and failures > self.max_reconnects:
                logger.warning("video %s: gave up after %d reconnects", self.uri, failures - 1)
                return
            self._close_container()
            delay = min(self.reconnect_max, self.reconnect_initial * 2 ** (failures - 1))
            sleep_on(clock, delay * random.uniform(0.8, 1.0))
            self.reconnects += 1

    # -- closing -----------------------------------------------------------------------

    def _close_container(self) -> None:
        container, self._container, self._stream = self._container, None, None
        if container is not None:
            try:
                container.close()
            except Exception:  # closing a broken stream must not hide why it broke
                logger.debug("closing %s failed", self.uri, exc_info=True)

    def close(self) -> None:
        """Close the source; an iteration in progress ends after its current frame."""
        self._closed = True
        self._close_container()

    def __enter__(self) -> VideoSource:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"VideoSource({self.uri!r})"


def _normalise(uri: object, format: str | None) -> tuple[str, str | None]:
    if isinstance(uri, bool):
        raise TypeError("uri must be a path, a URL or a camera number, got bool")
    if isinstance(uri, int):
        if uri < 0:
            raise ValueError(f"uri: a camera number must be >= 0, got {uri}")
        uri = f"/dev/video{uri}"
    if isinstance(uri, Path):
        uri = str(uri)
    if not isinstance(uri, str) or not uri.strip():
        raise ValueError(f"uri must be a path, a URL or a camera number, got {uri!r}")
    if format is None and uri.startswith("/dev/video"):
        format = "v4l2"
    scheme = urlsplit(uri).scheme.lower()
    if not scheme or len(scheme) == 1 or scheme == "file":
        path = Path(uri[len("file://") :] if scheme == "file" else uri)
        if not uri.startswith("/dev/") and not path.exists():
            raise FileNotFoundError(f"uri: no such video file: {uri!r}")
    return uri, format
