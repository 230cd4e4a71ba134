"""Pipeline state snapshots: immutable, plain data, JSON both ways.

The names follow DepthAI's pipeline debugging (in snake_case) so that people
and tools that know it recognise them: a :class:`PipelineState` maps node ids
to :class:`NodeState`; a node has a ``state``, its ``input_states`` and
``output_states`` by port name, and :class:`Timing` figures (fps plus
:class:`DurationStats` in microseconds).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from framescope._snapshotformat import MAX_INT, SnapshotFormatError, check_field_number, shown
from framescope._views import rich, text
from framescope.pipeline.model.events import (
    EventInterval,
    EventStatus,
    EventType,
    NodePhase,
    PipelineEvent,
)

__all__ = [
    "DurationStats",
    "InputQueueState",
    "NodeState",
    "OutputQueueState",
    "PipelineState",
    "QueueStats",
    "Timing",
    "merge_states",
]

INVALID_MIN_MICROS = 2**64 - 1
"""``min_micros`` of a timing without samples: larger than any max, so invalid."""


@dataclass(frozen=True, slots=True)
class DurationStats:
    """Duration statistics in microseconds: exact all-time min/max, recent figures."""

    min_micros: float = INVALID_MIN_MICROS
    max_micros: float = 0.0
    average_micros_recent: float = 0.0
    std_dev_micros_recent: float = 0.0
    min_micros_recent: float = 0.0
    max_micros_recent: float = 0.0
    median_micros_recent: float = 0.0
    p90_micros_recent: float = 0.0
    p99_micros_recent: float = 0.0


@dataclass(frozen=True, slots=True)
class Timing:
    """How often something happens (``fps``) and how long it takes."""

    fps: float = 0.0
    duration_stats: DurationStats = field(default_factory=DurationStats)
    count: int = 0

    def is_valid(self) -> bool:
        """False until at least one duration was measured (min > max)."""
        return self.duration_stats.min_micros <= self.duration_stats.max_micros

    def __str__(self) -> str:
        return text(self)

    def __rich__(self) -> str:
        """The same text, for ``rich.print``."""
        return text(self)


@dataclass(frozen=True, slots=True)
class QueueStats:
    """How full an input queue has been: all-time max, recent min/max/median."""

    max_queued: int = 0
    min_queued_recent: int = 0
    max_queued_recent: int = 0
    median_queued_recent: int = 0


@dataclass(frozen=True, slots=True)
class InputQueueState:
    """An input port: ``state`` is IDLE, WAITING (queue empty) or BLOCKED (full, sender waiting)."""

    state: str = "IDLE"
    num_queued: int = 0
    timing: Timing = field(default_factory=Timing)
    queue_stats: QueueStats = field(default_factory=QueueStats)


@dataclass(frozen=True, slots=True)
class OutputQueueState:
    """An output port: ``state`` is IDLE or SENDING."""

    state: str = "IDLE"
    timing: Timing = field(default_factory=Timing)


@dataclass(frozen=True, slots=True)
class NodeState:
    """One node (stage): what it is doing and how its loop, ports and blocks perform."""

    state: str = NodePhase.IDLE.name
    input_states: dict[str, InputQueueState] = field(default_factory=dict)
    output_states: dict[str, OutputQueueState] = field(default_factory=dict)
    main_loop_timing: Timing = field(default_factory=Timing)
    inputs_get_timing: Timing = field(default_factory=Timing)
    outputs_send_timing: Timing = field(default_factory=Timing)
    other_timings: dict[str, Timing] = field(default_factory=dict)
    events: tuple[PipelineEvent, ...] = ()
    unpaired_events: int = 0

    def to_json(self) -> str:
        """Serialise to a JSON string (a timing without samples has ``min_micros: null``)."""
        return json.dumps(_node_to_dict(self))

    def __str__(self) -> str:
        return text(self)

    def __rich__(self) -> str:
        """The same text, for ``rich.print``."""
        return text(self)

    @classmethod
    def from_json(cls, text: str) -> NodeState:
        """Rebuild from :meth:`to_json` output (or any JSON of the same shape).

        Every field is checked: a wrong type, an unknown state name or a
        negative count is a ValueError naming the field. Missing fields take
        their defaults; unknown ones are ignored (a newer writer may add some).
        """
        return _node_from_dict(_loads(text))


@dataclass(frozen=True, slots=True)
class PipelineState:
    """Every node's state at one moment, by node id (``MainPipeline__Stage1`` ...)."""

    node_states: dict[str, NodeState] = field(default_factory=dict)

    def to_json(self) -> str:
        """Serialise to a JSON string (a timing without samples has ``min_micros: null``)."""
        return json.dumps(
            {"node_states": {k: _node_to_dict(v) for k, v in self.node_states.items()}}
        )

    def __str__(self) -> str:
        return text(self)

    def __rich__(self) -> Any:
        """A rich table of the nodes, WAITING and BLOCKED in colour (needs ``rich``)."""
        return rich(self)

    @classmethod
    def from_json(cls, text: str) -> PipelineState:
        """Rebuild from :meth:`to_json` output, checking every field (see NodeState's)."""
        return read_state(_loads(text))


def read_state(data: Any, path: str = "") -> PipelineState:
    """A :class:`PipelineState` from JSON data; a SnapshotFormatError names a bad field."""
    reader = _Reader(data, path)
    nodes = reader.mapping("node_states")
    return PipelineState(
        {
            _node_id(node_id, reader.at("node_states")): _node_from_dict(
                node, f"{reader.at('node_states')}[{node_id!r}]"
            )
            for node_id, node in nodes.items()
        }
    )


def _node_to_dict(node: NodeState) -> dict[str, Any]:
    data = asdict(node)
    data["events"] = [event.to_dict() for event in node.events]
    _null_invalid_minimums(data)
    return data


def _null_invalid_minimums(data: Any) -> None:
    """Write a timing without samples as ``min_micros: null``, not 2**64 - 1."""
    if isinstance(data, dict):
        if data.get("min_micros") == INVALID_MIN_MICROS:
            data["min_micros"] = None
        for value in data.values():
            _null_invalid_minimums(value)


class _Reader:
    """Reads one JSON object, checking each field; errors name the field's path."""

    def __init__(self, data: Any, path: str) -> None:
        if not isinstance(data, dict):
            raise SnapshotFormatError(f"{path}: expected an object, got {_shown(data)}")
        self.data, self.path = data, path

    def at(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def child(self, key: str) -> _Reader:
        return _Reader(self.data.get(key, {}), self.at(key))

    def number(self, key: str, default: float = 0.0, *, null: float | None = None) -> float:
        """The field as a number >= 0; ``null``: what a JSON null stands for (else refused)."""
        value = self.data.get(key, default)
        if value is None and null is not None:
            return null
        number = check_field_number(value, self.at(key))
        if number < 0:
            raise SnapshotFormatError(
                f"{self.at(key)}: expected a finite number >= 0, got {value!r}"
            )
        kept: float = value  # as written (an int stays an int)
        return kept

    def count(self, key: str, default: int | None = 0) -> int | None:
        value = self.data.get(key, default)
        if value is None and default is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            raise SnapshotFormatError(
                f"{self.at(key)}: expected a whole number, got {_shown(value)}"
            )
        if not 0 <= value <= MAX_INT:
            raise SnapshotFormatError(f"{self.at(key)}: expected a count >= 0, got {value!r}")
        return value

    def name(self, key: str, allowed: tuple[str, ...] | None = None, default: str = "") -> str:
        value = self.data.get(key, default)
        if not isinstance(value, str):
            raise SnapshotFormatError(f"{self.at(key)}: expected a string, got {_shown(value)}")
        if allowed is not None and value not in allowed:
            raise SnapshotFormatError(
                f"{self.at(key)}: unknown state {value!r}; expected one of {', '.join(allowed)}"
            )
        return value

    def mapping(self, key: str) -> dict[str, Any]:
        value = self.data.get(key, {})
        if not isinstance(value, dict):
            raise SnapshotFormatError(f"{self.at(key)}: expected an object, got {_shown(value)}")
        return value


_shown = shown


_NODE_STATES = tuple(phase.name for phase in NodePhase)
_INPUT_STATES = ("IDLE", "WAITING", "BLOCKED")
_OUTPUT_STATES = ("IDLE", "SENDING")
_DURATION_FIELDS = tuple(DurationStats.__dataclass_fields__)
_QUEUE_FIELDS = tuple(QueueStats.__dataclass_fields__)


def _timing(reader: _Reader) -> Timing:
    stats = reader.child("duration_stats")
    # A timing without samples is written with a null minimum.
    invalid = INVALID_MIN_MICROS
    durations = {"min_micros": stats.number("min_micros", invalid, null=invalid)}
    durations.update(
        (key, stats.number(key, DurationStats.__dataclass_fields__[key].default))  # type: ignore[arg-type]
        for key in _DURATION_FIELDS
        if key != "min_micros"
    )
    return Timing(
        fps=reader.number("fps"),
        duration_stats=DurationStats(**durations),
        count=reader.count("count") or 0,
    )


def _input(reader: _Reader) -> InputQueueState:
    queue = reader.child("queue_stats")
    return InputQueueState(
        state=reader.name("state", _INPUT_STATES, "IDLE"),
        num_queued=reader.count("num_queued") or 0,
        timing=_timing(reader.child("timing")),
        queue_stats=QueueStats(**{key: queue.count(key) or 0 for key in _QUEUE_FIELDS}),
    )


def _event(reader: _Reader) -> PipelineEvent:
    def member(key: str, enum_type: Any) -> Any:
        name = reader.name(key)
        if name not in enum_type.__members__:
            raise SnapshotFormatError(
                f"{reader.at(key)}: unknown {key} {name!r}; "
                f"expected one of {', '.join(enum_type.__members__)}"
            )
        return enum_type[name]

    return PipelineEvent(
        node_id=reader.name("node_id"),
        type=member("type", EventType),
        interval=member("interval", EventInterval),
        status=member("status", EventStatus),
        queue_size=reader.count("queue_size", None),
        source=reader.name("source"),
        timestamp_ns=reader.count("timestamp_ns") or 0,
        sequence_num=reader.count("sequence_num") or 0,
        frame_id=reader.count("frame_id", None),
    )


def _node_from_dict(data: Any, path: str = "") -> NodeState:
    node = _Reader(data, path)
    ports = node.child("input_states"), node.child("output_states")
    others = node.child("other_timings")
    events = node.data.get("events", [])
    if not isinstance(events, list):
        raise SnapshotFormatError(f"{node.at('events')}: expected a list, got {_shown(events)}")
    return NodeState(
        state=node.name("state", _NODE_STATES, NodePhase.IDLE.name),
        input_states={name: _input(ports[0].child(name)) for name in ports[0].data},
        output_states={
            name: OutputQueueState(
                state=ports[1].child(name).name("state", _OUTPUT_STATES, "IDLE"),
                timing=_timing(ports[1].child(name).child("timing")),
            )
            for name in ports[1].data
        },
        main_loop_timing=_timing(node.child("main_loop_timing")),
        inputs_get_timing=_timing(node.child("inputs_get_timing")),
        outputs_send_timing=_timing(node.child("outputs_send_timing")),
        other_timings={name: _timing(others.child(name)) for name in others.data},
        events=tuple(
            _event(_Reader(event, f"{node.at('events')}[{index}]"))
            for index, event in enumerate(events)
        ),
        unpaired_events=node.count("unpaired_events") or 0,
    )


def _loads(text: str | bytes) -> Any:
    """Parse JSON text; absurdly deep nesting is a ValueError, not a RecursionError."""
    if not isinstance(text, (str, bytes, bytearray)):
        raise TypeError(f"text must be a JSON string, got {type(text).__name__}")
    try:
        return json.loads(text)
    except RecursionError:
        raise SnapshotFormatError("text: JSON nested too deeply to be a pipeline state") from None


def _node_id(node_id: Any, path: str = "node id") -> str:
    if not isinstance(node_id, str) or not node_id:
        raise SnapshotFormatError(f"{path}: expected non-empty string node ids, got {node_id!r}")
    return node_id


def merge_states(*states: PipelineState, prefixes: list[str] | None = None) -> PipelineState:
    """Combine the states of several pipelines or processes into one.

    Node ids already carry their pipeline's name; give ``prefixes`` (one per
    state) to namespace them further, e.g. by host. Two nodes with the same id
    are a ValueError rather than one silently hiding the other.
    """
    if prefixes is not None and len(prefixes) != len(states):
        raise ValueError(
            f"prefixes must have one entry per state: {len(prefixes)} for {len(states)}"
        )
    for prefix in prefixes or ():
        if not isinstance(prefix, str) or not prefix:
            raise ValueError(f"prefixes: each must be a non-empty string, got {prefix!r}")
    merged: dict[str, NodeState] = {}
    for index, given in enumerate(states):
        # ``pipeline.get_pipeline_state()`` gives a query object holding the state.
        state = getattr(given, "state", given)
        if not isinstance(state, PipelineState):
            raise TypeError(f"states must be PipelineState objects, got {type(state).__name__}")
        prefix = f"{prefixes[index]}__" if prefixes is not None else ""
        if not isinstance(state.node_states, dict):
            raise ValueError(f"states[{index}].node_states: expected a dict")
        for node_id, node in state.node_states.items():
            if not isinstance(node, NodeState):
                raise ValueError(
                    f"states[{index}].node_states[{node_id!r}]: expected a NodeState, "
                    f"got {type(node).__name__}"
                )
            key = prefix + _node_id(node_id)
            if key in merged:
                raise ValueError(
                    f"node id {key!r} appears in more than one state; "
                    "pass prefixes= to tell them apart"
                )
            merged[key] = node
    return PipelineState(merged)
