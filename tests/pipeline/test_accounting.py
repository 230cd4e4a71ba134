"""Every item is accounted for: forwarded = completed + failed + dropped + discarded + in flight."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from framescope import Pipeline
from framescope.pipeline import (
    PipelineClosedError,
    PipelineStoppedError,
    StageError,
)
from framescope.pipeline.model.counters import OUTCOMES
from tests.polling import wait_for

from .helpers import Gate


def outcomes(counts: dict[str, int]) -> int:
    return sum(counts[name] for name in OUTCOMES)


@dataclass
class Faulty:
    """A stage that raises for the items whose id is in ``bad``; notes what it saw."""

    name: str
    bad: frozenset[int]
    seen: set[int] = field(default_factory=set)
    raised: list[int] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, item: int) -> int:
        with self.lock:
            self.seen.add(item)
        if item in self.bad:
            with self.lock:
                self.raised.append(item)
            raise ValueError(f"{self.name} refuses {item}")
        return item


@dataclass
class FaultyBatches(Faulty):
    """A batched :class:`Faulty`: a batch holding a bad item fails, each of its items with it.

    Under ``stop`` (``stops``) only its first item fails: it stops the
    pipeline, and the items after it are discarded.
    """

    stops: bool = False

    def __call__(self, items: list[int]) -> list[int]:  # type: ignore[override]
        with self.lock:
            self.seen.update(items)
        if self.bad.intersection(items):
            with self.lock:
                self.raised.extend(items[:1] if self.stops else items)
            raise ValueError(f"{self.name} refuses the batch {items}")
        return items


stage_plans = st.lists(
    st.tuples(
        st.frozensets(st.integers(0, 39), max_size=8),
        st.sampled_from(["raise", "skip", "stop"]),
        st.one_of(st.none(), st.integers(1, 3)),
        st.sampled_from([1, 1, 2, 3]),  # replicas
        st.sampled_from([1, 1, 1, 3]),  # batch
    ),
    min_size=1,
    max_size=3,
)


scenarios = st.fixed_dictionaries(
    {
        "plan": stage_plans,
        "mode": st.sampled_from(["serial", "threaded"]),
        "debug": st.booleans(),
        "queue_size": st.integers(1, 4),
        "overflow": st.sampled_from(["block", "drop_oldest", "drop_newest"]),
        "results_size": st.integers(0, 50),
        "items": st.integers(0, 40),
        "check_every": st.integers(1, 10),
        "ending": st.sampled_from(["cleanup", "drain", "close_join"]),
        # Where a stage holding its first item until the cleanup stands (None: no such
        # stage): items queue behind it, failed ones and ones a later stage would fail.
        "hold": st.one_of(st.none(), st.integers(0, 3)),
    }
)


class Hold:
    """Holds its first item until the pipeline has stopped and closed its queues."""

    def __init__(self, name: str = "Hold") -> None:
        self.name = name
        self.entered = threading.Event()
        self.pipeline: Pipeline | None = None

    def __call__(self, item: int) -> int:
        if not self.entered.is_set():
            self.entered.set()
            wait_for(self.stopped, what="the cleanup to close the queues")
        return item

    def stopped(self) -> bool:
        pipeline = self.pipeline
        # The queues are closed (what they held counted) just after the pipeline is marked
        # closed; no public probe tells that moment.
        return (
            pipeline is not None
            and pipeline.closed
            and all(channel.closed for channel in pipeline._runtime._channels)
        )


def holds(case: dict[str, Any]) -> bool:
    """Whether the case has a :class:`Hold` stage: threaded, ended by a cleanup."""
    return case["hold"] is not None and case["mode"] == "threaded" and case["ending"] == "cleanup"


@dataclass
class Tally:
    """What the caller saw: items accepted, refused, not taken; results and errors read."""

    accepted: int = 0
    refused: int = 0
    not_taken: int = 0
    errors_read: int = 0
    read: list[int] = field(default_factory=list)
    taken: list[int] = field(default_factory=list)  # the items accepted

    def accept(self, item: int) -> None:
        self.accepted += 1
        self.taken.append(item)


def build(case: dict[str, Any]) -> tuple[Pipeline, list[Faulty]]:
    pipeline = Pipeline(debug=case["debug"], results_size=case["results_size"])
    stages = [
        FaultyBatches(f"S{index}", entry[0], stops=entry[1] == "stop")
        if _batch(entry) > 1
        else Faulty(f"S{index}", entry[0])
        for index, entry in enumerate(case["plan"])
    ]
    hold = Hold() if holds(case) else None
    for index, (stage, entry) in enumerate(zip(stages, case["plan"], strict=True)):
        _, policy, size, replicas, *_ = entry
        if hold is not None and index == case["hold"]:
            pipeline.add(hold, hold.name)
        pipeline.add(
            stage,
            stage.name,
            on_error=policy,
            queue_size=size,
            replicas=replicas,
            batch=_batch(entry) if _batch(entry) > 1 else None,
            batch_timeout=0.005 if _batch(entry) > 1 else None,
        )
    if hold is not None and case["hold"] >= len(stages):
        pipeline.add(hold, hold.name)
    if hold is not None:
        hold.pipeline = pipeline
    if case["mode"] == "serial":
        pipeline.serialize()
    else:
        # Behind a held stage the queues fill: a forward finding no room gives up at once.
        pipeline.parallelize(
            input_timeout=0 if hold is not None else 30,
            queue_size=case["queue_size"],
            overflow=case["overflow"],
        )
    return pipeline, stages


def _batch(entry: tuple[Any, ...]) -> int:
    """A plan entry's batch size (entries without one run one item a call)."""
    return int(entry[4]) if len(entry) > 4 else 1


def forward_one(pipeline: Pipeline, stages: list[Faulty], item: int, tally: Tally) -> None:
    try:
        if pipeline.forward(item):
            tally.accept(item)
        else:
            tally.not_taken += 1  # a full queue (or drop_newest): forward said so
    except StageError:
        tally.accept(item)  # an error of this item (serial) or an earlier one, once accepted
    except PipelineStoppedError:
        # serial: this very item stopped the pipeline; otherwise it was refused
        if any(item in stage.seen for stage in stages):
            tally.accept(item)
        else:
            tally.refused += 1
    except PipelineClosedError:
        tally.refused += 1


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=scenarios)
def test_every_item_is_accounted_for(case: dict[str, Any]) -> None:
    run_case(case)


#: Threaded cases ended by a cleanup while a stage after the first holds an item: behind it
#: wait items that failed before it (under each error policy; raise, whose failed items
#: travel on to be reported in order, twice as often) and items a stage after it would fail.
cleanup_scenarios = st.tuples(
    scenarios,
    st.lists(
        st.tuples(
            st.frozensets(st.integers(0, 15), min_size=1, max_size=8),
            st.sampled_from(["raise", "raise", "skip", "stop"]),
            st.one_of(st.none(), st.integers(1, 3)),
            st.sampled_from([1, 1, 2, 3]),
            st.sampled_from([1, 1, 1, 3]),  # batch
        ),
        min_size=1,
        max_size=3,
    ),
    st.integers(1, 3),
    st.integers(16, 40),
).map(
    lambda drawn: {
        **drawn[0],
        "plan": drawn[1],
        "mode": "threaded",
        "ending": "cleanup",
        "hold": drawn[2],
        "items": drawn[3],
    }
)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=cleanup_scenarios)
def test_every_item_is_accounted_for_when_the_cleanup_finds_items_queued(
    case: dict[str, Any],
) -> None:
    run_case(case)


def run_case(case: dict[str, Any]) -> None:
    """Forward the case's items, end it as it says, and check every item's account."""
    pipeline, stages = build(case)
    tally = Tally()
    serial = case["mode"] == "serial"
    for item in range(case["items"]):
        forward_one(pipeline, stages, item, tally)
        if item % case["check_every"] == 0:
            counts = pipeline.counters()
            assert counts["in_flight"] >= 0, counts  # nothing counted twice
            assert counts["forwarded"] == outcomes(counts) + counts["in_flight"]
            assert not serial or counts["in_flight"] == 0  # the stages ran inside forward
        if serial:
            tally.errors_read += drain(pipeline, tally.read, timeout=0)

    if case["ending"] == "close_join":
        pipeline.close()
        assert pipeline.join(30)
        tally.errors_read += drain(pipeline, tally.read, timeout=None)
        assert pipeline.cleanup() == []
    else:
        assert pipeline.cleanup(timeout=30, drain=case["ending"] == "drain") == []
        tally.errors_read += drain(pipeline, tally.read, timeout=0)
    check_accounts(pipeline.counters(), case, stages, tally)


def check_accounts(
    counts: dict[str, int], case: dict[str, Any], stages: list[Faulty], tally: Tally
) -> None:
    raised = sum(len(stage.raised) for stage in stages)
    assert counts["forwarded"] == tally.accepted
    assert counts["failed"] == raised
    assert counts["rejected"] + counts["dropped_newest"] == tally.not_taken
    assert counts["in_flight"] == 0
    assert counts["forwarded"] == outcomes(counts)
    # Every result was read, dropped unread, or not kept (results_size=0).
    kept = counts["completed"] - counts["results_not_kept"]
    assert kept == len(tally.read) + counts["results_dropped"]
    assert case["results_size"] or (not tally.read and kept == 0)
    read = tally.read
    assert read == sorted(read) and len(set(read)) == len(read)  # in order, once each
    assert tally.errors_read <= raised
    stopping = any(policy == "stop" and bad for bad, policy, *_ in case["plan"])
    if case["ending"] != "cleanup" and not stopping:
        assert counts["discarded"] == 0  # a drained pipeline discards nothing
    if case["mode"] == "serial" or case["overflow"] != "drop_oldest":
        assert counts["dropped_oldest"] == 0
    check_stop(counts, case, stages, tally)


def check_stop(
    counts: dict[str, int], case: dict[str, Any], stages: list[Faulty], tally: Tally
) -> None:
    """A stop keeps every item ahead of the one that stopped it and discards every later one."""
    plan = case["plan"]
    stops = [
        item
        for stage, (_, policy, *_) in zip(stages, plan, strict=True)
        if policy == "stop"
        for item in stage.raised
    ]
    if not stops:
        return
    cut = min(stops)  # items are numbered in the order they were forwarded, as the frames are
    assert all(item < cut for item in tally.read)
    if case["ending"] == "cleanup" or case["overflow"] == "drop_oldest":
        return  # a cleanup discards what is inside; drop_oldest drops some of those ahead
    failed = {item for stage in stages for item in stage.raised}
    ahead = [item for item in tally.taken if item < cut and item not in failed]
    after = [item for item in tally.taken if item > cut and item not in failed]
    assert counts["completed"] == len(ahead)
    assert counts["discarded"] == len(after)


def drain(pipeline: Pipeline, read: list[int], timeout: float | None) -> int:
    """Read every waiting result into ``read``; returns how many errors stood among them."""
    errors = 0
    while True:
        try:
            read.extend(pipeline.results(timeout=timeout))
            return errors
        except StageError:
            errors += 1
        except PipelineStoppedError:
            return errors


def test_in_flight_counts_the_items_inside_and_cleanup_accounts_for_them() -> None:
    gate = Gate()
    pipeline = Pipeline().add(gate).add(lambda x: x, "After").parallelize(queue_size=3)
    pipeline.forward(0)
    assert gate.entered.wait(10)
    for item in range(1, 4):
        assert pipeline.forward(item)  # the gate holds 0; 1, 2, 3 wait in its queue
    counts = pipeline.counters()
    assert counts["in_flight"] == 4 and counts["forwarded"] == 4

    stopping = threading.Thread(target=pipeline.cleanup, kwargs={"timeout": 30})
    stopping.start()
    while pipeline.counters()["discarded"] < 3:  # the queue was emptied at the stop
        threading.Event().wait(0.001)
    gate.release.set()  # the gate's item meets a closed queue: discarded too
    stopping.join(30)
    counts = pipeline.counters()
    assert counts["discarded"] == 4 and counts["in_flight"] == 0 and counts["completed"] == 0


def test_a_forward_waiting_at_cleanup_is_refused_not_discarded() -> None:
    gate = Gate()
    pipeline = Pipeline().add(gate).parallelize(queue_size=1, input_timeout=None)
    pipeline.forward(0)
    assert gate.entered.wait(10)
    pipeline.forward(1)  # fills the queue
    outcome: list[Any] = []

    def blocked_forward() -> None:
        try:
            outcome.append(pipeline.forward(2))
        except PipelineClosedError as error:
            outcome.append(error)

    feeder = threading.Thread(target=blocked_forward)
    feeder.start()
    while not pipeline._runtime._feeding:  # the feeder waits for room (no public probe)
        threading.Event().wait(0.001)
    stopping = threading.Thread(target=pipeline.cleanup, kwargs={"timeout": 30})
    stopping.start()
    feeder.join(30)
    assert isinstance(outcome[0], PipelineClosedError)  # the caller was told: refused
    gate.release.set()
    stopping.join(30)
    counts = pipeline.counters()
    # 0 was inside the last stage (it completes), 1 waited in the queue; 2 is neither
    assert counts["forwarded"] == 2 and counts["completed"] == 1 and counts["discarded"] == 1
    assert counts["rejected"] == 0 and counts["in_flight"] == 0


@pytest.mark.parametrize("mode", ["serial", "threaded", "batched"])
def test_a_base_exception_in_a_stage_is_counted_as_failed(mode: str) -> None:
    def quit_on_two(item: int) -> int:
        if item == 2:
            raise SystemExit(3)
        return item

    def quit_on_a_batch_with_two(items: list[int]) -> list[int]:
        return [quit_on_two(item) for item in items]

    pipeline = Pipeline()
    if mode == "batched":  # the batch holding 2 ends with the thread: one failed, the rest lost
        pipeline.add(quit_on_a_batch_with_two, "Quit", batch=4)
    else:
        pipeline.add(quit_on_two, "Quit")
    if mode == "serial":
        pipeline.serialize()
    else:
        pipeline.parallelize(queue_size=8)
    with pytest.raises(SystemExit):
        for item in range(5):
            pipeline.forward(item)
        pipeline.close()
        pipeline.join(30)
    pipeline.cleanup()
    counts = pipeline.counters()
    assert counts["failed"] == 1
    assert counts["forwarded"] == outcomes(counts) and counts["in_flight"] == 0


class SourceFailedError(RuntimeError):
    """What the failing sources of the property below raise."""


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    mode=st.sampled_from(["serial", "threaded"]),
    items=st.integers(0, 30),
    fails_after=st.one_of(st.none(), st.integers(0, 30)),
    results_size=st.integers(0, 4),
    queue_size=st.integers(1, 3),
)
def test_a_source_that_fails_is_accounted_for_and_raised_after_its_items(
    mode: str, items: int, fails_after: int | None, results_size: int, queue_size: int
) -> None:
    def source() -> Any:
        for item in range(items):
            if item == fails_after:
                raise SourceFailedError(f"failed at {item}")
            yield item

    pipeline = Pipeline(results_size=results_size).add(lambda x: x + 1, "Inc")
    pipeline.serialize() if mode == "serial" else pipeline.parallelize(queue_size=queue_size)
    fails = fails_after is not None and fails_after < items
    went_in = fails_after if fails and fails_after is not None else items
    got: list[int] = []
    try:
        got.extend(pipeline.run(source()))
    except SourceFailedError:
        assert fails
    else:
        assert not fails
    expected = list(range(1, went_in + 1)) if results_size else []
    assert got == expected  # run() waits for its reader: nothing dropped, in order
    counts = pipeline.counters()
    assert counts["forwarded"] == counts["completed"] == went_in
    assert counts["forwarded"] == outcomes(counts) and counts["in_flight"] == 0
    assert counts["results_dropped"] == 0
    assert counts["results_not_kept"] == (0 if results_size else went_in)
    assert counts["source_errors"] == int(fails)
    assert (pipeline.snapshot().source_error is not None) == fails
    assert pipeline.cleanup(timeout=30) == []


@pytest.mark.parametrize("mode", ["serialize", "parallelize"])
def test_every_counter_has_one_home_and_a_misspelt_one_is_refused(mode: str) -> None:
    from framescope.exporters.prometheus import _PIPELINE_COUNTERS
    from framescope.pipeline.model.counters import COUNTERS, DROP_REASONS, OUTCOMES
    from framescope.pipeline.views.diagnosis import LOSS_COUNTERS

    with Pipeline() as pipeline:
        getattr(pipeline.add(lambda x: x, "Same"), mode)()
        list(pipeline.run(range(3)))
        snapshot = pipeline.snapshot()
    assert set(pipeline.counters()) == set(COUNTERS)
    assert set(snapshot.counters) == set(COUNTERS)
    named = {*OUTCOMES, *LOSS_COUNTERS, *DROP_REASONS, *_PIPELINE_COUNTERS}
    assert named <= set(COUNTERS), named - set(COUNTERS)
    assert snapshot.count("completed") == 3
    with pytest.raises(KeyError, match="no pipeline counter 'complete'; the counters are"):
        snapshot.count("complete")


@pytest.mark.parametrize(
    ("policy", "queued", "failed", "discarded"),
    [
        # raise: 1 and 3 travel on failed (to be reported in order): counted failed, once
        ("raise", 5, 2, 4),
        # skip: 1 and 3 are failed and gone; 2, 4, 5 wait behind the held 0
        ("skip", 3, 2, 4),
        # stop: 1 stops the pipeline; 2 to 5 (3 would fail too) are discarded, not failed
        ("stop", None, 1, 5),
    ],
)
def test_failed_items_still_queued_at_cleanup_are_counted_once(
    policy: str, queued: int | None, failed: int, discarded: int
) -> None:
    hold = Hold()
    stage = Faulty("Check", frozenset({1, 3}))
    pipeline = Pipeline(name="P").add(stage, stage.name, on_error=policy)
    pipeline.add(hold, hold.name, queue_size=8).add(lambda x: x, "After")
    pipeline.parallelize(queue_size=8)
    hold.pipeline = pipeline
    for item in range(6):
        assert pipeline.forward(item)
    assert hold.entered.wait(30)  # Hold has 0; the rest pass Check or fail there
    if queued is not None:
        wait_for(lambda: pipeline.snapshot().stage("P__Hold").queue_depth == queued)
    else:
        wait_for(lambda: pipeline.counters()["failed"] == 1)
    assert pipeline.cleanup(timeout=30) == []
    counts = pipeline.counters()
    assert (counts["failed"], counts["discarded"], counts["completed"]) == (failed, discarded, 0)
    assert counts["forwarded"] == 6 == outcomes(counts)
    assert counts["in_flight"] == 0
    assert sorted(stage.raised) == sorted({1, 3} if policy != "stop" else {1})


class StopOn:
    """Holds item ``item`` until ``release`` is set, then raises on it; passes the others."""

    def __init__(self, item: int) -> None:
        self.item = item
        self.entered = threading.Event()
        self.release = threading.Event()

    def __call__(self, data: int) -> int:
        if data == self.item:
            self.entered.set()
            self.release.wait(30)
            raise ValueError(f"stop at {data}")
        return data


def test_a_failed_item_queued_behind_a_stop_is_counted_failed_not_discarded() -> None:
    first = Faulty("First", frozenset({3}))
    stopper = StopOn(1)
    pipeline = Pipeline(name="P").add(first, "First", on_error="raise")
    pipeline.add(stopper, "Stop", on_error="stop").add(lambda x: x, "After")
    pipeline.parallelize(queue_size=8)
    for item in range(5):
        assert pipeline.forward(item)
    assert stopper.entered.wait(30)
    # Stop holds 1; 2, 3 (failed at First, travelling on to be reported) and 4 wait for it.
    wait_for(lambda: pipeline.snapshot().stage("P__Stop").queue_depth == 3)
    stopper.release.set()
    pipeline.close()
    assert pipeline.join(30)
    read: list[int] = []
    drain(pipeline, read, timeout=0)
    assert pipeline.cleanup(timeout=30) == []
    counts = pipeline.counters()
    assert read == [0]
    # 1 stopped it, 3 had failed before: both failed, once; 2 and 4 came after the stop.
    assert (counts["completed"], counts["failed"], counts["discarded"]) == (1, 2, 2)
    assert counts["forwarded"] == 5 == outcomes(counts) and counts["in_flight"] == 0
