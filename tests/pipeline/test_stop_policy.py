"""Stopping: the ``stop`` error policy keeps the work ahead of the failure; cleanup names only
what really did not stop."""

from __future__ import annotations

import threading

import pytest

from framescope import Pipeline
from framescope.pipeline import PipelineStoppedError
from tests.polling import wait_for

from .helpers import FailWhenReleased, Gate, HoldOn


def identity(item: int) -> int:
    return item


def test_cleanup_with_a_hung_stage_names_only_that_stage_not_the_aggregator() -> None:
    hang = Gate("Hang")
    pipeline = Pipeline(debug=True, name="HungOne").add(identity, "Before").add(hang)
    pipeline.parallelize()
    pipeline.forward(1)
    assert hang.entered.wait(10)
    aggregators = [t for t in threading.enumerate() if t.name.endswith(":aggregator")]
    try:
        hung = pipeline.cleanup(timeout=2.0)  # the hung stage takes it all
        assert hung == ["HungOne__Hang"]
        ours = [t for t in aggregators if t.name == "framescope:HungOne:aggregator"]
        assert len(ours) == 1 and not ours[0].is_alive()
    finally:
        hang.release.set()  # let the hung thread end


@pytest.mark.parametrize("debug", [False, True])
def test_stop_delivers_the_items_ahead_of_the_failure_then_raises(debug: bool) -> None:
    first, last = HoldOn(8, "First"), HoldOn(5, "Last")
    middle = FailWhenReleased(7, "Middle")
    pipeline = (
        Pipeline(debug=debug)
        .add(first, queue_size=10)
        .add(middle, on_error="stop", queue_size=10)
        .add(last, queue_size=10)
        .parallelize()
    )
    for item in range(1, 9):
        assert pipeline.forward(item)
    # 5 is inside the last stage, 6 waits in its queue, 7 is in the middle, 8 in the first
    assert last.entered.wait(10) and middle.entered.wait(10) and first.entered.wait(10)
    middle.release.set()  # 7 fails
    wait_for(lambda: pipeline.counters()["failed"] == 1)
    with pytest.raises(PipelineStoppedError):
        pipeline.forward(9)
    first.release.set()  # 8 came in after the failing item: it goes no further
    last.release.set()
    got: list[int] = []
    with pytest.raises(PipelineStoppedError) as info:
        got.extend(pipeline.results(timeout=10))
    assert got == [1, 2, 3, 4, 5, 6]
    assert info.value.stage_error.item == 7
    assert pipeline.cleanup(timeout=10) == []
    assert 8 not in last.seen
    counts = pipeline.counters()
    assert counts["forwarded"] == 8 and counts["completed"] == 6 and counts["failed"] == 1
    assert counts["discarded"] == 1 and counts["in_flight"] == 0


def test_a_forward_waiting_for_room_when_a_stage_stops_the_pipeline_is_refused() -> None:
    failing = FailWhenReleased(0, "Failing")
    pipeline = (
        Pipeline().add(failing, on_error="stop").parallelize(queue_size=1, input_timeout=None)
    )
    assert pipeline.forward(0)
    assert failing.entered.wait(10)
    assert pipeline.forward(1)  # fills the queue
    outcome: list[object] = []

    def blocked_forward() -> None:
        try:
            outcome.append(pipeline.forward(2))
        except PipelineStoppedError as error:
            outcome.append(error)

    feeder = threading.Thread(target=blocked_forward)
    feeder.start()
    wait_for(lambda: pipeline._runtime._feeding)  # it waits for room (no public probe)
    failing.release.set()
    feeder.join(10)
    assert not feeder.is_alive() and isinstance(outcome[0], PipelineStoppedError)
    with pytest.raises(PipelineStoppedError):
        list(pipeline.results(timeout=10))
    assert pipeline.cleanup(timeout=10) == []
    counts = pipeline.counters()  # 1 came in after the failing item; 2 never came in
    assert counts["forwarded"] == 2 and counts["failed"] == 1 and counts["discarded"] == 1
    assert counts["completed"] == 0 and counts["in_flight"] == 0


def test_an_item_after_the_failing_one_that_a_replica_finished_goes_no_further() -> None:
    middle, last = FailWhenReleased(7, "Middle"), HoldOn(None, "Last")  # Last holds nothing
    pipeline = (
        Pipeline()
        .add(middle, on_error="stop", replicas=2)
        .add(last, queue_size=10)
        .parallelize(queue_size=10)
    )
    for item in range(1, 9):
        assert pipeline.forward(item)
    assert middle.entered.wait(10)  # one replica holds 7
    held = pipeline._runtime.held  # (no public probe) the other replica is done with 8
    wait_for(lambda: held()["MainPipeline__Middle"] == 1)
    middle.release.set()  # 7 fails: 8 is let go behind it
    got: list[int] = []
    with pytest.raises(PipelineStoppedError):
        got.extend(pipeline.results(timeout=10))
    assert got == [1, 2, 3, 4, 5, 6]
    assert pipeline.cleanup(timeout=10) == []
    assert 8 not in last.seen  # the later stage never ran on it
    counts = pipeline.counters()
    assert counts["completed"] == 6 and counts["failed"] == 1 and counts["discarded"] == 1
    assert counts["in_flight"] == 0
