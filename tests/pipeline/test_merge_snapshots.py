"""merge_snapshots: a rule for every field of PipelineSnapshot and StageSnapshot, each checked.

The fields are enumerated with ``dataclasses.fields``: a field added later
without a rule here fails, and so does a merge that drops or mis-merges any
one of them.
"""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Callable
from itertools import islice
from typing import Any

import pytest

from framescope import Pipeline
from framescope.clock import FakeClock
from framescope.pipeline import (
    BatchSnapshot,
    CpuSplit,
    MachineLoad,
    PipelineSnapshot,
    SourceSnapshot,
    SourceState,
    StageSnapshot,
    ViewerSnapshot,
    merge_snapshots,
)
from framescope.pipeline.model.clips import ClipsSnapshot
from framescope.stats import StatsSnapshot

from .helpers import Busy

UTC = datetime.timezone.utc


def split(on_cpu: float) -> CpuSplit:
    return CpuSplit(1.0, 1, 0.5, on_cpu, 0.1, 0.2, on_cpu, 0.1, 0.2, ((5, on_cpu, 0.1, 0.2),))


def load(cpu_busy: float) -> MachineLoad:
    return MachineLoad(cores=8, window_s=1.0, cpu_busy=cpu_busy, load1=2.5, process_cores=1.5)


def taken(clock: FakeClock, name: str, seconds: float, items: int) -> PipelineSnapshot:
    """A real debug snapshot (node states, frame traces) of a two-stage threaded pipeline."""
    pipeline = Pipeline(name=name, clock=clock, debug=True)
    pipeline.add(Busy("Decode", clock, seconds)).add(Busy("Infer", clock, 2 * seconds))
    pipeline.parallelize()
    for item in range(items):
        pipeline.forward(item)
    assert len(list(islice(pipeline.results(timeout=30), items))) == items
    snapshot = pipeline.snapshot()
    pipeline.cleanup()
    return snapshot


def every_field_set(snapshot: PipelineSnapshot, n: int) -> PipelineSnapshot:
    """``snapshot`` with every stage field away from its default, values differing by ``n``."""
    decode, infer = snapshot.stages
    replica = dataclasses.replace(
        infer, key=f"{infer.key}#0", working=False, replica_of=infer.key, cpu=split(0.2 + n / 10)
    )
    stages = (
        dataclasses.replace(decode, failures=n, queue_depth=n + 1, queue_capacity=4, phase="IDLE"),
        dataclasses.replace(
            infer,
            failures=n + 2,
            working=True,
            queue_depth=n,
            queue_capacity=8,
            phase="PROCESSING",
            replicas=2,
            held=n + 3,
            cpu=split(0.3 + n / 10),
            executor="thread",
            batch=BatchSnapshot(8, 0.04, {8: n, 3: 1}, {"full": n, "timeout": 1}),
        ),
        replica,
    )
    counters = dict(snapshot.counters, failed=n, replica_restarts=10 * n)
    return dataclasses.replace(
        snapshot,
        stages=stages,
        counters=counters,
        cpu_count=4 + n,
        cpu_load=0.5 + n,
        machine=load(0.25 * n),
        mode="parallel" if n == 1 else "serial",
        debug=n == 1,
        wall_time=datetime.datetime(2024, 1, n, tzinfo=UTC),
        source_error=f"ValueError: camera {n} gone",
        sources={
            "cam": SourceSnapshot(
                "cam", SourceState.STALLED if n == 1 else SourceState.RUNNING, since=n, frames=n
            )
        },
        viewers=(viewer(f"viewer{n}", n),),
        clips=(ClipsSnapshot(f"door{n}", f"/clips/{n}", "packets", n == 1, n, n),),
    )


def viewer(name: str, n: int) -> ViewerSnapshot:
    """A WebRTC viewer whose figures differ by ``n``."""
    stats = StatsSnapshot(window=8, count=n, total=0.04 * n, minimum=0.03, maximum=0.05)
    return ViewerSnapshot(
        name,
        "main",
        None,
        "H264",
        "connected",
        n,
        10 * n,
        n,
        0,
        1000 * n,
        9 * n,
        0,
        stats,
        0.001 * n,
        0.0005,
    )


@pytest.fixture
def pair(clock: FakeClock) -> tuple[PipelineSnapshot, PipelineSnapshot]:
    a = taken(clock, "Cam", 0.001, 3)
    b = taken(clock, "Door", 0.004, 5)  # taken later, on the same clock
    assert a.traces and b.traces and a.state.node_states and b.state.node_states
    return every_field_set(a, 1), every_field_set(b, 2)


Check = Callable[[PipelineSnapshot, PipelineSnapshot, PipelineSnapshot], None]


def check_latency(merged: PipelineSnapshot, a: PipelineSnapshot, b: PipelineSnapshot) -> None:
    got, x, y = merged.latency, a.latency, b.latency
    assert got.count == x.count + y.count
    assert got.total == pytest.approx(x.total + y.total)
    assert (got.minimum, got.maximum) == (min(x.minimum, y.minimum), max(x.maximum, y.maximum))
    assert sorted(got.samples) == sorted(x.samples + y.samples)
    assert got.events == x.events + y.events
    assert got.last_event_ns == max(x.last_event_ns or 0, y.last_event_ns or 0)


def check_counters(merged: PipelineSnapshot, a: PipelineSnapshot, b: PipelineSnapshot) -> None:
    assert set(merged.counters) == set(a.counters) | set(b.counters)
    for name, value in merged.counters.items():
        assert value == a.counters.get(name, 0) + b.counters.get(name, 0), name
    assert merged.counters["replica_restarts"] == 30  # a counter seen in both adds up


def check_stages(merged: PipelineSnapshot, a: PipelineSnapshot, b: PipelineSnapshot) -> None:
    expected = [("box1", stage) for stage in a.stages] + [("box2", stage) for stage in b.stages]
    assert len(merged.stages) == len(expected)
    for got, (prefix, given) in zip(merged.stages, expected, strict=True):
        check_stage(got, given, prefix)


def check_state(merged: PipelineSnapshot, a: PipelineSnapshot, b: PipelineSnapshot) -> None:
    nodes = merged.state.node_states
    expected = {f"box1__{k}": v for k, v in a.state.node_states.items()}
    expected |= {f"box2__{k}": v for k, v in b.state.node_states.items()}
    assert set(nodes) == set(expected)
    for key, node in nodes.items():
        assert node.main_loop_timing == expected[key].main_loop_timing, key
        assert node.state == expected[key].state, key


def check_no_traces(merged: PipelineSnapshot, a: PipelineSnapshot, b: PipelineSnapshot) -> None:
    assert merged.traces == ()  # frame traces stay with their own pipeline's snapshot
    assert merged.trace_nodes == ()
    assert merged.node_ids == tuple(s.key for s in merged.stages if s.working)


def check_sources(merged: PipelineSnapshot, a: PipelineSnapshot, b: PipelineSnapshot) -> None:
    assert list(merged.sources) == ["box1__cam", "box2__cam"]
    assert merged.sources["box1__cam"] == dataclasses.replace(a.sources["cam"], name="box1__cam")
    assert merged.sources["box2__cam"] == dataclasses.replace(b.sources["cam"], name="box2__cam")


def equal_to(value: Any) -> Callable[[Any], None]:
    def check(got: Any) -> None:
        assert got == value

    return check


#: Per PipelineSnapshot field: how the merge of two differing snapshots must show it.
PIPELINE_RULES: dict[str, Check] = {
    "pipeline": lambda m, a, b: equal_to("fleet")(m.pipeline),
    "latency": check_latency,
    "counters": check_counters,
    "stages": check_stages,
    "taken_ns": lambda m, a, b: equal_to(max(a.taken_ns, b.taken_ns))(m.taken_ns),
    "wall_time": lambda m, a, b: equal_to(datetime.datetime(2024, 1, 2, tzinfo=UTC))(m.wall_time),
    "mode": lambda m, a, b: equal_to(None)(m.mode),  # parallel and serial: no one mode
    "debug": lambda m, a, b: equal_to(False)(m.debug),  # one had it on, one off
    "trace_nodes": check_no_traces,
    "cpu_count": lambda m, a, b: equal_to(None)(m.cpu_count),  # 5 and 6 cores: unknown
    "cpu_load": lambda m, a, b: equal_to(None)(m.cpu_load),  # two processes' loads
    "source_error": lambda m, a, b: equal_to(
        "Cam: ValueError: camera 1 gone; Door: ValueError: camera 2 gone"
    )(m.source_error),
    "machine": lambda m, a, b: equal_to(None)(m.machine),  # two machines' loads: none is both
    "sources": check_sources,
    "viewers": lambda m, a, b: equal_to(a.viewers + b.viewers)(m.viewers),  # each box's, listed
    "clips": lambda m, a, b: equal_to(a.clips + b.clips)(m.clips),  # each box's recorders
    "_state": check_state,
    "_traces": check_no_traces,
}


def check_stage(got: StageSnapshot, given: StageSnapshot, prefix: str) -> None:
    rules: dict[str, Any] = {name.name: getattr(given, name.name) for name in _stage_fields()}
    rules["key"] = f"{prefix}__{given.key}"
    rules["replica_of"] = None if given.replica_of is None else f"{prefix}__{given.replica_of}"
    for name, value in rules.items():
        assert getattr(got, name) == value, f"{given.key}.{name}"


def _stage_fields() -> tuple[dataclasses.Field[Any], ...]:
    return dataclasses.fields(StageSnapshot)


#: StageSnapshot fields the merge rewrites; every other one is carried unchanged.
STAGE_REWRITTEN = {"key", "replica_of"}
STAGE_CARRIED = {
    "stage",
    "latency",
    "failures",
    "working",
    "queue_depth",
    "queue_capacity",
    "phase",
    "replicas",
    "held",
    "cpu",
    "executor",
    "batch",
}


def test_every_field_has_a_merge_rule() -> None:
    names = {f.name for f in dataclasses.fields(PipelineSnapshot)}
    assert names == set(PIPELINE_RULES), "a PipelineSnapshot field without a merge rule here"
    stage_names = {f.name for f in _stage_fields()}
    assert stage_names == STAGE_REWRITTEN | STAGE_CARRIED, "a StageSnapshot field without a rule"


@pytest.mark.parametrize("field", sorted(PIPELINE_RULES))
def test_each_field_of_two_differing_snapshots_merges_by_its_rule(
    pair: tuple[PipelineSnapshot, PipelineSnapshot], field: str
) -> None:
    a, b = pair
    merged = merge_snapshots(a, b, prefixes=["box1", "box2"], name="fleet")
    PIPELINE_RULES[field](merged, a, b)


def test_every_stage_field_is_set_and_carried_with_its_prefixed_key(
    pair: tuple[PipelineSnapshot, PipelineSnapshot],
) -> None:
    a, b = pair
    for name in STAGE_CARRIED:  # so a field swapped or taken from the other input shows
        values = [getattr(stage, name) for stage in a.stages + b.stages]
        defaults = StageSnapshot(key="k", stage="s", latency=a.latency)
        assert any(value != getattr(defaults, name) for value in values), name
    merged = merge_snapshots(a, b, prefixes=["box1", "box2"])
    check_stages(merged, a, b)
    assert merged.pipeline == "Cam+Door"


def test_what_describes_one_machine_is_kept_where_every_snapshot_has_the_same(
    pair: tuple[PipelineSnapshot, PipelineSnapshot],
) -> None:
    a, b = pair
    same = {
        "mode": "parallel",
        "debug": True,
        "cpu_count": 8,
        "cpu_load": 1.5,
        "machine": load(0.5),
        "wall_time": None,
        "source_error": None,
    }
    a, b = dataclasses.replace(a, **same), dataclasses.replace(b, **same)
    merged = merge_snapshots(a, b, prefixes=["box1", "box2"])
    for name, value in same.items():
        assert getattr(merged, name) == value, name
    other = dataclasses.replace(b, machine=dataclasses.replace(load(0.5), load1=2.0))
    assert merge_snapshots(a, other, prefixes=["box1", "box2"]).machine is None


def test_one_snapshot_merges_into_itself_but_for_its_traces(
    pair: tuple[PipelineSnapshot, PipelineSnapshot],
) -> None:
    a, _ = pair
    merged = merge_snapshots(a)
    kept = set(PIPELINE_RULES) - {"trace_nodes", "_state", "_traces"}
    for name in kept:
        got, given = getattr(merged, name), getattr(a, name)
        if name == "latency":
            assert (got.count, got.samples, got.events) == (
                given.count,
                given.samples,
                given.events,
            )
        elif name == "source_error":
            assert got == f"Cam: {given}"
        else:
            assert got == given, name
    check_no_traces(merged, a, a)
    assert merged.state.node_states == a.state.node_states
