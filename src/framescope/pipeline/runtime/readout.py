"""The read-out: one :class:`~framescope.pipeline.PipelineSnapshot` of a running tree."""

from __future__ import annotations

from functools import partial

from framescope._keys import replica_key, without_prefix
from framescope.pipeline.debug.framelog import TraceMaterial, join_traces
from framescope.pipeline.debug.nodestate import in_micros, pipeline_state, timing_from
from framescope.pipeline.errors import describe_error
from framescope.pipeline.model.clips import ClipRecorder, ClipsSnapshot
from framescope.pipeline.model.snapshot import Deferred, PipelineSnapshot, StageSnapshot
from framescope.pipeline.model.state import (
    InputQueueState,
    NodeState,
    OutputQueueState,
    PipelineState,
    Timing,
)
from framescope.pipeline.runtime.core import Runtime
from framescope.pipeline.runtime.tree import PARALLEL, StageTree

__all__ = ["SNAPSHOT_GAP_S", "read_snapshot"]

SNAPSHOT_GAP_S = 0.05
"""A snapshot reads the CPU accounting unless it was read this recently (a tight loop of
snapshots reads at most 20 times a second; the window's points stay bounded by time)."""


def _plain_state(tree: StageTree, started: bool, now_ns: int) -> PipelineState:
    """Node states without debugging: only the main-loop timings, from the stage timers."""
    nodes = {}
    for key, step in tree.keyed():
        timing = timing_from(in_micros(step.statistics()), now_ns) if started else Timing()
        nodes[key] = NodeState(
            input_states={"in": InputQueueState()},
            output_states={"out": OutputQueueState()},
            main_loop_timing=timing,
        )
    return PipelineState(nodes)


def read_snapshot(tree: StageTree, runtime: Runtime) -> PipelineSnapshot:
    """Read ``tree`` and its ``runtime`` once into a snapshot.

    With debugging on the aggregator drains first, so node states and traces
    are current; stage statistics, queues and counters are read right after.
    """
    runtime.cpu.sample(gap_s=SNAPSHOT_GAP_S)
    clock = runtime.clock
    taken_ns, wall = clock.monotonic_ns(), clock.wall()
    aggregator = runtime.aggregator
    if aggregator is not None:
        readings, material = aggregator.read()
        phases = {reading.node_id: reading.phase.name for reading in readings}
        state = Deferred(partial(pipeline_state, readings))
        traces = Deferred(partial(join_traces, material))
    else:
        started = tree.life.started or tree.life.cleaned_up
        state = Deferred.of(_plain_state(tree, started, taken_ns))
        material, traces, phases = TraceMaterial(), Deferred.of(()), {}
    source_error = tree.life.source_error
    stages = _stage_snapshots(tree, runtime, phases)
    machine = runtime.cpu.machine()
    return PipelineSnapshot(
        pipeline=tree.name,
        latency=runtime.latency.statistics(),
        counters=runtime.counters(),
        stages=stages,
        _state=state,
        _traces=traces,
        taken_ns=taken_ns,
        wall_time=wall,
        mode=tree.mode,
        debug=aggregator is not None,
        trace_nodes=material.node_ids,
        cpu_count=machine.cores,
        cpu_load=machine.process_cores,
        machine=machine,
        source_error=None if source_error is None else describe_error(source_error),
        sources={} if runtime.sources is None else runtime.sources.read(),
        clips=_clip_recorders(tree, runtime),
    )


def _clip_recorders(tree: StageTree, runtime: Runtime) -> tuple[ClipsSnapshot, ...]:
    """The clip recorders that are stages or taps of the tree, or attached to a source it ran."""
    found: list[ClipRecorder] = []
    for _, step in tree.keyed():
        for part in (step.stage, *step.taps):
            if isinstance(part, ClipRecorder) and not any(part is r for r in found):
                found.append(part)
    found += [r for r in runtime.clip_recorders if not any(r is known for known in found)]
    return tuple(recorder.clips_snapshot() for recorder in found)


def _stage_snapshots(
    tree: StageTree, runtime: Runtime, phases: dict[str, str]
) -> tuple[StageSnapshot, ...]:
    """Each stage's snapshot in pipeline order, each followed by its replicas' own."""
    queues, held = runtime.queues(), runtime.held()
    working = set(tree.working_keys(tree.mode == PARALLEL))
    split = runtime.cpu.split
    stages = []
    for key, step in tree.keyed():
        depth, capacity = queues.get(key, (None, None))
        stages.append(
            StageSnapshot(
                key=key,
                stage=without_prefix(key, tree.name),
                latency=step.statistics(),
                failures=step.failures,
                working=key in working,
                queue_depth=depth,
                queue_capacity=capacity,
                phase=_stage_phase(
                    phases, _thread_keys(key, step.replicas if step.replicated else 0)
                ),
                replicas=step.replicas,
                held=held.get(key),
                cpu=split(_thread_keys(key, step.replicas if step.replicated else 0)),
                executor=step.executor.name if step.replicated else None,
                batch=None if step.batches is None else step.batches.read(),
            )
        )
        for index, watch in enumerate(step.replica_watches):
            replica = replica_key(key, index)
            stages.append(
                StageSnapshot(
                    key=replica,
                    stage=without_prefix(replica, tree.name),
                    latency=watch.statistics(),
                    working=False,
                    phase=phases.get(replica),
                    replica_of=key,
                    cpu=split([replica]),
                )
            )
    return tuple(stages)


def _thread_keys(key: str, replicas: int) -> list[str]:
    """The keys the CPU accounting follows a stage by: its own, or its replicas'."""
    return [replica_key(key, index) for index in range(replicas)] if replicas else [key]


_BUSIEST_FIRST = ("PROCESSING", "SENDING_OUTPUTS", "GETTING_INPUTS", "IDLE")


def _stage_phase(phases: dict[str, str], keys: list[str]) -> str | None:
    """A stage's phase: its thread's, or for replicas the busiest of theirs (any PROCESSING)."""
    found = [phases[key] for key in keys if key in phases]
    if not found:
        return None
    return min(
        found, key=lambda phase: _BUSIEST_FIRST.index(phase) if phase in _BUSIEST_FIRST else 9
    )
