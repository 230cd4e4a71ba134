"""Thread replicas of a stage: order kept, every item counted, each replica in the state."""

from __future__ import annotations

import random
import threading
import time
from typing import Any

import pytest

from framescope import Pipeline, Stage
from framescope.pipeline import StageError
from framescope.pipeline.replicas.base import ThreadExecutor
from tests.polling import wait_for

from .helpers import FailOn


class Jitter(Stage):
    """Sleeps a random 0-3 ms per item (seeded by the item), notes which thread ran it."""

    def __init__(self) -> None:
        self.name = "Jitter"
        self.threads: set[str] = set()
        self.lock = threading.Lock()

    def __call__(self, item: int) -> int:
        with self.lock:
            self.threads.add(threading.current_thread().name)
        time.sleep(random.Random(item).uniform(0, 0.003))
        return item


class HeldHead(Stage):
    """Holds item 0 until ``release`` is set; every other item passes at once."""

    def __init__(self) -> None:
        self.name = "Held"
        self.release = threading.Event()
        self.holding = threading.Event()

    def __call__(self, item: int) -> int:
        if item == 0:
            self.holding.set()
            assert self.release.wait(30)
        return item


@pytest.mark.parametrize("debug", [False, True])
def test_results_keep_their_order_under_random_delays(debug: bool) -> None:
    stage = Jitter()
    with Pipeline(debug=debug) as pipeline:
        pipeline.add(lambda x: x, "Before").add(stage, replicas=4).add(lambda x: x, "After")
        pipeline.parallelize(queue_size=2)
        assert list(pipeline.run(range(300))) == list(range(300))
        snapshot = pipeline.snapshot()
    assert len(stage.threads) == 4  # every replica took items
    entry = snapshot.stage("MainPipeline__Jitter")
    assert entry.replicas == 4 and entry.latency.count == 300
    replicas = snapshot.replicas_of("MainPipeline__Jitter")
    assert [r.key for r in replicas] == [f"MainPipeline__Jitter#{i}" for i in range(4)]
    assert sum(r.latency.count for r in replicas) == 300
    assert all(not r.working and r.replica_of == entry.key for r in replicas)
    assert snapshot.counters["completed"] == 300 and snapshot.counters["in_flight"] == 0
    if debug:
        nodes = snapshot.state.node_states
        assert {f"MainPipeline__Jitter#{i}" for i in range(4)} <= set(nodes)
        frames = {span.node_id for trace in snapshot.traces for span in trace.spans}
        assert "MainPipeline__Jitter#0" in frames and "MainPipeline__Jitter" not in frames


def test_unordered_results_leave_as_they_finish_and_none_is_lost() -> None:
    class SlowFirst(Stage):
        def __call__(self, item: int) -> int:
            if item == 0:
                time.sleep(0.05)
            return item

    with Pipeline() as pipeline:
        pipeline.add(SlowFirst(), replicas=2, ordered=False).parallelize(queue_size=4)
        results = list(pipeline.run(range(40)))
    assert sorted(results) == list(range(40))
    assert results[0] != 0  # item 0 was overtaken


def test_a_held_head_holds_the_others_back_within_the_window() -> None:
    stage = HeldHead()
    pipeline = Pipeline(results_size=100).add(stage, replicas=2).parallelize(queue_size=2)
    try:
        for item in range(3):
            assert pipeline.forward(item)
        assert stage.holding.wait(10)
        # replicas + queue size = 4 items may be taken ahead of the head; the rest wait
        held = pipeline.snapshot
        wait_for(lambda: held().stage("MainPipeline__Held").held == 2, 10, "two items held")
        for item in range(3, 6):
            assert pipeline.forward(item)
        time.sleep(0.05)  # give a replica the chance to take more than the window allows
        entry = pipeline.snapshot().stage("MainPipeline__Held")
        assert entry.held == 3 and entry.queue_depth == 2  # 1..3 done and held, 4, 5 queued
        assert pipeline.get_results() is None  # nothing overtook the head
        stage.release.set()
        pipeline.close()
        assert pipeline.join(10)
        assert list(pipeline.results(timeout=0)) == list(range(6))
        assert pipeline.counters()["reorder_waits"] >= 1
    finally:
        stage.release.set()
        pipeline.cleanup()


def test_failures_are_counted_and_skipped_items_leave_no_gap() -> None:
    bad = set(range(0, 100, 7))
    with Pipeline() as pipeline:
        pipeline.add(FailOn(bad), replicas=3, on_error="skip").add(lambda x: x, "After")
        pipeline.parallelize(queue_size=2)
        results = list(pipeline.run(range(100)))
        counts = pipeline.counters()
        failures = pipeline.stage_failures()
    assert results == [item for item in range(100) if item not in bad]
    assert counts["failed"] == len(bad) and counts["completed"] == 100 - len(bad)
    assert failures["MainPipeline__FailOn"] == len(bad)


def test_a_raised_error_comes_in_its_items_place() -> None:
    with Pipeline() as pipeline:
        pipeline.add(FailOn({5}), replicas=2).parallelize(queue_size=2)
        seen: list[Any] = []
        results = pipeline.run(range(10))
        with pytest.raises(StageError) as raised:
            for item in results:
                seen.append(item)
        assert seen == [0, 1, 2, 3, 4] and raised.value.item == 5


def test_cleanup_with_items_inside_accounts_for_all_of_them() -> None:
    stage = HeldHead()
    pipeline = Pipeline().add(stage, replicas=3).add(lambda x: x, "After")
    pipeline.parallelize(queue_size=2)
    for item in range(6):
        assert pipeline.forward(item)
    assert stage.holding.wait(10)
    stopping = threading.Thread(target=pipeline.cleanup, kwargs={"timeout": 30})
    stopping.start()
    wait_for(lambda: pipeline.counters()["discarded"] >= 5, 30, "five items discarded")
    stage.release.set()
    stopping.join(30)
    counts = pipeline.counters()
    assert counts["discarded"] == 6 and counts["in_flight"] == 0, counts
    assert counts["forwarded"] == counts["completed"] + counts["discarded"]


def test_a_replicated_last_stage_delivers_in_order_and_ends() -> None:
    with Pipeline(input_generator=range(50)) as pipeline:
        pipeline.add(lambda x: x, "First").add(Jitter(), replicas=3).parallelize()
        pipeline.start_loop(0)
        assert pipeline.join(30)
        assert list(pipeline.results(timeout=0)) == list(range(50))


def test_diagnosis_reports_each_replica_and_names_a_slow_one() -> None:
    class OneSlow(Stage):
        name = "Infer"

        def __call__(self, item: int) -> int:
            slow = threading.current_thread().name.endswith("#1")
            time.sleep(0.012 if slow else 0.002)
            return item

    with Pipeline() as pipeline:
        pipeline.add(OneSlow(), replicas=2).parallelize(queue_size=2)
        assert len(list(pipeline.run(range(60)))) == 60
        diagnosis = pipeline.diagnose()
    text = diagnosis.report()
    assert "MainPipeline__Infer runs on 2 replicas" in text
    assert "MainPipeline__Infer#1 is slow" in text
    assert diagnosis.stages[0].replicas == 2


def test_the_suggestion_counts_replicas_when_cores_are_idle() -> None:
    from dataclasses import replace

    from framescope.pipeline.model.cpu import MachineLoad
    from framescope.pipeline.views.diagnosis import diagnose_snapshot

    from .test_diagnosis_boundaries import snapshot, split, stage

    # Infer sleeps 99% of the time (blocked, not waiting for a CPU); Read is idle.
    sleeping = split(0.99, 0.05, 0.01, 0.93)
    measured = snapshot(stage("Read", 10_000_000), stage("Infer", 990_000_000, cpu=sleeping))
    idle = MachineLoad(cores=8, window_s=5.0, cpu_busy=1 / 8, load1=1.0, process_cores=1.0)
    many = diagnose_snapshot(replace(measured, cpu_count=8, cpu_load=1.0, machine=idle))
    assert many.verdict == "stage-bound"
    assert many.suggestion is not None and "add(..., replicas=" in many.suggestion
    assert "cores are idle" in many.suggestion
    full = MachineLoad(cores=1, window_s=5.0, cpu_busy=1.0, load1=3.0, process_cores=0.1)
    one = diagnose_snapshot(replace(measured, cpu_count=1, cpu_load=0.1, machine=full))
    assert one.suggestion is None or "replicas=" not in one.suggestion


@pytest.mark.parametrize(
    ("kwargs", "error", "words"),
    [
        ({"replicas": 0}, ValueError, "replicas"),
        ({"replicas": "2"}, TypeError, "replicas"),
        ({"executor": "gpu"}, ValueError, "executor must be one of thread, process, ray"),
        ({"executor": 3}, TypeError, "executor must be one of"),
        ({"ordered": "yes"}, TypeError, "ordered must be a bool"),
    ],
)
def test_bad_replica_arguments_are_refused_at_add(
    kwargs: dict[str, Any], error: type[Exception], words: str
) -> None:
    with pytest.raises(error, match=words):
        Pipeline().add(lambda x: x, **kwargs)


def test_a_nested_pipeline_cannot_be_replicated_and_an_executor_object_is_taken() -> None:
    inner = Pipeline(name="Inner").add(lambda x: x + 1, "Add")
    with pytest.raises(ValueError, match="nested pipeline"):
        Pipeline().add(inner, replicas=2)
    with Pipeline() as pipeline:
        pipeline.add(lambda x: x * 2, "Double", replicas=2, executor=ThreadExecutor())
        pipeline.parallelize()
        assert list(pipeline.run(range(5))) == [0, 2, 4, 6, 8]


def test_replicas_in_a_serial_pipeline_run_the_stage_in_the_callers_thread() -> None:
    with Pipeline() as pipeline:
        pipeline.add(lambda x: threading.current_thread().name, "Where", replicas=3)
        assert list(pipeline.run(range(2))) == [threading.current_thread().name] * 2


def test_custom_blocks_of_a_replicated_stage_land_on_the_replica_that_ran_them() -> None:
    class Blocks(Stage):
        name = "Blocks"

        def __call__(self, item: int) -> int:
            with self.events.block("work"):
                time.sleep(0.001)
            return item

    with Pipeline(debug=True) as pipeline:
        pipeline.add(Blocks(), replicas=2).parallelize(queue_size=2)
        assert len(list(pipeline.run(range(40)))) == 40
        nodes = pipeline.snapshot().state.node_states
    counts = [nodes[f"MainPipeline__Blocks#{i}"].other_timings["work"].count for i in (0, 1)]
    assert sum(counts) == 40 and all(counts)
    assert "work" not in nodes["MainPipeline__Blocks"].other_timings


def test_a_replicated_stage_inside_a_threaded_nested_pipeline() -> None:
    inner = Pipeline(name="Inner").add(lambda x: x, "A")
    inner.add(lambda x: x + 1, "B", replicas=3).add(lambda x: x, "C").parallelize()
    with Pipeline(name="Outer", debug=True) as outer:
        outer.add(lambda x: x, "Pre").add(inner).add(lambda x: x * 10, "Post")
        outer.parallelize(queue_size=2)
        assert list(outer.run(range(50))) == [(i + 1) * 10 for i in range(50)]
        snapshot = outer.snapshot()
    replicas = snapshot.replicas_of("Outer__Inner__B")
    assert len(replicas) == 3 and sum(r.latency.count for r in replicas) == 50
    edge = Pipeline(name="Edge").add(lambda x: x, "A", replicas=2).add(lambda x: x, "B")
    edge.parallelize()
    outer = Pipeline(name="Outer").add(edge).parallelize()
    with pytest.raises(ValueError, match="first or last stage of the threaded nested"):
        outer.start()
    outer.cleanup()


def test_unordered_last_replicas_record_each_latency_whole() -> None:
    """Replicas that deliver side by side must not interleave a latency's two readings.

    Item k enters at k ms on a fake clock and every item is delivered at 10 s:
    the latencies' sum is known exactly, and a pair split across two items
    (two replicas appending at once) would change it.
    """
    from framescope.clock import FakeClock

    items, clock, gate = 400, FakeClock(start_ns=0), threading.Event()

    def held(x: int) -> int:
        gate.wait(30)
        return x

    pipeline = Pipeline(results_size=items + 1, name="LatencyPairs", clock=clock)
    pipeline.add(held, "Work", replicas=4, ordered=False)
    pipeline.parallelize(queue_size=items, input_timeout=None)
    pipeline.start()
    runtime = pipeline._runtime
    add = runtime._latency_add

    def add_then_yield(pair: tuple[int, int]) -> None:
        add(pair)
        time.sleep(0)  # let another replica run between two items' pairs

    runtime._latency_add = add_then_yield
    try:
        for i in range(items):
            clock.advance_ns(1_000_000 if i else 0)
            pipeline.forward(i)
        clock.advance_ns(10 * 10**9 - clock.monotonic_ns())
        gate.set()
        wait_for(lambda: pipeline.counters()["completed"] == items, 60, "every result")
        latency = pipeline.statistics()["LatencyPairs"]
    finally:
        gate.set()
        pipeline.cleanup()
    assert latency.count == items
    assert latency.total == pytest.approx(sum(10.0 - k / 1000 for k in range(items)))
    assert latency.minimum == pytest.approx(10.0 - (items - 1) / 1000)
