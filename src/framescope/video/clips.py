"""Event clips with pre-roll: the seconds before, during and after a trigger, as MP4 files.

A :class:`Clips` recorder keeps, in memory, the encoded video of the last
``pre`` seconds plus one key-frame interval (a ring, bounded in bytes).
:meth:`Clips.trigger` starts a clip at the key frame at or before ``now -
pre``, so a clip is never shorter than asked (unless ``max_memory`` cut the
ring short: counted); it ends ``post`` seconds after the last trigger, and a
clip that would run past ``max_length`` goes on in a new clip that starts at
the next key frame (no frame lost, none twice). Writing happens on the
recorder's own thread (:mod:`framescope.video.clipwriter`): a slow or
refusing disk drops clips (counted, with the reason), never the pipeline's
frames.
"""

from __future__ import annotations

import atexit
import contextlib
import datetime
import logging
import math
import re
import threading
import weakref
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from framescope._optional import require
from framescope._ratelimit import FULL, LogLimiter
from framescope._validation import check_int_at_least, check_number, check_positive_seconds
from framescope.clock import SYSTEM_CLOCK, Clock, wait_on
from framescope.pipeline.model.clips import RECENT_CLIPS, ClipEntry, ClipsSnapshot
from framescope.video.clipencoder import FrameEncoder
from framescope.video.clipfile import ClipIndex, ClipPacket, StreamParams, write_json
from framescope.video.clipwriter import EventWriter, Trigger

try:
    import fcntl
except ImportError:  # not POSIX: one recorder per directory is not enforced there
    fcntl = None  # type: ignore[assignment]

__all__ = ["Clips"]

logger = logging.getLogger(__name__)

_av = require("av", "video", "event clips")

_SILENCE_S = 1.0  # a clip whose stream went quiet past its end is closed this much later
_AGE_CHECK_S = 10.0  # how often max_age is enforced while nothing is written
_BATCH_S = 0.1  # how often the writer takes a recording clip's packets (real time)
_BATCH_BYTES = 1 << 20  # ... or as soon as this much waits
_ENCODER_POLL_S = 0.05  # a clip's end waits for the encoder's queue in real time
_MIN_MEMORY = 1 << 20
_TAIL_PACKETS = 16  # B-frames a clip takes after its end, at most
_LABEL_TYPES = (str, int, float, bool, type(None))
_NAME = re.compile(r"[^A-Za-z0-9_.-]+")
_LOCK_NAME = ".clips.lock"


@dataclass(slots=True)
class _Event:
    """What triggers asked for, from the first until ``post`` after the last."""

    end_ns: int
    triggers: list[Trigger] = field(default_factory=list)
    pending: list[ClipPacket] = field(default_factory=list)
    pending_bytes: int = 0
    started: bool = False  # a key frame is in: packets may follow it
    closing: bool = False
    ended: str = "post"  # why it ended, for its last clip's sidecar
    failed: str | None = None  # the drop reason
    encoder_failures: int = 0  # the encoder's failures when it began
    draining: bool = False  # past its end: taking only frames shown before its last one
    max_pts: int | None = None  # the latest presentation time taken
    tail: int = 0  # B-frames taken after its end


class _Ring:
    """The last ``pre`` seconds of packets, from a key frame; bounded in bytes."""

    def __init__(self, pre_ns: int, max_bytes: int) -> None:
        self.pre_ns, self.max_bytes = pre_ns, max_bytes
        self.packets: deque[ClipPacket] = deque()
        self.keys: deque[ClipPacket] = deque()
        self.bytes = 0
        self.overflows = 0

    def add(self, packet: ClipPacket) -> bool:
        """Keep ``packet``; False when ``max_bytes`` made it drop a key-frame interval early."""
        if not self.packets and not packet.key:
            return True  # nothing could start from it
        self.packets.append(packet)
        self.bytes += len(packet.data)
        if packet.key:
            self.keys.append(packet)
        cutoff = packet.t_ns - self.pre_ns
        while len(self.keys) >= 2 and self.keys[1].t_ns <= cutoff:
            self._drop_first_gop()
        overflowed = False
        while self.bytes > self.max_bytes:
            overflowed = True
            self.overflows += 1
            if len(self.keys) < 2:
                self.packets.clear()
                self.keys.clear()
                self.bytes = 0
                break
            self._drop_first_gop()
        return not overflowed

    def _drop_first_gop(self) -> None:
        self.keys.popleft()
        start = self.keys[0]
        while self.packets[0] is not start:
            self.bytes -= len(self.packets.popleft().data)

    def since(self, t_ns: int) -> list[ClipPacket]:
        """The packets from the last key frame at or before ``t_ns`` (else the first key frame)."""
        start = next((key for key in reversed(self.keys) if key.t_ns <= t_ns), None)
        if start is None and self.keys:
            start = self.keys[0]
        if start is None:
            return []
        packets = list(self.packets)
        return packets[next(i for i, packet in enumerate(packets) if packet is start) :]

    @property
    def seconds(self) -> float:
        if len(self.packets) < 2:
            return 0.0
        return (self.packets[-1].t_ns - self.packets[0].t_ns) / 1e9


class Clips:
    """Record clips around events: the seconds before a trigger, and until after the last.

    Two kinds of content:

    - **a source's own packets** (``clips.attach(source)``: a
      :class:`VideoSource` hands over each encoded packet it reads, before
      decoding): the camera's quality, no encoding, almost no CPU;
    - **a stage's frames** (``pipeline.tap("Draw", clips)``, in that stage's
      thread, or ``pipeline.add(clips)``, a stage of its own: each frame, or
      image, that passes is encoded with H.264, a key frame at least every
      ``key_interval`` seconds, on a thread of the recorder's own at the
      lowest priority; the frame goes on unchanged).

    Example::

        clips = Clips("clips", pre=5, post=5)
        camera = VideoSource("rtsp://door/stream")
        clips.attach(camera)

        def detect(frame):
            if person_in(frame):
                clips.trigger("person", camera="door")
            return frame

        pipeline.add(detect)
        for frame in pipeline.run(camera): ...
        pipeline.cleanup()
        clips.close()  # the clip being written is finished

    ``pipeline.cleanup()`` closes a recorder added as a stage; one attached to
    a source or tapping a stage is closed by :meth:`close` (and, failing
    that, when the interpreter exits).

    :meth:`trigger` may be called from any thread. A clip starts at the key
    frame at or before ``pre`` seconds before its first trigger (the ring
    keeps ``pre`` seconds plus one key-frame interval) and ends with the
    first frame ``post`` seconds or more after its last trigger; triggers
    during a clip extend it. A clip is cut at a key frame before it would
    run past ``max_length`` and the event goes on in a new clip from that key
    frame (its sidecar's ``continues`` names the one before). Times are the
    recorder's clock when each packet or frame came: read a file with
    ``realtime=True`` to have them follow the video's own time.

    One recorder a directory: a second one on it (in this process or
    another) is refused while the first is open; a clip a killed process
    left as a ``.part`` is finished by the next recorder that opens the
    directory. The budget is kept from the start, and ``index.json``
    written, when the recorder is made.

    Each clip is ``<directory>/<id>.mp4`` (faststart; written as a
    fragmented ``<id>.mp4.part`` first, so a crash leaves a playable file)
    and ``<id>.json`` (reason, labels, each trigger, the first and last
    frame's capture time, frames, key frames, the pre-roll it got, why it
    ended); ``index.json`` lists the directory's clips. Past ``max_bytes``
    or ``max_age`` the oldest clips are deleted (counted).

    A pipeline's snapshot shows the recorder (``snapshot().clips``) when it
    is a stage or a tap of it, or attached to a source it runs; so do the live view
    (with each clip to play) and the Prometheus exporter.

    Args:
        directory: where clips are written (made if missing).
        pre: seconds before the first trigger a clip starts (at least).
        post: seconds after the last trigger a clip ends (at least).
        max_length: seconds a clip may last (at least ``pre + post``); a
            longer event goes on in the next clip.
        max_bytes: bytes the directory's clips may take (None: no limit).
        max_age: seconds a clip is kept after its end (> 0; None: for ever).
        max_memory: bytes the recorder may hold (at least 1 MiB): the ring
            (a third: a pre-roll that needs more is cut short, counted in
            ``ring_overflows``), and clips' packets not yet written (two
            thirds: a clip whose writer fell that far behind is dropped,
            ``behind``). A stage's frames wait for the encoder 8 at most.
        key_interval: a stage's frames get a key frame at least this often (seconds).
        max_fps: a stage's frames are recorded at most this many a second (a
            pipeline that runs faster, e.g. over a file, has the others left
            out of its clips; None: every frame).
        name: the recorder's name (the directory's name unless given); it
            starts each clip's file name.
        camera: with a stage's frames from many sources, the source whose
            frames are recorded (None: the first source seen; the frames of
            others are counted and left out).
        clock: the clock times are counted on.
    """

    def __init__(
        self,
        directory: str | Path,
        *,
        pre: float = 5.0,
        post: float = 5.0,
        max_length: float = 60.0,
        max_bytes: int | None = None,
        max_age: float | None = None,
        max_memory: int = 128 * 1024 * 1024,
        key_interval: float = 1.0,
        max_fps: float | None = 30.0,
        name: str | None = None,
        camera: str | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.pre = check_number(pre, "pre", low=0)
        self.post = check_number(post, "post", low=0)
        self.max_length = check_positive_seconds(max_length, "max_length")
        if self.max_length < self.pre + self.post:
            raise ValueError(
                f"max_length must be at least pre + post ({self.pre + self.post:g} s), "
                f"got {self.max_length:g}"
            )
        self.max_bytes = check_int_at_least(max_bytes, "max_bytes", or_none=True)
        self.max_age = None if max_age is None else check_positive_seconds(max_age, "max_age")
        memory = check_int_at_least(max_memory, "max_memory", _MIN_MEMORY)
        assert memory is not None
        self.max_memory = memory
        self.key_interval = check_positive_seconds(key_interval, "key_interval")
        self.max_fps = None if max_fps is None else check_number(max_fps, "max_fps", positive=True)
        if camera is not None and not isinstance(camera, str):
            raise TypeError(f"camera must be a str (a source's name) or None, got {camera!r}")
        self.camera = camera
        if clock is not None and not isinstance(clock, Clock):
            raise TypeError(f"clock must be a framescope Clock or None, got {type(clock).__name__}")
        self._clock = SYSTEM_CLOCK if clock is None else clock
        self.directory = _check_directory(directory)
        self.name = _check_name(name, self.directory)
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._ring = _Ring(round(self.pre * 1e9), memory // 3)
        self._held = 0  # bytes of packets held for writing, every event's
        self._max_held = memory - memory // 3
        self._events: deque[_Event] = deque()
        self._event: _Event | None = None  # the one triggers extend
        self._last_params: StreamParams | None = None
        self._sequence = 0
        self.mode: str | None = None
        self._params: StreamParams | None = None
        self._source: Any = None
        self._encoder: FrameEncoder | None = None
        self._writer: threading.Thread | None = None
        self._closing = self._closed = False
        self._counts = {"triggers": 0, "written": 0, "other_sources": 0}
        self._dropped: dict[str, int] = {}
        self._log_limit = LogLimiter(clock=self._clock)
        self.last_error: str | None = None
        self._index = self._open_directory()

    def _open_directory(self) -> ClipIndex:
        """Hold the directory, finish what a killed recorder left, index it, keep the budget."""
        self._directory_lock = _lock_directory(self.directory)
        _OPEN.add(self)
        if self._directory_lock is not None:  # a recorder never closed lets it go when collected
            weakref.finalize(self, self._directory_lock.close)
        index = self._index = ClipIndex(self.directory, self.max_bytes, self.max_age)
        index.scan()
        self._keep_budget(0)
        self._write_index()
        return index

    # -- what goes in ------------------------------------------------------------------

    def attach(self, source: Any) -> Clips:
        """Record ``source``'s own encoded packets (a :class:`VideoSource`); returns self.

        The source hands each packet over as it reads it, before decoding.
        """
        add_sink = getattr(source, "add_packet_sink", None)
        if not callable(add_sink):
            raise TypeError(
                f"source must be a VideoSource (it hands over its packets), "
                f"got {type(source).__name__}"
            )
        if self._closing:
            raise RuntimeError(f"clips {self.name!r} is closed")
        if self._source is not None and self._source is not source:
            raise ValueError(
                f"clips {self.name!r} already records {self._source!r}: one Clips per source"
            )
        self._set_mode("packets")
        self._source = source
        add_sink(self)
        return self

    def open_stream(self, stream: Any) -> None:
        """A source opened (or reopened) its video stream: what its next packets belong to."""
        if self.mode is None:
            self._set_mode("packets")
        self._params = StreamParams.of(stream)

    def add_packet(self, packet: Any, received_ns: int, capture_time: float) -> None:
        """A source read ``packet`` (a PyAV packet of the stream last opened).

        Its time is the recorder's clock now (``received_ns``, the source's
        reading, is not used: the two may run on different clocks).
        """
        params = self._params
        if params is None or not packet.size or self._closed:
            return
        self._add(
            ClipPacket(
                t_ns=self._clock.monotonic_ns(),
                data=bytes(packet),
                pts=packet.pts,
                dts=packet.dts,
                key=bool(packet.is_keyframe),
                capture_time=capture_time,
                params=params,
            )
        )

    def __call__(self, item: Any) -> Any:
        """A stage: queue the frame's picture for the clips' encoder and pass the item on."""
        if self.mode == "packets" or self._closing:
            return item
        image = getattr(item, "image", item)
        layout = getattr(item, "pixel_format", None) or _layout(image, item)
        source = getattr(item, "source", None)
        if source is not None and not self._wanted(source):
            return item
        encoder = self._encoder or self._start_encoder()
        if encoder is None:
            return item  # closing
        now = self._clock.monotonic_ns()
        if not encoder.wanted(now):
            return item
        capture = getattr(item, "capture_time", None)
        if capture is None:  # an image, or a frame made by hand: timed as it came
            encoder.by_capture = False
            capture = self._clock.wall().timestamp()
        encoder.put(image, layout, now, capture)
        return item

    def _start_encoder(self) -> FrameEncoder | None:
        with self._lock:
            if self._closing:
                return None
            if self.mode is None:
                self._set_mode("frames")
            if self._encoder is None:
                self._encoder = FrameEncoder(
                    self.name,
                    self._add,
                    self._clock,
                    self.key_interval,
                    self.max_fps,
                    on_error=self._note_error,
                )
            return self._encoder

    def _wanted(self, source: str) -> bool:
        if self.camera is None:
            self.camera = source
            return True
        if source == self.camera:
            return True
        with self._lock:
            self._counts["other_sources"] += 1
            first = self._counts["other_sources"] == 1
        if first:
            logger.warning(
                "clips %s records camera %r; frames of %r are left out (one Clips per camera)",
                self.name,
                self.camera,
                source,
            )
        return False

    def _set_mode(self, mode: str) -> None:
        if self.mode not in (None, mode):
            raise ValueError(
                f"clips {self.name!r} already records {self.mode}: one Clips records "
                "a source's packets or a stage's frames, not both"
            )
        self.mode = mode

    def _add(self, packet: ClipPacket) -> None:
        """A packet came (source thread or encoder thread): into the ring, and the clip's."""
        with self._lock:
            if packet.params is not self._last_params:
                if not packet.key:
                    return  # a new stream's packets before its first key frame: unplayable
                self._last_params = packet.params
            if not self._ring.add(packet):
                self._ring_overflowed()
            event = self._event
            if event is None:
                return
            if event.draining and not _fills_in(event, packet):
                event.closing = True  # the frames shown before the last one are all in
                self._event = None
            else:
                self._take(event, packet)
                if event.pending_bytes < _BATCH_BYTES and not event.closing:
                    return  # the writer takes packets in batches, not a wake-up a packet
        self._wake.set()

    def _take(self, event: _Event, packet: ClipPacket) -> None:
        """A packet for the event being recorded (lock held); its end starts the tail."""
        if event.failed is None and (event.started or packet.key):
            event.started = True
            self._hold(event, [packet])
            if packet.pts is not None:
                event.max_pts = max(event.max_pts or packet.pts, packet.pts)
        if packet.t_ns >= event.end_ns:
            if event.failed is not None or event.max_pts is None:
                event.closing = True
                self._event = None
            else:  # B-frames after it in decode order may still be shown before it
                event.draining = True

    def _hold(self, event: _Event, packets: list[ClipPacket]) -> None:
        """Keep packets for the writer (lock held); past ``max_memory`` the clip is dropped."""
        size = sum(len(packet.data) for packet in packets)
        event.pending += packets
        event.pending_bytes += size
        self._held += size
        if self._held > self._max_held:
            event.failed = "behind"
            self._held -= event.pending_bytes
            event.pending, event.pending_bytes = [], 0

    def _ring_overflowed(self) -> None:
        if self._log_limit.check("ring") == FULL:
            self.last_error = (
                f"max_memory ({self.max_memory} bytes) cannot hold pre={self.pre:g} s of "
                "this stream: pre-rolls are cut short"
            )
            logger.warning("clips %s: %s", self.name, self.last_error)

    def release(self, size: int) -> None:
        """Packets the writer held were written or let go (what it calls)."""
        with self._lock:
            self._held -= size

    # -- triggers ----------------------------------------------------------------------

    def trigger(self, reason: str, **labels: Any) -> None:
        """Start a clip (or extend the one being recorded) now; from any thread.

        Args:
            reason: what happened, in a few words (``"person"``).
            labels: more about it, JSON values (str, int, float (finite),
                bool, None), kept in the clip's sidecar.

        A trigger after :meth:`close` (a stage racing the shutdown) is
        ignored, counted with the others and said in ``last_error``.
        """
        reason = _check_reason(reason)
        _check_labels(labels)
        with self._lock:
            if self._closing:
                self._counts["triggers"] += 1
                self.last_error = f"a trigger ({reason!r}) came after close(): ignored"
                return
            now, wall = self._clock.monotonic_ns(), self._clock.wall().timestamp()
            self._counts["triggers"] += 1
            event = self._event
            if event is None:
                event = self._event = _Event(end_ns=now + round(self.post * 1e9))
                encoder = self._encoder
                event.encoder_failures = 0 if encoder is None else encoder.failures
                preroll = self._ring.since(now - round(self.pre * 1e9))
                self._hold(event, preroll)
                event.started = bool(preroll)
                self._events.append(event)
            else:
                event.end_ns = max(event.end_ns, now + round(self.post * 1e9))
                event.draining = False
            event.triggers.append(Trigger(now, wall, reason, dict(labels)))
            self._start_writer()
        self._wake.set()

    @property
    def recording(self) -> bool:
        """Whether a clip is being recorded or written now."""
        with self._lock:
            return bool(self._events)

    # -- the writer --------------------------------------------------------------------

    def _start_writer(self) -> None:
        if self._writer is None:
            self._writer = threading.Thread(
                target=self._write_loop, name=f"framescope:clips:{self.name}", daemon=True
            )
            self._writer.start()

    def _write_loop(self) -> None:
        writer: EventWriter | None = None
        last_age_check = self._clock.monotonic_ns()
        while True:
            self._wake.clear()
            with self._lock:
                event = self._events[0] if self._events else None
                stopping = self._closed  # set once the encoder has handed over its last
                if event is not None:
                    batch, event.pending, event.pending_bytes = event.pending, [], 0
                    closing, triggers = event.closing, list(event.triggers)
            if event is None:
                if stopping:
                    return
                last_age_check = self._keep_budget(last_age_check)
                wait_on(self._clock, self._wake, _AGE_CHECK_S if self.max_age else None)
                continue
            writer = writer or EventWriter(self)
            if batch:
                self._write(writer, event, batch, triggers)
            if closing or stopping:
                self._end_event(writer, event, event.ended if closing else "closed")
                writer = None
                last_age_check = self._keep_budget(0)
            elif not batch:
                self._wait_or_end(event)
            else:
                self._wake.wait(_BATCH_S)

    def _write(
        self, writer: EventWriter, event: _Event, batch: list[ClipPacket], triggers: list[Trigger]
    ) -> None:
        if event.failed is not None:
            self.release(sum(len(packet.data) for packet in batch))
            return
        try:
            writer.write(batch, triggers)
        except Exception as error:  # the disk's, or anything else: the clip, not the recorder
            self._event_failed(writer, event, error)

    def _event_failed(self, writer: EventWriter, event: _Event, error: BaseException) -> None:
        """Drop the event's clip being written (counted, said), and let what it held go."""
        reason = "disk" if isinstance(error, (OSError, _av.FFmpegError)) else "error"
        with self._lock:
            event.failed = reason
            self._held -= event.pending_bytes
            event.pending, event.pending_bytes = [], 0
        with contextlib.suppress(Exception):
            writer.abandon()
        self._note_error(f"clip not written ({type(error).__name__}: {error})")
        if reason == "error":
            logger.error("clips %s: writing a clip failed", self.name, exc_info=error)

    def _wait_or_end(self, event: _Event) -> None:
        """Wait for the clip's packets; a stream quiet past the clip's end ends it."""
        left_ns = event.end_ns + round(_SILENCE_S * 1e9) - self._clock.monotonic_ns()
        if left_ns > 0:
            self._wake.wait(_BATCH_S)  # real time: packets come without a wake-up each
            return
        encoder = self._encoder
        if encoder is not None and encoder.busy:  # its packets are late, not missing
            self._wake.wait(_ENCODER_POLL_S)
            return
        with self._lock:
            if self._event is event:
                self._event = None
            event.closing, event.ended = True, "quiet"

    def _end_event(self, writer: EventWriter, event: _Event, how: str) -> None:
        with self._lock:
            tail, event.pending, event.pending_bytes = event.pending, [], 0
            triggers = list(event.triggers)
            if self._event is event:
                self._event = None
        if tail:
            self._write(writer, event, tail, triggers)
        if event.failed is None:
            try:
                writer.finish(triggers, how)
            except Exception as error:
                self._event_failed(writer, event, error)
        encoder = self._encoder
        with self._lock:
            reason = event.failed
            if reason is None and not writer.written:
                failing = encoder is not None and encoder.failures > event.encoder_failures
                reason = "error" if failing else "stream"
                if reason == "stream":
                    self.last_error = (
                        "a clip was not written: no key frame reached the recorder before it "
                        "was due to end (no packets or frames came, or none of its camera)"
                    )
            if reason is not None:
                self._dropped[reason] = self._dropped.get(reason, 0) + 1
            self._events.popleft()

    def _keep_budget(self, last_check_ns: int) -> int:
        """Delete the clips beyond ``max_bytes``/``max_age`` (at most every few seconds)."""
        now = self._clock.monotonic_ns()
        if last_check_ns and now - last_check_ns < _AGE_CHECK_S * 1e9:
            return last_check_ns
        with self._lock:
            old = self._index.over_budget(self._clock.wall().timestamp())
        if old:
            self._index.delete(old)  # outside the lock: a source's thread takes it per packet
            self._write_index()
        return now

    def _write_index(self) -> None:
        with self._lock:
            data = {"clips": [entry.to_dict() for entry in self._index.entries]}
        try:
            write_json(self.directory / "index.json", data)
        except (OSError, ValueError) as error:
            self._note_error(f"index.json not written ({type(error).__name__}: {error})")

    def _note_error(self, text: str) -> None:
        self.last_error = text
        if self._log_limit.check(text[:40]) == FULL:
            logger.warning("clips %s: %s", self.name, text)

    def next_id(self, first: ClipPacket) -> str:
        """A new clip's id: the recorder's name, its first frame's time (UTC), a number."""
        try:
            stamp = datetime.datetime.fromtimestamp(first.capture_time, datetime.timezone.utc)
        except (OverflowError, OSError, ValueError):  # a capture time no calendar has
            stamp = self._clock.wall()
        while True:
            self._sequence += 1
            clip_id = f"{self.name}-{stamp:%Y%m%d-%H%M%S}-{self._sequence:04d}"
            taken = (f"{clip_id}.mp4", f"{clip_id}.mp4.part", f"{clip_id}.json")
            if not any((self.directory / name).exists() for name in taken):
                return clip_id

    def clip_written(self, entry: ClipEntry, size: int) -> None:
        """A clip was written: indexed, the budget kept (what the writer calls)."""
        with self._lock:
            self._counts["written"] += 1
            self._index.add(entry, size)
        self._keep_budget(0)
        self._write_index()
        newest = self._index.newest_over()
        if newest is not None:
            self._note_error(
                f"max_bytes ({self.max_bytes}) is smaller than the newest clip ({newest} "
                "bytes): it is kept until the next"
            )

    # -- reading and closing -----------------------------------------------------------

    def clips(self) -> list[ClipEntry]:
        """Every clip in the directory, oldest first (what ``index.json`` lists)."""
        with self._lock:
            return list(self._index.entries)

    def clips_snapshot(self) -> ClipsSnapshot:
        """The recorder at this instant (what ``PipelineSnapshot.clips`` holds)."""
        encoder = self._encoder
        with self._lock:
            entries = self._index.entries
            return ClipsSnapshot(
                name=self.name,
                directory=str(self.directory),
                mode=self.mode,
                recording=bool(self._events),
                triggers=self._counts["triggers"],
                clips_written=self._counts["written"],
                clips_dropped=dict(self._dropped),
                clips_deleted=self._index.deleted,
                clips_on_disk=len(entries),
                bytes_on_disk=self._index.bytes_on_disk,
                ring_bytes=self._ring.bytes,
                ring_seconds=self._ring.seconds,
                ring_overflows=self._ring.overflows,
                frames_dropped=0
                if encoder is None
                else encoder.dropped + encoder.failures + encoder.skipped,
                last_error=self.last_error,
                recent=tuple(reversed(entries[-RECENT_CLIPS:])),
            )

    def close(self, timeout: float = 10.0) -> bool:
        """Finish the clip being recorded with what came, and stop; from any thread.

        Returns False while the recorder's threads have not ended (within
        ``timeout`` seconds: a disk that hangs); calling it again waits again.
        """
        timeout = check_positive_seconds(timeout, "timeout")
        with self._lock:
            self._closing = True
        encoder = self._encoder
        done = encoder is None or encoder.close(timeout)
        self._closed = True
        self._wake.set()
        writer = self._writer
        if writer is not None:
            writer.join(timeout)
            done = done and not writer.is_alive()
        if done:
            _unlock_directory(self._directory_lock)
            _OPEN.discard(self)
        return done

    def cleanup(self) -> None:
        """A stage's cleanup (``Pipeline.cleanup``): :meth:`close`, a hang said in the log."""
        if not self.close():
            logger.warning("clips %s: its writer did not stop within 10 s", self.name)

    def __repr__(self) -> str:
        return f"Clips({str(self.directory)!r}, pre={self.pre:g}, post={self.post:g})"


_OPEN: weakref.WeakSet[Clips] = weakref.WeakSet()
"""Recorders not closed yet: the interpreter's exit closes them (their clips finished)."""


@atexit.register
def _close_open_recorders() -> None:
    for recorder in list(_OPEN):
        recorder.close(timeout=5.0)


def _fills_in(event: _Event, packet: ClipPacket) -> bool:
    """Whether a packet after a clip's end is a B-frame shown before its last frame.

    At most :data:`_TAIL_PACKETS` of them, and within a second before it: a
    stream whose time went back (a looped file) has nothing to fill in.
    """
    if packet.key or packet.pts is None or event.max_pts is None:
        return False
    if event.tail >= _TAIL_PACKETS:
        return False
    window = round(1 / packet.params.time_base)
    if not event.max_pts - window < packet.pts < event.max_pts:
        return False
    event.tail += 1
    return True


def _layout(image: Any, item: Any) -> str:
    """The pixel format of a bare image array: BGR, BGRA or grey by its shape."""
    shape = getattr(image, "shape", None)
    if shape is not None and len(shape) == 2:
        return "gray"
    if shape is not None and len(shape) == 3 and shape[2] in (3, 4):
        return "bgr24" if shape[2] == 3 else "bgra"
    raise TypeError(
        "Clips takes frames (an object with .image) or image arrays (H x W grey, "
        f"H x W x 3 BGR or H x W x 4 BGRA), got {type(item).__name__} "
        f"{'' if shape is None else tuple(shape)}"
    )


def _lock_directory(directory: Path) -> Any:
    """Hold the directory for this recorder (an exclusive lock on a file in it)."""
    if fcntl is None:
        return None
    handle = (directory / _LOCK_NAME).open("a")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.close()
        raise ValueError(
            f"directory: {str(directory)!r} is used by another Clips recorder (in this "
            "process or another): one directory per recorder, or close() the other"
        ) from None
    return handle


def _unlock_directory(handle: Any) -> None:
    if handle is not None and not handle.closed:
        handle.close()  # closing the file lets the lock go


def _check_directory(value: object) -> Path:
    if not isinstance(value, (str, Path)):
        raise TypeError(f"directory must be a path (str or Path), got {type(value).__name__}")
    if not str(value).strip():
        raise ValueError("directory must be a path, got an empty one")
    path = Path(value).expanduser().absolute()
    if path.exists() and not path.is_dir():
        raise ValueError(f"directory: {str(path)!r} exists and is not a directory")
    path.mkdir(parents=True, exist_ok=True)
    return path


def _check_name(value: object, directory: Path) -> str:
    if value is None:
        value = directory.name or "clips"
    if not isinstance(value, str):
        raise TypeError(f"name must be a str or None, got {type(value).__name__}")
    if not value.strip():
        raise ValueError("name must be a non-empty str or None, got an empty one")
    return _NAME.sub("-", value.strip())[:64]


def _check_reason(value: object) -> str:
    if not isinstance(value, str):
        raise TypeError(f"reason must be a str, got {type(value).__name__}")
    if not value.strip() or len(value) > 200:
        raise ValueError(f"reason must be a non-empty str of at most 200 characters, got {value!r}")
    return value


def _check_labels(labels: dict[str, Any]) -> None:
    """Labels as JSON values (a NumPy scalar, a detector's score, becomes its Python value)."""
    for key, given in list(labels.items()):
        value = given
        if type(value).__module__ == "numpy" and hasattr(value, "item"):
            value = labels[key] = value.item()
        if not isinstance(value, _LABEL_TYPES):
            raise TypeError(
                f"label {key!r} must be a str, int, float, bool or None, got {type(value).__name__}"
            )
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"label {key!r} must be a finite number, got {value!r}")
