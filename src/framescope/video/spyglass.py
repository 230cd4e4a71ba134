"""SpyGlass: restream annotated frames to RTMP, RTSP, UDP, HTTP, WebRTC (WHIP), HLS or a file.

Backpack's SpyGlass, built on PyAV instead of an OpenCV compiled with
GStreamer. ``put()`` never blocks the frame loop and never raises for a
streaming problem: it queues the frame (bounded, the oldest dropped and
counted) and an encoder process sends it (see
:mod:`framescope.video.encoder_process` for why a process).
"""

from __future__ import annotations

import enum
import logging
import threading
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from framescope._optional import require
from framescope._validation import (
    check_int_at_least,
    check_number,
    check_positive_int,
    check_positive_seconds,
)
from framescope._waits import Deadline, backoff_delay
from framescope.capture import Stamps
from framescope.clock import SYSTEM_CLOCK, Clock, wait_on
from framescope.pipeline.stage import Stage
from framescope.timepiece import Ticker
from framescope.video.frame import Frame
from framescope.video.session import ENCODER_MODULE, EncoderSession, spawn
from framescope.video.targets import Target, resolve_target
from framescope.video.whip import DtlsCertificate, check_whip_codec, needs_certificate
from framescope.video.writer import check_codec

if TYPE_CHECKING:
    import subprocess

__all__ = ["MAX_SIDE", "USE_LAST_VALUE", "SpyGlass", "SpyGlassState"]

logger = logging.getLogger(__name__)
_np = require("numpy", "video", "SpyGlass")

POLL_S = 0.002
"""How often an idle encoder thread looks for a new frame (it adds at most this latency)."""

MAX_SIDE = 16384
"""The longest image side :meth:`SpyGlass.put` takes (FFmpeg's scaler refuses more)."""

_UINT8 = _np.dtype(_np.uint8)
_INF = float("inf")


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

        spyglass = SpyGlass("rtmp://127.0.0.1/live/cam1", fps=30, width=1280, height=720)
        spyglass.start_streaming()  # returns once the encoder is ready
        ...
        spyglass.put(annotated_image)  # in the frame loop: never blocks
        ...
        spyglass.stop_streaming()

    Without ``fps``, ``width`` or ``height``, the first ``warmup_frames``
    frames measure the rate and the size: they are counted
    (``counters()["warmup"]``), not sent, and a warning says so once. Give all
    three and there is no warm-up. Frames put after :meth:`start_streaming`
    returns reach the encoder: it waits (up to ``timeout``) until the encoder
    process has loaded and opened the target.

    Timestamps: a frame put with a stream time (``put(image, time=t)``, or a
    :class:`Frame` with ``.time``) is presented at its time relative to the
    first one, so a 30 fps clip plays at 30 fps even when its frames are put
    in bursts; a frame without one is stamped when it is put, so it plays at
    the speed it happened. No frame is duplicated or dropped to match
    ``fps``, which only guides the encoder. Frames of another size than the
    stream's are scaled, in the encoder. A receiver that cannot be reached
    or goes away moves the state to ``ERROR`` (``last_error`` says why); the
    SpyGlass reconnects with back-off while the loop goes on. So does a
    receiver that accepts the connection and then takes nothing: a session
    that has frames to send (or has not finished connecting) and sends
    nothing for ``stall_timeout`` seconds has failed; its encoder process is
    ended and counted in ``counters()["failures"]``.

    WebRTC: ``whip://host:port/path`` (``whips://`` for HTTPS) publishes
    with WHIP (RFC 9725), as does an ``http(s)://`` URL with
    ``format="whip"``; a bearer token goes in the URL
    (``whip://TOKEN@host/path``) or in ``options={"authorization": TOKEN}``.
    The video is H.264 baseline without B-frames; a refused token (401) or a
    receiver that goes away is a failure like any other (``last_error``,
    reconnect with back-off). See :mod:`framescope.video.whip` for the
    details; a PyAV without FFmpeg's WHIP muxer is an ImportError here.

    Restreaming can carry a closed camera network's video to the Internet:
    it is off until you start it, and nothing here listens on any address.

    Args:
        uri: where to send: ``rtmp://``, ``rtmps://``, ``rtsp://``,
            ``udp://``, ``tcp://``, ``http(s)://``, ``whip://``,
            ``whips://``, a ``.m3u8`` HLS playlist or a video file (any
            other scheme is a ValueError here).
        fps, width, height: the stream's rate and size (None: measured).
        warmup_frames: frames the warm-up measures.
        queue_size: frames waiting for the encoder before the oldest is dropped.
        codec, preset, tune, gop, bitrate, format, options: encoder and
            container settings, as for :class:`~framescope.video.VideoWriter`.
        reconnect_initial, reconnect_max: back-off bounds in seconds.
        stall_timeout: seconds a session may connect, or hold frames,
            without sending one before it counts as failed (None: never).
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
        codec: str | None = None,
        preset: str | None = "ultrafast",
        tune: str | None = "zerolatency",
        gop: int | None = None,
        bitrate: int | None = None,
        format: str | None = None,
        options: dict[str, str] | None = None,
        reconnect_initial: float = 0.5,
        reconnect_max: float = 10.0,
        stall_timeout: float | None = 5.0,
        name: str = "SpyGlass",
        clock: Clock | None = None,
    ) -> None:
        self.name = name
        self.uri = uri
        self._target = self._resolve(uri, format, options)
        self._shown = self._target.shown if isinstance(self._target, Target) else uri
        if codec is not None and getattr(self._target, "format", None) == "whip":
            check_whip_codec(check_codec(codec))
        self._encoder = {
            "codec": None if codec is None else check_codec(codec),
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
        self.stall_timeout = _check_stall_timeout(stall_timeout)
        self._clock = SYSTEM_CLOCK if clock is None else clock
        self.state = SpyGlassState.STOPPED
        self._init_sessions()

    def _init_sessions(self) -> None:
        """The queue, the sessions' threads and the counters, before the first start."""
        # The frame loop never takes a lock nor wakes a thread: put() appends
        # and trims the queue itself, and the encoder thread looks every
        # POLL_S when idle. Waking it from put() cost 60-120 us a frame on a
        # loop that waits for its next frame (the woken thread preempts).
        self._queue: deque[tuple[Any, float, Stamps | None]] = deque()
        # The stamps of the frames handed to this session's encoder, in order,
        # marked on the glass as its "sent" reports count them.
        self._unsent: deque[Stamps | None] = deque()
        self._wake = threading.Event()  # set only to stop
        self._ready = threading.Event()  # the first session is ready, or ended
        # What counters() reads together is changed together under _lock, except
        # put()'s own counters, which it raises before the frame moves on.
        self._lock = threading.Lock()
        self._queued = 0  # frames put in the queue (only put() writes it)
        self._overflow = 0  # frames pushed out of the full queue (only put() writes it)
        self._lost = 0  # frames that never reached the encoder, or died with a session
        self._handed = 0  # frames written to this session's encoder process
        self._sent_in_session = 0  # frames that process reported sent
        self._last_session_sent = 0  # what the last session that ended had sent
        self._generation = 0  # which session's reports count
        self._session_error = False  # this session's process said why it failed
        self._stopping = threading.Event()
        self._feeder: threading.Thread | None = None
        self._watchdog: threading.Thread | None = None
        # The stall watch (under _lock): the session's last sign of life, and
        # whether it is connecting (loaded, not yet open) or holding a frame.
        self._progress_ns = 0
        self._connecting = False
        self._sending = False
        self._session: _Session | None = None
        self._spare: subprocess.Popen[bytes] | None = None
        self._ticker: Ticker | None = None
        self._warmed = 0
        self._warned_warmup = False
        self._warned_stopped = False
        self._start_ns = 0
        self._time_origin: float | None = None
        self._counts = dict.fromkeys(
            ("put", "warmup", "stopped", "sent", "failures", "reconnects"), 0
        )
        self.last_error: str | None = None

    def _resolve(self, uri: str, format: str | None, options: dict[str, str] | None) -> Any:
        """Where the frames go (a subclass that sends elsewhere checks its own target)."""
        return resolve_target(uri, format, options)

    def _not_streaming(self) -> None:
        """A frame put while stopped: counted, not sent, and said once."""
        self._counts["stopped"] += 1
        if not self._warned_stopped:
            self._warned_stopped = True
            logger.warning(
                "SpyGlass %r: frames put while not streaming are not sent (counted in "
                "counters()['stopped']); call start_streaming() first",
                self.name,
            )

    @property
    def backlog(self) -> int:
        """Frames put and not yet taken by the encoder (at most ``queue_size``: more drop).

        A writer that must lose nothing (a file) can wait while it is at
        ``queue_size`` before it puts the next frame.
        """
        return len(self._queue)

    def counters(self) -> dict[str, int]:
        """What happened to the frames put: warm-up, or queued and then sent, dropped or in flight.

        ``put`` frames given (``put = warmup + stopped + queued``), ``warmup``
        used to measure (not sent), ``stopped`` put while not streaming (not
        sent: call :meth:`start_streaming` first; a warning says so once), ``queued`` handed to
        the encoder queue, ``sent`` encoded and sent (live: it follows the
        session), ``dropped`` queued but never sent (pushed out of the full
        queue, held by an encoder that failed, or left at a stop),
        ``in_flight`` waiting in the queue or held by the encoder, so that
        ``queued == sent + dropped + in_flight`` in every reading;
        ``failures`` sessions that failed, ``reconnects`` new sessions after a
        failure. After :meth:`stop_streaming`, ``in_flight`` is 0.
        """
        with self._lock:
            counts = dict(self._counts)
            counts["sent"] += self._sent_in_session
            counts["queued"] = self._queued
            counts["dropped"] = self._overflow + self._lost
        counts["in_flight"] = counts["queued"] - counts["sent"] - counts["dropped"]
        return counts

    # -- the session -----------------------------------------------------------------

    def start_streaming(
        self,
        fps: Any = USE_LAST_VALUE,
        width: Any = USE_LAST_VALUE,
        height: Any = USE_LAST_VALUE,
        *,
        timeout: float = 10.0,
    ) -> None:
        """Start a streaming session (warm-up first when the rate or size is not known).

        ``USE_LAST_VALUE`` keeps the value of the constructor or the last
        session; None measures it in the warm-up. A bad setting is a
        ValueError here, not in the encoder.

        With the rate and size known, it returns once the encoder process
        has started and opened the target (a receiver is reached; a target
        that cannot be reached, or does not complete the connection within
        ``stall_timeout``, has made the state ``ERROR`` by then), or after
        ``timeout`` real seconds, with a warning (frames put then wait in
        the queue; the stall watch still ends a connection that never
        completes). With a warm-up it returns at once; the encoder
        process starts loading meanwhile.
        """
        timeout = check_positive_seconds(timeout, "timeout")
        fps = self.fps if fps is USE_LAST_VALUE else fps
        width = self.width if width is USE_LAST_VALUE else width
        height = self.height if height is USE_LAST_VALUE else height
        self.fps, self.width, self.height = _checked(fps, width, height)
        if self.state is not SpyGlassState.STOPPED:
            self.stop_streaming()
        self._stopping.clear()
        self._time_origin = None
        self._spare = self._prestart()
        if self.fps is None or self.width is None or self.height is None:
            self._warn_warmup()
            self._ticker = Ticker(max_intervals=self.warmup_frames, clock=self._clock)
            self._warmed = 0
            self.state = SpyGlassState.START_WARMUP
            return
        self._begin()
        if not self._ready.wait(timeout):
            logger.warning(
                "SpyGlass %r: the encoder is not ready after %g s; frames wait in the queue",
                self.name,
                timeout,
            )

    def _prestart(self) -> subprocess.Popen[bytes] | None:
        """Start the encoder process now: it loads PyAV while the session gets ready."""
        return spawn(ENCODER_MODULE)

    def _warn_warmup(self) -> None:
        if self._warned_warmup:
            return
        self._warned_warmup = True
        logger.warning(
            "SpyGlass %r: fps, width or height not given: the first %d frames put measure "
            "them and are not sent; pass fps, width and height to stream from the first frame",
            self.name,
            self.warmup_frames,
        )

    def _begin(self) -> None:
        """The rate and size are known: start the encoder thread (state STREAMING)."""
        self._start_ns = self._clock.monotonic_ns()
        self._wake.clear()  # set by the last stop
        self._ready.clear()
        self.state = SpyGlassState.STREAMING
        self._feeder = threading.Thread(
            target=self._run_feed, name=f"framescope-spyglass-{self.name}", daemon=True
        )
        self._feeder.start()
        if self._watch_s() is not None:
            self._watchdog = threading.Thread(
                target=self._run_watch, name=f"framescope-spyglass-{self.name}-watch", daemon=True
            )
            self._watchdog.start()

    def put(self, frame: Any, *, time: float | None = None) -> bool:
        """Hand over one frame; never blocks.

        ``frame`` is an H x W x 3 uint8 (BGR) numpy image, each side 1 to
        :data:`MAX_SIDE` pixels, or a :class:`Frame` (its ``.image``; its
        ``.time`` when ``time`` is None). Anything else is refused before it
        is queued: TypeError for another type or dtype (convert float or
        16-bit images to uint8 yourself), ValueError for another shape or a
        Frame whose ``pixel_format`` is not ``bgr24``.
        ``time``: the frame's stream time in seconds; frames with times are
        presented at their time relative to the first (see the class).

        Returns True when it was queued to be sent, False when it was not
        (stopped, or used by the warm-up). A full queue drops its oldest
        frame (counted in ``counters()["dropped"]``).

        A ``Frame`` of a many-source run counts as out of the pipeline when it
        is queued here (if it is still inside: a SpyGlass stage) and as on the
        glass when the encoder reports it sent (its source's latency split).
        """
        stamps = None
        if isinstance(frame, Frame):
            stamps = frame.stamps
            if frame.pixel_format != "bgr24":
                raise ValueError(
                    f"frame: a Frame in {frame.pixel_format!r} (its pixel_format); SpyGlass "
                    "sends BGR: read with VideoSource(..., pixel_format='bgr24') or convert it"
                )
            image = frame.image
            if time is None:
                time = frame.time
        else:
            image = frame
        if type(image) is not _np.ndarray or image.dtype is not _UINT8:
            _check_image(image)
        shape = image.shape
        if len(shape) != 3 or shape[2] != 3 or not (0 < shape[0] <= MAX_SIDE >= shape[1] > 0):
            _check_image(image)
        if time is not None and (time.__class__ is not float or not -_INF < time < _INF):
            time = check_number(time, "time")
        state = self.state
        self._counts["put"] += 1
        if state is SpyGlassState.STOPPED:
            self._not_streaming()
            return False
        if state is SpyGlassState.START_WARMUP or state is SpyGlassState.WARMUP:
            return self._warm_up(image)
        now = (self._clock.monotonic_ns() - self._start_ns) / 1e9
        if time is not None:
            origin = self._time_origin
            if origin is None:  # the first timed frame is presented now
                origin = self._time_origin = time - now
            now = time - origin
        queue = self._queue
        self._queued += 1  # counted first: a reading never sees it sent before queued
        if stamps is not None:
            stamps.mark_handed()
        queue.append((image, now, stamps))
        if len(queue) > self.queue_size:
            try:
                queue.popleft()
            except IndexError:  # the encoder thread took it meanwhile
                pass
            else:
                self._overflow += 1
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
        self.width = self.width or max(2, width - width % 2)
        self.height = self.height or max(2, height - height % 2)
        self.fps = self.fps or (measured if measured > 0 else 30.0)
        self._begin()
        return False

    def __call__(self, frame: Any) -> Any:
        """As a pipeline stage: restream ``frame`` and pass it on unchanged."""
        self.put(frame)
        return frame

    # -- the encoder thread ----------------------------------------------------------

    def _settings(self, certificate: DtlsCertificate | None = None) -> dict[str, Any]:
        """The encoder's settings: the target as resolved here (a WHIP token in its options)."""
        target = self._target
        options = dict(target.options)
        if certificate is not None:
            options.update(certificate.options)
        return {
            "fps": self.fps,
            "width": self.width,
            "height": self.height,
            **self._encoder,
            "uri": target.url,
            "format": target.format,
            "options": options,
        }

    def _certificate(self) -> DtlsCertificate | None:
        """A session's DTLS certificate for a WHIP target (see :mod:`framescope.video.whip`).

        It is made and deleted here, not in the encoder process, which may be killed.
        """
        target = self._target
        if target.format != "whip" or not needs_certificate(target.options):
            return None
        return DtlsCertificate()

    def _reports(self) -> Callable[[dict[str, Any]], None]:
        """The handler of the current session's reports (a later session's ignores them)."""
        generation = self._generation

        def on_event(event: dict[str, Any]) -> None:
            if generation != self._generation:  # a report that came after its session
                return
            kind = event.get("event")
            with self._lock:
                if generation == self._generation:
                    self._progress_ns = self._clock.monotonic_ns()
                    self._connecting = kind == "connecting"
            if kind in ("ready", "streaming"):
                self.state = SpyGlassState.STREAMING
                self._ready.set()
            if "count" in event:
                sent = []
                with self._lock:
                    if generation == self._generation:
                        count = int(event["count"])
                        unsent = self._unsent
                        for _ in range(min(len(unsent), count - self._sent_in_session)):
                            sent.append(unsent.popleft())
                        self._sent_in_session = max(self._sent_in_session, count)
                for stamps in sent:
                    if stamps is not None:
                        stamps.mark_glass("spyglass")
            if kind == "error":
                self.last_error = str(event.get("message"))
                self._session_error = True

        return on_event

    def _run_feed(self) -> None:
        try:
            self._feed()
        finally:
            self._ready.set()

    def _feed(self) -> None:
        failures = 0
        while not self._stopping.is_set():
            if not self._run_session():
                return
            # A session that sent frames was up: the back-off starts again from the first delay.
            failures = 1 if self._last_session_sent else failures + 1
            self._counts["failures"] += 1
            self.state = SpyGlassState.ERROR
            self._ready.set()  # start_streaming waits no longer: it failed
            logger.warning(
                "SpyGlass %r: streaming to %s failed (%s); reconnecting",
                self.name,
                self._shown,
                self.last_error,
            )
            delay = backoff_delay(failures, self.reconnect_initial, self.reconnect_max)
            if wait_on(self._clock, self._stopping, delay):
                return
            self._counts["reconnects"] += 1

    def _run_session(self) -> bool:
        """One encoder process, fed until stopped (False) or until it fails (True)."""
        try:
            certificate = self._certificate()
        except OSError as error:  # no room for two small files: a failure like another
            self.last_error = f"the WHIP DTLS certificate could not be written: {error}"
            return True
        with self._lock:  # stop_streaming may end the spare from another thread
            process, self._spare = self._spare, None
        self._session_error = False
        with self._lock:
            self._progress_ns = self._clock.monotonic_ns()
            self._connecting = False
        try:
            session = EncoderSession(
                self._settings(certificate), self._reports(), self.name, process=process
            )
            self._session = session
            failed = self._feed_session(session)
            session.ended.wait(5)  # its last report, with what it sent
        finally:
            if certificate is not None:
                certificate.close()
        if failed and not self._session_error:  # it ended without saying why
            self.last_error = session.exit_status()
        with self._lock:
            sent = self._last_session_sent = self._sent_in_session
            self._counts["sent"] += sent
            # Handed to the encoder but not confirmed sent: lost with the session.
            self._lost += max(0, self._handed - sent)
            self._sent_in_session = self._handed = 0
            self._unsent.clear()
            self._generation += 1
        return failed

    def _feed_session(self, session: EncoderSession) -> bool:
        """Send queued frames until stopped (False) or the session fails (True)."""
        while True:
            item = self._next_frame(session)
            if not session.alive:
                if item is not None:
                    self._lose(1)
                session.kill()
                return True
            if item is None:  # stopping, and nothing left
                session.finish(timeout=5)
                return False
            image, stamp, stamps = item
            with self._lock:  # before it is sent: its report may come at once
                self._unsent.append(stamps)
            self._sending = True
            try:
                session.send(_np.ascontiguousarray(image), stamp)
            except (OSError, ValueError):
                with self._lock:
                    self._unsent.pop()
                self._lose(1)
                session.kill()
                return not self._stopping.is_set()
            finally:
                self._sending = False
            with self._lock:
                self._handed += 1

    def _watch_s(self) -> float | None:
        """The time the watch thread allows (None: no watch); see :meth:`_check_stall`."""
        return self.stall_timeout

    def _run_watch(self) -> None:
        """Look every tenth of the watch time (at most 0.25 s) for a session that is stuck."""
        limit = self._watch_s()
        assert limit is not None
        while not wait_on(self._clock, self._stopping, min(0.25, limit / 10)):
            self._check_stall(round(limit * 1e9))

    def _check_stall(self, limit_ns: int) -> None:
        """End a session that sends nothing for ``limit_ns`` (it cannot end itself)."""
        now = self._clock.monotonic_ns()
        with self._lock:
            session = self._session
            busy = self._connecting or self._sending or bool(self._queue)
            if session is None or not session.alive or not busy:
                self._progress_ns = now
                return
            if now - self._progress_ns < limit_ns:
                return
            seconds = (now - self._progress_ns) / 1e9
            if self._connecting:
                self.last_error = (
                    f"stalled: the receiver did not complete the connection in {seconds:g} s"
                )
            else:
                self.last_error = f"stalled: the receiver did not take a frame for {seconds:g} s"
            self._session_error = True
            self._progress_ns = now
        logger.warning("SpyGlass %r: %s; ending the encoder process", self.name, self.last_error)
        session.kill()

    def _lose(self, frames: int) -> None:
        with self._lock:
            self._lost += frames

    def _next_frame(self, session: _Session) -> tuple[Any, float, Stamps | None] | None:
        """The oldest queued frame; None when stopping with none left or the session ended."""
        queue, wake = self._queue, self._wake
        while True:
            try:
                return queue.popleft()
            except IndexError:
                pass
            if self._stopping.is_set() or not session.alive:
                return None
            wake.wait(POLL_S)

    def stop_streaming(self, timeout: float = 5.0) -> bool:
        """End the session: send what is queued (up to ``timeout`` s), then close the stream.

        Returns True when it ended cleanly within the time. The SpyGlass can
        be started again.
        """
        time_left = Deadline(timeout).left
        self._stopping.set()
        self._wake.set()
        feeder, self._feeder = self._feeder, None
        watchdog, self._watchdog = self._watchdog, None
        if watchdog is not None:
            watchdog.join()
        clean = True
        if feeder is not None:
            feeder.join(time_left())
            if feeder.is_alive():  # stuck on a receiver that does not read: end it
                clean = False
                session = self._session
                if session is not None:
                    session.kill()
                feeder.join(5)
        self._end_spare()
        left = 0
        while True:  # what is still queued is lost
            try:
                self._queue.popleft()
            except IndexError:
                break
            left += 1
        self._lose(left)
        self._session = None
        self.state = SpyGlassState.STOPPED
        return clean

    def _end_spare(self) -> None:
        """End an encoder process started for a session that never began."""
        with self._lock:  # the feeder thread may take it for a session meanwhile
            spare, self._spare = self._spare, None
        if spare is None:
            return
        spare.kill()
        spare.communicate(timeout=5)  # reaps it and closes its pipes

    def cleanup(self) -> None:
        """As a pipeline stage: stop streaming when the pipeline is cleaned up."""
        if self.state is not SpyGlassState.STOPPED:
            self.stop_streaming()

    def __repr__(self) -> str:
        return f"SpyGlass({self._shown!r}, state={self.state.name})"


def _check_image(image: Any) -> None:
    """Raise for what put() cannot send (the slow path: a uint8 image of a rare dtype passes)."""
    allowed = f"an H x W x 3 uint8 (BGR) numpy image, each side 1 to {MAX_SIDE} pixels"
    if not isinstance(image, _np.ndarray):
        raise TypeError(
            f"frame must be {allowed}, or a framescope Frame; got {type(image).__name__}"
        )
    if image.dtype != _UINT8:
        raise TypeError(
            f"frame must be {allowed}; got dtype {image.dtype} "
            "(convert it first, e.g. np.clip(image * 255, 0, 255).astype(np.uint8))"
        )
    shape = image.shape
    if len(shape) != 3 or shape[2] != 3 or not (0 < shape[0] <= MAX_SIDE >= shape[1] > 0):
        raise ValueError(f"frame must be {allowed}; got shape {shape}")


def _check_stall_timeout(value: Any) -> float | None:
    if value is None:
        return None
    return check_positive_seconds(value, "stall_timeout")


def _checked(fps: Any, width: Any, height: Any) -> tuple[float | None, int | None, int | None]:
    rate = None if fps is None else check_number(fps, "fps", positive=True)
    sizes = []
    for value, name in ((width, "width"), (height, "height")):
        size = check_int_at_least(value, name, 2, or_none=True)
        if size is not None and size % 2:
            raise ValueError(f"{name} must be even (4:2:0 video), got {size}")
        sizes.append(size)
    return rate, sizes[0], sizes[1]
