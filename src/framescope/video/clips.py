"""Event clips with pre-roll: the seconds before, during and after a trigger, as MP4 files.

A :class:`Clips` recorder keeps, in memory, the encoded video of the last
``pre`` seconds plus one key-frame interval (a ring, bounded in bytes).
:meth:`Clips.trigger` starts a clip at the key frame at or before ``now -
pre``, so a clip is never shorter than asked; it ends ``post`` seconds after
the last trigger, and a clip that would run past ``max_length`` goes on in a
new clip that starts at the next key frame (no frame lost, none twice).
Writing happens on the recorder's own thread: a slow or refusing disk drops
clips (counted, with the reason), never the pipeline's frames.
"""

from __future__ import annotations

import datetime
import logging
import re
import threading
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from framescope._optional import require
from framescope._validation import check_number, check_positive_seconds, check_seconds_or_none
from framescope.clock import SYSTEM_CLOCK, Clock, wait_on
from framescope.pipeline.model.clips import RECENT_CLIPS, ClipEntry, ClipsSnapshot
from framescope.video.clipencoder import FrameEncoder
from framescope.video.clipfile import ClipFile, ClipIndex, ClipPacket, StreamParams

__all__ = ["Clips"]

logger = logging.getLogger(__name__)

_av = require("av", "video", "event clips")

_SILENCE_S = 1.0  # a clip whose stream went quiet past its end is closed this much later
_AGE_CHECK_S = 10.0  # how often max_age is enforced while nothing is written
_BATCH_S = 0.1  # how often the writer takes a recording clip's packets (real time)
_BATCH_BYTES = 1 << 20  # ... or as soon as this much waits
_ENCODER_POLL_S = 0.05  # a clip's end waits for the encoder's queue in real time
_LABEL_TYPES = (str, int, float, bool, type(None))
_NAME = re.compile(r"[^A-Za-z0-9_.-]+")


@dataclass(slots=True)
class _Trigger:
    t_ns: int
    wall: float
    reason: str
    labels: dict[str, Any]

    def to_dict(self, start_ns: int) -> dict[str, Any]:
        return {
            "reason": self.reason,
            "labels": self.labels,
            "time": self.wall,
            "at_s": round((self.t_ns - start_ns) / 1e9, 6),
        }


@dataclass(slots=True)
class _Event:
    """What triggers asked for, from the first until ``post`` after the last."""

    end_ns: int
    triggers: list[_Trigger] = field(default_factory=list)
    pending: list[ClipPacket] = field(default_factory=list)
    pending_bytes: int = 0
    started: bool = False  # a key frame is in: packets may follow it
    closing: bool = False
    failed: str | None = None  # the drop reason


class _Ring:
    """The last ``pre`` seconds of packets, from a key frame; bounded in bytes."""

    def __init__(self, pre_ns: int, max_bytes: int) -> None:
        self.pre_ns, self.max_bytes = pre_ns, max_bytes
        self.packets: deque[ClipPacket] = deque()
        self.keys: deque[ClipPacket] = deque()
        self.bytes = 0
        self.overflows = 0

    def add(self, packet: ClipPacket) -> None:
        if not self.packets and not packet.key:
            return  # nothing could start from it
        self.packets.append(packet)
        self.bytes += len(packet.data)
        if packet.key:
            self.keys.append(packet)
        cutoff = packet.t_ns - self.pre_ns
        while len(self.keys) >= 2 and self.keys[1].t_ns <= cutoff:
            self._drop_first_gop()
        while self.bytes > self.max_bytes:
            self.overflows += 1
            if len(self.keys) < 2:
                self.packets.clear()
                self.keys.clear()
                self.bytes = 0
                break
            self._drop_first_gop()

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
    - **a stage's frames** (``pipeline.add(clips)``: each frame, or image, that
      passes is encoded with H.264, a key frame at least every
      ``key_interval`` seconds, on a thread of the recorder's own; the frame
      goes on unchanged).

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
        pipeline.cleanup()  # or clips.close(): the clip being written is finished

    :meth:`trigger` may be called from any thread. A clip starts at the key
    frame at or before ``pre`` seconds before its first trigger (the ring
    keeps ``pre`` seconds plus one key-frame interval) and ends with the
    first frame ``post`` seconds or more after its last trigger; triggers
    during a clip extend it. A clip is cut at a key frame before it would
    run past ``max_length`` and the event goes on in a new clip from that key
    frame (its sidecar's ``continues`` names the one before). Times are the
    recorder's clock when each packet or frame came: read a file with
    ``realtime=True`` to have them follow the video's own time.

    Each clip is ``<directory>/<id>.mp4`` (faststart; written as a
    fragmented ``<id>.mp4.part`` first, so a crash leaves a playable file)
    and ``<id>.json`` (reason, labels, each trigger, the first and last
    frame's capture time, frames, key frames, the pre-roll it got, why it
    ended); ``index.json`` lists the directory's clips. Past ``max_bytes``
    or ``max_age`` the oldest clips are deleted (counted).

    A pipeline's snapshot shows the recorder (``snapshot().clips``) when it
    is a stage of it or attached to a source it runs; so do the live view
    (with each clip to play) and the Prometheus exporter.

    Args:
        directory: where clips are written (made if missing).
        pre: seconds before the first trigger a clip starts (at least).
        post: seconds after the last trigger a clip ends (at least).
        max_length: seconds a clip may last; a longer event goes on in the next clip.
        max_bytes: bytes the directory's clips may take (None: no limit).
        max_age: seconds a clip is kept after its end (None: for ever).
        max_memory: bytes the recorder may hold: the ring, and a clip's
            packets not yet written (half each). A clip whose writer fell
            that far behind is dropped (``behind``).
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
        self.directory = _check_directory(directory)
        self.pre = check_seconds_or_none(pre, "pre") or 0.0
        self.post = check_seconds_or_none(post, "post") or 0.0
        self.max_length = check_positive_seconds(max_length, "max_length")
        if self.max_length < self.pre + self.post:
            raise ValueError(
                f"max_length must be at least pre + post ({self.pre + self.post:g} s), "
                f"got {self.max_length:g}"
            )
        self.max_bytes = _check_bytes(max_bytes, "max_bytes", or_none=True)
        self.max_age = check_seconds_or_none(max_age, "max_age")
        memory = _check_bytes(max_memory, "max_memory")
        assert memory is not None
        self.key_interval = check_positive_seconds(key_interval, "key_interval")
        self.max_fps = None if max_fps is None else check_number(max_fps, "max_fps", positive=True)
        self.name = _check_name(name, self.directory)
        if camera is not None and not isinstance(camera, str):
            raise TypeError(f"camera must be a str (a source's name) or None, got {camera!r}")
        self.camera = camera
        if clock is not None and not isinstance(clock, Clock):
            raise TypeError(f"clock must be a framescope Clock or None, got {type(clock).__name__}")
        self._clock = SYSTEM_CLOCK if clock is None else clock
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._ring = _Ring(round(self.pre * 1e9), memory // 2)
        self._max_pending = memory // 2
        self._events: deque[_Event] = deque()
        self._event: _Event | None = None  # the one triggers extend
        self._index = ClipIndex(self.directory, self.max_bytes, self.max_age)
        self._index.scan()
        self._sequence = 0
        self.mode: str | None = None
        self._params: StreamParams | None = None
        self._encoder: FrameEncoder | None = None
        self._writer: threading.Thread | None = None
        self._closing = False
        self._closed = False
        self._counts = {"triggers": 0, "written": 0, "other_sources": 0}
        self._dropped: dict[str, int] = {}
        self.last_error: str | None = None

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
        self._set_mode("packets")
        add_sink(self)
        return self

    def open_stream(self, stream: Any) -> None:
        """A source opened (or reopened) its video stream: what its next packets belong to."""
        if self.mode is None:
            self._set_mode("packets")
        self._params = StreamParams.of(stream)

    def add_packet(self, packet: Any, received_ns: int, capture_time: float) -> None:
        """A source read ``packet`` (a PyAV packet of the stream last opened)."""
        params = self._params
        if params is None or not packet.size or self._closed:
            return
        self._add(
            ClipPacket(
                t_ns=received_ns,
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
        if self.mode == "packets" or self._closed:
            return item
        image = getattr(item, "image", item)
        if not hasattr(image, "shape"):
            raise TypeError(
                f"Clips takes frames (an object with .image) or image arrays, "
                f"got {type(item).__name__}"
            )
        source = getattr(item, "source", None)
        if source is not None and not self._wanted(source):
            return item
        if self.mode is None:
            self._set_mode("frames")
        encoder = self._encoder
        if encoder is None:
            encoder = self._encoder = FrameEncoder(
                self.name, self._add, self._clock, self.key_interval, self.max_fps
            )
        now = self._clock.monotonic_ns()
        if not encoder.wanted(now):
            return item
        capture = getattr(item, "capture_time", None)
        if capture is None:
            capture = self._clock.wall().timestamp()
        encoder.put(image, getattr(item, "pixel_format", "bgr24"), now, capture)
        return item

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
            self._ring.add(packet)
            event = self._event
            if event is None:
                return
            if event.failed is None and (event.started or packet.key):
                event.started = True
                event.pending.append(packet)
                event.pending_bytes += len(packet.data)
                if event.pending_bytes > self._max_pending:
                    event.failed = "behind"
                    event.pending.clear()
            if packet.t_ns >= event.end_ns:
                event.closing = True
                self._event = None
            elif event.pending_bytes < _BATCH_BYTES:
                return  # the writer takes packets in batches: one wake-up each, not one a packet
        self._wake.set()

    # -- triggers ----------------------------------------------------------------------

    def trigger(self, reason: str, **labels: Any) -> None:
        """Start a clip (or extend the one being recorded) now; from any thread.

        Args:
            reason: what happened, in a few words (``"person"``).
            labels: more about it, JSON values (str, int, float, bool, None),
                kept in the clip's sidecar.
        """
        reason = _check_reason(reason)
        for key, value in labels.items():
            if not isinstance(value, _LABEL_TYPES):
                raise TypeError(
                    f"label {key!r} must be a str, int, float, bool or None, "
                    f"got {type(value).__name__}"
                )
        now, wall = self._clock.monotonic_ns(), self._clock.wall().timestamp()
        with self._lock:
            if self._closing:
                raise RuntimeError(f"clips {self.name!r} is closed; no more clips")
            self._counts["triggers"] += 1
            event = self._event
            if event is None:
                event = self._event = _Event(end_ns=now + round(self.post * 1e9))
                event.pending = self._ring.since(now - round(self.pre * 1e9))
                event.pending_bytes = sum(len(packet.data) for packet in event.pending)
                event.started = bool(event.pending)
                self._events.append(event)
            else:
                event.end_ns = max(event.end_ns, now + round(self.post * 1e9))
            event.triggers.append(_Trigger(now, wall, reason, dict(labels)))
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
        writer: _EventWriter | None = None
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
            writer = writer or _EventWriter(self)
            if batch and event.failed is None:
                writer.write(batch, triggers, event)
            if closing or stopping:
                self._end_event(writer, event, "post" if closing else "closed")
                writer = None
                last_age_check = self._keep_budget(0)
            elif not batch:
                self._wait_or_end(event)
            else:
                self._wake.wait(_BATCH_S)

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
            event.closing = True

    def _end_event(self, writer: _EventWriter, event: _Event, how: str) -> None:
        with self._lock:
            tail, event.pending = event.pending, []
            triggers = list(event.triggers)
            if self._event is event:
                self._event = None
        if event.failed is None and tail:
            writer.write(tail, triggers, event)
        failed = event.failed
        writer.finish(triggers, how if failed is None else None)
        with self._lock:
            if failed is not None:
                self._dropped[failed] = self._dropped.get(failed, 0) + 1
            elif not writer.written and writer.failures == 0:
                self._dropped["stream"] = self._dropped.get("stream", 0) + 1
            self._events.popleft()

    def _keep_budget(self, last_check_ns: int) -> int:
        now = self._clock.monotonic_ns()
        if now - last_check_ns < _AGE_CHECK_S * 1e9 and last_check_ns:
            return last_check_ns
        with self._lock:
            deleted = self._index.enforce(self._clock.wall().timestamp())
        if deleted:
            self._write_index()
        return now

    def _write_index(self) -> None:
        try:
            with self._lock:
                entries = list(self._index.entries)
            index = ClipIndex(self.directory, None, None)
            index.entries = entries
            index.write()
        except OSError as error:
            self._note_error(f"index: {type(error).__name__}: {error}")

    def _note_error(self, text: str) -> None:
        self.last_error = text
        logger.warning("clips %s: %s", self.name, text)

    def _next_id(self, first: ClipPacket) -> str:
        stamp = datetime.datetime.fromtimestamp(first.capture_time, datetime.timezone.utc)
        while True:
            self._sequence += 1
            clip_id = f"{self.name}-{stamp:%Y%m%d-%H%M%S}-{self._sequence:04d}"
            taken = (f"{clip_id}.mp4", f"{clip_id}.mp4.part", f"{clip_id}.json")
            if not any((self.directory / name).exists() for name in taken):
                return clip_id

    def _written(self, entry: ClipEntry, size: int) -> None:
        with self._lock:
            self._counts["written"] += 1
            self._index.add(entry, size)
            self._index.enforce(self._clock.wall().timestamp())
        self._write_index()

    def _drop_clip(self, event: _Event, reason: str, text: str) -> None:
        with self._lock:
            event.failed = reason
            event.pending.clear()
        self._note_error(text)

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
                frames_dropped=0 if encoder is None else encoder.dropped + encoder.failures,
                last_error=self.last_error,
                recent=tuple(reversed(entries[-RECENT_CLIPS:])),
            )

    def close(self, timeout: float = 10.0) -> bool:
        """Finish the clip being recorded with what came, and stop; from any thread.

        Returns False when the recorder's threads did not end within
        ``timeout`` seconds (a disk that hangs). Calling it again does nothing.
        """
        with self._lock:
            if self._closed:
                return True
            self._closing = True
        encoder = self._encoder
        done = encoder is None or encoder.close(timeout)
        self._closed = True
        self._wake.set()
        writer = self._writer
        if writer is not None:
            writer.join(timeout)
            done = done and not writer.is_alive()
        return done

    def cleanup(self) -> None:
        """A stage's cleanup (``Pipeline.cleanup``): :meth:`close`."""
        self.close()

    def __repr__(self) -> str:
        return f"Clips({str(self.directory)!r}, pre={self.pre:g}, post={self.post:g})"


class _EventWriter:
    """One event's clips: whole key-frame intervals at a time, cut before ``max_length``."""

    def __init__(self, clips: Clips) -> None:
        self.clips = clips
        self.max_ns = round(clips.max_length * 1e9)
        self.gop: list[ClipPacket] = []
        self.file: ClipFile | None = None
        self.previous: str | None = None
        self.written = 0
        self.failures = 0

    def write(self, packets: list[ClipPacket], triggers: list[_Trigger], event: _Event) -> None:
        """Take packets; each key frame lets the interval before it go to a file."""
        try:
            for packet in packets:
                if packet.key and self.gop:
                    self._flush(triggers)
                if self.gop or packet.key:
                    self.gop.append(packet)
        except (OSError, _av.FFmpegError) as error:
            self._failed(event, error)

    def _flush(self, triggers: list[_Trigger]) -> None:
        gop, file = self.gop, self.file
        if file is not None and file.first is not None:
            changed = gop[0].params is not file.params
            if changed or gop[-1].t_ns - file.first.t_ns > self.max_ns:
                self._finish_file(triggers, "stream changed" if changed else "max_length")
                file = None
        if file is None:
            file = self.file = self._open(gop[0], triggers)
        file.write(gop)
        self.gop = []

    def _open(self, first: ClipPacket, triggers: list[_Trigger]) -> ClipFile:
        clips = self.clips
        lead = triggers[0]
        meta = {
            "recorder": clips.name,
            "mode": clips.mode,
            "reason": lead.reason,
            "labels": lead.labels,
            "continues": self.previous,
            "pre_s": clips.pre,
            "post_s": clips.post,
            "max_length_s": clips.max_length,
            "codec": first.params.codec,
            "width": first.params.width,
            "height": first.params.height,
            "start_time": first.capture_time,
        }
        if self.previous is None:
            meta["pre_roll_s"] = round((lead.t_ns - first.t_ns) / 1e9, 6)
        return ClipFile(clips.directory, clips._next_id(first), first.params, meta)

    def _finish_file(self, triggers: list[_Trigger], ended: str) -> None:
        file, self.file = self.file, None
        if file is None or file.first is None or file.last is None:
            return
        start, end = file.first.t_ns, file.last.t_ns
        inside = [
            trigger.to_dict(start)
            for trigger in triggers
            if trigger.t_ns <= end and (self.previous is None or trigger.t_ns >= start)
        ]
        entry, size = file.finish({"triggers": inside, "ended": ended})
        self.previous = entry.clip_id
        self.written += 1
        self.clips._written(entry, size)

    def finish(self, triggers: list[_Trigger], how: str | None) -> None:
        """The event ended (``how``) or failed (None): the last interval, and the file closed."""
        if how is None:
            self.gop = []
            if self.file is not None:
                self.file.abandon()
                self.file = None
            return
        try:
            if self.gop:
                self._flush(triggers)
            self._finish_file(triggers, how)
        except (OSError, _av.FFmpegError) as error:
            self._failed(None, error)

    def _failed(self, event: _Event | None, error: BaseException) -> None:
        self.failures += 1
        text = f"clip not written ({type(error).__name__}: {error})"
        if event is not None:
            self.clips._drop_clip(event, "disk", text)
        else:
            self.clips._note_error(text)
            with self.clips._lock:
                self.clips._dropped["disk"] = self.clips._dropped.get("disk", 0) + 1
        self.gop = []
        if self.file is not None:
            self.file.abandon()
            self.file = None


def _check_directory(value: object) -> Path:
    if not isinstance(value, (str, Path)) or not str(value).strip():
        raise TypeError(f"directory must be a path (str or Path), got {value!r}")
    path = Path(value).expanduser().absolute()
    if path.exists() and not path.is_dir():
        raise ValueError(f"directory: {str(path)!r} exists and is not a directory")
    path.mkdir(parents=True, exist_ok=True)
    return path


def _check_bytes(value: object, name: str, *, or_none: bool = False) -> int | None:
    if value is None and or_none:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        allowed = "an int (bytes)" + (" or None" if or_none else "")
        raise TypeError(f"{name} must be {allowed}, got {type(value).__name__}")
    if value <= 0:
        raise ValueError(f"{name} must be > 0 bytes, got {value}")
    return value


def _check_name(value: object, directory: Path) -> str:
    if value is None:
        value = directory.name or "clips"
    if not isinstance(value, str) or not value.strip():
        raise TypeError(f"name must be a non-empty str or None, got {value!r}")
    return _NAME.sub("-", value.strip())[:64]


def _check_reason(value: object) -> str:
    if not isinstance(value, str):
        raise TypeError(f"reason must be a str, got {type(value).__name__}")
    if not value.strip() or len(value) > 200:
        raise ValueError(f"reason must be a non-empty str of at most 200 characters, got {value!r}")
    return value
