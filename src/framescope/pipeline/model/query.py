"""Querying a pipeline's state, DepthAI style: ``state.nodes(id).inputs("in")``."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from framescope.pipeline.model.state import (
    InputQueueState,
    NodeState,
    OutputQueueState,
    PipelineState,
    Timing,
)

__all__ = ["NodeQuery", "NodesQuery", "PipelineStateQuery"]


def _summary(node: NodeState) -> NodeState:
    """The node without per-port statistics, custom timings and events."""
    return replace(
        node,
        input_states={
            name: InputQueueState(state=port.state, num_queued=port.num_queued)
            for name, port in node.input_states.items()
        },
        output_states={
            name: OutputQueueState(state=port.state) for name, port in node.output_states.items()
        },
        other_timings={},
        events=(),
    )


def _pick(ports: dict[str, Any], names: tuple[str, ...], what: str, node_id: str) -> dict[str, Any]:
    if not names:
        return dict(ports)
    unknown = [n for n in names if n not in ports]
    if unknown:
        known = ", ".join(sorted(ports)) or "none"
        raise KeyError(
            f"node {node_id!r} has no {what} {', '.join(map(repr, unknown))}; it has: {known}"
        )
    return {name: ports[name] for name in names}


class NodeQuery:
    """The state of one node; see :meth:`PipelineStateQuery.nodes`."""

    def __init__(self, node_id: str, node: NodeState) -> None:
        self.node_id = node_id
        self._node = node

    def __str__(self) -> str:
        return str(self._node)  # the node state's table

    def __rich__(self) -> Any:
        """The node state as a rich table (needs ``rich``)."""
        return self._node.__rich__()

    def __repr__(self) -> str:
        return f"<NodeQuery {self.node_id} {self._node.state}>"

    def summary(self) -> NodeState:
        """The node's state and main timings, without per-port statistics."""
        return _summary(self._node)

    def detailed(self) -> NodeState:
        """Everything, with per-port statistics, other timings and recent events."""
        return self._node

    def inputs(self, *names: str) -> dict[str, InputQueueState] | InputQueueState:
        """All inputs, the named ones, or the single named input itself."""
        picked = _pick(self._node.input_states, names, "input", self.node_id)
        return picked[names[0]] if len(names) == 1 else picked

    def outputs(self, *names: str) -> dict[str, OutputQueueState] | OutputQueueState:
        """All outputs, the named ones, or the single named output itself."""
        picked = _pick(self._node.output_states, names, "output", self.node_id)
        return picked[names[0]] if len(names) == 1 else picked

    def other_timings(self, *names: str) -> dict[str, Timing] | Timing:
        """All custom timings, the named ones, or the single named timing itself."""
        picked = _pick(self._node.other_timings, names, "custom timing", self.node_id)
        return picked[names[0]] if len(names) == 1 else picked


class NodesQuery:
    """The state of several nodes; see :meth:`PipelineStateQuery.nodes`."""

    def __init__(self, state: PipelineState) -> None:
        self._state = state

    def summary(self) -> PipelineState:
        """Each node's state and main timings, without per-port statistics."""
        return PipelineState({k: _summary(v) for k, v in self._state.node_states.items()})

    def detailed(self) -> PipelineState:
        """Everything about each node."""
        return self._state

    def inputs(self, *names: str) -> dict[str, dict[str, InputQueueState]]:
        """Inputs by node id (all, or the named ones of each node)."""
        return {
            k: _pick(v.input_states, names, "input", k) for k, v in self._state.node_states.items()
        }

    def outputs(self, *names: str) -> dict[str, dict[str, OutputQueueState]]:
        """Outputs by node id (all, or the named ones of each node)."""
        return {
            k: _pick(v.output_states, names, "output", k)
            for k, v in self._state.node_states.items()
        }

    def other_timings(self, *names: str) -> dict[str, dict[str, Timing]]:
        """Custom timings by node id (all, or those with the given names where present)."""
        return {
            k: {n: t for n, t in v.other_timings.items() if not names or n in names}
            for k, v in self._state.node_states.items()
        }


class PipelineStateQuery:
    """What ``pipeline.get_pipeline_state()`` returns: a snapshot to query.

    ``nodes()`` covers every node, ``nodes(id1, id2)`` some, and ``nodes(id)``
    one node, whose methods then return that node's objects directly.
    """

    def __init__(self, state: PipelineState) -> None:
        self.state = state

    def nodes(self, *node_ids: str) -> Any:
        """Select nodes by id (profile keys, e.g. ``MainPipeline__Stage1``)."""
        known = self.state.node_states
        unknown = [n for n in node_ids if n not in known]
        if unknown:
            raise KeyError(
                f"no node {', '.join(map(repr, unknown))}; nodes are: {', '.join(known)}"
            )
        if len(node_ids) == 1:
            return NodeQuery(node_ids[0], known[node_ids[0]])
        if not node_ids:
            return NodesQuery(self.state)
        return NodesQuery(PipelineState({n: known[n] for n in node_ids}))

    @property
    def node_states(self) -> dict[str, NodeState]:
        """Every node's state by id (as :class:`PipelineState`'s)."""
        return self.state.node_states

    def to_json(self) -> str:
        """The whole state as JSON."""
        return self.state.to_json()

    @classmethod
    def from_json(cls, text: str) -> PipelineStateQuery:
        """Rebuild from :meth:`to_json` output, checking every field."""
        return cls(PipelineState.from_json(text))

    def __eq__(self, other: object) -> bool:
        if isinstance(other, PipelineStateQuery):
            return self.state == other.state
        return self.state == other

    __hash__ = None  # type: ignore[assignment]

    def __str__(self) -> str:
        return str(self.state)

    def __repr__(self) -> str:
        return f"PipelineStateQuery({len(self.state.node_states)} nodes)"

    def __rich__(self) -> Any:
        """A rich table of the nodes (needs ``rich``)."""
        return self.state.__rich__()
