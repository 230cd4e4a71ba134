"""One event's clips written: whole key-frame intervals at a time, cut before ``max_length``.

An event (a first trigger, and every trigger that extended it) becomes one
clip, or several when it runs past ``max_length``: the writer holds the
packets of the current key-frame interval and, when the next key frame
comes, writes them to the clip if the clip stays within ``max_length``,
else finishes that clip and starts the next one with them. So every clip
starts with a key frame, no packet is left out at a cut and none is written
twice. A stream opened again (a reconnect) starts a new clip too: its
timestamps are its own.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from framescope._optional import require
from framescope.pipeline.model.clips import ClipEntry
from framescope.video.clipfile import ClipFile, ClipPacket

__all__ = ["ClipSink", "EventWriter", "Trigger"]

_av = require("av", "video", "event clips")

_TAIL = 16  # the packets at a clip's cut end looked at for frames never completed


@dataclass(slots=True)
class Trigger:
    """One call of ``Clips.trigger``: when (recorder clock, wall seconds), why."""

    t_ns: int
    wall: float
    reason: str
    labels: dict[str, Any]

    def to_dict(self, start_ns: int) -> dict[str, Any]:
        """As a sidecar lists it: ``at_s`` from the clip's first frame."""
        return {
            "reason": self.reason,
            "labels": self.labels,
            "time": self.wall,
            "at_s": round((self.t_ns - start_ns) / 1e9, 6),
        }


class ClipSink(Protocol):
    """What an :class:`EventWriter` needs of its recorder."""

    directory: Path
    name: str
    mode: str | None
    pre: float
    post: float
    max_length: float

    def next_id(self, first: ClipPacket) -> str:
        """A new clip's id, unique in the directory."""
        ...

    def clip_written(self, entry: ClipEntry, size: int) -> None:
        """A clip was written (``size``: its MP4 and sidecar bytes)."""
        ...

    def release(self, size: int) -> None:
        """``size`` bytes of packets held for writing are no longer held."""
        ...


class EventWriter:
    """Writes one event's packets into one clip or more. Raises what the disk raises."""

    def __init__(self, sink: ClipSink) -> None:
        self.sink = sink
        self.max_ns = round(sink.max_length * 1e9)
        self.gop: list[ClipPacket] = []
        self.gop_bytes = 0
        self.file: ClipFile | None = None
        self.previous: str | None = None
        self.written = 0

    def write(self, packets: list[ClipPacket], triggers: list[Trigger]) -> None:
        """Take packets (an event's first is a key frame); a key frame sends the interval on."""
        for packet in packets:
            if packet.key and self.gop:
                self._flush(triggers)
            self.gop.append(packet)
            self.gop_bytes += len(packet.data)

    def _flush(self, triggers: list[Trigger]) -> None:
        gop, file = self.gop, self.file
        if file is not None and file.first is not None:
            changed = gop[0].params is not file.params
            if changed or gop[-1].t_ns - file.first.t_ns > self.max_ns:
                self._finish_file(triggers, "stream changed" if changed else "max_length", gop[0])
                file = None
        if file is None:
            file = self.file = self._open(gop[0], triggers)
        file.write(gop)
        self.sink.release(self.gop_bytes)
        self.gop, self.gop_bytes = [], 0

    def _open(self, first: ClipPacket, triggers: list[Trigger]) -> ClipFile:
        sink = self.sink
        lead = triggers[0]
        meta: dict[str, Any] = {
            "recorder": sink.name,
            "mode": sink.mode,
            "reason": lead.reason,
            "labels": lead.labels,
            "continues": self.previous,
            "pre_s": sink.pre,
            "post_s": sink.post,
            "max_length_s": sink.max_length,
            "codec": first.params.codec,
            "width": first.params.width,
            "height": first.params.height,
            "start_time": first.capture_time,
        }
        # The pre-roll it got (0 for a trigger before any frame; None: it continues a clip).
        meta["pre_roll_s"] = (
            round(max(0, lead.t_ns - first.t_ns) / 1e9, 6) if self.previous is None else None
        )
        # What is known now, for a clip a killed process leaves behind (finish replaces it).
        meta["trigger_list"] = [t.to_dict(first.t_ns) for t in triggers if t.t_ns >= first.t_ns]
        return ClipFile(sink.directory, sink.next_id(first), first.params, meta)

    def _finish_file(self, triggers: list[Trigger], ended: str, after: ClipPacket | None) -> None:
        """Finish the clip being written; its triggers are those before ``after`` (the next's)."""
        file, self.file = self.file, None
        if file is None or file.first is None:
            return
        start = file.first.t_ns
        inside = [
            trigger.to_dict(start)
            for trigger in triggers
            if (self.previous is None or trigger.t_ns >= start)
            and (after is None or trigger.t_ns < after.t_ns)
        ]
        try:
            entry, size = file.finish({"trigger_list": inside, "ended": ended})
        except BaseException:
            file.abandon()
            raise
        self.previous = entry.clip_id
        self.written += 1
        self.sink.clip_written(entry, size)

    def finish(self, triggers: list[Trigger], ended: str) -> None:
        """The event ended (``post``, ``quiet``, ``closed``): the last interval, the file closed.

        Cut off mid-stream (not at ``post``, whose end waited for them), a
        B-frame stream's last packets may be a frame whose B-frames never came:
        those are left out, so the clip ends on a frame with none missing.
        """
        if self.gop and ended != "post":
            kept = _complete_tail(self.gop)
            self.sink.release(sum(len(p.data) for p in self.gop[len(kept) :]))
            self.gop_bytes -= sum(len(p.data) for p in self.gop[len(kept) :])
            self.gop = kept
        if self.gop:
            self._flush(triggers)
        self._finish_file(triggers, ended, None)

    def abandon(self) -> None:
        """The event failed: the clip being written is removed, what is held let go."""
        self.sink.release(self.gop_bytes)
        self.gop, self.gop_bytes = [], 0
        if self.file is not None:
            self.file.abandon()
            self.file = None


def _complete_tail(packets: list[ClipPacket]) -> list[ClipPacket]:
    """``packets`` without a tail that would show a gap: frames whose B-frames never came.

    The first gap in presentation order (more than 1.5 frames) among the
    frames of the last :data:`_TAIL` packets is where the clip must end: every packet from the
    first one shown after the gap on (in decoding order) is left out, since
    what follows it may need it.
    """
    tail = packets[-_TAIL:]
    times = sorted({p.pts for p in packets if p.pts is not None})
    steps = sorted(b - a for a, b in itertools.pairwise(times) if b > a)
    if not steps:
        return packets
    step = steps[len(steps) // 2]
    tail_times = [p.pts for p in tail if p.pts is not None]
    if not tail_times:
        return packets
    first = min(tail_times)
    limit = next(
        (a for a, b in itertools.pairwise(times) if a >= first and b - a > 1.5 * step), None
    )
    if limit is None:
        return packets
    start = len(packets) - len(tail)
    cut = next((start + i for i, p in enumerate(tail) if p.pts is not None and p.pts > limit), None)
    if cut is None or cut == 0:
        return packets
    return packets[:cut]
