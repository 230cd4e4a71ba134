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
    report = str(diagnosis)
    assert report.startswith("Bottleneck: Cam__Infer")
    assert "p99 13.00 ms" in report
    assert "Losses: none" in report


def sleeper(seconds: float) -> Any:
    pause = threading.Event()

    def stage(data: Any) -> Any:
        pause.wait(seconds)  # releases the GIL like real work on a device
        return data

    return stage


def test_parallel_bottleneck_with_queue_evidence() -> None:
    pipeline = Pipeline(debug=True)
    pipeline.add(sleeper(0.0002), "Decode").add(sleeper(0.004), "Infer").add(
        sleeper(0.0004), "Draw"
    )
    pipeline.parallelize(queue_size=4, input_timeout=None)
    for i in range(60):
        pipeline.forward(i)
    assert len(list(islice(pipeline.results(timeout=30), 60))) == 60
    diagnosis = pipeline.diagnose()
    assert diagnosis.bottleneck == "MainPipeline__Infer"
    assert any("input queue is full" in reason for reason in diagnosis.reasons)
    assert any("MainPipeline__Draw waits for its input" in r for r in diagnosis.reasons)
    pipeline.cleanup()


def test_nothing_processed_yet() -> None:
    diagnosis = Pipeline().add(lambda d: d, "A").diagnose()
    assert diagnosis.bottleneck is None
    assert "none yet" in diagnosis.report()


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
    assert "Losses: dropped 2" in diagnosis.report()
    pipeline.cleanup()
