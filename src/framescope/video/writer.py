"""Encode frames to a file, an HLS folder or a network stream (PyAV)."""

from __future__ import annotations

import fractions
from types import TracebackType
from typing import Any

from framescope._optional import require
from framescope._validation import check_int_at_least, check_number, check_positive_seconds
from framescope.capture import mark_glass
from framescope.clock import SYSTEM_CLOCK, Clock
from framescope.video.frame import Frame
from framescope.video.targets import Target, resolve_target
from framescope.video.whip import DtlsCertificate, check_whip_codec, needs_certificate

__all__ = ["TIME_BASE", "VideoWriter", "check_codec", "to_video_frame"]

_av = require("av", "video", "video output")
_np = require("numpy", "video", "video output")

#: The time base of the timestamps written: MPEG's 90 kHz clock.
TIME_BASE = fractions.Fraction(1, 90_000)


def _default_codec(container_format: str | None) -> str:
    """The encoder a container takes by default: VP8 for WebM (no H.264 there), else x264."""
    return "libvpx" if container_format == "webm" else "libx264"


def _encoder_options(
    codec: str, preset: str | None, tune: str | None, container_format: str | None = None
) -> dict[str, str]:
    """The speed options each encoder understands (x264's preset and tune mean nothing to VP8).

    For WHIP, x264 encodes the baseline profile (what every WebRTC receiver
    decodes; no B-frames, which FFmpeg's WHIP muxer refuses).
    """
    if codec in ("libx264", "libx265"):
        named = {"preset": preset, "tune": tune}
        if container_format == "whip" and codec == "libx264":
            named["profile"] = "baseline"
        return {key: value for key, value in named.items() if value is not None}
    if codec in ("libvpx", "libvpx-vp9"):
        return {"deadline": "realtime", "cpu-used": "8"}
    return {}


def check_codec(codec: object) -> str:
    """Return ``codec`` if PyAV's FFmpeg can encode with it, else raise ValueError naming it."""
    if not isinstance(codec, str) or not codec:
        raise ValueError(f"codec must be an FFmpeg encoder name such as 'libx264', got {codec!r}")
    try:
        _av.Codec(codec, "w")
    except Exception:
        raise ValueError(
            f"codec: FFmpeg here has no {codec!r} encoder (try 'libx264' or 'mpeg4')"
        ) from None
    return codec


def _size(value: object, name: str) -> int | None:
    size = check_int_at_least(value, name, 2, or_none=True)
    if size is not None and size % 2:
        raise ValueError(f"{name} must be even (4:2:0 video), got {size}")
    return size


def to_video_frame(item: Any) -> tuple[Any, float | None]:
    """An ``av.VideoFrame`` for a Frame, an image (H x W x 3 uint8 BGR) or a VideoFrame.

    Returns it with the item's stream time in seconds (None when it has none).
    """
    if isinstance(item, Frame):
        if item.pixel_format != "bgr24":
            raise ValueError(
                f"frame: a Frame in {item.pixel_format!r} (its pixel_format); frames are written "
                f"from BGR: read them with VideoSource(..., pixel_format='bgr24') or convert them"
            )
        return _from_image(item.image), item.time
    if isinstance(item, _av.VideoFrame):
        return item, None if item.time is None else float(item.time)
    return _from_image(item), None


def _from_image(image: Any) -> Any:
    if not isinstance(image, _np.ndarray):
        raise TypeError(
            f"frame must be a framescope Frame, a numpy image or an av.VideoFrame, "
            f"got {type(image).__name__}"
        )
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != _np.uint8:
        raise ValueError(
            f"frame: an image must be H x W x 3 uint8 (BGR), got shape {image.shape} {image.dtype}"
        )
    return _av.VideoFrame.from_ndarray(image, format="bgr24")


class VideoWriter:
    """Encodes frames to a file (.mp4, .mkv, .ts ...), an HLS playlist or a network stream.

    Example::

        with VideoWriter("out.mp4", fps=30) as out:
            for frame in VideoSource("in.mp4"):
                out.write(frame)

    The target decides the container: a file by its extension (``.m3u8``: an
    HLS playlist with rolling 2 s segments beside it), ``rtmp://`` (FLV),
    ``rtsp://`` (RTSP over TCP, to a server that records), ``udp://`` and
    ``tcp://`` (MPEG-TS), ``http(s)://`` (MPEG-TS, POSTed), ``whip://`` and
    ``whips://`` (WebRTC, published with WHIP over HTTP or HTTPS: see
    :mod:`framescope.video.whip`; an ``http(s)://`` URL with ``format="whip"``
    too). ``format`` and ``options`` (FFmpeg muxer and protocol options)
    override that.

    A WHIP output is H.264 in the baseline profile without B-frames (another
    ``codec`` than an H.264 encoder is a ValueError); ``timeout`` also bounds
    its ICE and DTLS handshake (FFmpeg's ``handshake_timeout``), and it gets
    a DTLS certificate of its own (deleted at :meth:`close`).

    Frames may come at any pace: each is stamped with its stream time
    (``Frame.time``) or, for bare images, the time it was written, so the
    video plays at the speed it happened. Frames of another size are scaled
    to the stream's size. Size and rate not given are taken from the first
    frame (rate: 30 when unknown; it only sets the encoder's rate control).

    A network target is connected at the first :meth:`write`; FFmpeg holds
    the interpreter while it connects, so a frame loop that must never stall
    should restream with :class:`~framescope.video.SpyGlass` instead.

    Args:
        uri: a file path or a URL (see above).
        fps: the nominal frame rate.
        width, height: the stream size (even numbers); None: the first frame's.
        codec: an FFmpeg encoder; None: ``libvpx`` (VP8) for WebM, which
            cannot hold H.264, else ``libx264`` (WHIP: H.264 encoders only).
        preset, tune: the speed preset and tuning of x264 and x265 (None: the
            encoder's default). Other encoders ignore them; VP8 and VP9 encode
            in their real-time mode.
        gop: frames between keyframes (None: two seconds' worth).
        bitrate: target bits per second (None: the encoder's quality default).
        format: the FFmpeg container name, overriding the one the target implies.
        options: FFmpeg muxer or protocol options (strings).
        pixel_format: the encoded pixel format.
        timeout: seconds FFmpeg may wait on the network per operation.
        clock: the clock that stamps frames without a stream time.
    """

    def __init__(
        self,
        uri: str,
        *,
        fps: float | None = None,
        width: int | None = None,
        height: int | None = None,
        codec: str | None = None,
        preset: str | None = "ultrafast",
        tune: str | None = "zerolatency",
        gop: int | None = None,
        bitrate: int | None = None,
        format: str | None = None,
        options: dict[str, str] | None = None,
        pixel_format: str = "yuv420p",
        timeout: float = 10.0,
        clock: Clock | None = None,
    ) -> None:
        self.target: Target = resolve_target(uri, format, options)
        self.uri = uri
        self.fps = None if fps is None else check_number(fps, "fps", positive=True)
        self.width = _size(width, "width")
        self.height = _size(height, "height")
        self.codec = check_codec(_default_codec(self.target.format) if codec is None else codec)
        if self.target.format == "whip":
            check_whip_codec(self.codec)
        self.preset, self.tune = preset, tune
        self.gop = check_int_at_least(gop, "gop", 1, or_none=True)
        self.bitrate = check_int_at_least(bitrate, "bitrate", 1, or_none=True)
        self.pixel_format = pixel_format
        self.timeout = check_positive_seconds(timeout, "timeout")
        self._clock = SYSTEM_CLOCK if clock is None else clock
        self._container: Any = None
        self._stream: Any = None
        self._certificate: DtlsCertificate | None = None
        self._started = False
        self._first_time: float | None = None
        self._start_ns = 0
        self._last_pts = -1
        self.frames_written = 0
        self.frames_resized = 0
        self.closed = False

    @property
    def opened(self) -> bool:
        """Whether the output is open (it opens at the first frame)."""
        return self._container is not None

    def open(self, width: int | None = None, height: int | None = None) -> None:
        """Open the output now (the first :meth:`write` does it otherwise)."""
        if self.closed:
            raise RuntimeError(f"VideoWriter({self.target.shown!r}) is closed")
        if self._container is not None:
            return
        width, height = self.width or width, self.height or height
        if width is None or height is None:
            raise ValueError("width and height: not given and no frame to take them from")
        target = self.target
        options = self._muxer_options()
        try:
            container = _av.open(
                target.url, "w", format=target.format, options=options, timeout=self.timeout
            )
        except Exception:
            self._drop_certificate()
            raise
        try:
            stream = self._add_stream(container, width, height)
        except Exception:
            container.close()
            self._drop_certificate()
            raise
        self._container, self._stream = container, stream
        self.width, self.height = width, height

    def _muxer_options(self) -> dict[str, str]:
        """The target's options; for WHIP, the handshake's time limit and a certificate."""
        options = dict(self.target.options)
        if self.target.format == "whip":
            options.setdefault("handshake_timeout", str(round(self.timeout * 1000)))
            if needs_certificate(options):
                self._certificate = DtlsCertificate()
                options.update(self._certificate.options)
        return options

    def _add_stream(self, container: Any, width: int, height: int) -> Any:
        rate = fractions.Fraction(self.fps or 30).limit_denominator(1001)
        codec_options = _encoder_options(self.codec, self.preset, self.tune, self.target.format)
        stream = container.add_stream(self.codec, rate=rate, options=codec_options)
        stream.width, stream.height = width, height
        stream.pix_fmt = self.pixel_format
        stream.codec_context.time_base = TIME_BASE
        stream.codec_context.gop_size = self.gop or max(1, round(2 * float(rate)))
        if self.target.format == "whip":
            stream.codec_context.max_b_frames = 0
        if self.bitrate is not None:
            stream.codec_context.bit_rate = self.bitrate
        return stream

    def _drop_certificate(self) -> None:
        certificate, self._certificate = self._certificate, None
        if certificate is not None:
            certificate.close()

    def start(self) -> None:
        """Write the stream header now, not at the first frame (opening the output first).

        For an RTSP server this is where it is reached; a target that cannot
        be written fails here rather than at the first frame.
        """
        if self._container is None:
            self.open()
        if not self._started:
            self._container.start_encoding()
            self._started = True

    def write(self, frame: Any) -> None:
        """Encode one frame: a :class:`Frame`, a numpy image (BGR) or an ``av.VideoFrame``.

        A ``Frame`` of a many-source run counts as on the glass when this
        returns (its source's latency split: ``output``, ``to_glass``); an
        encoder with look-ahead may still hold it.
        """
        if self.closed:
            raise RuntimeError(f"VideoWriter({self.target.shown!r}) is closed")
        video_frame, stream_time = to_video_frame(frame)
        if self._container is None:
            self.open(video_frame.width, video_frame.height)
        if (video_frame.width, video_frame.height) != (self.width, self.height):
            video_frame = video_frame.reformat(width=self.width, height=self.height)
            self.frames_resized += 1
        video_frame.pts = self._next_pts(stream_time)
        video_frame.time_base = TIME_BASE
        container = self._container
        for packet in self._stream.encode(video_frame):
            container.mux(packet)
        self.frames_written += 1
        mark_glass(frame, "writer")  # a frame of a many-source run: written now

    def _next_pts(self, stream_time: float | None) -> int:
        if self.frames_written == 0:
            self._first_time = stream_time
            self._start_ns = self._clock.monotonic_ns()
        if stream_time is not None and self._first_time is not None:
            elapsed = stream_time - self._first_time
        else:
            elapsed = (self._clock.monotonic_ns() - self._start_ns) / 1e9
        pts = round(elapsed / TIME_BASE)
        if pts <= self._last_pts:  # timestamps must rise, even for frames in the same tick
            pts = self._last_pts + 1
        self._last_pts = pts
        return pts

    def close(self) -> None:
        """Flush the encoder and close the output (safe to call more than once)."""
        if self.closed:
            return
        self.closed = True
        container, stream = self._container, self._stream
        self._container = self._stream = None
        if container is None:
            return
        try:
            for packet in stream.encode(None):
                container.mux(packet)
        finally:
            try:
                container.close()
            finally:
                self._drop_certificate()

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        size = f"{self.width}x{self.height}" if self.width else "size from first frame"
        return f"VideoWriter({self.target.shown!r}, {self.target.format}, {size}, {self.codec})"
