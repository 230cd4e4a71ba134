from __future__ import annotations

import logging
import threading
from itertools import islice

import pytest

from framescope import Pipeline
from framescope.pipeline import PipelineClosedError, PipelineStoppedError, StageError

from .helpers import FailOn, Gate


def identity(data: int) -> int:
    return data


# --- error policies -------------------------------------------------------------


def test_serial_raise_policy_raises_from_forward_with_details() -> None:
    pipeline = Pipeline().add(identity, "First").add(FailOn({3}), "Check").serialize()
    with pytest.raises(StageError) as info:
        for i in range(5):
            pipeline.forward(i)
    error = info.value
    assert error.stage == "MainPipeline__Check"
    assert error.item == 3
    assert isinstance(error.error, ValueError)
    assert error.__cause__ is error.error
    assert "bad item 3" in error.traceback_text
    assert "Traceback" in error.traceback_text
    pipeline.forward(4)  # the pipeline keeps running
    assert pipeline.get_results() == 4
    assert pipeline.stage_failures() == {"MainPipeline__First": 0, "MainPipeline__Check": 1}


def test_parallel_raise_policy_reports_to_the_next_caller(
    caplog: pytest.LogCaptureFixture,
) -> None:
    pipeline = Pipeline().add(FailOn({2})).add(identity).parallelize(queue_size=4)
    errors: list[StageError] = []
    results: list[int] = []
    with caplog.at_level(logging.ERROR, logger="framescope.pipeline.pipeline"):
        for i in range(5):
            try:
                pipeline.forward(i)  # may report item 2's error, after taking item i in
            except StageError as error:
                errors.append(error)
        pipeline.close()
        while True:
            try:
                results.extend(pipeline.results())
                break
            except StageError as error:  # or in item 2's place among the results
                errors.append(error)
    assert [error.item for error in errors] == [2]  # reported once, to one caller
    assert results == [0, 1, 3, 4]  # every other item, in order
    assert "bad item 2" in caplog.text
    assert pipeline.counters()["failed"] == 1
    assert pipeline.counters()["forwarded"] == 5
    pipeline.cleanup()


def test_parallel_error_waits_in_its_items_place() -> None:
    gate = Gate()
    pipeline = Pipeline().add(FailOn({0})).add(gate).parallelize(queue_size=4)
    gate.release.set()
    pipeline.forward(0)
    pipeline.forward(1)
    with pytest.raises(StageError, match="bad item 0"):
        next(pipeline.results(timeout=10))  # waits for the error, in item 0's place
    pipeline.forward(2)
    assert list(islice(pipeline.results(timeout=10), 2)) == [1, 2]
    pipeline.cleanup(timeout=5)


def test_get_results_and_forward_raise_a_waiting_error_first() -> None:
    pipeline = Pipeline().add(FailOn({0}), on_error="raise").serialize()
    # The input loop submits like this: errors are stored in place, not raised.
    pipeline._runtime.submit(0, raise_now=False)
    pipeline._runtime.submit(1, raise_now=False)
    with pytest.raises(StageError, match="bad item 0"):
        pipeline.get_results()
    assert pipeline.get_results() == 1
    pipeline._runtime.submit(0, raise_now=False)
    with pytest.raises(StageError, match="bad item 0"):
        pipeline.forward(5)
    assert pipeline.forward(5)
    assert pipeline.get_results() == 5


def test_every_error_is_reported_once_in_order() -> None:
    pipeline = Pipeline().add(FailOn({0, 1})).add(identity).parallelize(queue_size=4)
    for i in range(3):
        pipeline.forward(i)
    with pytest.raises(StageError):
        list(pipeline.results(timeout=10))
    with pytest.raises(StageError, match="bad item 1"):
        list(pipeline.results(timeout=10))
    assert list(islice(pipeline.results(timeout=10), 1)) == [2]
    assert pipeline.counters()["failed"] == 2
    pipeline.cleanup()


@pytest.mark.parametrize("mode", ["serial", "parallel"])
def test_skip_policy_drops_the_item_and_counts_it(mode: str) -> None:
    pipeline = Pipeline().add(FailOn({1, 3}), on_error="skip").add(identity)
    pipeline.serialize() if mode == "serial" else pipeline.parallelize(queue_size=8)
    for i in range(5):
        assert pipeline.forward(i)
    assert list(islice(pipeline.results(timeout=10), 3)) == [0, 2, 4]
    assert pipeline.counters()["failed"] == 2
    assert pipeline.stage_failures()["MainPipeline__FailOn"] == 2
    pipeline.cleanup()


def test_serial_stop_policy_stops_the_pipeline() -> None:
    pipeline = Pipeline().add(FailOn({1}), on_error="stop").serialize()
    pipeline.forward(0)
    with pytest.raises(PipelineStoppedError) as info:
        pipeline.forward(1)
    assert info.value.stage_error.item == 1
    with pytest.raises(PipelineStoppedError):
        pipeline.forward(2)
    pipeline.cleanup()


def test_parallel_stop_policy_stops_threads_and_refuses_work() -> None:
    before = set(threading.enumerate())
    pipeline = Pipeline().add(FailOn({1}), on_error="stop").add(identity).parallelize(queue_size=4)
    pipeline.forward(0)
    pipeline.forward(1)
    with pytest.raises(PipelineStoppedError):
        list(pipeline.results(timeout=10))
    with pytest.raises(PipelineStoppedError):
        pipeline.forward(2)
    assert pipeline.cleanup() == []
    assert set(threading.enumerate()) - before == set()


# --- overflow policies ----------------------------------------------------------


def test_block_policy_times_out_and_counts_rejections() -> None:
    gate = Gate()
    pipeline = Pipeline().add(gate).parallelize(block_input=True, input_timeout=0.05)
    assert pipeline.forward(1)  # taken by the gate stage
    gate.entered.wait(10)
    assert pipeline.forward(2)  # waits in the queue (size 1)
    assert not pipeline.forward(3)  # no room within the timeout
    assert pipeline.counters()["rejected"] == 1
    gate.release.set()
    assert list(islice(pipeline.results(timeout=10), 2)) == [1, 2]
    pipeline.cleanup()


def test_non_blocking_input_returns_false_at_once() -> None:
    gate = Gate()
    pipeline = Pipeline().add(gate).parallelize(block_input=False)
    pipeline.forward(1)
    gate.entered.wait(10)
    pipeline.forward(2)
    assert not pipeline.forward(3)
    gate.release.set()
    pipeline.cleanup()


def test_drop_oldest_keeps_the_newest_items() -> None:
    gate = Gate()
    pipeline = Pipeline().add(gate).parallelize(queue_size=2, overflow="drop_oldest")
    pipeline.forward(0)
    gate.entered.wait(10)
    for i in range(1, 6):
        assert pipeline.forward(i)
    gate.release.set()
    assert list(islice(pipeline.results(timeout=10), 3)) == [0, 4, 5]
    assert pipeline.counters()["dropped"] == 3
    pipeline.cleanup()


def test_drop_newest_refuses_new_items() -> None:
    gate = Gate()
    pipeline = Pipeline().add(gate).parallelize(queue_size=2, overflow="drop_newest")
    pipeline.forward(0)
    gate.entered.wait(10)
    accepted = [pipeline.forward(i) for i in range(1, 6)]
    assert accepted == [True, True, False, False, False]
    gate.release.set()
    assert list(islice(pipeline.results(timeout=10), 3)) == [0, 1, 2]
    assert pipeline.counters()["dropped"] == 3
    pipeline.cleanup()


def test_results_buffer_drops_oldest_unread_results() -> None:
    pipeline = Pipeline(results_size=3).add(identity).serialize()
    for i in range(5):
        pipeline.forward(i)
    assert list(pipeline.results(timeout=0)) == [2, 3, 4]
    assert pipeline.counters()["results_dropped"] == 2


# --- cleanup in hard cases ------------------------------------------------------


def test_cleanup_wakes_a_forward_blocked_on_a_full_queue() -> None:
    gate = Gate()
    pipeline = Pipeline().add(gate).parallelize(block_input=True, input_timeout=None)
    pipeline.forward(1)
    gate.entered.wait(10)
    pipeline.forward(2)
    outcome: list[object] = []

    def blocked_forward() -> None:
        try:
            outcome.append(pipeline.forward(3))
        except PipelineClosedError as error:
            outcome.append(error)

    thread = threading.Thread(target=blocked_forward)
    thread.start()
    gate.release.set()  # let the gate finish so cleanup can join it
    pipeline.cleanup()
    thread.join(timeout=10)
    assert not thread.is_alive()
    assert len(outcome) == 1


def test_cleanup_reports_a_hung_stage_within_the_timeout(
    caplog: pytest.LogCaptureFixture,
) -> None:
    gate = Gate("Hung")
    pipeline = Pipeline().add(identity).add(gate).parallelize()
    pipeline.forward(1)
    gate.entered.wait(10)
    with caplog.at_level(logging.WARNING):
        hung = pipeline.cleanup(timeout=0.05)
    assert hung == ["MainPipeline__Hung"]
    assert "did not stop" in caplog.text
    assert gate.cleanups == 1
    gate.release.set()  # let the thread end


def test_stage_cleanup_errors_are_logged_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    class BadCleanup:
        name = "Bad"

        def __call__(self, data: int) -> int:
            return data

        def cleanup(self) -> None:
            raise OSError("device busy")

    other = Gate("Other")
    pipeline = Pipeline().add(BadCleanup()).add(other)
    with caplog.at_level(logging.ERROR):
        pipeline.cleanup()
    assert "device busy" in caplog.text
    assert other.cleanups == 1
