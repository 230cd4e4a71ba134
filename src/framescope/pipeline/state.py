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

from framescope.pipeline.events import NodePhase, PipelineEvent

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
        """Serialise to a JSON string."""
        return json.dumps(_node_to_dict(self))

    @classmethod
    def from_json(cls, text: str) -> NodeState:
        """Rebuild from :meth:`to_json` output."""
        return _node_from_dict(json.loads(text))


@dataclass(frozen=True, slots=True)
class PipelineState:
    """Every node's state at one moment, by node id (``MainPipeline__Stage1`` ...)."""

    node_states: dict[str, NodeState] = field(default_factory=dict)

    def to_json(self) -> str:
        """Serialise to a JSON string."""
        return json.dumps(
            {"node_states": {k: _node_to_dict(v) for k, v in self.node_states.items()}}
        )

    @classmethod
    def from_json(cls, text: str) -> PipelineState:
        """Rebuild from :meth:`to_json` output."""
        data = json.loads(text)
        return cls({k: _node_from_dict(v) for k, v in data["node_states"].items()})


def _node_to_dict(node: NodeState) -> dict[str, Any]:
    data = asdict(node)
    data["events"] = [event.to_dict() for event in node.events]
    return data


def _timing(data: dict[str, Any]) -> Timing:
    return Timing(
        fps=float(data["fps"]),
        duration_stats=DurationStats(**data["duration_stats"]),
        count=int(data.get("count", 0)),
    )


def _node_from_dict(data: dict[str, Any]) -> NodeState:
    return NodeState(
        state=str(data["state"]),
        input_states={
            name: InputQueueState(
                state=port["state"],
                num_queued=int(port["num_queued"]),
                timing=_timing(port["timing"]),
                queue_stats=QueueStats(**port["queue_stats"]),
            )
            for name, port in data["input_states"].items()
        },
        output_states={
            name: OutputQueueState(state=port["state"], timing=_timing(port["timing"]))
            for name, port in data["output_states"].items()
        },
        main_loop_timing=_timing(data["main_loop_timing"]),
        inputs_get_timing=_timing(data["inputs_get_timing"]),
        outputs_send_timing=_timing(data["outputs_send_timing"]),
        other_timings={k: _timing(v) for k, v in data["other_timings"].items()},
        events=tuple(PipelineEvent.from_dict(e) for e in data.get("events", ())),
        unpaired_events=int(data.get("unpaired_events", 0)),
    )


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
    merged: dict[str, NodeState] = {}
    for index, state in enumerate(states):
        if not isinstance(state, PipelineState):
            raise TypeError(f"states must be PipelineState objects, got {type(state).__name__}")
        prefix = f"{prefixes[index]}__" if prefixes is not None else ""
        for node_id, node in state.node_states.items():
            key = prefix + node_id
            if key in merged:
                raise ValueError(
                    f"node id {key!r} appears in more than one state; "
                    "pass prefixes= to tell them apart"
                )
            merged[key] = node
    return PipelineState(merged)
