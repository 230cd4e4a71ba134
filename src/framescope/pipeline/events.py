"""Pipeline events: what every node reports about its own work, cheaply.

Each node (stage) owns one :class:`EventRecorder`. Recording an event reads the
monotonic clock and appends one tuple to a list that only the node's thread
writes: no lock, no formatting, no object beyond the tuple. The aggregator
drains the lists in batches and turns the raw tuples into
:class:`PipelineEvent` objects and node states.
"""

from __future__ import annotations

import enum
import functools
import logging
import struct
from array import array
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import Any, NamedTuple, TypeVar

from framescope._buffers import take_prefix
from framescope.clock import Clock
from framescope.running import bind_recorder, current_recorder

__all__ = [
    "BLOCK_NAMES",
    "ITERATION_FIELDS",
    "NO_QUEUE",
    "OTHER_BLOCK",
    "EventInterval",
    "EventRecorder",
    "EventStatus",
    "EventType",
    "IterationRecord",
    "NodePhase",
    "PipelineEvent",
    "bind_recorder",
    "current_recorder",
    "iteration_records",
]

_F = TypeVar("_F", bound=Callable[..., Any])

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


class EventRecorder:
    """The per-node event dispatcher: stage code and the runtime record events here.

    A stage author adds CUSTOM events around a block of work::

        class Detector(Stage):
            def __call__(self, frame):
                with self.events.block("nms"):
                    boxes = nms(raw)

    or with :meth:`measure` as a decorator, or with explicit :meth:`start` /
    :meth:`end`. When debugging is off the recorder is disabled and every
    call returns at once.

    A node keeps at most ``block_names`` distinct block names apart (a name
    per item, such as ``f"track-{id}"``, would otherwise grow memory without
    bound): later new names are timed together as :data:`OTHER_BLOCK`,
    counted in ``folded_blocks``, with one warning.

    Only the node's own thread should record; the aggregator drains from
    another thread without a lock (see :meth:`drain`).
    """

    __slots__ = (
        "_append",
        "_block_names",
        "_buffer",
        "_iterations",
        "_max_block_names",
        "_now",
        "_open",
        "_sequences",
        "enabled",
        "extend_iterations",
        "folded_blocks",
        "frame_id",
        "node_id",
        "phase",
    )

    def __init__(
        self,
        node_id: str,
        clock: Clock,
        *,
        enabled: bool = True,
        block_names: int = BLOCK_NAMES,
    ) -> None:
        self.node_id = node_id
        self.enabled = enabled
        self._max_block_names = block_names
        self._block_names: set[str] = set()
        self.folded_blocks = 0  # CUSTOM events past the name bound, recorded as OTHER_BLOCK
        self.frame_id: int | None = None
        self._now = clock.monotonic_ns
        self._buffer: list[RawEvent] = []
        self._append = self._buffer.append
        self._sequences: dict[tuple[int, str], int] = {}
        self._open: dict[tuple[int, str], list[int]] = {}
        # Flat int64 values, ITERATION_FIELDS per iteration, appended as one
        # packed run (pack_iteration): no Python object is kept per value, so
        # the aggregator frees nothing per record and can fold with NumPy.
        self._iterations: array[int] = array("q")
        self.extend_iterations = self._iterations.frombytes
        self.phase = NodePhase.IDLE

    def record(
        self,
        kind: EventType,
        interval: EventInterval,
        source: str,
        *,
        status: EventStatus = EventStatus.SUCCESS,
        queue_size: int | None = None,
    ) -> None:
        """Record one event now (the runtime's and custom events go through here)."""
        if not self.enabled:
            return
        if kind is EventType.CUSTOM and source not in self._block_names:
            source = self._block_name(source, counted=interval is not EventInterval.END)
        key = (kind, source)
        if interval is EventInterval.END:
            opened = self._open.get(key)
            sequence = opened.pop() if opened else self._next_sequence(key)
            if opened is not None and not opened:
                del self._open[key]
        else:
            sequence = self._next_sequence(key)
            if interval is EventInterval.START:
                self._open.setdefault(key, []).append(sequence)
        self._append(
            (kind, interval, status, queue_size, source, self._now(), sequence, self.frame_id)
        )

    def _block_name(self, name: str, *, counted: bool) -> str:
        """``name`` while there is room for a new block name, else :data:`OTHER_BLOCK`.

        ``counted``: this event begins a block (so a folded block counts once).
        """
        if len(self._block_names) < self._max_block_names or name == OTHER_BLOCK:
            self._block_names.add(name)
            return name
        if not self.folded_blocks and counted:
            logger.warning(
                "node %r: more than %d distinct block names; new ones (first %r) are "
                "timed together as %r (a name per item grows memory without bound)",
                self.node_id,
                self._max_block_names,
                name,
                OTHER_BLOCK,
            )
        self.folded_blocks += counted
        return OTHER_BLOCK

    def _next_sequence(self, key: tuple[int, str]) -> int:
        sequence = self._sequences.get(key, 0)
        self._sequences[key] = sequence + 1
        return sequence

    def start(self, name: str) -> None:
        """Start a CUSTOM timed block called ``name``."""
        self.record(EventType.CUSTOM, EventInterval.START, name)

    def end(self, name: str, *, status: EventStatus = EventStatus.SUCCESS) -> None:
        """End the innermost open CUSTOM block called ``name``."""
        self.record(EventType.CUSTOM, EventInterval.END, name, status=status)

    @contextmanager
    def block(self, name: str) -> Iterator[None]:
        """Time the ``with`` block as CUSTOM ``name`` (CANCELLED status if it raises)."""
        self.start(name)
        try:
            yield
        except BaseException:
            self.end(name, status=EventStatus.CANCELLED)
            raise
        self.end(name)

    def measure(self, name: str) -> Callable[[_F], _F]:
        """Decorator form of :meth:`block`."""

        def decorate(func: _F) -> _F:
            @functools.wraps(func)
            def timed(*args: Any, **kwargs: Any) -> Any:
                with self.block(name):
                    return func(*args, **kwargs)

            return timed  # type: ignore[return-value]

        return decorate

    def backlog(self) -> int:
        """How many iterations and events wait for the aggregator."""
        return len(self._iterations) // ITERATION_FIELDS + len(self._buffer)

    def drain_iterations(self) -> array[int]:
        """Take the flat values of every iteration so far (see :func:`iteration_records`).

        One ``frombytes`` of a packed iteration is atomic, so the length is always
        a whole number of iterations; the lock-free scheme is :meth:`drain`'s.
        """
        return take_prefix(self._iterations)

    def drain(self) -> list[RawEvent]:
        """Take every event recorded so far (called by the aggregator's thread).

        Slicing then deleting the same prefix keeps events appended meanwhile.
        """
        return take_prefix(self._buffer)

    def __repr__(self) -> str:
        return f"EventRecorder({self.node_id!r}, enabled={self.enabled})"
