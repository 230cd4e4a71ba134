"""SpyGlass: restream annotated frames to RTMP, RTSP, UDP, HTTP, HLS or a file.

Backpack's SpyGlass, built on PyAV instead of an OpenCV compiled with
GStreamer. ``put()`` never blocks the frame loop and never raises for a
streaming problem: it queues the frame (bounded, the oldest dropped and
counted) and an encoder process sends it (see
:mod:`framescope.video.encoder_process` for why a process).
"""

from __future__ import annotations

import enum
import logging
import random
import threading
import time
from collections import deque
from typing import Any, Protocol

from framescope._optional import require
from framescope._validation import (
    check_int_at_least,
    check_number,
    check_positive_int,
    check_positive_seconds,
)
from framescope.clock import SYSTEM_CLOCK, Clock, wait_on
from framescope.pipeline.stage import Stage
from framescope.timepiece import Ticker
from framescope.video.frame import Frame
from framescope.video.session import EncoderSession
from framescope.video.targets import resolve_target
from framescope.video.writer import check_codec

__all__ = ["USE_LAST_VALUE", "SpyGlass", "SpyGlassState"]

logger = logging.getLogger(__name__)
_np = require("numpy", "video", "SpyGlass")

POLL_S = 0.002
"""How often an idle encoder thread looks for a new frame (it adds at most this latency)."""


class _Session(Protocol):
    """What the frame feeder needs of where its frames go: whether it can take more, and an end."""

    @property
    def alive(self) -> bool: ...

    def kill(self) -> None: ...


class _LastValue:
    def __repr__(self) -> str:
        return "USE_LAST_VALUE"


USE_LAST_VALUE: Any = _LastValue()
"""Give it to :meth:`SpyGlass.start_streaming` to keep the value of the last session."""


class SpyGlassState(enum.Enum):
    """Where a SpyGlass is: stopped, measuring the input (warm-up), streaming, or failing."""

    STOPPED = 0
    START_WARMUP = 1
    WARMUP = 2
    STREAMING = 3
    ERROR = 4


class SpyGlass(Stage):
    """Restreams the frames given to :meth:`put` (or passing through it as a stage).

    Example::

        spyglass = SpyGlass("rtmp://127.0.0.1/live/cam1")
        spyglass.start_streaming()
        ...
        spyglass.put(annotated_image)  # in the frame loop: never blocks
        ...
        spyglass.stop_streaming()

    Without ``fps`` or a size, the first ``warmup_frames`` frames measure the
    rate and the size (they are counted, not sent); with all three given
    there is no warm-up. Timestamps follow real time: each frame is stamped
    when it is put, so a source faster or slower than ``fps`` still plays at
    the speed it happened (no frame is duplicated or dropped to match
    ``fps``, which only guides the encoder). Frames of another size are
    scaled once, in the encoder. A receiver that goes away moves the state to
    ``ERROR``; the SpyGlass reconnects with back-off while the loop goes on.

    Restreaming can carry a closed camera network's video to the Internet:
    it is off until you start it, and nothing here listens on any address.

    Args:
        uri: where to send: ``rtmp://``, ``rtsp://``, ``udp://``, ``tcp://``,
            ``http(s)://``, a ``.m3u8`` HLS playlist or a video file.
        fps, width, height: the stream's rate and size (None: measured).
        warmup_frames: frames the warm-up measures.
        queue_size: frames waiting for the encoder before the oldest is dropped.
        codec, preset, tune, gop, bitrate, format, options: encoder and
            container settings, as for :class:`~framescope.video.VideoWriter`.
        reconnect_initial, reconnect_max: back-off bounds in seconds.
        name: the stage name (and the threads' names).
        clock: the clock of the warm-up, the timestamps and the back-off.
    """

    def __init__(
        self,
        uri: str,
        fps: float | None = None,
        width: int | None = None,
        height: int | None = None,
        *,
        warmup_frames: int = 100,
        queue_size: int = 8,
        codec: str = "libx264",
        preset: str | None = "ultrafast",
        tune: str | None = "zerolatency",
        gop: int | None = None,
        bitrate: int | None = None,
        format: str | None = None,
        options: dict[str, str] | None = None,
        reconnect_initial: float = 0.5,
        reconnect_max: float = 10.0,
        name: str = "SpyGlass",
        clock: Clock | None = None,
    ) -> None:
        self.name = name
        self.uri = uri
        self._target = self._resolve(uri, format, options)
        self._encoder = {
            "codec": check_codec(codec),
            "preset": preset,
            "tune": tune,
            "gop": check_int_at_least(gop, "gop", 1, or_none=True),
            "bitrate": check_int_at_least(bitrate, "bitrate", 1, or_none=True),
            "format": format,
            "options": dict(options or {}),
        }
        self.fps, self.width, self.height = _checked(fps, width, height)
        self.warmup_frames = check_positive_int(warmup_frames, "warmup_frames")
        self.queue_size = check_positive_int(queue_size, "queue_size")
        self.reconnect_initial = check_positive_seconds(reconnect_initial, "reconnect_initial")
        self.reconnect_max = check_positive_seconds(reconnect_max, "reconnect_max")
        self._clock = SYSTEM_CLOCK if clock is None else clock
        self.state = SpyGlassState.STOPPED
        self._queue: deque[tuple[Any, float]] = deque(maxlen=self.queue_size)
        # The frame loop never takes a lock nor wakes a thread: put() appends
        # (the deque drops the oldest itself) and the encoder thread looks
        # every POLL_S when idle. Waking it from put() cost 60-120 us a frame
        # on a loop that waits for its next frame (the woken thread preempts).
        self._wake = threading.Event()  # set only to stop
        self._queued = 0  # frames put in the queue (put() runs in the frame loop's thread)
        self._taken = 0  # frames the encoder thread took from the queue
        self._lost = 0  # frames taken that did not reach the encoder, or left at a stop
        self._handed = 0  # frames written to this session's encoder process
        self._sent_in_session = 0  # frames that process reported sent
        self._stopping = threading.Event()
        self._feeder: threading.Thread | None = None
        self._session: _Session | None = None
        self._ticker: Ticker | None = None
        self._warmed = 0
        self._start_ns = 0
        self._counts = dict.fromkeys(("put", "warmup", "sent", "failures", "reconnects"), 0)
        self.last_error: str | None = None

    def _resolve(self, uri: str, format: str | None, options: dict[str, str] | None) -> Any:
        """Where the frames go (a subclass that sends elsewhere checks its own target)."""
        return resolve_target(uri, format, options)

    @property
    def counts(self) -> dict[str, int]:
        """What happened to the frames: every one put is warm-up, queued, or not taken.

        ``put`` frames given, ``warmup`` used to measure (not sent),
        ``queued`` handed to the encoder queue, ``dropped`` of those not
        sent (the queue was full, the encoder failed while holding them, or
        they were left at a stop), ``sent`` encoded and sent, ``failures``
        sessions that failed, ``reconnects`` new sessions after a failure.
        """
        counts = dict(self._counts)
        queued = counts["queued"] = self._queued
        # What is neither waiting, nor was taken, was pushed out of the full queue.
        counts["dropped"] = queued - self._taken - len(self._queue) + self._lost
        return counts

    # -- the session -----------------------------------------------------------------

    def start_streaming(
        self, fps: Any = USE_LAST_VALUE, width: Any = USE_LAST_VALUE, height: Any = USE_LAST_VALUE
    ) -> None:
        """Start a streaming session (warm-up first when the rate or size is not known).

        ``USE_LAST_VALUE`` keeps the value of the constructor or the last
        session; None measures it in the warm-up. A bad setting is a
        ValueError here, not in the encoder.
        """
        fps = self.fps if fps is USE_LAST_VALUE else fps
        width = self.width if width is USE_LAST_VALUE else width
        height = self.height if height is USE_LAST_VALUE else height
        self.fps, self.width, self.height = _checked(fps, width, height)
        if self.state is not SpyGlassState.STOPPED:
            self.stop_streaming()
        self._stopping.clear()
        if self.fps is None or self.width is None or self.height is None:
            self._ticker = Ticker(max_intervals=self.warmup_frames, clock=self._clock)
            self._warmed = 0
            self.state = SpyGlassState.START_WARMUP
        else:
            self._begin()

    def _begin(self) -> None:
        """The rate and size are known: start the encoder thread (state STREAMING)."""
        self._start_ns = self._clock.monotonic_ns()
        self._wake.clear()  # set by the last stop
        self.state = SpyGlassState.STREAMING
        self._feeder = threading.Thread(
            target=self._feed, name=f"framescope-spyglass-{self.name}", daemon=True
        )
        self._feeder.start()

    def put(self, frame: Any) -> bool:
        """Hand over one frame (a numpy BGR image or a :class:`Frame`); never blocks.

        Returns True when it was queued to be sent, False when it was not
        (stopped, or used by the warm-up). A full queue drops its oldest
        frame (counted in ``counts["dropped"]``).
        """
        image = frame.image if isinstance(frame, Frame) else frame
        if type(image) is not _np.ndarray or image.ndim != 3 or image.shape[2] != 3:
            raise TypeError(
                "frame must be an H x W x 3 numpy image or a framescope Frame, "
                f"got {type(image).__name__}"
            )
        state = self.state
        self._counts["put"] += 1
        if state is SpyGlassState.STOPPED:
            return False
        if state is SpyGlassState.START_WARMUP or state is SpyGlassState.WARMUP:
            return self._warm_up(image)
        self._queue.append((image, (self._clock.monotonic_ns() - self._start_ns) / 1e9))
        self._queued += 1
        return True

    def _warm_up(self, image: Any) -> bool:
        ticker = self._ticker
        assert ticker is not None
        ticker.tick()
        self.state = SpyGlassState.WARMUP
        self._warmed += 1
        self._counts["warmup"] += 1
        if self._warmed < self.warmup_frames:
            return False
        measured = ticker.freq() if ticker.len() else 0.0
        height, width = image.shape[:2]
        self.width = self.width or width - width % 2
        self.height = self.height or height - height % 2
        self.fps = self.fps or (measured if measured > 0 else 30.0)
        self._begin()
        return False

    def __call__(self, frame: Any) -> Any:
        """As a pipeline stage: restream ``frame`` and pass it on unchanged."""
        self.put(frame)
        return frame

    # -- the encoder thread ----------------------------------------------------------

    def _settings(self) -> dict[str, Any]:
        return {
            "uri": self._target.url,
            "fps": self.fps,
            "width": self.width,
            "height": self.height,
            **self._encoder,
        }

    def _on_event(self, event: dict[str, Any]) -> None:
        kind = event.get("event")
        if kind == "streaming":
            self.state = SpyGlassState.STREAMING
        elif kind in ("sent", "closed", "error"):
            self._sent_in_session = int(event.get("count", 0))
        if kind == "error":
            self.last_error = str(event.get("message"))

    def _feed(self) -> None:
        failures = 0
        while not self._stopping.is_set():
            session = EncoderSession(self._settings(), self._on_event, self.name)
            self._session = session
            self._sent_in_session = self._handed = 0
            failed = self._feed_session(session)
            session.ended.wait(5)  # its last report, with what it sent
            self._counts["sent"] += self._sent_in_session
            # Handed to the encoder but not confirmed sent: lost with the session.
            self._lost += max(0, self._handed - self._sent_in_session)
            if not failed:
                return
            failures += 1
            self._counts["failures"] += 1
            self.state = SpyGlassState.ERROR
            logger.warning(
                "SpyGlass %r: streaming to %s failed (%s); reconnecting",
                self.name,
                self.uri,
                self.last_error,
            )
            delay = min(self.reconnect_max, self.reconnect_initial * 2 ** (failures - 1))
            if wait_on(self._clock, self._stopping, delay * random.uniform(0.8, 1.0)):
                return
            self._counts["reconnects"] += 1

    def _feed_session(self, session: EncoderSession) -> bool:
        """Send queued frames until stopped (False) or the session fails (True)."""
        while True:
            item = self._next_frame(session)
            if not session.alive:
                if item is not None:
                    self._lost += 1
                session.kill()
                return True
            if item is None:  # stopping, and nothing left
                session.finish(timeout=5)
                return False
            image, stamp = item
            try:
                session.send(_np.ascontiguousarray(image), stamp)
                self._handed += 1
            except (OSError, ValueError):
                self._lost += 1
                session.kill()
                if self._stopping.is_set():
                    return False
                if self.last_error is None:
                    self.last_error = "the encoder process ended"
                return True

    def _next_frame(self, session: _Session) -> tuple[Any, float] | None:
        """The oldest queued frame; None when stopping with none left or the session ended."""
        queue, wake = self._queue, self._wake
        while True:
            try:
                item = queue.popleft()
            except IndexError:
                pass
            else:
                self._taken += 1
                return item
            if self._stopping.is_set() or not session.alive:
                return None
            wake.wait(POLL_S)

    def stop_streaming(self, timeout: float = 5.0) -> bool:
        """End the session: send what is queued (up to ``timeout`` s), then close the stream.

        Returns True when it ended cleanly within the time. The SpyGlass can
        be started again.
        """
        deadline = time.monotonic() + timeout
        self._stopping.set()
        self._wake.set()
        feeder, self._feeder = self._feeder, None
        clean = True
        if feeder is not None:
            feeder.join(max(0.0, deadline - time.monotonic()))
            if feeder.is_alive():  # stuck on a receiver that does not read: end it
                clean = False
                session = self._session
                if session is not None:
                    session.kill()
                feeder.join(5)
        left = len(self._queue)
        self._queue.clear()
        self._taken += left  # taken off the queue, and lost
        self._lost += left
        self._session = None
        self.state = SpyGlassState.STOPPED
        return clean

    def cleanup(self) -> None:
        """As a pipeline stage: stop streaming when the pipeline is cleaned up."""
        if self.state is not SpyGlassState.STOPPED:
            self.stop_streaming()

    def __repr__(self) -> str:
        return f"SpyGlass({self.uri!r}, state={self.state.name})"


def _checked(fps: Any, width: Any, height: Any) -> tuple[float | None, int | None, int | None]:
    rate = None if fps is None else check_number(fps, "fps", positive=True)
    sizes = []
    for value, name in ((width, "width"), (height, "height")):
        size = check_int_at_least(value, name, 2, or_none=True)
        if size is not None and size % 2:
            raise ValueError(f"{name} must be even (4:2:0 video), got {size}")
        sizes.append(size)
    return rate, sizes[0], sizes[1]
