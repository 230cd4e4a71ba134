"""A clip on disk: the MP4 being written, its JSON sidecar, and a directory's index and budget.

A clip is written as ``<id>.mp4.part``, a fragmented MP4 (a fragment per
key frame, its header first), so a process killed mid-clip leaves a file
players can open; when the clip ends it is copied (no re-encode) into
``<id>.mp4`` with its index at the front (faststart, for playing over HTTP)
and the part is removed. ``<id>.json`` is written when the clip starts
(``complete: false``) and again when it ends. ``index.json`` lists the
directory's clips, oldest first, rewritten (a temporary file renamed over
it) after every change; it is rebuilt from the sidecars when a recorder
starts.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

from framescope._files import replace_file
from framescope._optional import require
from framescope.pipeline.model.clips import ClipEntry

__all__ = ["ClipFile", "ClipIndex", "ClipPacket", "StreamParams"]

logger = logging.getLogger(__name__)

_av = require("av", "video", "event clips")

INDEX_NAME = "index.json"
_FRAGMENTED = {"movflags": "frag_keyframe+empty_moov+default_base_moof", "flush_packets": "1"}
_FASTSTART = {"movflags": "+faststart"}


@dataclass(frozen=True, slots=True, eq=False)
class StreamParams:
    """What an MP4 needs to know of a video stream to hold its packets unchanged.

    Compared by identity: a stream opened again (a reconnect) is another
    stream, with timestamps of its own, even where its parameters are the same.
    """

    codec: str
    width: int
    height: int
    time_base: Fraction
    fps: float | None = None
    template: Any = None
    """A copy of a demuxer's stream (its codec parameters as they were), held by a
    container in memory that is never written: the input may be closed long before
    a clip is written, and its own stream must not be touched then."""

    @classmethod
    def of(cls, stream: Any) -> StreamParams:
        """The parameters of a PyAV video stream (a demuxer's), copied now."""
        context = stream.codec_context
        rate = stream.average_rate or stream.guessed_rate
        holder = _av.open(io.BytesIO(), "w", format="mp4")
        return cls(
            codec=context.name,
            width=int(context.width or 0),
            height=int(context.height or 0),
            time_base=Fraction(stream.time_base) if stream.time_base else Fraction(1, 90_000),
            fps=float(rate) if rate else None,
            template=holder.add_stream_from_template(stream),
        )


@dataclass(slots=True)
class ClipPacket:
    """One encoded video packet held for a clip, with when it came.

    ``t_ns`` is the recorder's clock when it came (the time pre- and
    post-roll are counted in); ``capture_time`` its frame's capture time
    (wall seconds), or when it was received where that is unknown.
    """

    t_ns: int
    data: bytes
    pts: int | None
    dts: int | None
    key: bool
    capture_time: float
    params: StreamParams


class ClipFile:
    """One clip being written: the fragmented part file, then the faststart MP4.

    Raises ``OSError`` (or PyAV's error, an ``OSError`` too) when the disk
    refuses; the caller drops the clip and calls :meth:`abandon`.
    """

    def __init__(
        self, directory: Path, clip_id: str, params: StreamParams, meta: Mapping[str, Any]
    ) -> None:
        self.directory, self.clip_id, self.params = directory, clip_id, params
        self.part = directory / f"{clip_id}.mp4.part"
        self.final = directory / f"{clip_id}.mp4"
        self.sidecar = directory / f"{clip_id}.json"
        self.meta = dict(meta)
        self.frames = 0
        self.key_frames = 0
        self.first: ClipPacket | None = None
        self.last: ClipPacket | None = None
        self._origin: int | None = None
        self._last_dts: int | None = None
        self._shown = (2**63, -(2**63))  # the first and last presentation time written
        self.latest = float("-inf")  # the latest capture time (B-frames come out of order)
        self._container: Any = None
        write_json(self.sidecar, {**self.meta, "clip_id": clip_id, "complete": False})
        self._container = _av.open(str(self.part), "w", format="mp4", options=_FRAGMENTED)
        self._stream = _output_stream(self._container, params)

    def write(self, packets: Iterable[ClipPacket]) -> None:
        """Append packets (the first a key frame), timed from the clip's start."""
        for packet in packets:
            if self.first is None:
                self.first = packet
            out = _av.Packet(packet.data)
            out.pts, out.dts = self._timestamps(packet)
            self._shown = (min(self._shown[0], out.pts), max(self._shown[1], out.pts))
            self.latest = max(self.latest, packet.capture_time)
            out.time_base = self.params.time_base
            out.stream = self._stream
            out.is_keyframe = packet.key
            self._container.mux(out)
            self.frames += 1
            self.key_frames += packet.key
            self.last = packet

    def _timestamps(self, packet: ClipPacket) -> tuple[int, int]:
        """pts and dts from the clip's first packet (from ``t_ns`` where the stream had none).

        Where the stream's time goes back (a file that loops, a camera that
        restarts its clock), the clip's goes on from where it was by the time
        that passed between the two packets.
        """
        pts = packet.pts
        if pts is None:
            assert self.first is not None
            pts = dts = self._ticks(packet.t_ns - self.first.t_ns)
            origin = 0
        else:
            dts = packet.dts if packet.dts is not None else pts
            if self._origin is None:
                self._origin = dts
            elif self._last_dts is not None and dts - self._origin < self._last_dts:
                assert self.last is not None
                step = max(1, self._ticks(packet.t_ns - self.last.t_ns))
                self._origin = dts - self._last_dts - step
            origin = self._origin
        dts -= origin
        if self._last_dts is not None and dts <= self._last_dts:
            dts = self._last_dts + 1  # a stream's repeated or reordered stamp
        self._last_dts = dts
        return max(pts - origin, dts), dts

    def _ticks(self, nanoseconds: int) -> int:
        return round(nanoseconds / 1e9 / self.params.time_base)

    def finish(self, extra: Mapping[str, Any]) -> tuple[ClipEntry, int]:
        """Close the part, copy it into the faststart MP4, write the sidecar: entry, bytes."""
        self._close()
        temporary = self.directory / f"{self.clip_id}.mp4.tmp"
        _remux_faststart(self.part, temporary)
        os.replace(temporary, self.final)
        self.part.unlink(missing_ok=True)
        entry = self._entry(extra)
        record = {**self.meta, **entry.to_dict(), **extra, "complete": True}
        record["key_frames"] = self.key_frames
        write_json(self.sidecar, record)
        return entry, self.final.stat().st_size + self.sidecar.stat().st_size

    def _entry(self, extra: Mapping[str, Any]) -> ClipEntry:
        first, last = self.first, self.last
        assert first is not None
        assert last is not None
        # How long it plays: its first to its last frame shown, and one frame more.
        span = (self._shown[1] - self._shown[0]) * float(self.params.time_base)
        step = span / (self.frames - 1) if self.frames > 1 else 0.0
        return ClipEntry(
            clip_id=self.clip_id,
            file=self.final.name,
            reason=str(self.meta.get("reason", "")),
            labels=dict(self.meta.get("labels", {})),
            triggers=len(extra.get("trigger_list", ())),
            start_time=first.capture_time,
            end_time=self.latest,
            duration_s=span + step,
            frames=self.frames,
            bytes=self.final.stat().st_size,
            continues=self.meta.get("continues"),
        )

    def _close(self) -> None:
        container, self._container = self._container, None
        if container is not None:
            container.close()

    def abandon(self) -> None:
        """Give the clip up: close what is open and remove its files (as far as the disk lets)."""
        try:
            self._close()
        except Exception:  # the disk that failed the clip may fail its close too
            logger.debug("closing clip %s failed", self.clip_id, exc_info=True)
        temporary = self.directory / f"{self.clip_id}.mp4.tmp"
        for path in (self.part, self.final, self.sidecar, temporary):
            with contextlib.suppress(OSError):
                path.unlink(missing_ok=True)


def _output_stream(container: Any, params: StreamParams) -> Any:
    """The clip's video stream: a copy of the source's, or one for the recorder's encoder.

    The encoder's packets carry their parameter sets in the stream (no
    global header), which the MP4 muxer takes from the first key frame.
    """
    if params.template is not None:
        stream = container.add_stream_from_template(params.template)
        if params.codec == "hevc":  # the tag Apple's players want (FFmpeg's default: hev1)
            stream.codec_context.codec_tag = "hvc1"
    else:
        stream = container.add_stream(params.codec, rate=round(params.fps or 30))
        stream.width, stream.height = params.width, params.height
    stream.time_base = params.time_base
    return stream


def _remux_faststart(source: Path, target: Path) -> None:
    """Copy ``source``'s video packets into ``target``, an MP4 with its index first."""
    with _av.open(str(source)) as reading:
        video = reading.streams.video[0]
        with _av.open(str(target), "w", format="mp4", options=_FASTSTART) as writing:
            stream = writing.add_stream_from_template(video)
            for packet in reading.demux(video):
                if packet.dts is None:  # the demuxer's flush packet
                    continue
                packet.stream = stream
                writing.mux(packet)


def recover_part(part: Path) -> bool:
    """Finish a clip a killed process left half written; False when nothing could be read."""
    clip_id = part.name[: -len(".mp4.part")]
    final, sidecar = part.with_name(f"{clip_id}.mp4"), part.with_name(f"{clip_id}.json")
    temporary = part.with_name(f"{clip_id}.mp4.tmp")
    try:
        meta = json.loads(sidecar.read_text(encoding="utf-8")) if sidecar.exists() else {}
        _remux_faststart(part, temporary)
        frames, first, last, step = _packet_times(temporary)
        if not frames:
            raise ValueError("no video packets")
        os.replace(temporary, final)
        part.unlink()
    except (OSError, ValueError, _av.FFmpegError) as error:
        logger.warning("clip %s left by an interrupted recording is unreadable: %s", part, error)
        with contextlib.suppress(OSError):
            temporary.unlink(missing_ok=True)
        return False
    start = float(meta.get("start_time", final.stat().st_mtime - (last - first + step)))
    entry = ClipEntry(
        clip_id=clip_id,
        file=final.name,
        reason=str(meta.get("reason", "unknown")),
        labels=dict(meta.get("labels", {})),
        triggers=len(meta.get("trigger_list", ())),
        start_time=start,
        end_time=start + last - first,
        duration_s=last - first + step,
        frames=frames,
        bytes=final.stat().st_size,
        continues=meta.get("continues"),
    )
    record = {**meta, **entry.to_dict(), "ended": "interrupted", "complete": True}
    write_json(sidecar, record)
    logger.warning("clip %s left by an interrupted recording was finished", final)
    return True


def _packet_times(path: Path) -> tuple[int, float, float, float]:
    """An MP4's video packets: how many, the first and last pts (s), one frame's duration."""
    with _av.open(str(path)) as reading:
        video = reading.streams.video[0]
        times = sorted(
            float(p.pts * video.time_base) for p in reading.demux(video) if p.pts is not None
        )
    if not times:
        return 0, 0.0, 0.0, 0.0
    step = (times[-1] - times[0]) / (len(times) - 1) if len(times) > 1 else 0.0
    return len(times), times[0], times[-1], step


def write_json(path: Path, data: Mapping[str, Any]) -> None:
    """Write ``data`` as JSON, whole or not at all (no NaN: a browser could not read it)."""
    replace_file(path, json.dumps(data, indent=1, sort_keys=True, allow_nan=False).encode())


class ClipIndex:
    """A directory's clips, oldest first, kept within a byte and an age budget.

    Args:
        directory: where the clips are.
        max_bytes: the most bytes its clips (MP4 and sidecar) may take (None: no limit).
        max_age: the oldest a clip may get, in seconds from its end (None: no limit).
    """

    def __init__(self, directory: Path, max_bytes: int | None, max_age: float | None) -> None:
        self.directory = directory
        self.max_bytes, self.max_age = max_bytes, max_age
        self.entries: list[ClipEntry] = []
        self.sizes: dict[str, int] = {}
        self.deleted = 0

    @property
    def bytes_on_disk(self) -> int:
        """What the indexed clips take, MP4s and sidecars."""
        return sum(self.sizes.values())

    def scan(self) -> None:
        """Read the sidecars of the clips already in the directory (a recorder's start).

        A clip a killed process left as a ``.part`` is finished first: copied
        into its MP4 and its sidecar completed (``ended: interrupted``).
        """
        for part in sorted(self.directory.glob("*.mp4.part")):
            recover_part(part)
        found = []
        for sidecar in self.directory.glob("*.json"):
            if sidecar.name == INDEX_NAME:
                continue
            try:
                data = json.loads(sidecar.read_text(encoding="utf-8"))
                if not data.get("complete"):
                    continue
                entry = ClipEntry.from_dict(data, sidecar.name)
                size = (self.directory / entry.file).stat().st_size + sidecar.stat().st_size
            except (OSError, ValueError) as error:
                logger.warning("clip sidecar %s skipped: %s", sidecar, error)
                continue
            found.append((entry, size))
        found.sort(key=lambda pair: pair[0].start_time)
        self.entries = [entry for entry, _ in found]
        self.sizes = {entry.clip_id: size for entry, size in found}

    def add(self, entry: ClipEntry, size: int) -> None:
        """A clip just written."""
        self.entries.append(entry)
        self.sizes[entry.clip_id] = size

    def over_budget(self, now_wall: float) -> list[ClipEntry]:
        """Take the oldest clips beyond the budget out of the index (counted); delete them next."""
        taken = []
        while self.entries and self._over(self.entries[0], now_wall):
            entry = self.entries.pop(0)
            self.sizes.pop(entry.clip_id, None)
            taken.append(entry)
        self.deleted += len(taken)
        return taken

    def delete(self, entries: Iterable[ClipEntry]) -> None:
        """Delete clips' files (what :meth:`over_budget` took out), outside any lock."""
        for entry in entries:
            for path in (self.directory / entry.file, self.directory / f"{entry.clip_id}.json"):
                try:
                    path.unlink(missing_ok=True)
                except OSError as error:
                    logger.warning("could not delete old clip file %s: %s", path, error)

    def newest_over(self) -> int | None:
        """The newest clip's bytes when it alone is over ``max_bytes`` (it is kept), else None."""
        if self.max_bytes is None or len(self.entries) != 1:
            return None
        size = self.bytes_on_disk
        return size if size > self.max_bytes else None

    def _over(self, oldest: ClipEntry, now_wall: float) -> bool:
        """Past the age, or past the bytes (the newest clip is kept whatever its size)."""
        too_big = self.max_bytes is not None and self.bytes_on_disk > self.max_bytes
        if too_big and len(self.entries) > 1:
            return True
        return self.max_age is not None and now_wall - oldest.end_time > self.max_age
