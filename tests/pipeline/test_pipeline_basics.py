from __future__ import annotations

import threading
from itertools import islice
from typing import Any

import pytest

from framescope import Pipeline, Stage
from framescope.clock import FakeClock
from framescope.pipeline import PipelineClosedError

from .helpers import Busy, Counter


def double(data: int) -> int:
    return data * 2


@pytest.mark.parametrize("mode", ["serial", "parallel"])
def test_items_flow_through_all_stages_in_order(mode: str) -> None:
    with Pipeline() as pipeline:
        a, b = Counter("StageA", add=1), Counter("StageB", add=10)
        pipeline.add(a).add(b).add(double)
        pipeline.serialize() if mode == "serial" else pipeline.parallelize(queue_size=2)
        for i in range(50):
            assert pipeline.forward(i)
        results = list(islice(pipeline.results(timeout=10), 50))
        assert results == [(i + 11) * 2 for i in range(50)]
        assert a.count == b.count == 50
    assert a.cleanups == b.cleanups == 1


def test_get_results_returns_latest_and_none_when_nothing_new() -> None:
    pipeline = Pipeline().add(double).serialize()
    assert pipeline.get_results() is None
    for i in range(5):
        pipeline.forward(i)
    assert pipeline.get_results() == 8
    assert pipeline.get_results() is None
    assert pipeline.counters()["results_skipped"] == 4
    pipeline.cleanup()


def test_default_names_and_profile_keys() -> None:
    pipeline = Pipeline(use_profiler=True)
    pipeline.add(Counter("StageA")).add(Counter("StageB")).add(double).add(double)
    assert pipeline.stage_names == ["StageA", "StageB", "Stage_1", "Stage_2"]
    pipeline.add(lambda d: d, "Custom")
    pipeline.serialize()
    pipeline.forward(1)
    latency, throughput = pipeline.get_profiles()
    assert list(latency) == [
        "MainPipeline",
        "MainPipeline__StageA",
        "MainPipeline__StageB",
        "MainPipeline__Stage_1",
        "MainPipeline__Stage_2",
        "MainPipeline__Custom",
    ]
    assert list(throughput) == list(latency)
    pipeline.cleanup()


def test_default_names_skip_names_already_taken() -> None:
    pipeline = Pipeline().add(double, "Stage_1").add(double)
    assert pipeline.stage_names == ["Stage_1", "Stage_2"]


def test_profiles_measure_latency_and_throughput_exactly() -> None:
    clock = FakeClock()
    pipeline = Pipeline(clock=clock, name="Cam")
    pipeline.add(Busy("Decode", clock, 0.010)).add(Busy("Infer", clock, 0.030))
    pipeline.serialize()
    for _ in range(20):
        pipeline.forward(None)
        clock.advance(0.060)  # one item every 100 ms
    latency, throughput = pipeline.get_profiles()
    assert latency["Cam"] == pytest.approx(0.040)
    assert latency["Cam__Decode"] == pytest.approx(0.010)
    assert latency["Cam__Infer"] == pytest.approx(0.030)
    for key in latency:
        assert throughput[key] == pytest.approx(10.0)
    stats = pipeline.statistics()
    assert stats["Cam__Infer"].count == 20
    assert stats["Cam__Infer"].summary().p99 == pytest.approx(0.030)


def test_serial_timers_count_every_item_and_stay_bounded_when_nobody_reads() -> None:
    from framescope.pipeline.runtime.item import SETTLE_EVERY
    from framescope.timepiece.timers import FOLD_AT

    clock = FakeClock()
    pipeline = Pipeline(clock=clock, name="Long", results_size=1)
    pipeline.add(Busy("A", clock, 0.001)).add(Busy("B", clock, 0.002)).serialize()
    items = 3 * FOLD_AT + 7
    for _ in range(items):
        pipeline.forward(None)
        bound = FOLD_AT + 2 * SETTLE_EVERY  # readings waiting for a fold, at most
        watches = [step.watch for step in pipeline._tree.steps] + [pipeline._watch]
        assert all(len(watch._pending) <= bound for watch in watches)
    stats = pipeline.statistics()
    assert stats["Long__A"].count == stats["Long__B"].count == stats["Long"].count == items
    assert stats["Long__B"].total == pytest.approx(0.002 * items)
    assert stats["Long"].total == pytest.approx(0.003 * items)
    assert pipeline.counters()["completed"] == items


@pytest.mark.parametrize("debug", [False, True])
def test_a_pipeline_called_as_a_stage_keeps_its_timers_bounded(debug: bool) -> None:
    from framescope.pipeline.runtime.item import SETTLE_EVERY
    from framescope.timepiece.timers import FOLD_AT

    inner = Pipeline(name="Inner", debug=debug).add(double).add(double, "Again")
    stage = inner.as_stage()  # each call runs the stages inline, in a unit built for it
    items = 2 * FOLD_AT + 3
    bound = FOLD_AT + 2 * SETTLE_EVERY
    for i in range(items):
        assert stage(i) == 4 * i
        assert all(len(step.watch._pending) <= bound for step in inner._tree.steps)
    assert inner.statistics()["Inner__Again"].count == items
    inner.cleanup()


def test_timers_stay_bounded_when_a_later_stage_fails_every_item() -> None:
    from framescope.pipeline.runtime.item import SETTLE_EVERY
    from framescope.timepiece.timers import FOLD_AT

    def fails(data: int) -> int:
        raise ValueError("never")

    pipeline = Pipeline(name="Failing", results_size=1).add(double).add(fails, on_error="skip")
    pipeline.serialize()
    try:
        for i in range(3 * FOLD_AT):
            pipeline.forward(i)
        bound = FOLD_AT + 2 * SETTLE_EVERY
        assert len(pipeline._tree.steps[0].watch._pending) <= bound
        assert pipeline.statistics()["Failing__Stage_1"].count == 3 * FOLD_AT
    finally:
        pipeline.cleanup()


def test_two_threads_feeding_a_serial_pipeline_never_split_a_timing() -> None:
    import sys

    pipeline = Pipeline(name="TwoFeeders", results_size=1).add(double).serialize()
    switch = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as the interpreter allows
    try:
        feeders = [
            threading.Thread(target=lambda: [pipeline.forward(i) for i in range(20_000)])
            for _ in range(2)
        ]
        for thread in feeders:
            thread.start()
        for thread in feeders:
            thread.join(60)
    finally:
        sys.setswitchinterval(switch)
    stats = pipeline.statistics()
    pipeline.cleanup()
    for key in ("TwoFeeders", "TwoFeeders__Stage_1"):
        assert stats[key].count == 40_000
        assert stats[key].minimum >= 0, key  # a pair split across items could read < 0


def test_throughput_is_a_rate_not_a_mean_of_reciprocals() -> None:
    clock = FakeClock()
    pipeline = Pipeline(clock=clock).add(Busy("S", clock, 0.001)).serialize()
    for gap in (0.0, 0.009, 0.989):  # items at 0, 10 ms, 1 s: 2 intervals in 1 s
        clock.advance(gap)
        pipeline.forward(None)
    _, throughput = pipeline.get_profiles()
    assert throughput["MainPipeline__S"] == pytest.approx(2.0)


def test_profiles_survive_cleanup() -> None:
    stage = Counter("S")
    pipeline = Pipeline().add(stage).parallelize()
    for i in range(3):
        pipeline.forward(i)
    assert list(islice(pipeline.results(timeout=10), 3)) == [1, 2, 3]
    pipeline.cleanup()
    assert stage.count == 0  # its cleanup ran
    assert pipeline.statistics()["MainPipeline__S"].count == 3


def test_forward_without_mode_runs_serially() -> None:
    pipeline = Pipeline().add(double)
    assert pipeline.forward(4)
    assert pipeline.mode == "serial"
    assert pipeline.get_results() == 8


def test_cleanup_is_idempotent_and_forward_after_cleanup_raises() -> None:
    stage = Counter("S")
    pipeline = Pipeline().add(stage).parallelize()
    pipeline.forward(1)
    assert pipeline.cleanup() == []
    assert pipeline.cleanup() == []
    assert stage.cleanups == 1
    assert pipeline.closed
    with pytest.raises(PipelineClosedError, match="cleaned up"):
        pipeline.forward(2)
    with pytest.raises(PipelineClosedError):
        pipeline.parallelize()


def test_cleanup_leaves_no_thread_behind() -> None:
    before = set(threading.enumerate())
    pipeline = Pipeline().add(double).add(double).add(double).parallelize()
    pipeline.forward(1)
    assert next(iter(pipeline)) == 8
    started = {t.name for t in set(threading.enumerate()) - before}
    stages = {f"framescope:MainPipeline__Stage_{n}" for n in (1, 2, 3)}
    assert started == stages | {"framescope:MainPipeline:cpu"}  # one per stage, one reading CPU
    assert pipeline.cleanup() == []
    assert set(threading.enumerate()) - before == set()


def test_cleanup_counts_items_still_in_flight() -> None:
    from .helpers import Gate

    gate = Gate()
    pipeline = Pipeline().add(gate).add(double).parallelize(queue_size=2)
    for i in range(3):
        assert pipeline.forward(i)
    gate.entered.wait(10)
    gate.release.set()
    pipeline.cleanup()
    counts = pipeline.counters()
    assert counts["forwarded"] == 3
    assert counts["completed"] + counts["discarded"] == 3


def test_stage_class_with_cleanup_default() -> None:
    class Plain(Stage):
        name = "Plain"

        def __call__(self, data: Any) -> Any:
            return data

    with Pipeline().add(Plain()) as pipeline:
        pipeline.forward(1)
        assert pipeline.get_results() == 1
    with pytest.raises(TypeError):
        Stage()  # type: ignore[abstract]


def test_repr() -> None:
    pipeline = Pipeline(name="P").add(double, "D")
    assert repr(pipeline) == "<Pipeline P [D] not started>"
    pipeline.serialize()
    assert repr(pipeline) == "<Pipeline P [D] serial>"
    pipeline.cleanup()
    assert repr(pipeline) == "<Pipeline P [D] closed>"


def test_forward_without_data_pulls_from_the_input_generator() -> None:
    source = iter([5, 6])
    pipeline = Pipeline(input_generator=source).add(double).serialize()
    assert pipeline.forward()
    assert pipeline.forward()
    assert list(pipeline.results(timeout=0)) == [10, 12]
    with pytest.raises(ValueError, match="no input_generator"):
        Pipeline().add(double).forward()


def test_block_output_makes_get_results_wait_for_a_result() -> None:
    from .helpers import Gate

    gate = Gate()
    pipeline = Pipeline().add(gate).parallelize(block_output=True, output_timeout=10)
    pipeline.forward(7)
    gate.entered.wait(10)
    threading.Timer(0.01, gate.release.set).start()
    assert pipeline.get_results() == 7  # waited for the gate instead of returning None
    pipeline.cleanup()
    nonblocking = Pipeline().add(gate).parallelize(block_output=False)
    assert nonblocking.get_results() is None
    nonblocking.cleanup()


def test_pystream_style_positional_parallelize() -> None:
    pipeline = Pipeline().add(double)
    pipeline.parallelize(True, 10, False, 10)
    pipeline.forward(2)
    assert next(pipeline.results(timeout=10)) == 4
    pipeline.cleanup()


def test_start_launches_threads_before_the_first_item() -> None:
    before = set(threading.enumerate())
    pipeline = Pipeline(name="Early").add(double, "D").parallelize()
    assert set(threading.enumerate()) - before == set()  # nothing runs before start
    assert pipeline.start() is pipeline
    started = {t.name for t in set(threading.enumerate()) - before}
    assert started == {"framescope:Early__D", "framescope:Early:cpu"}
    assert pipeline.cleanup() == []
    assert set(threading.enumerate()) - before == set()


def test_a_stage_added_twice_is_cleaned_up_once() -> None:
    shared = Counter("Shared")
    child = Pipeline(name="Child").add(shared, "Inner")
    pipeline = Pipeline().add(shared, "First").add(shared, "Second").add(child, "Child")
    pipeline.serialize()
    pipeline.forward(0)
    assert pipeline.get_results() == 3
    pipeline.cleanup()
    assert shared.cleanups == 1
    assert child.closed


def test_per_stage_queue_size() -> None:
    from .helpers import Gate

    gate = Gate()
    pipeline = Pipeline().add(gate, queue_size=3).parallelize(block_input=False)
    assert pipeline.forward(0)  # taken by the gate
    gate.entered.wait(10)
    assert [pipeline.forward(i) for i in range(1, 5)] == [True, True, True, False]
    assert pipeline.counters()["rejected"] == 1
    gate.release.set()
    assert list(islice(pipeline.results(timeout=10), 4)) == [0, 1, 2, 3]
    pipeline.cleanup()


def test_an_unnamed_stage_is_called_after_its_class() -> None:
    class Resize(Stage):
        def __call__(self, data: int) -> int:
            return data

    pipeline = Pipeline().add(Resize()).add(Resize()).add(double).add(lambda x: x)
    assert pipeline.stage_names == ["Resize", "Resize_2", "Stage_1", "Stage_2"]
    with pytest.raises(TypeError, match=r"got the class Resize; pass an instance: Resize\(\)"):
        pipeline.add(Resize)  # type: ignore[arg-type]
    assert Pipeline().add(str).stage_names == ["Stage_1"]  # a class that is no Stage is a callable
