"""Pipeline.snapshot(): one frozen reading that every read call is computed from."""

from __future__ import annotations

import copy
import dataclasses
import functools
import json
import operator
import re
from itertools import islice
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from framescope import Pipeline
from framescope.clock import FakeClock
from framescope.live.view import page_view
from framescope.pipeline import PipelineSnapshot, SnapshotFormatError, merge_snapshots
from framescope.pipeline.views.diagnosis import diagnose_snapshot

from .helpers import Busy, FailOn


def serial_pipeline(clock: FakeClock, name: str = "Cam", debug: bool = False) -> Pipeline:
    pipeline = Pipeline(name=name, clock=clock, debug=debug)
    pipeline.add(Busy("Decode", clock, 0.002)).add(FailOn({3}), on_error="skip")
    pipeline.add(Busy("Infer", clock, 0.010)).serialize()
    for i in range(6):
        pipeline.forward(i)
    return pipeline


def test_a_snapshot_holds_every_number_of_one_instant(clock: FakeClock) -> None:
    pipeline = serial_pipeline(clock)
    snapshot = pipeline.snapshot()
    assert snapshot.pipeline == "Cam"
    assert snapshot.mode == "serial"
    assert [s.key for s in snapshot.stages] == ["Cam__Decode", "Cam__FailOn", "Cam__Infer"]
    assert [s.stage for s in snapshot.stages] == ["Decode", "FailOn", "Infer"]
    assert snapshot.stage("Cam__FailOn").failures == 1
    assert snapshot.stage("Cam__Infer").latency.count == 5
    assert snapshot.stage("Cam__Infer").latency.recent_mean() == pytest.approx(0.010)
    assert snapshot.latency.count == 5
    assert snapshot.counters["forwarded"] == 6
    assert snapshot.counters["completed"] == 5
    assert snapshot.counters["failed"] == 1
    assert snapshot.taken_ns == clock.monotonic_ns()
    assert snapshot.wall_time == clock.wall()
    assert all(s.queue_depth is None and s.phase is None for s in snapshot.stages)
    with pytest.raises(KeyError, match="stages are: Cam__Decode"):
        snapshot.stage("Cam__Nope")
    with pytest.raises(dataclasses.FrozenInstanceError):
        snapshot.pipeline = "other"  # type: ignore[misc]
    pipeline.cleanup()


def test_read_calls_are_renderings_of_a_snapshot(clock: FakeClock) -> None:
    pipeline = serial_pipeline(clock)
    snapshot = pipeline.snapshot()
    assert pipeline.statistics() == snapshot.statistics()
    assert pipeline.get_profiles() == snapshot.get_profiles()
    assert pipeline.counters() == snapshot.counters
    assert pipeline.stage_failures() == {s.key: s.failures for s in snapshot.stages}
    assert str(pipeline.diagnose()) == str(diagnose_snapshot(snapshot))
    assert pipeline.get_pipeline_state().to_json() == snapshot.state.to_json()
    pipeline.cleanup()


def test_snapshot_round_trips_through_json(clock: FakeClock) -> None:
    pipeline = Pipeline(name="Cam", clock=clock, debug=True)
    pipeline.add(Busy("Decode", clock, 0.002)).add(Busy("Infer", clock, 0.010))
    pipeline.parallelize(queue_size=4)
    for i in range(5):
        pipeline.forward(i)
    assert len(list(islice(pipeline.results(timeout=10), 5))) == 5
    snapshot = pipeline.snapshot()
    pipeline.cleanup()
    assert snapshot.debug
    assert len(snapshot.traces) == 5
    assert snapshot.stage("Cam__Infer").queue_capacity == 4
    assert snapshot.stage("Cam__Infer").phase in ("GETTING_INPUTS", "IDLE")
    assert snapshot.node("Cam__Infer").main_loop_timing.count == 5  # one loop per item handed on
    assert snapshot.node("Cam__Infer").input_states["in"].queue_stats.max_queued >= 0
    with pytest.raises(KeyError, match="nodes are: Cam__Decode, Cam__Infer"):
        snapshot.node("Cam__Nope")
    text = json.dumps(snapshot.to_dict())
    back = PipelineSnapshot.from_dict(json.loads(text))
    assert back.to_dict() == snapshot.to_dict()
    assert back.traces == snapshot.traces
    assert back.stages == snapshot.stages
    assert (
        back.statistics()["Cam__Infer"].distribution
        == snapshot.statistics()["Cam__Infer"].distribution
    )


def test_merge_snapshots_prefixes_and_adds(clock: FakeClock) -> None:
    a = serial_pipeline(clock, name="Cam")
    b = serial_pipeline(clock, name="Cam")
    merged = merge_snapshots(a.snapshot(), b.snapshot(), prefixes=["box1", "box2"], name="fleet")
    assert merged.pipeline == "fleet"
    assert [s.key for s in merged.stages][:2] == ["box1__Cam__Decode", "box1__Cam__FailOn"]
    assert len(merged.stages) == 6
    assert merged.counters["forwarded"] == 12
    assert merged.latency.count == 10
    assert "box2__Cam__Infer" in merged.state.node_states
    with pytest.raises(ValueError, match="pass prefixes"):
        merge_snapshots(a.snapshot(), b.snapshot())
    with pytest.raises(ValueError, match="one entry per snapshot"):
        merge_snapshots(a.snapshot(), prefixes=["x", "y"])
    with pytest.raises(TypeError, match="PipelineSnapshot"):
        merge_snapshots(a.snapshot(), "b")  # type: ignore[arg-type]
    a.cleanup()
    b.cleanup()


def test_snapshot_before_start_and_of_a_nested_threaded_pipeline(clock: FakeClock) -> None:
    inner = Pipeline(name="Inner", clock=clock).add(Busy("Resize", clock, 0.001)).parallelize()
    outer = Pipeline(name="Outer", clock=clock).add(Busy("Decode", clock, 0.001)).add(inner)
    before = outer.snapshot()
    assert before.mode is None and before.latency.count == 0
    assert all(not node.main_loop_timing.is_valid() for node in before.state.node_states.values())
    outer.parallelize()
    outer.forward(1)
    assert list(islice(outer.results(timeout=10), 1)) == [1]
    snapshot = outer.snapshot()
    working = {s.key: s.working for s in snapshot.stages}
    assert working == {
        "Outer__Decode": True,
        "Outer__Inner": False,  # its own stage runs in a thread; this entry is the span
        "Outer__Inner__Resize": True,
    }
    assert snapshot.node_ids == ("Outer__Decode", "Outer__Inner__Resize")
    outer.cleanup()


def recorded_snapshot() -> dict[str, Any]:
    """A real snapshot's JSON: debugging on (node states, traces), a latency distribution."""
    clock = FakeClock(start_ns=1_000_000_000)
    pipeline = Pipeline(name="Cam", clock=clock, debug=True)
    pipeline.add(Busy("Decode", clock, 0.002)).add(FailOn({2}), on_error="skip")
    pipeline.parallelize(queue_size=4)
    for i in range(4):
        pipeline.forward(i)
    assert len(list(islice(pipeline.results(timeout=10), 3))) == 3
    data: dict[str, Any] = json.loads(json.dumps(pipeline.snapshot().to_dict()))
    pipeline.cleanup()
    return data


RECORDED = recorded_snapshot()

JUNK = st.sampled_from(
    [
        None,
        -1,
        -(2**70),
        2**63,
        10**400,
        1.5,
        float("nan"),
        float("inf"),
        True,
        "",
        "junk",
        "2024-13-45",
        [],
        [-1],
        [None, "x"],
        {},
        {"a": [1, {"b": None}]},
        {"node_states": 3},
        [[1, 2, 3]],
        ["x", -1, 2**70],
    ]
)


def every_place(node: Any, at: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """The path of every value in a JSON document (keys and list indexes)."""
    places = [at] if at else []
    if isinstance(node, dict):
        for key, value in node.items():
            places += every_place(value, (*at, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            places += every_place(value, (*at, index))
    return places


PLACES = every_place(RECORDED)


def test_the_recorded_snapshot_has_what_the_mutations_aim_at() -> None:
    assert RECORDED["traces"] and RECORDED["traces"][0]["spans"]
    assert RECORDED["state"]["node_states"]["Cam__Decode"]["main_loop_timing"]["count"] > 0
    assert RECORDED["stages"][0]["latency"]["distribution"]["counts"]
    assert PipelineSnapshot.from_dict(copy.deepcopy(RECORDED)).to_dict() == RECORDED


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_a_mutated_snapshot_reads_back_or_is_one_error_naming_the_field(data: Any) -> None:
    document = copy.deepcopy(RECORDED)
    for _ in range(data.draw(st.integers(1, 3), label="mutations")):
        place = data.draw(st.sampled_from(PLACES), label="place")
        *parents, last = place
        try:
            container = functools.reduce(operator.getitem, parents, document)
            container[last]  # a place an earlier mutation removed is skipped
        except (KeyError, IndexError, TypeError):
            continue
        if isinstance(container, dict) and data.draw(st.booleans(), label="drop"):
            del container[last]
        else:
            container[last] = data.draw(JUNK, label="junk")
    try:
        snapshot = PipelineSnapshot.from_dict(document)
    except SnapshotFormatError as error:
        # The message starts with the field's path: ``stages[0].latency.count: ...``.
        assert re.match(r"^[a-z_]+(\[\d+\]|\[[^\]]+\]|\.[\w#]+)*: ", str(error)), str(error)  # noqa: PT017
        return
    # What was read is a snapshot every renderer can show.
    json.dumps(snapshot.to_dict(), allow_nan=False)
    page_view(snapshot)
    str(snapshot)
    merge_snapshots(snapshot, snapshot, prefixes=["a", "b"])
