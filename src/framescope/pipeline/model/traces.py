"""Frame traces as data: :class:`FrameTrace` and its :class:`StageSpan` objects.

When a frame entered the pipeline, and for each stage when it waited, ran and
handed the frame on, plus custom blocks; read from and written to JSON
(checked field by field). ``framescope.trace`` renders them for Perfetto.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from framescope._snapshotformat import Fields, SnapshotFormatError, check_integer, shown

__all__ = ["FrameTrace", "StageSpan", "read_trace"]


@dataclass(frozen=True, slots=True)
class StageSpan:
    """One stage's handling of one frame (monotonic ns).

    ``t_ready`` is when the frame was put in the stage's queue (when it entered
    the pipeline, for the first stage); ``t_start``/``t_end`` bound the
    processing; ``t_sent`` is when the stage had passed the frame on.
    ``queued`` is how many frames were waiting in the queue when the stage
    went to take this one. ``custom`` holds ``(name, start, end)`` blocks.

    At a batched stage, ``t_start``/``t_end`` are the call of the batch the
    frame ran in (every frame of it has the same), ``batch_id`` numbers that
    batch at its stage, ``batch_size`` is how many items it held, and
    ``t_joined`` is when the frame joined the forming batch: its queue wait
    ends there and its batch wait runs from there to ``t_start``.
    """

    node_id: str
    t_ready: int
    t_start: int
    t_end: int
    t_sent: int
    queued: int
    custom: tuple[tuple[str, int, int], ...] = ()
    batch_id: int | None = None
    batch_size: int | None = None
    t_joined: int | None = None

    @property
    def wait_ns(self) -> int:
        """Time the frame waited in the stage's input queue (not in a forming batch)."""
        taken = self.t_start if self.t_joined is None else self.t_joined
        return max(0, taken - self.t_ready)

    @property
    def batch_wait_ns(self) -> int:
        """Time the frame waited in its forming batch (0 at a stage that is not batched)."""
        return 0 if self.t_joined is None else max(0, self.t_start - self.t_joined)

    @property
    def busy_ns(self) -> int:
        """Time the stage spent processing the frame."""
        return self.t_end - self.t_start

    def to_dict(self) -> dict[str, Any]:
        """The span as a JSON-ready dict."""
        return {
            "node_id": self.node_id,
            "t_ready": self.t_ready,
            "t_start": self.t_start,
            "t_end": self.t_end,
            "t_sent": self.t_sent,
            "queued": self.queued,
            "custom": [list(block) for block in self.custom],
            **(
                {}
                if self.batch_id is None
                else {
                    "batch_id": self.batch_id,
                    "batch_size": self.batch_size,
                    "t_joined": self.t_joined,
                }
            ),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> StageSpan:
        """Rebuild a span from :meth:`to_dict` output (checked; see SnapshotFormatError)."""
        return _read_span(Fields(data, ""))


def _read_span(fields: Fields) -> StageSpan:
    custom = []
    for index, block in enumerate(fields.items("custom", ())):
        at = f"{fields.at('custom')}[{index}]"
        if not isinstance(block, (list, tuple)) or len(block) != 3:
            raise SnapshotFormatError(f"{at}: expected [name, start, end], got {shown(block)}")
        if not isinstance(block[0], str):
            raise SnapshotFormatError(f"{at}[0]: expected a string, got {shown(block[0])}")
        custom.append(
            (block[0], check_integer(block[1], f"{at}[1]"), check_integer(block[2], f"{at}[2]"))
        )
    return StageSpan(
        fields.text("node_id"),
        fields.integer("t_ready"),
        fields.integer("t_start"),
        fields.integer("t_end"),
        fields.integer("t_sent"),
        fields.integer("queued"),
        tuple(custom),
        batch_id=fields.integer("batch_id", None, or_none=True),
        batch_size=fields.integer("batch_size", None, minimum=1, or_none=True),
        t_joined=fields.integer("t_joined", None, or_none=True),
    )


@dataclass(frozen=True, slots=True)
class FrameTrace:
    """Everything that happened to one frame, stage by stage, in pipeline order."""

    frame_id: int
    t_in: int
    spans: tuple[StageSpan, ...] = field(default_factory=tuple)

    @property
    def t_out(self) -> int:
        """When the last stage passed the frame on (``t_in`` when no stage ran yet)."""
        return self.spans[-1].t_sent if self.spans else self.t_in

    @property
    def latency_ns(self) -> int:
        """End-to-end latency so far: entering the pipeline to leaving the last stage."""
        return self.t_out - self.t_in

    def to_dict(self) -> dict[str, Any]:
        """The trace as a JSON-ready dict."""
        return {
            "frame_id": self.frame_id,
            "t_in": self.t_in,
            "spans": [span.to_dict() for span in self.spans],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FrameTrace:
        """Rebuild a trace from :meth:`to_dict` output (checked; see SnapshotFormatError)."""
        return read_trace(Fields(data, ""))


def read_trace(fields: Fields) -> FrameTrace:
    """A :class:`FrameTrace` from checked fields (errors name the field's path)."""
    spans = fields.items("spans", ())
    return FrameTrace(
        fields.integer("frame_id"),
        fields.integer("t_in"),
        tuple(
            _read_span(Fields(span, f"{fields.at('spans')}[{index}]"))
            for index, span in enumerate(spans)
        ),
    )
