"""The PyStream demo notebook's scenarios, with only the import changed.

The notebook waits with ``time.sleep(5)``; here each wait is on an event set by
the last stage once enough items went through, so no test sleeps.
"""

from __future__ import annotations

import threading
from itertools import islice
from typing import Any

from framescope import Pipeline, Stage


class DummyStage(Stage):
    """Counts the items it processed; cleanup resets the counter (as in the notebook)."""

    def __init__(self, name: str, seen: threading.Event | None = None, wanted: int = 0) -> None:
        self.count = 0
        self.name = name
        self.seen = seen
        self.wanted = wanted

    def __call__(self, data: dict[str, Any]) -> dict[str, Any]:
        data["data"] = [v + 1 for v in data["data"]]
        self.count += 1
        if self.seen is not None and self.count >= self.wanted:
            self.seen.set()
        return data

    def cleanup(self) -> None:
        self.count = 0


def dummy_stage_func(data: dict[str, Any]) -> dict[str, Any]:
    data["data"] = [v * 2 for v in data["data"]]
    return data


def generate_data() -> dict[str, Any]:
    return {"data": [0, 1, 2]}


def run_automated(mode: str) -> None:
    enough = threading.Event()
    pipeline = Pipeline(input_generator=generate_data, use_profiler=True)
    stages = [DummyStage(f"Stage{i + 1}") for i in range(4)]
    stages.append(DummyStage("Stage5", enough, wanted=5))
    for stage in stages:
        pipeline.add(stage)
    pipeline.serialize() if mode == "serial" else pipeline.parallelize()
    pipeline.start_loop(0.001)
    assert enough.wait(10)
    pipeline.stop_loop()
    latest = pipeline.get_results()
    assert latest["data"] == [5, 6, 7]
    assert stages[-1].count >= 5
    pipeline.cleanup()
    assert stages[-1].count == 0
    latency, throughput = pipeline.get_profiles()
    assert list(latency) == ["MainPipeline"] + [f"MainPipeline__Stage{i}" for i in range(1, 6)]
    assert all(value > 0 for value in throughput.values())


def test_automated_pipeline_serial() -> None:
    run_automated("serial")


def test_automated_pipeline_parallel() -> None:
    run_automated("parallel")


def test_manually_triggered_pipeline() -> None:
    pipeline = Pipeline(input_generator=generate_data, use_profiler=True)
    pipeline.add(DummyStage("StageA"))
    pipeline.add(DummyStage("StageB"))
    pipeline.add(dummy_stage_func)
    pipeline.add(dummy_stage_func)
    pipeline.parallelize(block_input=True, input_timeout=10)
    for _ in range(10):
        pipeline.forward({"data": [0, 0, 0]})
    results = list(islice(pipeline.results(timeout=10), 10))  # instead of sleep(5)
    assert len(results) == 10
    assert results[-1]["data"] == [8, 8, 8]
    pipeline.cleanup()
    latency, _ = pipeline.get_profiles()
    assert list(latency) == [
        "MainPipeline",
        "MainPipeline__StageA",
        "MainPipeline__StageB",
        "MainPipeline__Stage_1",
        "MainPipeline__Stage_2",
    ]


def test_mixed_pipeline() -> None:
    child_pipeline = Pipeline(input_generator=generate_data, use_profiler=True)
    child_pipeline.add(DummyStage("StageA"))
    child_pipeline.add(DummyStage("StageB"))
    child_pipeline.serialize()

    parent_pipeline = Pipeline(input_generator=generate_data, use_profiler=True)
    parent_pipeline.add(DummyStage("Stage1"))
    parent_pipeline.add(DummyStage("Stage2"))
    parent_pipeline.add(child_pipeline.as_stage(), "ChildPipeline")
    parent_pipeline.parallelize(block_input=True)

    for _ in range(10):
        parent_pipeline.forward({"data": [0]})
    results = [next(parent_pipeline.results(timeout=10)) for _ in range(10)]
    assert all(r["data"] == [4] for r in results)
    parent_pipeline.cleanup()
    latency, throughput = parent_pipeline.get_profiles()
    assert list(latency) == [
        "MainPipeline",
        "MainPipeline__Stage1",
        "MainPipeline__Stage2",
        "MainPipeline__ChildPipeline",
        "MainPipeline__ChildPipeline__StageA",
        "MainPipeline__ChildPipeline__StageB",
    ]
    assert set(throughput) == set(latency)
