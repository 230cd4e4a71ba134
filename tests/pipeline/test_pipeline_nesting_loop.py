from __future__ import annotations

import datetime
import threading
import time
from itertools import islice
from typing import Any

import pytest

from framescope import Pipeline
from framescope.clock import FakeClock
from framescope.pipeline import PipelineStoppedError
from framescope.pipeline.runtime.loop import PeriodicGrid

from .helpers import Busy, Counter


def build_child(mode: str, name: str = "Child") -> tuple[Pipeline, Counter, Counter]:
    a, b = Counter("StageA", add=10), Counter("StageB", add=100)
    child = Pipeline(name=name).add(a).add(b)
    child.serialize() if mode == "serial" else child.parallelize()
    return child, a, b


@pytest.mark.parametrize("parent_mode", ["serial", "parallel"])
@pytest.mark.parametrize("child_mode", ["serial", "parallel"])
def test_nested_pipeline_in_both_modes(parent_mode: str, child_mode: str) -> None:
    before = set(threading.enumerate())
    child, a, b = build_child(child_mode)
    parent = Pipeline().add(Counter("Stage1", add=1))
    parent.add(child.as_stage(), "ChildPipeline").add(Counter("Stage2", add=1000))
    parent.serialize() if parent_mode == "serial" else parent.parallelize(queue_size=2)
    for i in range(20):
        assert parent.forward(i)
    assert list(islice(parent.results(timeout=10), 20)) == [i + 1111 for i in range(20)]
    latency, throughput = parent.get_profiles()
    assert list(latency) == [
        "MainPipeline",
        "MainPipeline__Stage1",
        "MainPipeline__ChildPipeline",
        "MainPipeline__ChildPipeline__StageA",
        "MainPipeline__ChildPipeline__StageB",
        "MainPipeline__Stage2",
    ]
    assert list(throughput) == list(latency)
    assert all(rate > 0 for rate in throughput.values())
    stats = parent.statistics()
    assert all(stats[key].count == 20 for key in latency)
    assert latency["MainPipeline__ChildPipeline"] >= latency["MainPipeline__ChildPipeline__StageA"]
    assert parent.cleanup() == []
    assert a.cleanups == b.cleanups == 1
    assert set(threading.enumerate()) - before == set()


def test_two_levels_of_nesting_with_mixed_modes() -> None:
    inner = Pipeline(name="Inner").add(Counter("Deep", add=1)).add(Counter("Deeper", add=1))
    inner.parallelize()
    middle = Pipeline(name="Middle").add(Counter("M", add=1)).add(inner, "Inner").serialize()
    outer = Pipeline().add(Counter("O", add=1)).add(middle, "Middle").parallelize()
    for i in range(10):
        outer.forward(i)
    assert list(islice(outer.results(timeout=10), 10)) == [i + 4 for i in range(10)]
    assert "MainPipeline__Middle__Inner__Deeper" in outer.get_profiles()[0]
    assert outer.statistics()["MainPipeline__Middle__Inner__Deep"].count == 10
    outer.cleanup()


def test_parallel_child_is_spliced_into_the_parent_threads() -> None:
    child, _, _ = build_child("parallel")
    parent = Pipeline().add(Counter("S", add=0)).add(child, "C").parallelize()
    parent.forward(0)
    next(parent.results(timeout=10))
    names = {t.name for t in threading.enumerate()}
    assert {"framescope:MainPipeline__S", "framescope:MainPipeline__C__StageA"} <= names
    parent.cleanup()


def test_nested_latency_spans_the_child_stages() -> None:
    clock = FakeClock()
    child = Pipeline(name="C", clock=clock).add(Busy("A", clock, 0.01)).add(Busy("B", clock, 0.02))
    parent = Pipeline(clock=clock).add(Busy("P", clock, 0.005)).add(child, "C").serialize()
    parent.forward(None)
    latency, _ = parent.get_profiles()
    assert latency["MainPipeline__C"] == pytest.approx(0.03)
    assert latency["MainPipeline"] == pytest.approx(0.035)


def test_a_nested_pipeline_is_fed_through_its_parent() -> None:
    child, _, _ = build_child("serial")
    Pipeline().add(child)
    with pytest.raises(RuntimeError, match="nested in 'MainPipeline'"):
        child.forward(1)
    with pytest.raises(ValueError, match="already nested elsewhere"):
        Pipeline().add(child)


def test_a_pipeline_cannot_contain_itself() -> None:
    pipeline = Pipeline(name="Loop").add(lambda d: d)
    with pytest.raises(ValueError, match="cannot contain itself"):
        pipeline.add(pipeline, "Self")


# --- the input loop ---------------------------------------------------------------


def test_periodic_grid_keeps_period_without_drift() -> None:
    grid = PeriodicGrid(period_ns=100, start_ns=1_000)
    assert grid.advance(1_030) == 70  # cycle took 30: wait until 1_100
    assert grid.advance(1_145) == 55  # due 1_200
    assert grid.advance(1_299) == 1
    assert grid.overruns == 0
    assert grid.due_ns == 1_300


def test_periodic_grid_overrun_starts_next_cycle_at_once_and_counts() -> None:
    grid = PeriodicGrid(period_ns=100, start_ns=0)
    assert grid.advance(250) == 0  # slots 100 and 200 missed
    assert grid.overruns == 1
    assert grid.due_ns == 200
    assert grid.advance(260) == 40  # back on the grid: 300
    with pytest.raises(ValueError, match="period must be positive"):
        PeriodicGrid(0, 0)


@pytest.mark.parametrize("mode", ["serial", "parallel"])
def test_loop_pulls_from_an_iterator_until_it_ends(mode: str) -> None:
    pipeline = Pipeline(input_generator=iter(range(5))).add(lambda d: d * 3)
    pipeline.serialize() if mode == "serial" else pipeline.parallelize(queue_size=8)
    pipeline.start_loop(datetime.timedelta(microseconds=10))
    assert list(islice(pipeline.results(timeout=10), 5)) == [0, 3, 6, 9, 12]
    assert pipeline.stop_loop()
    assert pipeline.cleanup() == []


def test_loop_with_a_callable_generator_and_stop() -> None:
    calls = threading.Event()
    produced: list[int] = []

    def generate() -> int:
        produced.append(len(produced))
        if len(produced) >= 3:
            calls.set()
        return produced[-1]

    pipeline = Pipeline(input_generator=generate).add(lambda d: d).parallelize(queue_size=64)
    pipeline.start_loop(0.0001)
    assert calls.wait(10)
    assert pipeline.stop_loop()
    n = len(produced)
    assert list(islice(pipeline.results(timeout=10), 3)) == [0, 1, 2]
    assert len(produced) == n  # nothing pulled after stop_loop returned
    pipeline.cleanup()


def test_cleanup_stops_the_input_loop() -> None:
    produced: list[int] = []
    started = threading.Event()

    def generate() -> int:
        produced.append(len(produced))
        started.set()
        return produced[-1]

    pipeline = Pipeline(input_generator=generate).add(lambda d: d).parallelize(queue_size=4)
    pipeline.start_loop(0.0001)
    assert started.wait(10)
    assert pipeline.cleanup() == []  # without stop_loop() first
    n = len(produced)
    loops = [t for t in threading.enumerate() if t.name == "framescope:MainPipeline:loop"]
    assert loops == []  # the loop's thread has ended ...
    time.sleep(0.01)
    assert len(produced) == n  # ... and pulls nothing more


def test_an_input_generator_that_raises_ends_the_input_and_raises_after_its_items() -> None:
    attempts = iter([1, 2, "boom", 3])

    def generate() -> int:
        value = next(attempts)
        if value == "boom":
            raise OSError("camera glitch")
        return int(value)

    pipeline = Pipeline(input_generator=generate).add(lambda d: d).serialize()
    pipeline.start_loop(0.0001)
    results = pipeline.results(timeout=10)
    assert [next(results), next(results)] == [1, 2]
    with pytest.raises(OSError, match="camera glitch"):
        next(results)
    with pytest.raises(OSError, match="camera glitch"):
        pipeline.join(10)
    counts = pipeline.counters()
    assert counts["loop_errors"] == 1 and counts["source_errors"] == 1
    assert counts["forwarded"] == counts["completed"] == 2
    assert pipeline.snapshot().source_error == "OSError: camera glitch"
    assert next(attempts) == 3  # nothing pulled after the failure
    assert pipeline.cleanup() == []


def test_start_loop_twice_is_an_error_and_stop_without_loop_a_no_op() -> None:
    release = threading.Event()

    def generate() -> int:
        release.wait(10)
        return 1

    pipeline = Pipeline(input_generator=generate).add(lambda d: d).serialize()
    assert pipeline.stop_loop() is False
    pipeline.start_loop(1.0)
    with pytest.raises(RuntimeError, match="already runs a loop"):
        pipeline.start_loop(1.0)
    release.set()
    assert pipeline.cleanup() == []


@pytest.mark.parametrize(
    ("period", "error", "message"),
    [
        (-1, ValueError, "period must be positive or 0"),
        (datetime.timedelta(seconds=-1), ValueError, "period must be positive or 0"),
        ("fast", TypeError, "period must be a number of seconds"),
    ],
)
def test_start_loop_rejects_bad_periods(period: Any, error: type[Exception], message: str) -> None:
    pipeline = Pipeline(input_generator=lambda: 1).add(lambda d: d)
    with pytest.raises(error, match=message):
        pipeline.start_loop(period)


def test_start_loop_needs_an_input_generator() -> None:
    with pytest.raises(ValueError, match="needs the pipeline's input_generator"):
        Pipeline().add(lambda d: d).start_loop(1)


# --- bad input ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("build", "error", "message"),
    [
        (lambda p: p.add(42), TypeError, "stage must be callable"),
        (
            lambda p: p.add(lambda d: d, "A").add(lambda d: d, "A"),
            ValueError,
            "already has a stage named 'A'",
        ),
        (lambda p: p.add(lambda d: d, "a__b"), ValueError, "without '__'"),
        (lambda p: p.add(lambda d: d, ""), ValueError, "non-empty"),
        (lambda p: p.add(lambda d: d, 5), TypeError, "name must be a str"),
        (
            lambda p: p.add(lambda d: d, on_error="ignore"),
            ValueError,
            "on_error must be one of 'raise', 'skip', 'stop'",
        ),
        (
            lambda p: p.add(lambda d: d, queue_size=0),
            ValueError,
            "queue_size must be a positive integer \\(>= 1\\)",
        ),
        (
            lambda p: p.add(lambda d: d).parallelize(queue_size=-1),
            ValueError,
            "queue_size must be a positive integer \\(>= 1\\)",
        ),
        (
            lambda p: p.add(lambda d: d).parallelize(queue_size=1.5),
            TypeError,
            "queue_size must be a positive int",
        ),
        (
            lambda p: p.add(lambda d: d).parallelize(overflow="wait"),
            ValueError,
            "overflow must be one of",
        ),
        (
            lambda p: p.add(lambda d: d).parallelize(input_timeout=-1),
            ValueError,
            "input_timeout must be >= 0",
        ),
    ],
)
def test_bad_input_is_a_clear_error(build: Any, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        build(Pipeline())


def test_adding_after_start_is_an_error() -> None:
    pipeline = Pipeline().add(lambda d: d).serialize()
    with pytest.raises(RuntimeError, match="already started"):
        pipeline.add(lambda d: d)


def test_bad_constructor_arguments() -> None:
    with pytest.raises(TypeError, match="input_generator must be a callable"):
        Pipeline(input_generator=42)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="window must be a positive integer \\(>= 1\\)"):
        Pipeline(window=0)
    with pytest.raises(ValueError, match="results_size must be a non-negative integer"):
        Pipeline(results_size=-1)
    with pytest.raises(TypeError, match="results_bytes must be a positive integer or None"):
        Pipeline(results_bytes=1.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="results_bytes must be a positive integer \\(>= 1\\)"):
        Pipeline(results_bytes=0)
    with pytest.raises(ValueError, match="name must be a non-empty str"):
        Pipeline(name="")


def test_the_loop_ends_when_a_stage_stops_the_pipeline_and_pulls_no_more() -> None:
    pulled: list[int] = []

    def generate() -> int:
        pulled.append(len(pulled))
        return pulled[-1]

    def stop_on_three(x: int) -> int:
        if x == 3:
            raise ValueError("three")
        return x

    pipeline = Pipeline(input_generator=generate).add(stop_on_three, on_error="stop")
    pipeline.parallelize(queue_size=2)
    pipeline.start_loop(0)
    with pytest.raises(PipelineStoppedError):
        list(pipeline.results(timeout=30))
    deadline = time.monotonic() + 30
    loop = pipeline._runtime.loop  # the loop thread itself (no public probe)
    while loop is not None and loop.running:
        assert time.monotonic() < deadline, "the input loop kept pulling after the stop"
        time.sleep(0.001)
    assert len(pulled) <= 3 + 2 + 2  # up to the failing item, the queue and one in hand
    assert pipeline.counters()["loop_errors"] == 0
    assert pipeline.cleanup() == []
