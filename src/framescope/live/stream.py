"""A preview's WebRTC video: its frames encoded once, at the stage's rate, for every viewer.

A :class:`VideoStream` is one encoder for one preview (one camera of it,
one codec) however many viewers play it. The tap hands it each frame with
the moment it left the stage (on the stage's thread: a reference and a
wake-up, nothing else); its own thread encodes the newest frame (H.264 with
libx264, or VP8 with libvpx: real-time settings, no B-frames, a key frame
at least every ``gop`` seconds and whenever a viewer needs one) and hands
the packets to the viewers. A frame that comes while the encoder is busy,
or sooner than ``max_fps`` allows (30 a second by default: what a screen
shows), replaces the one waiting, counted in ``frames_skipped``: the
pipeline never waits for the video. When no frame came for ``placeholder_after`` seconds
the stream sends a grey picture saying since when
(:mod:`~framescope.live.placeholder`), a few a second, so a player never
freezes silently; the next frame of the stage takes over again.

Each frame's presentation time (``pts``, 90 kHz, the RTP clock) is when it
left the stage, so the stream can tell a viewer's report of a presented
frame back to that moment (:meth:`VideoStream.sent_at`).
"""

from __future__ import annotations

import datetime
import fractions
import logging
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from framescope._optional import require
from framescope.capture import mark_glass
from framescope.clock import Clock, wait_on
from framescope.live.placeholder import placeholder_image, placeholder_text
from framescope.live.preview import ImageChoice, pick_image

__all__ = ["CODECS", "PLACEHOLDER", "RTP_CLOCK_HZ", "EncodedFrame", "FrameTap", "VideoStream"]

logger = logging.getLogger(__name__)

RTP_CLOCK_HZ = 90_000
"""The clock rate of video RTP timestamps, and of every stream's ``pts``."""

CODECS = ("H264", "VP8")
"""The codecs a stream encodes, the preferred first."""

PLACEHOLDER = -1
"""What :meth:`VideoStream.sent_at` says of a placeholder frame (no stage time)."""

_REMEMBERED = 1024  # frames whose stage time is kept for the viewers' reports (a few seconds)
_KEYFRAME_GAP_NS = 250_000_000  # at most four key frames a second on request
_DEFAULT_SIZE = (640, 360)  # the placeholder's size before any frame came


class FrameTap(Protocol):
    """Where a stream's frames come from: a :class:`~framescope.live.preview.PreviewTap`, or
    its stand-in in the live view's video process."""

    name: str
    size: tuple[int, int] | None
    image: ImageChoice
    webrtc_fps: float

    @property
    def cameras(self) -> tuple[str, ...]:
        """The sources seen so far (empty: not known here; any camera is taken)."""

    def add_feed(self, feed: Callable[[Any, int], None]) -> None:
        """Call ``feed(frame, out_ns)`` with every frame from now on."""

    def remove_feed(self, feed: Callable[[Any, int], None]) -> None:
        """Stop calling ``feed``."""


def mark_sent(frame: Any) -> None:
    """A stream's default on an encoded frame: it is on its way to the glass (capture-to-glass)."""
    mark_glass(frame, "webrtc")


@dataclass(frozen=True, slots=True)
class EncodedFrame:
    """One encoded frame: its packet (``pts`` on the RTP clock), its stage time and its kind."""

    packet: Any
    pts: int
    out_ns: int
    keyframe: bool
    placeholder: bool
    size: int
    payloads: tuple[bytes, ...] = ()
    """The packet cut into RTP payloads, once for every viewer (empty: the sender cuts it)."""


class VideoStream:
    """One preview's frames (one camera's, or all), encoded once in ``codec`` for its viewers.

    Args:
        tap: the preview whose frames it encodes.
        camera: only frames of this source (None: every frame).
        codec: ``"H264"`` or ``"VP8"``.
        deliver: called on the encoder's thread with the stream and each encoded frame.
        clock: the clock of its waits and readings (the tap's).
        placeholder_after: seconds without a frame before the placeholder shows.
        placeholder_fps: placeholder frames a second while it shows.
        gop: seconds between key frames at most.
        max_fps: frames encoded a second at most, on average (the newest is
            taken; the rest are skipped, counted in ``frames_skipped``).
        on_encoded: called on the encoder's thread with each stage frame once
            it is encoded and handed on (by default its capture-to-glass stamp).
    """

    def __init__(
        self,
        tap: FrameTap,
        camera: str | None,
        codec: str,
        *,
        deliver: Callable[[VideoStream, EncodedFrame], None],
        clock: Clock,
        placeholder_after: float = 1.0,
        placeholder_fps: float = 5.0,
        gop: float = 2.0,
        max_fps: float = 30.0,
        on_encoded: Callable[[Any], None] = mark_sent,
    ) -> None:
        if codec not in CODECS:
            raise ValueError(f"codec must be one of {', '.join(CODECS)}, got {codec!r}")
        self.tap, self.camera, self.codec = tap, camera, codec
        self._deliver = deliver
        self._on_encoded = on_encoded
        self._clock = clock
        self._after_ns = round(placeholder_after * 1e9)
        self._placeholder_ns = round(1e9 / placeholder_fps)
        self._gop_ns = round(gop * 1e9)
        self._frame_ns = round(1e9 / max_fps)
        self._due_ns = clock.monotonic_ns()
        self._cond = threading.Condition()
        self._pending: tuple[Any, int] | None = None
        self._idle = False  # waiting for a frame (a new one wakes it)
        self._stopped = False
        self._thread: threading.Thread | None = None
        self._encoder: Any = None
        self._size: tuple[int, int] | None = tap.size
        self._start_ns = clock.monotonic_ns()
        self._last_pts = -1
        self._last_key_ns: int | None = None
        self._key_wanted = True
        self._placeholder_due_ns = self._start_ns + self._after_ns
        self._sent: OrderedDict[int, int] = OrderedDict()
        self._sent_lock = threading.Lock()
        self.last_frame_wall: datetime.datetime | None = None
        """Wall time of the stage's last frame it encoded (None: none yet)."""
        self.showing_placeholder = False
        self.frames_encoded = 0
        self.frames_skipped = 0
        self.placeholder_frames = 0
        self.failures = 0

    # -- the stage's side ----------------------------------------------------------------

    def _feed(self, frame: Any, out_ns: int) -> None:
        """The tap's feed: keep the newest frame (of this camera) and wake the encoder."""
        if self.camera is not None and getattr(frame, "source", None) != self.camera:
            return
        with self._cond:
            if self._pending is not None:
                self.frames_skipped += 1
            self._pending = (frame, out_ns)
            if self._idle:  # woken only when it waits for a frame (not for its pace)
                self._idle = False
                self._cond.notify()

    # -- life -----------------------------------------------------------------------------

    def start(self, name: str) -> None:
        """Start encoding on a thread called ``name``, fed by the tap from now on."""
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self._thread.start()
        self.tap.add_feed(self._feed)

    def stop(self, timeout: float = 2.0) -> bool:
        """Stop feeding and encoding; False if the thread outlived ``timeout``."""
        self.tap.remove_feed(self._feed)
        with self._cond:
            self._stopped = True
            self._cond.notify_all()
        thread = self._thread
        if thread is None:
            return True
        thread.join(timeout)
        return not thread.is_alive()

    def request_keyframe(self) -> None:
        """Make the next frame a key frame (a viewer joined, or lost its way)."""
        with self._cond:
            self._key_wanted = True

    def sent_at(self, rtp_time: int) -> int | None:
        """When the frame with ``rtp_time`` left the stage (None: not one of the frames remembered).

        :data:`PLACEHOLDER` for a placeholder frame: no stage made it.

        ``rtp_time`` is its ``pts`` modulo 2**32, as RTP carries it (an RTP
        timestamp less the sender's random origin).
        """
        with self._sent_lock:
            return self._sent.get(rtp_time)

    # -- the encoder's thread --------------------------------------------------------------

    def _loop(self) -> None:
        while True:
            taken = self._wait()
            if taken is False:
                return
            try:
                if isinstance(taken, tuple):
                    self._encode_frame(*taken)
                else:
                    self._encode_placeholder()
            except Exception as error:  # a bad frame must not end the video
                self.failures += 1
                if self.failures == 1:
                    logger.warning("preview %r: cannot encode a frame: %s", self.tap.name, error)

    def _wait(self) -> tuple[Any, int] | bool | None:
        """The next frame; None when a placeholder is due; False once stopped."""
        clock = self._clock
        with self._cond:
            while not self._stopped:
                now = clock.monotonic_ns()
                if self._pending is not None:
                    # At most max_fps frames a second on average, one early frame allowed:
                    # a camera's jitter is not cut, a faster stage is skipped down to it.
                    earliest = self._due_ns - self._frame_ns
                    if now >= earliest:
                        taken, self._pending = self._pending, None
                        self._due_ns = max(self._due_ns, now) + self._frame_ns
                        return taken
                    wait_on(clock, self._cond, (earliest - now) / 1e9)
                    continue
                if now >= self._placeholder_due_ns:
                    self._placeholder_due_ns = now + self._placeholder_ns
                    return None
                self._idle = True
                wait_on(clock, self._cond, (self._placeholder_due_ns - now) / 1e9)
                self._idle = False
        return False

    def _encode_frame(self, frame: Any, out_ns: int) -> None:
        try:
            image, _ = pick_image(frame, self.tap.image)
        except Exception:  # a user's image= function: the tap reports it
            image = None
        if image is None:
            return  # the tap's status says why
        # The first frame's size stays (frames of another size, e.g. another camera's in
        # a preview of every camera, are scaled to it): a new size is a new encoder.
        self._size = self.tap.size or self._size or _even(image)
        self.last_frame_wall = self._clock.wall()
        self.showing_placeholder = False
        with self._cond:
            self._placeholder_due_ns = out_ns + self._after_ns
        self._encode(image, out_ns, placeholder=False)
        self.frames_encoded += 1
        self._on_encoded(frame)

    def _encode_placeholder(self) -> None:
        width, height = self._size or _DEFAULT_SIZE
        text = placeholder_text(self.last_frame_wall, self._clock.wall())
        self.showing_placeholder = True
        self._encode(placeholder_image(width, height, text), self._clock.monotonic_ns(), True)
        self.placeholder_frames += 1

    def _encode(self, image: Any, out_ns: int, placeholder: bool) -> None:
        av = require("av", "webrtc", "WebRTC video")
        width, height = self._size or _DEFAULT_SIZE
        encoder = self._encoder_for(av, width, height)
        source = "bgr24" if image.ndim == 3 else "gray"
        try:
            # The stage's array as it is (no copy): the conversion below copies it, and
            # does so without the interpreter's lock, as the encoder does; a copy here
            # would hold the lock, and the stages with it (a fifth of a busy pipeline).
            picture = av.VideoFrame.from_numpy_buffer(image, format=source)
        except (ValueError, AttributeError):  # rows not contiguous, or an older PyAV
            picture = av.VideoFrame.from_ndarray(image, format=source)
        picture = picture.reformat(width=width, height=height, format="yuv420p")
        pts = max(self._last_pts + 1, (out_ns - self._start_ns) * RTP_CLOCK_HZ // 1_000_000_000)
        self._last_pts = picture.pts = pts
        picture.time_base = fractions.Fraction(1, RTP_CLOCK_HZ)
        if self._key_due(out_ns):
            picture.pict_type = av.video.frame.PictureType.I
        for packet in encoder.encode(picture):
            self._remember(int(packet.pts), PLACEHOLDER if placeholder else out_ns)
            keyframe = bool(packet.is_keyframe)
            if keyframe:
                self._last_key_ns = out_ns
            encoded = EncodedFrame(
                packet, int(packet.pts), out_ns, keyframe, placeholder, packet.size
            )
            self._deliver(self, encoded)

    def _key_due(self, now_ns: int) -> bool:
        with self._cond:
            last = self._last_key_ns
            due = last is None or now_ns - last >= self._gop_ns
            if due or (self._key_wanted and now_ns - last >= _KEYFRAME_GAP_NS):  # type: ignore[operator]
                self._key_wanted = False
                return True
            return False

    def _remember(self, pts: int, out_ns: int) -> None:
        with self._sent_lock:
            sent = self._sent
            sent[pts & 0xFFFFFFFF] = out_ns
            if len(sent) > _REMEMBERED:
                sent.popitem(last=False)

    def _encoder_for(self, av: Any, width: int, height: int) -> Any:
        encoder = self._encoder
        if encoder is not None and (encoder.width, encoder.height) == (width, height):
            return encoder
        encoder = av.CodecContext.create("libx264" if self.codec == "H264" else "libvpx", "w")
        encoder.width, encoder.height = width, height
        encoder.pix_fmt = "yuv420p"
        encoder.time_base = fractions.Fraction(1, RTP_CLOCK_HZ)
        encoder.framerate = fractions.Fraction(30, 1)
        encoder.gop_size = 600  # key frames come by time (gop) and on request
        encoder.thread_count = 1  # one core at most: the video must not crowd out the stages
        rate = max(500_000, width * height * 3)  # about 2.8 Mbit/s at 720p
        if self.codec == "H264":
            encoder.profile = "Baseline"
            encoder.options = {
                "preset": "ultrafast",
                "tune": "zerolatency",
                "forced-idr": "1",
                "crf": "23",
                "maxrate": str(rate),  # capped: a still picture costs less, never more
                "bufsize": str(rate // 2),
            }
        else:
            encoder.bit_rate = rate
            encoder.options = {
                "deadline": "realtime",
                "cpu-used": "8",
                "lag-in-frames": "0",
                "error-resilient": "1",
            }
        with self._cond:
            self._key_wanted = True  # a new encoder starts with a key frame
        self._encoder = encoder
        return encoder


def _even(image: Any) -> tuple[int, int]:
    height, width = image.shape[:2]
    return max(2, width - width % 2), max(2, height - height % 2)
