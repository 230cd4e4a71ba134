"""One reading of a pipeline at one instant: the :class:`PipelineSnapshot` every reader renders.

``Pipeline.snapshot()`` takes it; the diagnosis, the Chrome trace, the
Prometheus, OpenTelemetry and CloudWatch exporters and the live views are
functions of it, so they all show the same numbers. It is frozen plain data:
safe to hand to another thread, JSON both ways (:meth:`PipelineSnapshot.to_dict`),
and mergeable across pipelines or boxes (:func:`merge_snapshots`).
"""

from __future__ import annotations

import datetime
import json
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Generic, Protocol, TypeVar

from framescope._keys import join_key, replica_index
from framescope._snapshotformat import Fields, SnapshotFormatError, shown
from framescope._views import rich, text
from framescope.pipeline.model.batches import BatchSnapshot, read_batch
from framescope.pipeline.model.clips import ClipsSnapshot, read_clips
from framescope.pipeline.model.counters import DROP_REASONS, check_counter
from framescope.pipeline.model.cpu import CpuSplit, MachineLoad
from framescope.pipeline.model.sources import SourceSnapshot, read_sources
from framescope.pipeline.model.state import NodeState, PipelineState, merge_states, read_state
from framescope.pipeline.model.traces import FrameTrace, read_trace
from framescope.pipeline.model.viewers import ViewerSnapshot, read_viewers
from framescope.stats import StatsSnapshot
from framescope.statsnapshot import read_stats

__all__ = [
    "Deferred",
    "PipelineSnapshot",
    "SnapshotFormatError",
    "SnapshotSource",
    "StageSnapshot",
    "merge_snapshots",
]

_T = TypeVar("_T")


class Deferred(Generic[_T]):
    """A value of a snapshot worked out on first read, then kept (node states, frame traces).

    The snapshot stays immutable: what is computed is a function of the
    readings taken at its instant, supplied by whoever took them. It is
    computed once, whoever reads it first (other readers wait for it).
    """

    __slots__ = ("_compute", "_lock", "_value")

    def __init__(self, compute: Callable[[], _T]) -> None:
        self._compute: Callable[[], _T] | None = compute
        self._value: _T | None = None
        self._lock = threading.Lock()

    @classmethod
    def of(cls, value: _T) -> Deferred[_T]:
        """A value known already."""
        known = cls(lambda: value)
        known._value, known._compute = value, None
        return known

    def get(self) -> _T:
        """The value, computed now if this is the first read."""
        if self._compute is not None:
            with self._lock:
                compute = self._compute
                if compute is not None:
                    self._value = compute()
                    self._compute = None
        return self._value  # type: ignore[return-value]

    def __getstate__(self) -> tuple[object, ...]:
        return (self.get(),)  # sent elsewhere (another process): the value, worked out

    def __setstate__(self, state: tuple[object, ...]) -> None:
        self._compute, self._value, self._lock = None, state[0], threading.Lock()  # type: ignore[assignment]

    def __repr__(self) -> str:
        return "Deferred(...)" if self._compute is not None else f"Deferred.of({self._value!r})"


@dataclass(frozen=True, slots=True)
class StageSnapshot:
    """One stage's numbers in a snapshot.

    Attributes:
        key: the profile key and node id (``MainPipeline__Detect``).
        stage: the key without the pipeline's name (``Detect``, ``Inner__Resize``).
        latency: processing-time statistics in seconds (``rate()`` is the fps).
        failures: items the stage failed on, all time.
        working: whether it processes items itself (False for a threaded nested
            pipeline, whose own stages do the work; its latency is their span).
        queue_depth: items waiting in its input queue (None when it has none).
        queue_capacity: the size of that queue (None when it has none).
        phase: IDLE, PROCESSING, ... (None unless debugging is on).
        replicas: how many replicas run the stage (its latency merges theirs: the
            rate is their sum, the percentiles their pooled samples).
        replica_of: for a replica's own entry (``Main__Infer#1``), the stage's key.
        held: results a replicated stage holds back until an earlier one is done.
        executor: for a replicated stage, where its replicas run (``thread``,
            ``process``, ``ray``; None for a stage without replicas).
        cpu: where its thread's (or replicas') time went over the recent window:
            on a CPU, waiting for one, blocked (None: not measured, e.g. serial mode).
        batch: for a batched stage (``add(batch=N)``, N > 1), its batches: sizes,
            why they left, how long items waited in them (None: not batched).
            Its ``latency`` then holds each item's share of its batch's call.
    """

    key: str
    stage: str
    latency: StatsSnapshot
    failures: int = 0
    working: bool = True
    queue_depth: int | None = None
    queue_capacity: int | None = None
    phase: str | None = None
    replicas: int = 1
    replica_of: str | None = None
    held: int | None = None
    cpu: CpuSplit | None = None
    executor: str | None = None
    batch: BatchSnapshot | None = None

    @property
    def replica_index(self) -> int | None:
        """For a replica's entry, its number (1 for ``Main__Infer#1``); else None."""
        if self.replica_of is None:
            return None
        return replica_index(self.key)

    def to_dict(self) -> dict[str, Any]:
        """The stage as a JSON-ready dict."""
        return {
            "key": self.key,
            "stage": self.stage,
            "latency": self.latency.to_dict(),
            "failures": self.failures,
            "working": self.working,
            "queue_depth": self.queue_depth,
            "queue_capacity": self.queue_capacity,
            "phase": self.phase,
            "replicas": self.replicas,
            "replica_of": self.replica_of,
            "held": self.held,
            "cpu": None if self.cpu is None else self.cpu.to_dict(),
            "executor": self.executor,
            "batch": None if self.batch is None else self.batch.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> StageSnapshot:
        """Rebuild a stage from :meth:`to_dict` output (checked; see SnapshotFormatError)."""
        return _read_stage(Fields(data, ""))


def _read_stage(fields: Fields) -> StageSnapshot:
    key = fields.text("key")
    replica_of = fields.text("replica_of", None, or_none=True)
    if replica_of is not None and replica_index(key) is None:
        raise fields.fail("key", "a replica's key ending in #<number>", key)
    return StageSnapshot(
        key=key,
        stage=fields.text("stage"),
        latency=read_stats(fields.child("latency")),
        failures=fields.integer("failures", 0),
        working=fields.boolean("working", True),
        queue_depth=fields.integer("queue_depth", None, or_none=True),
        queue_capacity=fields.integer("queue_capacity", None, or_none=True),
        phase=fields.text("phase", None, or_none=True),
        replicas=fields.integer("replicas", 1, minimum=1),
        replica_of=replica_of,
        held=fields.integer("held", None, or_none=True),
        cpu=_read_optional(fields, "cpu", CpuSplit.from_dict),
        executor=fields.text("executor", None, or_none=True),
        batch=None if fields.get("batch", None) is None else read_batch(fields.child("batch")),
    )


def _read_optional(fields: Fields, key: str, read: Callable[[Any, str], _T]) -> _T | None:
    value = fields.get(key, None)
    return None if value is None else read(value, fields.at(key))


@dataclass(frozen=True, slots=True)
class PipelineSnapshot:
    """A pipeline's numbers at one instant.

    Attributes:
        pipeline: the pipeline's name.
        latency: end-to-end latency statistics in seconds (``rate()`` is the fps).
        counters: what happened to items (see ``Pipeline.counters``).
        stages: every stage, in pipeline order (nested stages after their parent).
        taken_ns: the pipeline clock's monotonic reading when it was taken.
        wall_time: the wall-clock time when it was taken (UTC).
        mode: ``"serial"``, ``"parallel"`` or None (not started).
        debug: whether debugging was on (node phases, queue evidence, traces).
        cpu_count: the cores of the machine the pipeline runs on (None: unknown).
        cpu_load: the cores its process kept busy lately, on average (None: unknown).
        machine: how busy the whole machine was lately: every process's CPU use,
            the load average (None: not measured).
        source_error: why its source failed, ``"ValueError: ..."`` (None: it did
            not fail). The input ended there; counted in ``source_errors``.
        trace_nodes: the nodes of the trace rings, in pipeline order (empty:
            the working stages; see :attr:`node_ids`).
        sources: each source of a many-source run (``run({name: source})``)
            by name, in the order given (empty for a run of one iterable).
        viewers: the WebRTC viewers of a live view's previews (a ``LiveView``'s
            snapshot; empty for a pipeline's own).
        clips: its event-clip recorders (``framescope.video.Clips``): those
            added as a stage and those attached to a source it runs.

    :attr:`state` (DepthAI's node states) and :attr:`traces` are rendered from
    the readings of this instant the first time they are read.
    """

    pipeline: str
    latency: StatsSnapshot
    counters: dict[str, int] = field(default_factory=dict)
    stages: tuple[StageSnapshot, ...] = ()
    taken_ns: int = 0
    wall_time: datetime.datetime | None = None
    mode: str | None = None
    debug: bool = False
    cpu_count: int | None = None
    cpu_load: float | None = None
    source_error: str | None = None
    machine: MachineLoad | None = None
    trace_nodes: tuple[str, ...] = ()
    sources: Mapping[str, SourceSnapshot] = field(default_factory=dict)
    viewers: tuple[ViewerSnapshot, ...] = ()
    clips: tuple[ClipsSnapshot, ...] = ()
    _state: Deferred[PipelineState] = field(
        default_factory=lambda: Deferred.of(PipelineState()), repr=False, compare=False
    )
    _traces: Deferred[tuple[FrameTrace, ...]] = field(
        default_factory=lambda: Deferred.of(()), repr=False, compare=False
    )

    @property
    def state(self) -> PipelineState:
        """Every node's state, DepthAI style (current with debugging on; else main-loop timings)."""
        return self._state.get()

    def __str__(self) -> str:
        return text(self)

    def __rich__(self) -> Any:
        """A rich table of the stages, states in colour (needs ``rich``)."""
        return rich(self)

    @property
    def traces(self) -> tuple[FrameTrace, ...]:
        """The sampled frame traces (debugging on), oldest first; joined on first use."""
        return self._traces.get()

    @property
    def node_ids(self) -> tuple[str, ...]:
        """The working nodes in pipeline order (one trace track each)."""
        return self.trace_nodes or tuple(s.key for s in self.stages if s.working)

    def stage(self, key: str) -> StageSnapshot:
        """The stage with profile key ``key`` (a KeyError naming the keys there are)."""
        for stage in self.stages:
            if stage.key == key:
                return stage
        known = ", ".join(s.key for s in self.stages) or "none"
        raise KeyError(f"no stage {key!r} in pipeline {self.pipeline!r}; stages are: {known}")

    def node(self, key: str) -> NodeState:
        """The node state of the stage with profile key ``key`` (see :attr:`state`)."""
        nodes = self.state.node_states
        if key not in nodes:
            known = ", ".join(nodes) or "none"
            raise KeyError(f"no node {key!r} in pipeline {self.pipeline!r}; nodes are: {known}")
        return nodes[key]

    def statistics(self) -> dict[str, StatsSnapshot]:
        """Timing statistics by profile key: the pipeline's (end-to-end) and every stage's."""
        stats = {self.pipeline: self.latency}
        stats.update((stage.key, stage.latency) for stage in self.stages)
        return stats

    def get_profiles(self) -> tuple[dict[str, float], dict[str, float]]:
        """``(latency_s, throughput_per_s)`` by profile key, as ``Pipeline.get_profiles``."""
        # A key appears once it has timed an item, as in PyStream's profiler.
        stats = {key: snap for key, snap in self.statistics().items() if snap.count}
        latency = {key: snap.recent_mean() for key, snap in stats.items()}
        throughput = {key: snap.rate(self.taken_ns) for key, snap in stats.items()}
        return latency, throughput

    def replicas_of(self, key: str) -> tuple[StageSnapshot, ...]:
        """The entries of the replicas of the stage ``key`` (empty when it has none)."""
        return tuple(stage for stage in self.stages if stage.replica_of == key)

    def working_stages(self) -> tuple[StageSnapshot, ...]:
        """The stages that process items themselves, in pipeline order."""
        return tuple(stage for stage in self.stages if stage.working)

    def count(self, name: str) -> int:
        """Counter ``name`` (0 when a snapshot from an older box lacks it; a KeyError when
        ``name`` is no pipeline counter, so a misspelt name never reads as 0)."""
        return self.counters.get(check_counter(name), 0)

    def dropped(self) -> dict[str, int]:
        """Lost items by reason (queue_full, overflow, result_unread, cleanup)."""
        return {reason: self.count(key) for key, reason in DROP_REASONS.items()}

    def to_dict(self) -> dict[str, Any]:
        """The snapshot as a JSON-ready dict (traces included); :meth:`from_dict` reads it back."""
        return {
            "pipeline": self.pipeline,
            "latency": self.latency.to_dict(),
            "counters": dict(self.counters),
            "stages": [stage.to_dict() for stage in self.stages],
            "state": json.loads(self.state.to_json()),
            "taken_ns": self.taken_ns,
            "wall_time": None if self.wall_time is None else self.wall_time.isoformat(),
            "mode": self.mode,
            "debug": self.debug,
            "cpu_count": self.cpu_count,
            "cpu_load": self.cpu_load,
            "source_error": self.source_error,
            "machine": None if self.machine is None else self.machine.to_dict(),
            "node_ids": list(self.node_ids),
            "sources": [source.to_dict() for source in self.sources.values()],
            "viewers": [viewer.to_dict() for viewer in self.viewers],
            "clips": [recorder.to_dict() for recorder in self.clips],
            "traces": [trace.to_dict() for trace in self.traces],
        }

    def to_json(self) -> str:
        """The snapshot as a JSON string."""
        return json.dumps(self.to_dict())

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PipelineSnapshot:
        """Rebuild a snapshot from :meth:`to_dict` output (e.g. another box's JSON).

        Every field is checked: whatever is wrong (a missing key, a wrong
        type, a negative count, a NaN, an out-of-range number) is a
        :class:`SnapshotFormatError` (a ValueError) whose message starts
        with the field's path: ``stages[2].latency.count: expected a
        non-negative integer, got int -1``.
        """
        fields = Fields(data, "")
        cpu_load = fields.number("cpu_load", None, or_none=True)
        if cpu_load is not None and cpu_load < 0:
            raise fields.fail("cpu_load", "a number >= 0 or null", cpu_load)
        return cls(
            pipeline=fields.text("pipeline"),
            latency=read_stats(fields.child("latency")),
            counters=_read_counters(fields.child("counters", {})),
            stages=_read_stages(fields),
            _state=Deferred.of(read_state(fields.get("state", {"node_states": {}}), "state")),
            taken_ns=fields.integer("taken_ns", 0),
            wall_time=_read_wall_time(fields),
            mode=fields.text("mode", None, or_none=True),
            debug=fields.boolean("debug", False),
            cpu_count=fields.integer("cpu_count", None, minimum=1, or_none=True),
            cpu_load=cpu_load,
            source_error=fields.text("source_error", None, or_none=True),
            machine=_read_optional(fields, "machine", MachineLoad.from_dict),
            trace_nodes=_read_names(fields, "node_ids"),
            sources=read_sources(fields),
            viewers=read_viewers(fields),
            clips=read_clips(fields),
            _traces=Deferred.of(_read_traces(fields)),
        )


def _read_traces(fields: Fields) -> tuple[FrameTrace, ...]:
    return tuple(
        read_trace(Fields(trace, f"traces[{index}]"))
        for index, trace in enumerate(fields.items("traces", ()))
    )


def _read_counters(fields: Fields) -> dict[str, int]:
    return {str(name): fields.integer(name) for name in fields.data}


def _read_stages(fields: Fields) -> tuple[StageSnapshot, ...]:
    stages = []
    seen: set[str] = set()
    for index, data in enumerate(fields.items("stages", ())):
        stage = _read_stage(Fields(data, f"stages[{index}]"))
        if stage.key in seen:
            raise SnapshotFormatError(f"stages[{index}].key: {stage.key!r} appears twice")
        seen.add(stage.key)
        stages.append(stage)
    return tuple(stages)


def _read_names(fields: Fields, key: str) -> tuple[str, ...]:
    names = fields.items(key, ())
    for index, name in enumerate(names):
        if not isinstance(name, str):
            raise SnapshotFormatError(f"{key}[{index}]: expected a string, got {shown(name)}")
    return tuple(names)


def _read_wall_time(fields: Fields) -> datetime.datetime | None:
    wall = fields.text("wall_time", None, or_none=True)
    if wall is None:
        return None
    try:
        when = datetime.datetime.fromisoformat(wall)
        when.timestamp()  # one the page can show (a year 1 in a zone west of UTC cannot)
    except (ValueError, OverflowError, OSError):
        raise fields.fail("wall_time", "an ISO 8601 date and time", wall) from None
    return when


class SnapshotSource(Protocol):
    """Anything read into a :class:`PipelineSnapshot`: a ``Pipeline``, a remote view."""

    @property
    def name(self) -> str:
        """The pipeline's name."""
        ...

    def snapshot(self) -> PipelineSnapshot:
        """Read every number at one instant."""
        ...


def _check_merge(snapshots: tuple[object, ...], prefixes: object) -> None:
    """:func:`merge_snapshots`' arguments: snapshots, and one str prefix per snapshot."""
    if not snapshots:
        raise ValueError("merge_snapshots needs at least one snapshot")
    for snapshot in snapshots:
        if not isinstance(snapshot, PipelineSnapshot):
            raise TypeError(
                f"snapshots must be PipelineSnapshot objects, got {type(snapshot).__name__}"
            )
    if prefixes is None:
        return
    if not isinstance(prefixes, (list, tuple)) or not all(isinstance(p, str) for p in prefixes):
        raise TypeError(f"prefixes must be a list of str (one per snapshot), got {prefixes!r}")
    if len(prefixes) != len(snapshots):
        raise ValueError(
            f"prefixes must have one entry per snapshot: {len(prefixes)} for {len(snapshots)}"
        )


def merge_snapshots(
    *snapshots: PipelineSnapshot, prefixes: list[str] | None = None, name: str | None = None
) -> PipelineSnapshot:
    """Combine the snapshots of several pipelines (or boxes) into one, as ``merge_states`` does.

    Stage keys and node ids get ``prefixes`` (one per snapshot, e.g. the
    host) in front: ``box1__MainPipeline__Detect``. Counters add up; the
    end-to-end latency statistics merge. Frame traces stay with their own
    pipeline's snapshot (a merged snapshot has none). What describes one
    machine or process (``mode``, ``cpu_count``, ``cpu_load``, ``machine``)
    is kept where every snapshot has the same, else None (unknown): the load
    of one box is no figure for a fleet. Two stages with the same key are a
    ValueError: pass ``prefixes`` to tell them apart.
    """
    _check_merge(snapshots, prefixes)
    stages: list[StageSnapshot] = []
    seen: set[str] = set()
    counters: dict[str, int] = {}
    latency = StatsSnapshot(window=1)
    for index, snapshot in enumerate(snapshots):
        prefix = prefixes[index] if prefixes is not None else ""
        for stage in snapshot.stages:
            key = join_key(prefix, stage.key)
            if key in seen:
                raise ValueError(
                    f"stage {key!r} appears in more than one snapshot; "
                    "pass prefixes= to tell them apart"
                )
            seen.add(key)
            replica_of = None if stage.replica_of is None else join_key(prefix, stage.replica_of)
            stages.append(replace(stage, key=key, replica_of=replica_of))
        for counter, value in snapshot.counters.items():
            counters[counter] = counters.get(counter, 0) + value
        latency = latency.merge(snapshot.latency)
    merged = merge_states(*(s.state for s in snapshots), prefixes=prefixes)
    return PipelineSnapshot(
        pipeline=name if name is not None else "+".join(s.pipeline for s in snapshots),
        latency=latency,
        counters=counters,
        stages=tuple(stages),
        _state=Deferred.of(merged),
        taken_ns=max(s.taken_ns for s in snapshots),
        wall_time=max((s.wall_time for s in snapshots if s.wall_time is not None), default=None),
        mode=_shared([s.mode for s in snapshots]),
        debug=all(s.debug for s in snapshots),
        cpu_count=_shared([s.cpu_count for s in snapshots]),
        cpu_load=_shared([s.cpu_load for s in snapshots]),
        machine=_shared([s.machine for s in snapshots]),
        source_error="; ".join(
            f"{s.pipeline}: {s.source_error}" for s in snapshots if s.source_error is not None
        )
        or None,
        sources=_merged_sources(snapshots, prefixes),
        viewers=tuple(viewer for snapshot in snapshots for viewer in snapshot.viewers),
        clips=tuple(recorder for snapshot in snapshots for recorder in snapshot.clips),
    )


def _merged_sources(
    snapshots: tuple[PipelineSnapshot, ...], prefixes: list[str] | None
) -> dict[str, SourceSnapshot]:
    """Every snapshot's sources, their names prefixed as the stage keys are."""
    sources: dict[str, SourceSnapshot] = {}
    for index, snapshot in enumerate(snapshots):
        prefix = prefixes[index] if prefixes is not None else ""
        for source in snapshot.sources.values():
            name = join_key(prefix, source.name)
            if name in sources:
                raise ValueError(
                    f"source {name!r} appears in more than one snapshot; "
                    "pass prefixes= to tell them apart"
                )
            sources[name] = replace(source, name=name)
    return sources


def _shared(values: list[_T | None]) -> _T | None:
    """The value every snapshot has, or None where they differ."""
    first = values[0]
    return first if all(value == first for value in values) else None
