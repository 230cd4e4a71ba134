"""Event clips as data: what a clip recorder wrote, dropped and keeps on disk.

A clip recorder (:class:`framescope.video.Clips`) keeps the last seconds of
a camera's packets or of a stage's frames and writes a clip around each
trigger. :class:`ClipsSnapshot` is one recorder at one instant: its
counters, what it holds in memory and on disk, and its newest clips
(:class:`ClipEntry`). ``PipelineSnapshot.clips`` holds those of the
recorders a pipeline knows: added as a stage or a tap, or attached to a source it runs.

This module is the one home of the drop reasons (:data:`CLIP_DROP_REASONS`)
and of what a recorder must offer to be read (:class:`ClipRecorder`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from framescope._snapshotformat import Fields

__all__ = [
    "CLIP_DROP_REASONS",
    "ClipEntry",
    "ClipRecorder",
    "ClipsSnapshot",
    "read_clips",
]

CLIP_DROP_REASONS = ("disk", "behind", "stream", "error")
"""Why a clip was not written: ``disk`` (writing failed: a read-only or full
disk, a directory gone), ``behind`` (the writer fell so far behind that the
clip's packets passed ``max_memory``), ``stream`` (its stream gave no key
frame to start from before the clip was due to end), ``error`` (anything
else: a stage's frames the encoder refused, a fault of the writer; the
recorder's ``last_error`` says which)."""

RECENT_CLIPS = 50
"""The newest clips a snapshot lists (the recorder's index holds every clip on disk)."""


@dataclass(frozen=True, slots=True)
class ClipEntry:
    """One clip written to disk.

    Attributes:
        clip_id: its name, unique in its directory (the file's name without ``.mp4``).
        file: the MP4 file's name in the recorder's directory.
        reason: the first trigger's reason.
        labels: the first trigger's labels.
        triggers: how many triggers it covers.
        start_time: the first frame's capture time (wall-clock seconds since the epoch).
        end_time: the last frame's capture time.
        duration_s: from the first frame to the end of the last, in seconds.
        frames: frames (video packets) in the file.
        bytes: the MP4 file's size.
        continues: the clip this one continues (``max_length`` split a
            longer event into clips without a gap); None: it starts an event.
    """

    clip_id: str
    file: str
    reason: str
    labels: Mapping[str, Any]
    triggers: int
    start_time: float
    end_time: float
    duration_s: float
    frames: int
    bytes: int
    continues: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The clip as a JSON-ready dict."""
        return {
            "clip_id": self.clip_id,
            "file": self.file,
            "reason": self.reason,
            "labels": dict(self.labels),
            "triggers": self.triggers,
            "start_time": self.start_time,
            "end_time": self.end_time,
            "duration_s": self.duration_s,
            "frames": self.frames,
            "bytes": self.bytes,
            "continues": self.continues,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], path: str = "") -> ClipEntry:
        """Read :meth:`to_dict` output back (a :class:`SnapshotFormatError` names the field)."""
        fields = Fields(data, path)
        labels = fields.get("labels", {})
        if not isinstance(labels, Mapping):
            raise fields.fail("labels", "an object", labels)
        return cls(
            clip_id=fields.text("clip_id"),
            file=fields.text("file"),
            reason=fields.text("reason"),
            labels=dict(labels),
            triggers=fields.integer("triggers", 0),
            start_time=fields.number("start_time"),
            end_time=fields.number("end_time"),
            duration_s=fields.number("duration_s"),
            frames=fields.integer("frames"),
            bytes=fields.integer("bytes"),
            continues=fields.text("continues", None, or_none=True),
        )


@dataclass(frozen=True, slots=True)
class ClipsSnapshot:
    """One clip recorder at one instant.

    Attributes:
        name: the recorder's name (its directory's name unless given).
        directory: where its clips are (an absolute path).
        mode: ``packets`` (a source's own encoded packets) or ``frames``
            (a stage's frames, encoded by the recorder); None until it got
            either.
        recording: a clip is being written now.
        triggers: triggers received.
        clips_written: clips written completely.
        clips_dropped: clips not written, by reason (see :data:`CLIP_DROP_REASONS`).
        clips_deleted: clips deleted to keep within ``max_bytes`` / ``max_age``.
        clips_on_disk: clips in its directory now.
        bytes_on_disk: their size (MP4 files and sidecars).
        ring_bytes: encoded bytes held in memory for the pre-roll.
        ring_seconds: the time those cover.
        ring_overflows: times ``max_memory`` made the ring let a key-frame
            interval go before ``pre`` seconds had passed: a clip starting
            then got a shorter pre-roll (its sidecar's ``pre_roll_s``).
        frames_dropped: a stage's frames the recorder did not keep: its
            encoder was behind or refused them, or they came faster than its
            ``max_fps``; never a frame of the pipeline.
        last_error: the last failure to write, in words (None: none).
        recent: the newest clips, newest first (at most :data:`RECENT_CLIPS`).
    """

    name: str
    directory: str
    mode: str | None
    recording: bool
    triggers: int
    clips_written: int
    clips_dropped: Mapping[str, int] = field(default_factory=dict)
    clips_deleted: int = 0
    clips_on_disk: int = 0
    bytes_on_disk: int = 0
    ring_bytes: int = 0
    ring_seconds: float = 0.0
    ring_overflows: int = 0
    frames_dropped: int = 0
    last_error: str | None = None
    recent: tuple[ClipEntry, ...] = ()

    @property
    def dropped(self) -> int:
        """Clips not written, whatever the reason."""
        return sum(self.clips_dropped.values())

    def to_dict(self) -> dict[str, Any]:
        """The recorder as a JSON-ready dict; :func:`read_clips` reads a list of them back."""
        return {
            "name": self.name,
            "directory": self.directory,
            "mode": self.mode,
            "recording": self.recording,
            "triggers": self.triggers,
            "clips_written": self.clips_written,
            "clips_dropped": dict(self.clips_dropped),
            "clips_deleted": self.clips_deleted,
            "clips_on_disk": self.clips_on_disk,
            "bytes_on_disk": self.bytes_on_disk,
            "ring_bytes": self.ring_bytes,
            "ring_seconds": self.ring_seconds,
            "ring_overflows": self.ring_overflows,
            "frames_dropped": self.frames_dropped,
            "last_error": self.last_error,
            "recent": [clip.to_dict() for clip in self.recent],
        }


@runtime_checkable
class ClipRecorder(Protocol):
    """What a pipeline reads a clip recorder through (a stage, a tap, or attached to a source)."""

    def clips_snapshot(self) -> ClipsSnapshot:
        """The recorder at this instant."""
        ...


def _read_recorder(fields: Fields) -> ClipsSnapshot:
    dropped = fields.child("clips_dropped", {})
    return ClipsSnapshot(
        name=fields.text("name"),
        directory=fields.text("directory"),
        mode=fields.text("mode", None, or_none=True),
        recording=fields.boolean("recording", False),
        triggers=fields.integer("triggers", 0),
        clips_written=fields.integer("clips_written", 0),
        clips_dropped={str(reason): dropped.integer(str(reason)) for reason in dropped.data},
        clips_deleted=fields.integer("clips_deleted", 0),
        clips_on_disk=fields.integer("clips_on_disk", 0),
        bytes_on_disk=fields.integer("bytes_on_disk", 0),
        ring_bytes=fields.integer("ring_bytes", 0),
        ring_seconds=fields.number("ring_seconds", 0.0),
        ring_overflows=fields.integer("ring_overflows", 0),
        frames_dropped=fields.integer("frames_dropped", 0),
        last_error=fields.text("last_error", None, or_none=True),
        recent=tuple(
            ClipEntry.from_dict(data, f"{fields.at('recent')}[{index}]")
            for index, data in enumerate(fields.items("recent", ()))
        ),
    )


def read_clips(fields: Fields, key: str = "clips") -> tuple[ClipsSnapshot, ...]:
    """The ``clips`` list of a snapshot's dict (errors name the field's path)."""
    return tuple(
        _read_recorder(Fields(data, f"{fields.at(key)}[{index}]"))
        for index, data in enumerate(fields.items(key, ()))
    )
