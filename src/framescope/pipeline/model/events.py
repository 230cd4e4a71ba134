"""Pipeline events as data: DepthAI's event kinds and node phases, one recorded iteration's
fields, and :class:`PipelineEvent`.

Each node's ``EventRecorder`` (``debug/recorder.py``) records raw tuples in
this format; the aggregator turns them into :class:`PipelineEvent` objects
and node states.
"""

from __future__ import annotations

import enum
import logging
import struct
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any, NamedTuple

__all__ = [
    "BATCH_FIELDS",
    "BLOCK_NAMES",
    "ITERATION_FIELDS",
    "NO_QUEUE",
    "OTHER_BLOCK",
    "EventInterval",
    "EventStatus",
    "EventType",
    "IterationRecord",
    "NodePhase",
    "PipelineEvent",
    "iteration_records",
    "pack_batch_mark",
]

logger = logging.getLogger(__name__)

#: How many distinct CUSTOM block names a node keeps apart by default.
BLOCK_NAMES = 64
#: The name every CUSTOM block past the bound is folded into.
OTHER_BLOCK = "other"


class EventType(enum.IntEnum):
    """What an event is about (DepthAI's names)."""

    CUSTOM = 0
    LOOP = 1
    INPUT = 2
    OUTPUT = 3
    INPUT_BLOCK = 4
    OUTPUT_BLOCK = 5


class EventInterval(enum.IntEnum):
    """Whether an event starts or ends a timed interval, or stands alone."""

    NONE = 0
    START = 1
    END = 2


class EventStatus(enum.IntEnum):
    """How the operation went."""

    SUCCESS = 0
    BLOCKED = 1
    CANCELLED = 2


class NodePhase(enum.IntEnum):
    """What a node is doing right now (DepthAI's ``NodeState.State``)."""

    IDLE = 0
    GETTING_INPUTS = 1
    PROCESSING = 2
    SENDING_OUTPUTS = 3


# Raw CUSTOM record layout, shared with the aggregator:
# (type, interval, status, queue_size, source, timestamp_ns, sequence_num, frame_id)
RawEvent = tuple[int, int, int, "int | None", str, int, int, "int | None"]


class IterationRecord(NamedTuple):
    """One iteration of a runtime worker: when it took, ran and passed on one item.

    It stands for the LOOP, INPUT_BLOCK/INPUT start+end and OUTPUT_BLOCK/OUTPUT
    start+end events of that iteration; the aggregator expands it on demand.
    Workers record its fields as flat values (see :func:`iteration_records`).

    Attributes:
        sequence: the worker's iteration number.
        frame_id: the item's frame id.
        t_get: when the worker went to take an item (the previous iteration's end).
        queued: items in its input queue at that moment.
        t_got: when it had the item (processing starts).
        t_send: when processing ended and handing the item on started.
        out_queued: items in the next queue at that moment (None: no next queue).
        t_sent: when the item had been handed on.
        sent: whether it was handed on (False: dropped by policy or the queue closed).
        t_in: when the item entered the pipeline.
    """

    sequence: int
    frame_id: int
    t_get: int
    queued: int
    t_got: int
    t_send: int
    out_queued: int | None
    t_sent: int
    sent: bool
    t_in: int


ITERATION_FIELDS = len(IterationRecord._fields)
"""How many flat values one recorded iteration takes."""

NO_QUEUE = -1
"""``out_queued`` as recorded for a node that sends to no queue (None in a record)."""

pack_iteration: Callable[..., bytes] = struct.Struct(f"={ITERATION_FIELDS}q").pack
"""Pack one iteration's fields (all ints; ``NO_QUEUE`` for None) as recorded."""

BATCH_FIELDS = 6
"""Flat values of one batch mark: frame id, batch id, batch size, joined, call start, call end."""

pack_batch_mark: Callable[..., bytes] = struct.Struct(f"={BATCH_FIELDS}q").pack
"""Pack one item's batch mark (a batched stage's, for its frame trace) as recorded."""


class Field:
    """Offsets of the fields in a flat run of iteration values: ``flat[Field.T_GOT::WIDTH]``."""

    SEQUENCE, FRAME_ID, T_GET, QUEUED, T_GOT, T_SEND, OUT_QUEUED, T_SENT, SENT, T_IN = range(
        ITERATION_FIELDS
    )
    WIDTH = ITERATION_FIELDS


def iteration_records(flat: Sequence[int]) -> list[IterationRecord]:
    """Regroup a flat run of iteration values (as recorded) into one record per iteration."""
    columns: list[Sequence[Any]] = [
        flat[field::ITERATION_FIELDS] for field in range(ITERATION_FIELDS)
    ]
    columns[Field.OUT_QUEUED] = [None if q == NO_QUEUE else q for q in columns[Field.OUT_QUEUED]]
    columns[Field.SENT] = [bool(sent) for sent in columns[Field.SENT]]
    make = IterationRecord._make
    return [make(values) for values in zip(*columns, strict=True)]


@dataclass(frozen=True, slots=True)
class PipelineEvent:
    """One event reported by a node.

    Attributes:
        node_id: the node's id (its profile key, e.g. ``MainPipeline__Stage1``).
        type: an :class:`EventType`.
        interval: an :class:`EventInterval`; a START and an END of the same
            ``type``/``source`` pair up by ``sequence_num``.
        status: an :class:`EventStatus`.
        queue_size: items in the queue concerned, for INPUT/OUTPUT events.
        source: the port or custom block name (``in``, ``out``, ``nms`` ...).
        timestamp_ns: monotonic time of the event.
        sequence_num: pairs START with END; counts per type and source.
        frame_id: the frame being processed, when there is one.
    """

    node_id: str
    type: EventType
    interval: EventInterval
    status: EventStatus
    queue_size: int | None
    source: str
    timestamp_ns: int
    sequence_num: int
    frame_id: int | None = None

    @classmethod
    def from_raw(cls, node_id: str, raw: RawEvent) -> PipelineEvent:
        """Build an event from a recorder's raw tuple."""
        kind, interval, status, queue_size, source, timestamp, sequence, frame = raw
        return cls(
            node_id,
            EventType(kind),
            EventInterval(interval),
            EventStatus(status),
            queue_size,
            source,
            timestamp,
            sequence,
            frame,
        )

    def to_dict(self) -> dict[str, Any]:
        """The event as a JSON-ready dict (enums by name)."""
        data = asdict(self)
        data["type"] = self.type.name
        data["interval"] = self.interval.name
        data["status"] = self.status.name
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PipelineEvent:
        """Rebuild an event from :meth:`to_dict` output."""
        return cls(
            node_id=str(data["node_id"]),
            type=EventType[data["type"]],
            interval=EventInterval[data["interval"]],
            status=EventStatus[data["status"]],
            queue_size=data.get("queue_size"),
            source=str(data["source"]),
            timestamp_ns=int(data["timestamp_ns"]),
            sequence_num=int(data["sequence_num"]),
            frame_id=data.get("frame_id"),
        )
