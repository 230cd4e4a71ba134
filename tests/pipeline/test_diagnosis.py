from __future__ import annotations

import threading
from itertools import islice
from typing import Any

import pytest

from framescope import Pipeline
from framescope.clock import FakeClock

from .helpers import Busy, Gate


def test_serial_bottleneck_and_exact_busy_fractions() -> None:
    clock = FakeClock()
    pipeline = Pipeline(clock=clock, name="Cam")
    pipeline.add(Busy("Decode", clock, 0.001)).add(Busy("Infer", clock, 0.010))
    pipeline.add(Busy("Draw", clock, 0.002)).serialize()
    for i in range(30):
        pipeline.forward(i)
    diagnosis = pipeline.diagnose()
    assert diagnosis.bottleneck == "Cam__Infer"
    busy = {stage.node_id: stage.busy for stage in diagnosis.stages}
    assert busy["Cam__Infer"] == pytest.approx(10 / 13)
    assert busy["Cam__Decode"] == pytest.approx(1 / 13)
    assert diagnosis.latency_p50_s == pytest.approx(0.013)
    assert diagnosis.latency_p99_s == pytest.approx(0.013)
    assert diagnosis.verdict == "stage-bound"  # serial: the stages share one busy thread
    report = str(diagnosis)
    assert report.startswith("Stage-bound: Cam__Infer holds the pipeline back")
    assert "p99 13.00 ms" in report
    assert "Losses: none" in report


def sleeper(seconds: float) -> Any:
    pause = threading.Event()

    def stage(data: Any) -> Any:
        pause.wait(seconds)  # releases the GIL like real work on a device
        return data

    return stage


def test_parallel_bottleneck_with_queue_evidence() -> None:
    with Pipeline(debug=True) as pipeline:
        pipeline.add(sleeper(0.0002), "Decode").add(sleeper(0.004), "Infer").add(
            sleeper(0.0004), "Draw"
        )
        pipeline.parallelize(queue_size=4, input_timeout=None)
        for i in range(60):
            pipeline.forward(i)
        assert len(list(islice(pipeline.results(timeout=30), 60))) == 60
        diagnosis = pipeline.diagnose()
    assert diagnosis.verdict == "stage-bound"
    assert diagnosis.bottleneck == "MainPipeline__Infer"
    (infer,) = [stage for stage in diagnosis.stages if stage.node_id == "MainPipeline__Infer"]
    # A busy machine makes the sleeping stage wait for a CPU at each wake-up:
    # then that is what the suggestion rightly names.
    expected = (
        "MainPipeline__Infer waits for a CPU"
        if infer.kind == "CPU-starved"
        else "MainPipeline__Infer sets the pace"
    )
    assert diagnosis.suggestion is not None and expected in diagnosis.suggestion
    assert any("input queue is full" in reason for reason in diagnosis.reasons)
    assert any("MainPipeline__Draw waits for its input" in r for r in diagnosis.reasons)


def test_nothing_processed_yet() -> None:
    diagnosis = Pipeline().add(lambda d: d, "A").diagnose()
    assert diagnosis.verdict == "not enough data"
    assert diagnosis.bottleneck is None
    assert diagnosis.report().startswith("Not enough data yet: fewer than two items")


def test_losses_are_reported() -> None:
    gate = Gate()
    pipeline = Pipeline().add(gate).parallelize(queue_size=1, overflow="drop_newest")
    pipeline.forward(0)
    gate.entered.wait(10)
    for i in range(1, 4):
        pipeline.forward(i)
    gate.release.set()
    list(islice(pipeline.results(timeout=10), 2))
    diagnosis = pipeline.diagnose()
    assert diagnosis.losses == {"dropped": 2}
    assert diagnosis.verdict == "dropping"
    assert "2 at the input: new items found the queue full" in diagnosis.reasons
    assert "Losses: dropped 2" in diagnosis.report()
    pipeline.cleanup()


def test_source_bound_says_how_much_headroom() -> None:
    clock = FakeClock()
    pipeline = Pipeline(clock=clock, name="Cam")
    pipeline.add(Busy("Decode", clock, 0.010)).add(Busy("Infer", clock, 0.030)).serialize()
    for item in range(30):
        pipeline.forward(item)
        clock.advance(0.060)  # one item every 100 ms: the stages rest 60% of the time
    diagnosis = pipeline.diagnose()
    assert diagnosis.verdict == "source-bound"
    assert diagnosis.bottleneck == "Cam__Infer"  # the busiest, though it sets no pace
    assert str(diagnosis).startswith("Source-bound: the pipeline keeps up with its input")
    assert "input arrives at 10.0 items/s" in diagnosis.reasons[0]
    assert "busy 30%" in diagnosis.reasons[0]
    assert "about 2.5x the current input rate" in diagnosis.reasons[1]
    assert diagnosis.suggestion is None


def test_dropping_unread_results_suggests_reading_them() -> None:
    pipeline = Pipeline(results_size=2).add(lambda x: x, "A").serialize()
    for item in range(10):
        pipeline.forward(item)  # nobody reads
    diagnosis = pipeline.diagnose()
    assert diagnosis.verdict == "dropping"
    assert diagnosis.headline == "8 of 10 items were lost (80%)"
    assert "8 results dropped unread: read results() or pass results_size=0" in diagnosis.reasons
    assert diagnosis.suggestion is not None and "results_size=0" in diagnosis.suggestion


def test_drop_oldest_is_reported_as_dropping_not_waiting() -> None:
    gate = Gate()
    pipeline = Pipeline(debug=True).add(gate).add(lambda x: x, "After")
    pipeline.parallelize(queue_size=2, overflow="drop_oldest")
    pipeline.forward(0)
    assert gate.entered.wait(10)
    for item in range(1, 21):
        pipeline.forward(item)
    gate.release.set()
    list(islice(pipeline.results(timeout=10), 3))
    diagnosis = pipeline.diagnose()
    assert diagnosis.verdict == "dropping"
    assert "18 at the input: the oldest queued items made room for new ones" in diagnosis.reasons
    assert not any("waits" in reason for reason in diagnosis.reasons)
    pipeline.cleanup()


def test_failing_names_the_stage_and_its_share() -> None:
    def flaky(item: int) -> int:
        if item % 5 == 0:
            raise ValueError("bad frame")
        return item

    pipeline = Pipeline(name="Cam").add(flaky, "Detect", on_error="skip").serialize()
    for item in range(50):
        pipeline.forward(item)
    diagnosis = pipeline.diagnose()
    assert diagnosis.verdict == "failing"
    assert diagnosis.headline == "10 of 50 items failed (20%)"
    assert diagnosis.reasons == ("Cam__Detect failed 10 of its items",)


def test_stalled_names_where_the_items_are_held() -> None:
    clock = FakeClock()
    gate = Gate()
    pipeline = Pipeline(debug=True, clock=clock).add(lambda x: x, "Decode").add(gate)
    pipeline.parallelize(queue_size=4)
    for item in range(3):
        pipeline.forward(item)
    assert gate.entered.wait(10)
    assert pipeline.diagnose().verdict != "stalled"  # not yet: no time has passed
    clock.advance(6.0)
    diagnosis = pipeline.diagnose()
    assert diagnosis.verdict == "stalled"
    assert diagnosis.headline == "no item completed for 6.0 s"
    assert (
        diagnosis.reasons[0] == "3 item(s) are inside the pipeline and none has come out for 6.0 s"
    )
    assert diagnosis.reasons[1] == "MainPipeline__Gate is still processing its item"
    assert diagnosis.bottleneck == "MainPipeline__Gate"
    gate.release.set()
    pipeline.cleanup()


def test_busy_shares_are_bounded() -> None:
    clock = FakeClock()
    pipeline = Pipeline(clock=clock).add(Busy("Slow", clock, 0.050)).serialize()
    for item in range(20):
        pipeline.forward(item)
    for load in pipeline.diagnose().stages:
        assert 0.0 <= load.busy <= 1.0


def test_a_stage_whose_input_queue_stays_full_sets_the_pace_however_busy_it_looks() -> None:
    # On a shared machine a stage's measured busy share can fall below the bound
    # (a window that includes its start, time spent waiting for a core) while the
    # stages before it wait to hand items over: the full queue is the measured fact.
    pipeline = Pipeline(debug=True)
    pipeline.add(sleeper(0.0002), "Decode").add(sleeper(0.004), "Infer")
    pipeline.parallelize(queue_size=4, input_timeout=None)
    for i in range(60):
        pipeline.forward(i)
    assert len(list(islice(pipeline.results(timeout=30), 60))) == 60
    snapshot = pipeline.snapshot()
    pipeline.cleanup()
    from dataclasses import replace

    from framescope.pipeline.views.diagnosis import _pace, diagnose_snapshot

    measured = diagnose_snapshot(snapshot).stages
    loads = tuple(replace(load, busy=min(load.busy, 0.6)) for load in measured)
    busiest = next(load for load in loads if load.node_id == "MainPipeline__Infer")
    verdict, _headline, reasons, _, bottleneck = _pace(snapshot, loads, busiest)
    assert verdict == "stage-bound" and bottleneck == "MainPipeline__Infer"
    assert any("input queue is full" in reason for reason in reasons)
    without_debug = replace(snapshot, debug=False)  # no queue readings: busy alone decides
    assert _pace(without_debug, loads, busiest)[0] == "source-bound"
