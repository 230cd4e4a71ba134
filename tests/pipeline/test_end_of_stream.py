"""Streams that end: close(), join(), run(source), an input that runs out."""

from __future__ import annotations

import threading
import time
from itertools import islice
from typing import Any

import pytest

from framescope import Pipeline
from framescope.pipeline import PipelineClosedError
from tests.polling import wait_for

from .helpers import FailOn, Gate


def three_stages(mode: str, **options: Any) -> Pipeline:
    pipeline = Pipeline(**options).add(lambda x: x + 1, "A").add(lambda x: x * 2, "B")
    pipeline.add(lambda x: x - 1, "C")
    return pipeline.serialize() if mode == "serial" else pipeline.parallelize(queue_size=4)


@pytest.mark.parametrize("mode", ["serial", "parallel"])
@pytest.mark.parametrize("debug", [False, True])
def test_run_yields_every_result_in_order_and_ends(mode: str, debug: bool) -> None:
    pipeline = three_stages(mode, debug=debug, results_size=8)  # fewer than the items
    results = list(pipeline.run(range(500)))  # ends by itself, no timeout to wait out
    assert results == [(i + 1) * 2 - 1 for i in range(500)]
    counts = pipeline.counters()
    assert counts["forwarded"] == counts["completed"] == 500
    assert counts["results_dropped"] == 0  # results waited for the reader
    assert pipeline.join(0)
    assert pipeline.cleanup() == []


def test_run_ends_soon_after_the_last_result() -> None:
    pipeline = three_stages("parallel")
    ended = []
    for _ in pipeline.run(range(50)):
        ended.append(time.monotonic())
    after = time.monotonic() - ended[-1]
    assert len(ended) == 50
    assert after < 1.0  # not a results() timeout (there is none)
    pipeline.cleanup()


def test_close_carries_what_is_in_flight_through_and_ends_results() -> None:
    gate = Gate()
    pipeline = Pipeline().add(gate).add(lambda x: x * 10, "Tens").parallelize(queue_size=8)
    for i in range(5):
        pipeline.forward(i)
    assert gate.entered.wait(10)
    pipeline.close()
    with pytest.raises(PipelineClosedError, match="no more input"):
        pipeline.forward(99)
    assert not pipeline.join(0.01)  # item 0 is still inside the gate
    gate.release.set()
    assert pipeline.join(10)
    assert list(pipeline.results(timeout=None)) == [0, 10, 20, 30, 40]
    assert pipeline.counters()["discarded"] == 0
    pipeline.cleanup()


def test_get_results_returns_the_last_after_close() -> None:
    pipeline = three_stages("parallel")
    for i in range(10):
        pipeline.forward(i)
    pipeline.close()
    assert pipeline.join(10)
    assert pipeline.get_results() == 19
    pipeline.cleanup()


@pytest.mark.parametrize("mode", ["serial", "parallel"])
def test_an_input_generator_that_runs_out_closes_the_pipeline(mode: str) -> None:
    pipeline = Pipeline(input_generator=[3, 1, 2]).add(lambda x: x * 2)
    pipeline.serialize() if mode == "serial" else pipeline.parallelize()
    pipeline.start_loop(0)  # as fast as the stage accepts
    assert list(pipeline.results()) == [6, 2, 4]  # ends by itself
    assert pipeline.join(0)
    pipeline.cleanup()


def test_start_loop_zero_follows_a_slow_stage_without_losing_items() -> None:
    release = threading.Event()

    def slow(x: int) -> int:
        release.wait(10)
        return x

    pipeline = (
        Pipeline(input_generator=range(20)).add(slow).parallelize(queue_size=1, input_timeout=0.01)
    )
    pipeline.start_loop(0)
    time.sleep(0.05)  # longer than input_timeout: a timed feeder would have been refused
    release.set()
    assert list(pipeline.results()) == list(range(20))
    assert pipeline.counters()["rejected"] == 0
    pipeline.cleanup()


def test_cleanup_drain_carries_items_through_and_plain_cleanup_discards() -> None:
    gate = Gate()
    drained = Pipeline().add(gate).add(lambda x: x, "Out").parallelize(queue_size=8)
    for i in range(4):
        drained.forward(i)
    assert gate.entered.wait(10)
    threading.Timer(0.05, gate.release.set).start()
    assert drained.cleanup(timeout=10, drain=True) == []
    assert drained.counters()["completed"] == 4
    assert drained.counters()["discarded"] == 0

    gate = Gate()
    stopped = Pipeline().add(gate).add(lambda x: x, "Out").parallelize(queue_size=8)
    for i in range(4):
        stopped.forward(i)
    assert gate.entered.wait(10)
    threading.Timer(0.05, gate.release.set).start()
    assert stopped.cleanup(timeout=10) == []
    counts = stopped.counters()
    assert counts["discarded"] == 4 and counts["completed"] == 0  # stop now: all discarded


def test_run_raises_a_stage_error_in_its_place() -> None:
    from framescope.pipeline import StageError

    pipeline = Pipeline().add(FailOn({2}), on_error="raise").parallelize(queue_size=4)
    seen = []
    with pytest.raises(StageError, match="bad item 2"):
        for result in pipeline.run(range(5)):
            seen.append(result)
    assert seen == [0, 1]
    assert list(islice(pipeline.results(timeout=10), 2)) == [3, 4]
    pipeline.cleanup()


def test_close_before_start_and_twice_is_harmless() -> None:
    pipeline = three_stages("parallel")
    pipeline.close()
    pipeline.close()
    assert pipeline.join(0)
    assert list(pipeline.results()) == []
    pipeline.cleanup()


def test_an_item_given_to_forward_is_never_lost_to_an_earlier_error() -> None:
    from framescope.pipeline import StageError

    pipeline = Pipeline().add(FailOn({0}), on_error="raise").parallelize(queue_size=4)
    pipeline.forward(0)
    assert pipeline.join(0) is False
    pipeline.close()
    assert pipeline.join(10)
    pipeline.cleanup()
    # The next pipeline: item 0's error waits while item 1 is handed in.
    pipeline = Pipeline().add(FailOn({0}), on_error="raise").serialize()
    pipeline._runtime.submit(0, raise_now=False)  # as the input loop does: stored in place
    with pytest.raises(StageError, match="bad item 0"):
        pipeline.forward(1)  # item 1 was accepted before the earlier error was raised
    assert pipeline.counters()["forwarded"] == 2
    assert pipeline.get_results() == 1
    pipeline.cleanup()


def test_cleanup_timeouts() -> None:
    pipeline = three_stages("parallel")
    for bad in ("2", float("nan"), -1.0, float("inf")):
        with pytest.raises((TypeError, ValueError), match="timeout"):
            pipeline.cleanup(timeout=bad)  # type: ignore[arg-type]
    assert not pipeline.closed  # refused before anything changed
    pipeline.forward(1)
    assert pipeline.cleanup(timeout=None) == []  # None: no limit
    assert pipeline.closed
    with pytest.raises(ValueError, match="input_timeout must be >= 0"):
        three_stages("serial").parallelize(input_timeout=float("inf"))


def test_a_hung_stage_fed_by_the_loop_is_the_only_one_named() -> None:
    release = threading.Event()

    def hang(x: int) -> int:
        release.wait(30)
        return x

    pipeline = Pipeline(input_generator=lambda: 1).add(hang, "Hang").parallelize(queue_size=1)
    pipeline.start_loop(0)
    time.sleep(0.05)  # the loop now waits to put an item into the full queue
    started = time.monotonic()
    hung = pipeline.cleanup(timeout=0.3)
    elapsed = time.monotonic() - started
    release.set()
    assert hung == ["MainPipeline__Hang"]  # the loop was let go, not reported
    assert elapsed < 2.0  # one deadline for all, not one per thread
    hanging = "framescope:MainPipeline__Hang"
    wait_for(lambda: all(t.name != hanging for t in threading.enumerate()), 10, "the thread gone")


class Fatal(BaseException):
    """A BaseException of the user's own."""


@pytest.mark.parametrize("exception", [SystemExit(3), KeyboardInterrupt(), Fatal("boom")])
def test_a_base_exception_in_a_stage_thread_stops_the_pipeline_and_reaches_the_caller(
    exception: BaseException,
) -> None:
    def stage(x: int) -> int:
        if x == 2:
            raise exception
        return x

    pipeline = Pipeline().add(stage, "Bad").add(lambda x: x, "Next").parallelize(queue_size=8)
    for i in range(5):
        pipeline.forward(i)
    results = []
    with pytest.raises(type(exception)) as info:
        for result in pipeline.results(timeout=10):  # never waits out the timeout
            results.append(result)
    assert info.value is exception  # raised as itself, in this thread
    assert results == [0, 1][: len(results)]  # the items ahead of it, unless still queued
    counts = pipeline.counters()
    assert counts["failed"] == 1
    assert counts["forwarded"] == 5
    assert counts["completed"] + counts["failed"] + counts["discarded"] == 5
    with pytest.raises(type(exception)):
        pipeline.forward(9)  # a stopped pipeline says why
    with pytest.raises(type(exception)):
        pipeline.join(1)
    assert pipeline.cleanup() == []


def test_a_base_exception_in_serial_mode_propagates_directly() -> None:
    def stage(x: int) -> int:
        raise Fatal("now")

    pipeline = Pipeline().add(stage).serialize()
    with pytest.raises(Fatal, match="now"):
        pipeline.forward(1)
    pipeline.cleanup()


def test_errors_nobody_reads_are_bounded_and_the_newest_is_kept() -> None:
    from framescope.pipeline import StageError

    pipeline = Pipeline(results_size=4).add(FailOn(set(range(100))), on_error="raise")
    pipeline.serialize()
    for i in range(100):
        pipeline._runtime.submit(i, raise_now=False)  # stored in place, as the loop does
    counts = pipeline.counters()
    assert counts["failed"] == 100
    assert counts["errors_dropped"] == 96  # memory stays bounded: 4 kept
    kept = []
    for _ in range(4):
        with pytest.raises(StageError) as info:
            pipeline.get_results()
        kept.append(info.value.item)
    assert kept == [96, 97, 98, 99]  # the newest errors, in order
    assert pipeline.get_results() is None
    pipeline.cleanup()
