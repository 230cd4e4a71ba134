"""Read video from a file, a network stream or a camera, frame by frame (PyAV)."""

from __future__ import annotations

import logging
import stat
import threading
from collections.abc import Generator, Iterator
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

from framescope._optional import require
from framescope._ratelimit import FULL, SILENT, LogLimiter
from framescope._validation import (
    check_bool,
    check_int_at_least,
    check_positive_seconds,
    check_str_mapping,
)
from framescope._waits import backoff_delay
from framescope.capture import Stamps
from framescope.clock import SYSTEM_CLOCK, Clock, sleep_on, wait_on
from framescope.video.capture_time import CaptureTimes
from framescope.video.frame import Frame
from framescope.video.pixels import Pictures
from framescope.video.timeline import Timeline

__all__ = ["VideoSource"]

logger = logging.getLogger(__name__)

_av = require("av", "video", "video input")

_NETWORK = ("rtsp", "rtsps", "rtmp", "rtmps", "http", "https", "udp", "tcp", "rtp", "srt")
_DEMUX_RETRIES = 16  # demuxer failures in a row a damaged file may cost before it counts as ended
_ARRIVALS_KEPT = 256  # packets' arrival times kept for the frames a decoder still holds
_SHORT_SHARE = 0.98  # a file that covers less of its stated duration ended early


class _StalledError(Exception):
    """A live source sent nothing for ``stall_timeout`` seconds."""


class VideoSource:
    """The frames of a video file, a network stream or a V4L2 camera, as :class:`Frame` s.

    Example::

        for frame in pipeline.run(VideoSource("clip.mp4")):
            ...

    Iterating opens the source and yields frames until it ends (a file's
    end; a network stream that drops is reopened, see ``reconnect``).
    ``fps``, ``width``, ``height``, ``duration`` and ``expected_frames`` are
    known once it is open (:meth:`open`, or the first frame).

    A missing file raises ``FileNotFoundError`` when the source is made (and
    again at :meth:`open` if it went away since); one that cannot be read
    raises ``ValueError`` at :meth:`open` (and when iterating starts): empty,
    unreadable, not a video, or without a video stream, with the file and the
    reason in one line.

    Every frame has a ``time`` and a ``pts``: a frame the stream gave no
    timestamp is placed one frame interval after the one before, and ``time``
    keeps rising across loops and reconnects (after a reconnect it resumes
    after the time the outage took, so the gap shows).

    Every frame says when it was captured, as well as the stream can tell
    (``capture_time``, wall-clock seconds, and ``capture_clock``): an RTSP
    camera's own clock from its RTCP sender reports (``rtcp``, from the first
    report on), a file's ``creation_time`` plus the frame's stream time
    (``file``), else the time it was received (``received``; HLS included:
    FFmpeg does not expose ``EXT-X-PROGRAM-DATE-TIME``); see
    :mod:`framescope.video.capture_time` for how exact each is. Its
    ``stamps`` time its packet's arrival and its decoding, for a
    many-source run's latency split.

    Damaged data in a file is skipped: each packet is decoded on its own, and
    one that fails is counted in ``decode_errors``; the file ends when its
    demuxer cannot go on. At the end of a file that had damage or ended early
    a warning says how much of it was read.

    A live source (network or camera) that sends nothing for
    ``stall_timeout`` seconds while connected has stalled: it is counted in
    ``stalls``, logged as a warning, ``last_error`` says so, and it is
    reopened like a dropped stream (with ``reconnect=False`` it raises
    ``TimeoutError``).

    :meth:`close` may be called from any thread at any time: it returns at
    once, and an iteration in progress ends after its current frame (or when
    FFmpeg returns from a network read, within ``stall_timeout``).

    Args:
        uri: a file path, a URL (``rtsp://``, ``rtmp://``, ``http(s)://``,
            ``udp://`` ...), a V4L2 device (``/dev/video0``) or a camera number.
        realtime: pace a file at its own frame rate, like a camera (without
            it, frames come as fast as they are taken).
        loop: start a file again at its end (stream time keeps rising).
        format: the FFmpeg demuxer, when it cannot be told from the input.
        options: FFmpeg demuxer or protocol options: a dict of str keys to str
            values (numbers are written as text).
        pixel_format: the layout of ``Frame.image``, an FFmpeg pixel format
            name (``bgr24``: OpenCV's; ``rgb24``, ``gray`` ...), or
            ``native``: the decoder's own format without any conversion
            (``yuv420p``, ``nv12`` ...: an (H * 3/2) x W array of the planes;
            ``Frame.pixel_format`` names it). BGR and RGB from 8-bit 4:2:0
            BT.601 limited-range video are converted with OpenCV's
            ``cvtColor`` when OpenCV is installed (see ``converter``).
        reconnect: reopen a network stream that fails, stalls or ends, with
            back-off; None: for network URLs only.
        reconnect_initial, reconnect_max: the back-off bounds in seconds.
        max_reconnects: give up after this many reconnects in a row without
            a frame (None: never).
        timeout: seconds FFmpeg may take to open the source (and, for a
            file, per read).
        stall_timeout: seconds a live source (network or camera) may send
            nothing before it counts as stalled (default 5; for live HLS,
            set it above the segment length, as a read waits for the next
            segment).
        clock: paces ``realtime`` and the back-off, and stamps ``wall_time``.
        decode_threads: how FFmpeg's decoder uses several cores: ``frame``
            (frame and slice threads: the most frames a second, but each frame
            comes out one frame later per extra thread: 67 ms at 30 fps on 2
            cores), or ``slice`` (slice threads only: no delay; one core for
            a stream encoded in one slice a frame). None: ``slice`` for a live
            source (network or camera), ``frame`` for a file.

    Attributes:
        decode_threads: ``frame`` or ``slice``, as chosen (see the argument).
        frames_read: frames yielded so far.
        reconnects: times the source was reopened.
        reconnecting: True while it waits to reopen its stream (its back-off)
            and reopens it; a many-source run shows the source as
            ``reconnecting`` then.
        errors: failures (stalls included) that led to a reconnect.
        stalls: times a live source stalled.
        decode_errors: damaged packets skipped past (and failures of a
            file's demuxer it got past).
        last_error: the last failure, stall or skipped damage, in words.
        converter: how the last frame's image was made: ``opencv``
            (``cvtColor`` from the decoder's YUV, about twice as fast),
            ``pyav`` (PyAV's ``to_ndarray``: FFmpeg's swscale), ``none``
            (``native``); None before the first frame.
        expected_frames: the frames a file states it holds (its frame count,
            or its stated duration x fps); None when unknown.
        ended_early: a file ended on an error, or more than 2 % short of its
            stated duration.
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
        stall_timeout: float = 5.0,
        clock: Clock | None = None,
        decode_threads: str | None = None,
    ) -> None:
        # Every argument is checked before the uri is looked at: a wrong one is
        # said as such, not hidden behind a missing file.
        self.realtime = bool(check_bool(realtime, "realtime"))
        self.loop = bool(check_bool(loop, "loop"))
        self.options = check_str_mapping(options, "options")
        self._pictures = Pictures(pixel_format)
        self.pixel_format = pixel_format
        format = None if format is None else _check_name(format, "format", or_none=True)
        reconnect = check_bool(reconnect, "reconnect", or_none=True)
        self.reconnect_initial = check_positive_seconds(reconnect_initial, "reconnect_initial")
        self.reconnect_max = check_positive_seconds(reconnect_max, "reconnect_max")
        self.max_reconnects = check_int_at_least(max_reconnects, "max_reconnects", 0, or_none=True)
        self.timeout = check_positive_seconds(timeout, "timeout")
        self.stall_timeout = check_positive_seconds(stall_timeout, "stall_timeout")
        threads = _check_threads(decode_threads)
        if clock is not None and not isinstance(clock, Clock):
            raise TypeError(
                f"clock must be a framescope Clock (monotonic_ns(), wall(), wait()) or None, "
                f"got {type(clock).__name__}"
            )
        self._clock = SYSTEM_CLOCK if clock is None else clock
        self.uri, self.format, self._path = _normalise(uri, format)
        self.network = urlsplit(self.uri).scheme.lower() in _NETWORK
        self._live = self.network or self.format == "v4l2" or self.uri.startswith("/dev/")
        self.decode_threads = threads or ("slice" if self._live else "frame")
        self.reconnect = self.network if reconnect is None else reconnect
        self._container: Any = None
        self._stream: Any = None
        self._time_base: float | None = None
        self._captures: CaptureTimes | None = None
        # Held around every FFmpeg call on the container, so that close() from
        # another thread never frees it under a demux or a decode.
        self._lock = threading.Lock()
        self._wake = threading.Event()  # close() cuts a back-off short
        self._log_limiter = LogLimiter(first=3, clock=self._clock)
        self.fps: float | None = None
        self.width: int | None = None
        self.height: int | None = None
        self.duration: float | None = None
        self._end_said = False  # how much of the file was read: said once
        self.expected_frames: int | None = None
        self.frames_read = 0
        self.reconnects = 0
        self.reconnecting = False
        self.errors = 0
        self.stalls = 0
        self.decode_errors = 0
        self.last_error: str | None = None
        self.ended_early = False
        self._counted = False
        self._closed = False
        self._run = _Run()
        self._packet_sinks: list[Any] = []

    # -- opening -----------------------------------------------------------------------

    def open(self) -> VideoSource:
        """Open now (iterating does it otherwise); raises if it cannot be opened."""
        with self._lock:
            if self._container is None:
                self._open()
        return self

    def _open(self) -> None:
        container = self._open_file() if self._path is not None else self._open_av()
        if not container.streams.video:
            kinds = sorted({stream.type for stream in container.streams})
            container.close()
            raise ValueError(f"uri: {self.uri!r} has no video stream ({_only(kinds)})")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO" if self.decode_threads == "frame" else "SLICE"
        rate = stream.average_rate or stream.guessed_rate
        self.fps = float(rate) if rate else None
        self.width = stream.codec_context.width or None
        self.height = stream.codec_context.height or None
        self._time_base = float(stream.time_base) if stream.time_base else None
        # The video's own length: the container's is that of its longest stream
        # (an audio track that runs on would make a whole video look cut short).
        if stream.duration and stream.time_base:
            self.duration = float(stream.duration * stream.time_base)
        elif container.duration:
            self.duration = container.duration / 1_000_000
        self._counted = bool(stream.frames)  # the container states its frame count
        if stream.frames:
            self.expected_frames = int(stream.frames)
        elif self.duration and self.fps and not self._live:
            self.expected_frames = round(self.duration * self.fps)
        self._container, self._stream = container, stream
        self._captures = CaptureTimes(self.uri, container, stream)
        for sink in self._packet_sinks:
            sink.open_stream(stream)

    def _open_av(self) -> Any:
        timeout = (self.timeout, self.stall_timeout) if self._live else self.timeout
        return _av.open(self.uri, format=self.format, options=dict(self.options), timeout=timeout)

    def _open_file(self) -> Any:
        assert self._path is not None
        _check_file(self.uri, self._path)
        try:
            return self._open_av()
        except FileNotFoundError as error:
            raise FileNotFoundError(f"uri: no such video file: {self.uri!r}") from error
        except (_av.FFmpegError, OSError) as error:
            raise ValueError(f"uri: {self.uri!r} {_reason(error)}") from error

    # -- reading -----------------------------------------------------------------------

    def __iter__(self) -> Iterator[Frame]:
        timeline = Timeline(self._clock)
        pacer = _Pacer(self._clock) if self.realtime else None
        failures = 0
        try:
            while not self._closed:
                self._run = _Run()
                try:
                    with self._lock:
                        if self._closed:
                            return
                        if self._container is None:
                            self._open()
                    self.reconnecting = False
                    timeline.set_rate(self.fps)
                    yield from self._read_run(timeline, pacer)
                except (_StalledError, _av.FFmpegError, OSError) as error:
                    if self._closed:  # a read cut short by close(): no fault
                        return
                    self._failed(error)
                else:
                    if self._path is not None:
                        self._end_of_file()
                    if self.loop and self._path is not None and self._run.frames:
                        self._rewind()
                        timeline.restart(reconnect=False, length=self.duration)
                        continue
                    if not self.reconnect or self._closed:
                        return
                    logger.info("video source %s ended; reconnecting", self.uri)
                failures = 1 if self._run.frames else failures + 1
                if not self._back_off(failures):
                    return
                timeline.restart(reconnect=True)
        finally:
            self.reconnecting = False
            if self._closed:
                with self._lock:
                    self._close_container()

    def _read_run(self, timeline: Timeline, pacer: _Pacer | None) -> Generator[Frame, None, None]:
        """Yield the open container's frames to its end (a packet at a time, under the lock)."""
        run = self._run
        container, stream, lock = self._container, self._stream, self._lock
        captures = self._captures
        assert captures is not None
        now, wall = self._clock.monotonic_ns, self._clock.wall
        # When each packet came, by pts: a decoder with frame threads gives a
        # frame some packets after its own, and the frame was received with its own.
        arrivals: dict[int, _Received] = {}
        demuxer = container.demux(stream)
        while True:
            with lock:
                if self._closed:
                    return
                try:
                    packet = next(demuxer)
                except StopIteration:
                    return
                except (_av.FFmpegError, OSError) as error:
                    if not self._demux_failed(error, run):
                        return
                    demuxer = container.demux(stream)
                    continue
                received = _Received(now(), wall().timestamp())
                if packet.pts is not None:
                    arrivals[packet.pts] = received
                    if len(arrivals) > _ARRIVALS_KEPT:
                        del arrivals[next(iter(arrivals))]
                captures.check(container)
                if self._packet_sinks:
                    self._hand_over(packet, received, captures)
                if packet.is_corrupt:
                    self._damage("the demuxer flagged a packet as corrupt", run)
                try:
                    decoded = packet.decode()
                except _av.FFmpegError as error:
                    self._damage(f"{type(error).__name__}: {error}", run)
                    continue
            run.failures_in_row = 0
            for frame in decoded:
                if self._closed:  # also when close() found the lock taken by the call above
                    return
                got = received if frame.pts is None else arrivals.pop(frame.pts, received)
                yield self._frame(frame, timeline, pacer, run, got)

    def _hand_over(self, packet: Any, received: _Received, captures: CaptureTimes) -> None:
        """Give the packet, before decoding, to each sink (an attached clip recorder)."""
        capture_time, _ = captures.capture(packet.pts, received.wall)
        for sink in self._packet_sinks:
            try:
                sink.add_packet(packet, received.ns, capture_time)
            except Exception:  # a sink's fault must not stop the video
                if self._log_limiter.check("sink") == FULL:
                    logger.exception("video source %s: a packet sink failed", self.uri)

    def add_packet_sink(self, sink: Any) -> None:
        """Hand each packet read to ``sink`` too (what :meth:`Clips.attach` calls).

        ``sink.open_stream(stream)`` is called with each opening's PyAV video
        stream, ``sink.add_packet(packet, received_ns, capture_time)`` with
        each packet, on the reading thread, before it is decoded.
        """
        for method in ("open_stream", "add_packet"):
            if not callable(getattr(sink, method, None)):
                raise TypeError(f"sink must have {method}(), got {type(sink).__name__}")
        with self._lock:
            if sink not in self._packet_sinks:
                self._packet_sinks.append(sink)
                if self._stream is not None:
                    sink.open_stream(self._stream)

    @property
    def clip_recorders(self) -> tuple[Any, ...]:
        """The clip recorders attached to it (a pipeline's snapshot shows them)."""
        return tuple(self._packet_sinks)

    def _frame(
        self, decoded: Any, timeline: Timeline, pacer: _Pacer | None, run: _Run, got: _Received
    ) -> Frame:
        own_time = decoded.time
        time, pts = timeline.stamp(own_time, decoded.pts, self._time_base)
        clock = self._clock
        if pacer is not None:
            pacer.wait_until(time)
            got = _Received(clock.monotonic_ns(), clock.wall().timestamp())  # due now
        if own_time is not None:
            if run.first_time is None:
                run.first_time = own_time
            run.last_time = own_time
        image, pixel_format, size = self._pictures.convert(decoded)
        assert self._captures is not None
        capture_time, capture_clock = self._captures.capture(decoded.pts, got.wall)
        stamps = Stamps(
            clock.monotonic_ns,
            capture_time=capture_time,
            capture_clock=capture_clock,
            received_wall=got.wall,
            received_ns=got.ns,
            decoded_ns=clock.monotonic_ns(),
        )
        frame = Frame(
            image,
            self.frames_read,
            pts=pts,
            time=time,
            wall_time=got.wall,
            pixel_format=pixel_format,
            size=size,
            capture_time=capture_time,
            capture_clock=capture_clock,
            stamps=stamps,
        )
        self.frames_read += 1
        run.frames += 1
        return frame

    @property
    def converter(self) -> str | None:
        """How the last frame's image was made: ``opencv``, ``pyav``, ``none`` (native)."""
        return self._pictures.converter

    def _rewind(self) -> None:
        """Back to a file's start, for ``loop``: a seek, or a new opening where it cannot seek."""
        with self._lock:
            if self._container is None:
                return
            try:
                self._container.seek(0)
            except (_av.FFmpegError, OSError):  # e.g. a raw H.264 stream
                self._close_container()

    # -- faults ------------------------------------------------------------------------

    def _damage(self, what: str, run: _Run) -> None:
        """A damaged packet (or a demuxer failure read past): counted, logged (limited)."""
        self.decode_errors += 1
        run.damaged += 1
        self.last_error = f"damaged data: {what}"
        verdict = self._log_limiter.check("damage")
        if verdict == FULL:
            logger.warning("video source %s: %s", self.uri, self.last_error)
        elif verdict != SILENT:
            logger.warning("video source %s: %d more damaged packets skipped", self.uri, verdict)

    def _demux_failed(self, error: BaseException, run: _Run) -> bool:
        """True to read on past a demuxer failure (a file's); raises for a live source."""
        if self._live:
            if isinstance(error, _av.ExitError):
                raise _StalledError(f"no data for {self.stall_timeout:g} s") from error
            raise error
        run.failures_in_row += 1
        if run.failures_in_row > _DEMUX_RETRIES:
            run.error = f"{type(error).__name__}: {error}"
            self.last_error = f"the demuxer stopped: {run.error}"
            return False
        self._damage(f"{type(error).__name__}: {error}", run)
        return True

    def _failed(self, error: BaseException) -> None:
        """A live source (or a forced reconnect) failed or stalled: count it, or raise."""
        self.errors += 1
        if isinstance(error, _StalledError):
            self.stalls += 1
            self.last_error = f"stalled: {error}"
            if not self.reconnect:
                raise TimeoutError(f"uri: {self.uri!r} stalled: {error}") from error
            logger.warning("video source %s stalled (%s); reconnecting", self.uri, error)
            return
        self.last_error = f"{type(error).__name__}: {error}"
        if not self.reconnect:
            raise error
        logger.warning("video source %s failed (%s); reconnecting", self.uri, error)

    def _end_of_file(self) -> None:
        """Say how much of a file was read when it had damage or ended early."""
        run, step = self._run, 1 / self.fps if self.fps else 0.0
        if run.first_time is not None and run.last_time is not None:
            covered: float | None = run.last_time - run.first_time + step
        else:
            covered = run.frames * step if step else None
        short = (
            self.duration is not None
            and covered is not None
            and covered < self.duration * _SHORT_SHARE - step
        )
        if run.error is not None or short:
            self.ended_early = True
        elif not run.damaged and not (self._counted and run.frames < (self.expected_frames or 0)):
            return
        expected = "?" if self.expected_frames is None else str(self.expected_frames)
        stated = "?" if self.duration is None else f"{self.duration:.1f}"
        read = "?" if covered is None else f"{covered:.1f}"
        why = [f"{run.damaged} damaged packet{'s' * (run.damaged != 1)}"] if run.damaged else []
        if run.error is not None:
            why.append(f"the demuxer stopped: {run.error}")
        elif short:
            why.append("it ends before its stated duration")
        elif not why:
            why.append("frames are missing")
        # A looped file says the same each pass: once as a warning, then at debug level.
        level = logging.DEBUG if self._end_said else logging.WARNING
        self._end_said = True
        logger.log(
            level,
            "video file %r: read %d of %s frames (%s of %s s); %s",
            self.uri,
            run.frames,
            expected,
            read,
            stated,
            "; ".join(why),
        )

    def _back_off(self, failures: int) -> bool:
        """Close and wait before reopening; False when it is time to give up."""
        if self.max_reconnects is not None and failures > self.max_reconnects:
            logger.warning("video %s: gave up after %d reconnects", self.uri, failures - 1)
            return False
        self.reconnecting = True  # until the stream is open again (or the iteration ends)
        with self._lock:
            self._close_container()
        delay = backoff_delay(failures, self.reconnect_initial, self.reconnect_max)
        wait_on(self._clock, self._wake, delay)
        if self._closed:
            self.reconnecting = False
            return False
        self.reconnects += 1
        return True

    # -- closing -----------------------------------------------------------------------

    def _close_container(self) -> None:
        container, self._container, self._stream = self._container, None, None
        if container is not None:
            try:
                container.close()
            except Exception:  # closing a broken stream must not hide why it broke
                logger.debug("closing %s failed", self.uri, exc_info=True)

    def close(self) -> None:
        """Close the source, from any thread; an iteration in progress ends after its frame."""
        self._closed = True
        self._wake.set()
        # A reading thread inside FFmpeg holds the lock: it closes the container
        # itself when the call returns (it checks the flag after each one).
        if self._lock.acquire(blocking=False):
            try:
                self._close_container()
            finally:
                self._lock.release()

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


class _Run:
    """What one pass over an opened source read: for the end-of-file account."""

    __slots__ = ("damaged", "error", "failures_in_row", "first_time", "frames", "last_time")

    def __init__(self) -> None:
        self.frames = 0
        self.damaged = 0
        self.failures_in_row = 0
        self.error: str | None = None
        self.first_time: float | None = None
        self.last_time: float | None = None


class _Received:
    """When a packet was demuxed: a monotonic reading (ns) and the wall time (s)."""

    __slots__ = ("ns", "wall")

    def __init__(self, ns: int, wall: float) -> None:
        self.ns, self.wall = ns, wall


class _Pacer:
    """Holds frames back to their stream time, for ``realtime``."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._start_ns: int | None = None
        self._first = 0.0

    def wait_until(self, time: float) -> None:
        now = self._clock.monotonic_ns()
        if self._start_ns is None:
            self._start_ns, self._first = now, time
        delay = (self._start_ns - now) / 1e9 + time - self._first
        if delay > 0:
            sleep_on(self._clock, delay)


def _check_threads(value: object) -> str | None:
    if value is not None and not isinstance(value, str):
        raise TypeError(f"decode_threads must be a str or None, got {type(value).__name__}")
    if value not in (None, "frame", "slice"):
        raise ValueError(f"decode_threads must be 'frame', 'slice' or None, got {value!r}")
    return value


def _only(kinds: list[str]) -> str:
    if not kinds:
        return "no streams at all"
    return f"{', '.join(kinds)} only"


def _reason(error: BaseException) -> str:
    if isinstance(error, PermissionError):
        return "cannot be read (permission denied)"
    if isinstance(error, IsADirectoryError):
        return "is a directory, not a video file"
    if isinstance(error, _av.InvalidDataError):
        return "is not a video file FFmpeg can read (invalid data)"
    reason = getattr(error, "strerror", None) or str(error)
    return f"cannot be opened ({reason})"


def _check_file(uri: str, path: Path) -> None:
    try:
        status = path.stat()
    except FileNotFoundError:
        raise FileNotFoundError(f"uri: no such video file: {uri!r}") from None
    except OSError as error:
        raise ValueError(f"uri: {uri!r} {_reason(error)}") from error
    if stat.S_ISDIR(status.st_mode):
        raise ValueError(f"uri: {uri!r} is a directory, not a video file")
    if stat.S_ISREG(status.st_mode) and status.st_size == 0:
        raise ValueError(f"uri: {uri!r} is empty (0 bytes)")


def _check_name(value: object, name: str, *, or_none: bool = False) -> str:
    """An FFmpeg name (pixel format, demuxer): a non-empty str."""
    allowed = "a non-empty str" + (" or None" if or_none else "")
    if not isinstance(value, str):
        raise TypeError(f"{name} must be {allowed}, got {type(value).__name__}")
    if not value.strip() or "\0" in value:
        raise ValueError(f"{name} must be {allowed} (an FFmpeg name), got {value!r}")
    return value


def _normalise(uri: object, format: str | None) -> tuple[str, str | None, Path | None]:
    """The URI as FFmpeg takes it, the demuxer, and the local file (None: not a file)."""
    if isinstance(uri, bool):
        raise TypeError("uri must be a path, a URL or a camera number, got bool")
    if isinstance(uri, int):
        if uri < 0:
            raise ValueError(f"uri: a camera number must be >= 0, got {uri}")
        uri = f"/dev/video{uri}"
    if isinstance(uri, Path):
        uri = str(uri)
    if not isinstance(uri, str):
        raise TypeError(f"uri must be a path, a URL or a camera number, got {type(uri).__name__}")
    if not uri.strip() or "\x00" in uri:
        raise ValueError(f"uri must be a path, a URL or a camera number, got {uri!r}")
    if format is None and uri.startswith("/dev/video"):
        format = "v4l2"
    scheme = urlsplit(uri).scheme.lower()
    path = None
    if (not scheme or len(scheme) == 1 or scheme == "file") and not uri.startswith("/dev/"):
        path = Path(uri[len("file://") :] if scheme == "file" else uri)
        try:
            path.stat()
        except FileNotFoundError:
            raise FileNotFoundError(f"uri: no such video file: {uri!r}") from None
        except OSError:
            pass  # open() says why it cannot be read
    return uri, format, path
