"""A stage's frames encoded for event clips, on a thread of their own.

The stage's thread only copies the picture and queues it (a copy, because
the stages after it may draw on the same array); this thread encodes it with
libx264 (ultrafast, no B-frames, CRF 23) and forces a key frame at least every
``key_interval`` seconds, so a clip's pre-roll is never cut short by more
than that. A full queue drops the frame from the clips (counted), never from
the pipeline. Frames come to it at most ``max_fps`` a second (a pipeline
running faster, e.g. over a file, has the rest left out of its clips, not
queued), and the thread runs at the lowest priority (nice 19): on a
machine the stages keep busy, the clips lose frames (counted), the stages
hardly any of their time.
"""

from __future__ import annotations

import fractions
import logging
import threading
from collections import deque
from collections.abc import Callable
from typing import Any

from framescope import _priority
from framescope._optional import require
from framescope.clock import Clock
from framescope.video.clipfile import ClipPacket, StreamParams

__all__ = ["FrameEncoder"]

logger = logging.getLogger(__name__)

_av = require("av", "video", "event clips")
_np = require("numpy", "video", "event clips")

CLIP_CLOCK_HZ = 90_000
_QUEUED = 8  # frames waiting for the encoder before new ones are dropped
_BURST_NS = 1_000_000_000  # max_fps lets a second's worth of frames through at once


class FrameEncoder:
    """Encodes pictures into :class:`ClipPacket` s handed to ``deliver``, on its own thread."""

    def __init__(
        self,
        name: str,
        deliver: Callable[[ClipPacket], None],
        clock: Clock,
        key_interval: float,
        max_fps: float | None = None,
        *,
        on_error: Callable[[str], None] | None = None,
    ) -> None:
        self._name, self._deliver, self._clock = name, deliver, clock
        self._key_ns = round(key_interval * 1e9)
        self._interval_ns = 0 if max_fps is None else round(1e9 / max_fps)
        self._on_error = on_error
        self._due_ns: int | None = None  # the rate cap's next theoretical arrival
        self._queue: deque[tuple[Any, str, int, float]] = deque()
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._stopping = False
        self._encoding = False
        self.dropped = 0
        self.skipped = 0  # over max_fps: left out of the clips
        self.failures = 0
        self.last_error: str | None = None
        self._encoder: Any = None
        self._params: StreamParams | None = None
        self._start_ns = 0
        self._last_pts = -1
        self._last_key_ns: int | None = None
        self._last_t_ns: int | None = None
        self._start_capture: float | None = None
        self.by_capture = True  # False: the frames carry no capture time (arrival it is)

    def wanted(self, t_ns: int) -> bool:
        """Whether a frame at ``t_ns`` is within ``max_fps``; one that is not is counted.

        ``max_fps`` a second on average, with a second's worth let through at
        once: the frames a stage sends in a burst after a stall are kept.
        """
        interval = self._interval_ns
        if not interval:
            return True
        due = self._due_ns
        if due is not None and t_ns < due - _BURST_NS:
            with self._cond:
                self.skipped += 1
            return False
        self._due_ns = max(due or t_ns, t_ns) + interval
        return True

    def put(self, image: Any, pixel_format: str, t_ns: int, capture_time: float) -> bool:
        """Queue a copy of ``image`` for encoding; False when the queue was full (dropped)."""
        copied = _np.array(image, copy=True, order="C")
        with self._cond:
            if self._stopping:
                return False
            if len(self._queue) >= _QUEUED:
                self.dropped += 1
                return False
            self._queue.append((copied, pixel_format, t_ns, capture_time))
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name=f"framescope:clips:{self._name}:encoder", daemon=True
                )
                self._thread.start()
            self._cond.notify()
        return True

    def _run(self) -> None:
        _priority.lowest_priority()  # the stages come first
        while True:
            with self._cond:
                while not self._queue and not self._stopping:
                    self._cond.wait()
                if not self._queue:
                    return
                image, pixel_format, t_ns, capture_time = self._queue.popleft()
                self._encoding = True
            try:
                self._encode(image, pixel_format, t_ns, capture_time)
            except Exception as error:  # a picture PyAV refuses: counted, the thread goes on
                self.failures += 1
                self.last_error = f"a frame could not be encoded ({type(error).__name__}: {error})"
                if self._on_error is not None:
                    self._on_error(self.last_error)  # said where the user looks, rate-limited
            finally:
                self._encoding = False

    def _encode(self, image: Any, pixel_format: str, t_ns: int, capture_time: float) -> None:
        try:  # the queued copy is ours: wrapped, not copied again (that would hold the GIL)
            picture = _av.VideoFrame.from_numpy_buffer(image, format=pixel_format)
        except (ValueError, AttributeError):  # a layout it does not wrap
            picture = _av.VideoFrame.from_ndarray(image, format=pixel_format)
        width, height = picture.width - picture.width % 2, picture.height - picture.height % 2
        encoder, params = self._encoder_for(max(2, width), max(2, height), t_ns)
        picture = picture.reformat(width=encoder.width, height=encoder.height, format="yuv420p")
        if self._start_capture is None:
            self._start_capture = capture_time
        # Timed by capture: frames a stall held back and sent in a burst play at their pace.
        since = round((capture_time - self._start_capture) * 1e9) if self.by_capture else None
        elapsed = t_ns - self._start_ns if since is None else since
        pts = max(self._last_pts + 1, elapsed * CLIP_CLOCK_HZ // 1_000_000_000)
        self._last_pts = picture.pts = pts
        picture.time_base = fractions.Fraction(1, CLIP_CLOCK_HZ)
        # A key frame when the next picture would come too late for one (at the last step).
        step, self._last_t_ns = t_ns - (self._last_t_ns or t_ns), t_ns
        if self._last_key_ns is None or t_ns - self._last_key_ns + step > self._key_ns:
            picture.pict_type = _av.video.frame.PictureType.I
            self._last_key_ns = t_ns
        # zerolatency: each picture's packet comes out of the same call, so its times are its own
        for packet in encoder.encode(picture):
            self._deliver(
                ClipPacket(
                    t_ns=t_ns,
                    data=bytes(packet),
                    pts=int(packet.pts),
                    dts=int(packet.dts) if packet.dts is not None else None,
                    key=bool(packet.is_keyframe),
                    capture_time=capture_time,
                    params=params,
                )
            )

    def _encoder_for(self, width: int, height: int, t_ns: int) -> tuple[Any, StreamParams]:
        encoder = self._encoder
        if encoder is not None and (encoder.width, encoder.height) == (width, height):
            assert self._params is not None
            return encoder, self._params
        encoder = _av.CodecContext.create("libx264", "w")
        encoder.width, encoder.height = width, height
        encoder.pix_fmt = "yuv420p"
        encoder.time_base = fractions.Fraction(1, CLIP_CLOCK_HZ)
        encoder.framerate = fractions.Fraction(30, 1)
        encoder.gop_size = 100_000  # key frames come by time
        encoder.thread_count = 1  # one core at most: clips must not crowd out the stages
        encoder.options = {
            "preset": "ultrafast",
            "tune": "zerolatency",
            "forced-idr": "1",
            "crf": "23",
        }
        self._encoder, self._start_ns, self._last_pts, self._last_key_ns = encoder, t_ns, -1, None
        self._start_capture = None
        self._params = StreamParams("h264", width, height, fractions.Fraction(1, CLIP_CLOCK_HZ))
        return encoder, self._params

    @property
    def busy(self) -> bool:
        """Frames are queued or being encoded: their packets are still to come."""
        return bool(self._queue) or self._encoding

    def close(self, timeout: float) -> bool:
        """Encode what is queued and stop; False when the thread did not end within ``timeout``."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
            thread = self._thread
        if thread is None:
            return True
        thread.join(timeout)
        return not thread.is_alive()
