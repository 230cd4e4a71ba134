"""Batched stages: batches formed across sources on the pipeline's clock, split back per item.

Every time asserted is fake time: the test moves a :class:`FakeClock` only
while the batched stage's thread is parked at a known point (the items it
was given have joined its forming batch, or its call is over), so each wait
is an exact number.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from framescope import Pipeline
from framescope.clock import FakeClock
from framescope.pipeline import (
    BatchSnapshot,
    PipelineSnapshot,
    PipelineStoppedError,
    Sourced,
    StageError,
)
from framescope.pipeline.model.counters import OUTCOMES
from framescope.pipeline.views.diagnosis import diagnose_snapshot
from tests.pipeline.replica_stages import BatchEcho
from tests.polling import wait_for

MS = 1_000_000


class Detect:
    """A batched stage: notes each call's items (and the fake time it began), returns items * 10.

    ``seconds`` of fake time pass inside each call (the clock is advanced there).
    """

    def __init__(self, clock: FakeClock | None = None, seconds: float = 0.0) -> None:
        self.clock = clock
        self.seconds = seconds
        self.calls: list[list[Any]] = []
        self.started: list[int] = []
        self.threads: list[str] = []
        self.lock = threading.Lock()

    def __call__(self, items: list[Any]) -> list[Any]:
        assert isinstance(items, list)
        with self.lock:
            self.started.append(0 if self.clock is None else self.clock.monotonic_ns())
            self.threads.append(threading.current_thread().name)
        if self.clock is not None and self.seconds:
            self.clock.advance(self.seconds)
        with self.lock:
            self.calls.append(list(items))
        return [_times_ten(item) for item in items]

    @property
    def count(self) -> int:
        with self.lock:
            return len(self.calls)


def _times_ten(item: Any) -> Any:
    if isinstance(item, Sourced):
        return Sourced(item.source, item.item * 10)
    return item * 10


def _batch(pipeline: Pipeline, stage: str = "Detect") -> BatchSnapshot:
    batch = pipeline.snapshot().stage(f"{pipeline.name}__{stage}").batch
    assert batch is not None
    return batch


def _accounted(counts: dict[str, int]) -> bool:
    return counts["forwarded"] == sum(counts[name] for name in OUTCOMES) + counts["in_flight"]


def _threaded(clock: FakeClock, stage: Any, **options: Any) -> Pipeline:
    pipeline = Pipeline(name="Cams", clock=clock)
    pipeline.add(stage, "Detect", **options).parallelize(queue_size=16)
    return pipeline


# -- arguments -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "error", "words"),
    [
        ({"batch": 0}, ValueError, "batch must be a positive integer"),
        ({"batch": -3}, ValueError, "batch must be a positive integer"),
        ({"batch": 2.0}, TypeError, "batch must be a positive integer, got float"),
        ({"batch": True}, TypeError, "batch must be a positive integer, got bool"),
        ({"batch": 4, "batch_timeout": 0}, ValueError, "batch_timeout must be a positive"),
        ({"batch": 4, "batch_timeout": -0.1}, ValueError, "batch_timeout must be a positive"),
        ({"batch": 4, "batch_timeout": float("nan")}, ValueError, "batch_timeout"),
        ({"batch": 4, "batch_timeout": "40ms"}, TypeError, "batch_timeout must be a number"),
        ({"batch_timeout": 0.04}, TypeError, "batch_timeout applies to a batched stage"),
    ],
)
def test_bad_batch_arguments_are_refused_naming_the_argument(
    options: dict[str, Any], error: type[Exception], words: str
) -> None:
    with pytest.raises(error, match=words):
        Pipeline().add(Detect(), "Detect", **options)


def test_a_nested_pipeline_cannot_be_batched() -> None:
    inner = Pipeline(name="Inner").add(lambda item: item, "Pass")
    with pytest.raises(ValueError, match="batch: stage 'Inner' is a nested pipeline"):
        Pipeline().add(inner, batch=4)


def test_without_batch_a_stage_takes_one_item_and_batch_one_a_list_of_one(
    clock: FakeClock,
) -> None:
    pipeline = _threaded(clock, lambda item: item + 1)
    try:
        assert list(pipeline.run(range(5))) == [1, 2, 3, 4, 5]
        assert pipeline.snapshot().stage("Cams__Detect").batch is None
    finally:
        pipeline.cleanup()
    stage = Detect()  # asserts it is given a list
    ones = _threaded(clock, stage, batch=1)
    try:
        assert list(ones.run(range(5))) == [0, 10, 20, 30, 40]
        batch = ones.snapshot().stage("Cams__Detect").batch
    finally:
        ones.cleanup()
    assert stage.calls == [[0], [1], [2], [3], [4]]
    assert batch is not None and batch.sizes == {1: 5}


def test_a_batched_stage_s_queue_holds_a_batch_even_when_a_smaller_queue_is_asked(
    clock: FakeClock,
) -> None:
    pipeline = Pipeline(name="Cams", clock=clock)
    pipeline.add(Detect(), "Detect", batch=8, queue_size=2).parallelize(queue_size=2)
    try:
        pipeline.start()
        assert pipeline.snapshot().stage("Cams__Detect").queue_capacity == 8
    finally:
        pipeline.cleanup()


def test_the_default_timeout_is_40_ms(clock: FakeClock) -> None:
    batched = Pipeline(clock=clock).add(Detect(), "Detect", batch=8)
    try:
        batched.start()
        assert _batch(batched, "Detect").timeout_s == pytest.approx(0.04)
    finally:
        batched.cleanup()


# -- when a batch leaves ---------------------------------------------------------------


def test_a_full_batch_leaves_at_once(clock: FakeClock) -> None:
    stage = Detect()
    pipeline = _threaded(clock, stage, batch=4, batch_timeout=0.04)
    try:
        for item in range(4):
            assert pipeline.forward(item)
        results = list(_take(pipeline, 4))
        batch = _batch(pipeline)
    finally:
        pipeline.cleanup()
    assert results == [0, 10, 20, 30]
    assert stage.calls == [[0, 1, 2, 3]]
    assert batch.sizes == {4: 1}
    assert batch.reason("full") == 1 and batch.reason("timeout") == 0
    assert batch.wait.maximum == 0.0  # the fake clock never moved: nobody waited for it


def test_a_part_full_batch_leaves_when_its_oldest_item_has_waited_the_timeout(
    clock: FakeClock,
) -> None:
    stage = Detect()
    pipeline = _threaded(clock, stage, batch=4, batch_timeout=0.04)
    try:
        for item in range(3):
            pipeline.forward(item)
        _joined(pipeline, 3)
        clock.advance(0.030)
        pipeline.forward(3)
        _joined(pipeline, 4, called=1)  # the fourth made it full: it left at once
        for item in range(4, 7):
            pipeline.forward(item)
        _joined(pipeline, 7, called=1)
        clock.advance(0.039)
        pipeline.forward(7)
        _joined(pipeline, 8, called=2)  # 39 ms: not yet due, it left full
        for item in range(8, 11):
            pipeline.forward(item)
            _joined(pipeline, item + 1, called=2)
            clock.advance(0.010)
        clock.advance(0.010)  # the oldest (item 8) has waited 40 ms now
        wait_for(lambda: stage.count == 3, what="the batch due at its timeout")
        results = list(_take(pipeline, 11))
        batch = _batch(pipeline)
    finally:
        pipeline.cleanup()
    assert results == [item * 10 for item in range(11)]
    assert stage.calls == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 10]]
    assert batch.sizes == {4: 2, 3: 1}
    assert (batch.reason("full"), batch.reason("timeout"), batch.reason("flush")) == (2, 1, 0)
    # 0-2 waited 30 ms for 3; 4-6 39 ms for 7; 8, 9, 10 joined 10 ms apart and left
    # 40 ms after 8 (its timeout): 40, 30, 20 ms; 3 and 7 left as they came.
    waits = [0, 0, 20, 30, 30, 30, 30, 39, 39, 39, 40]
    assert sorted(batch.wait.samples) == [wait * MS for wait in waits]
    assert batch.wait.maximum == pytest.approx(0.040, abs=1e-12)


def test_the_end_of_the_input_flushes_a_part_full_batch_at_once(clock: FakeClock) -> None:
    stage = Detect()
    pipeline = _threaded(clock, stage, batch=8, batch_timeout=10.0)
    try:
        for item in range(3):
            pipeline.forward(item)
        pipeline.close()
        assert pipeline.join(30)  # the fake clock is never moved: no timeout is waited out
        results = list(pipeline.results(timeout=0))
        batch = _batch(pipeline)
    finally:
        pipeline.cleanup()
    assert results == [0, 10, 20]
    assert stage.calls == [[0, 1, 2]]
    assert batch.sizes == {3: 1} and batch.reason("flush") == 1
    assert batch.wait.maximum == 0.0


def test_a_serial_pipeline_calls_a_batched_stage_with_each_item_alone(clock: FakeClock) -> None:
    stage = Detect()
    pipeline = Pipeline(name="Cams", clock=clock).add(stage, "Detect", batch=8).serialize()
    try:
        results = list(pipeline.run({"a": range(3), "b": range(100, 102)}))
        batch = _batch(pipeline)
    finally:
        pipeline.cleanup()
    assert sorted((r.source, r.item) for r in results) == [
        ("a", 0),
        ("a", 10),
        ("a", 20),
        ("b", 1000),
        ("b", 1010),
    ]
    assert all(len(call) == 1 for call in stage.calls)
    assert batch.sizes == {1: 5} and batch.reason("flush") == 5


# -- four cameras ------------------------------------------------------------------------


class Camera:
    """A source that gives its next frame index only when the test releases it."""

    def __init__(self, frames: int) -> None:
        self.frames = frames
        self.released = threading.Semaphore(0)

    def __iter__(self) -> Iterator[int]:
        for index in range(self.frames):
            if not self.released.acquire(timeout=30):
                raise TimeoutError("the test released no frame")
            yield index


def test_four_cameras_at_30_fps_batch_across_sources_within_the_timeout(
    clock: FakeClock,
) -> None:
    timeout, stage_s, frames, size = 0.040, 0.005, 30, 8
    cameras = {f"cam{k}": Camera(frames) for k in range(4)}
    stage = Detect(clock, stage_s)
    pipeline = Pipeline(name="Cams", clock=clock)
    pipeline.add(stage, "Detect", batch=size, batch_timeout=timeout).parallelize(queue_size=16)
    # Frame n of camera k is due at n/30 + k/120 s: 120 frames a second in all.
    start = clock.monotonic_ns()
    due = sorted(
        (start + round((n / 30 + k / 120) * 1e9), k) for n in range(frames) for k in range(4)
    )
    results: list[Any] = []
    reader = threading.Thread(target=lambda: results.extend(pipeline.run(cameras)))
    reader.start()
    try:
        _drive(
            pipeline,
            clock,
            stage=stage,
            cameras=list(cameras.values()),
            due=due,
            timeout=timeout,
            size=size,
        )
        reader.join(30)
        assert not reader.is_alive()
        snapshot = pipeline.snapshot()
    finally:
        pipeline.cleanup()
    batch = snapshot.stage("Cams__Detect").batch
    assert batch is not None
    assert batch.items == 4 * frames == sum(len(call) for call in stage.calls)
    assert sum(batch.sizes.values()) == len(stage.calls) == batch.batches
    assert max(batch.sizes) <= size and len(batch.sizes) > 1  # part full ones too
    assert batch.reason("timeout") > 0
    assert batch.wait.maximum <= timeout  # exact: the clock landed on each deadline
    # Each item waited in its batch, then one call: never more than the timeout and a call.
    assert snapshot.latency.maximum <= timeout + stage_s + 1e-9
    for name in cameras:  # order per source kept
        assert [r.item for r in results if r.source == name] == [10 * n for n in range(frames)]
    assert any(len({item.source for item in call}) > 1 for call in stage.calls)  # across sources
    assert _accounted(snapshot.counters) and snapshot.counters["completed"] == 4 * frames
    # 120 items a second fill about 5 of 8 places in 40 ms: the diagnosis says so.
    (advice,) = diagnose_snapshot(snapshot).batching
    judged = batch.reason("full") + batch.reason("timeout")
    assert advice.startswith(f"Cams__Detect: {batch.reason('timeout')} of {judged} batches left")
    assert "a smaller batch (about 5) or a longer batch_timeout" in advice
    from framescope.live.view import page_view

    assert page_view(snapshot)["batching"] == [advice]  # the live page says it too


def _drive(
    pipeline: Pipeline,
    clock: FakeClock,
    *,
    stage: Detect,
    cameras: list[Camera],
    due: list[tuple[int, int]],
    timeout: float,
    size: int,
) -> None:
    """Release each frame at its time; land the clock on each forming batch's deadline."""
    timeout_ns, joined = round(timeout * 1e9), []
    expected_calls = 0
    for released, (at, camera) in enumerate(due, start=1):
        if joined and joined[0] + timeout_ns <= at:
            _advance_to(clock, joined[0] + timeout_ns)
            expected_calls, joined = expected_calls + 1, []
            wait_for(lambda n=expected_calls: stage.count == n, what="a batch at its timeout")
        _advance_to(clock, at)
        cameras[camera].released.release()
        _joined(pipeline, released)
        joined.append(clock.monotonic_ns())
        if len(joined) == size:
            expected_calls, joined = expected_calls + 1, []
            wait_for(lambda n=expected_calls: stage.count == n, what="a full batch")


def _advance_to(clock: FakeClock, at_ns: int) -> None:
    if at_ns > clock.monotonic_ns():
        clock.advance_ns(at_ns - clock.monotonic_ns())


def _joined(pipeline: Pipeline, forwarded: int, called: int | None = None) -> None:
    """Wait until ``forwarded`` items are in and none waits in the batched stage's queue."""

    def ready() -> bool:
        snapshot = pipeline.snapshot()
        stage = next(s for s in snapshot.stages if s.batch is not None)
        batch = stage.batch
        assert batch is not None
        return (
            snapshot.counters["forwarded"] == forwarded
            and stage.queue_depth == 0
            and (called is None or batch.batches == called)
        )

    wait_for(ready, what=f"{forwarded} items joined a batch")


def _take(pipeline: Pipeline, count: int) -> Iterator[Any]:
    results = pipeline.results(timeout=30)
    for _ in range(count):
        yield next(results)


# -- what a batch call returns, and failures ----------------------------------------------


def _read_all(pipeline: Pipeline) -> list[Any]:
    """Every result, and each item's StageError in its place, until the results end."""
    read: list[Any] = []
    while True:
        try:
            read.extend(pipeline.results(timeout=30))
            return read
        except StageError as failure:
            read.append(failure)
        except PipelineStoppedError:
            return read


@pytest.mark.parametrize(
    ("returned", "error", "words"),
    [
        (lambda items: items[:-1], ValueError, "was given 3 items and returned 2 results"),
        (lambda items: [*items, 0], ValueError, "was given 3 items and returned 4 results"),
        (lambda items: None, TypeError, "must return a list .* of 3 results, .* got NoneType"),
        (lambda items: "abc", TypeError, "got str"),
        (lambda items: np.array(3.0), TypeError, r"got ndarray of shape \(\)"),
        (lambda items: {0: 1, 1: 2, 2: 3}, TypeError, "got dict"),
    ],
)
def test_a_wrong_result_fails_every_item_of_the_batch(
    clock: FakeClock, returned: Any, error: type[Exception], words: str
) -> None:
    pipeline = _threaded(clock, returned, batch=3)
    try:
        for item in range(3):
            pipeline.forward(item)
        pipeline.close()
        caught = _read_all(pipeline)
        counts = pipeline.counters()
    finally:
        pipeline.cleanup()
    assert [failure.item for failure in caught] == [0, 1, 2]
    for failure in caught:
        assert isinstance(failure, StageError) and isinstance(failure.error, error)
        assert failure.stage == "Cams__Detect"
        assert re.search(words, str(failure.error)), str(failure.error)
    assert counts["failed"] == 3 and counts["completed"] == 0 and _accounted(counts)


def test_an_array_result_is_split_along_its_first_axis(clock: FakeClock) -> None:
    np = pytest.importorskip("numpy")
    pipeline = _threaded(clock, lambda items: np.asarray(items) * 2, batch=4)
    try:
        for item in range(4):
            pipeline.forward(item)
        results = list(_take(pipeline, 4))
    finally:
        pipeline.cleanup()
    assert [int(result) for result in results] == [0, 2, 4, 6]


class FailsOn:
    """A batched stage that raises for a batch holding any of ``bad``."""

    def __init__(self, bad: set[int]) -> None:
        self.bad = bad
        self.calls: list[list[int]] = []

    def __call__(self, items: list[int]) -> list[int]:
        self.calls.append(list(items))
        if self.bad & set(items):
            raise RuntimeError(f"bad batch {items}")
        return items


def _run_batches(clock: FakeClock, policy: str, items: int = 12) -> tuple[Any, ...]:
    stage = FailsOn({5})
    pipeline = Pipeline(name="Cams", clock=clock)
    pipeline.add(stage, "Detect", batch=4, on_error=policy).add(lambda item: item, "After")
    pipeline.parallelize(queue_size=16)
    try:
        for item in range(items):
            pipeline.forward(item)
        pipeline.close()
        read = _read_all(pipeline)
        pipeline.join(30)
        snapshot = pipeline.snapshot()
    finally:
        pipeline.cleanup()
    return stage, read, snapshot


def test_a_failing_batch_raises_for_each_item_in_its_place(clock: FakeClock) -> None:
    stage, read, snapshot = _run_batches(clock, "raise")
    assert stage.calls == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 10, 11]]
    assert read[:4] == [0, 1, 2, 3] and read[8:] == [8, 9, 10, 11]
    assert [failure.item for failure in read[4:8]] == [4, 5, 6, 7]
    assert all("bad batch [4, 5, 6, 7]" in str(failure) for failure in read[4:8])
    assert snapshot.stage("Cams__Detect").failures == 4
    assert snapshot.counters["failed"] == 4 and snapshot.counters["completed"] == 8


def test_a_failing_batch_skips_each_of_its_items(clock: FakeClock) -> None:
    _, read, snapshot = _run_batches(clock, "skip")
    assert read == [0, 1, 2, 3, 8, 9, 10, 11]
    assert snapshot.counters["failed"] == 4 and _accounted(snapshot.counters)


def test_a_failing_batch_stops_the_pipeline_after_the_items_before_it(clock: FakeClock) -> None:
    _, read, snapshot = _run_batches(clock, "stop")
    counts = snapshot.counters
    assert read == [0, 1, 2, 3]
    # The batch's first item stops the pipeline, as it would unbatched: it is
    # the one failed item; the rest of its batch and the batch after are cut.
    assert counts["failed"] == 1 and counts["completed"] == 4
    assert counts["discarded"] == 3 + 4
    assert counts["forwarded"] == sum(counts[name] for name in OUTCOMES)


# -- replicas ------------------------------------------------------------------------


def test_a_batched_stage_on_two_thread_replicas_gives_each_batch_to_one_replica(
    clock: FakeClock,
) -> None:
    stage = Detect()
    pipeline = Pipeline(name="Cams", clock=clock)
    pipeline.add(stage, "Detect", batch=4, replicas=2).parallelize(queue_size=4)
    try:
        results = list(pipeline.run({"a": range(20), "b": range(100, 120)}))
        snapshot = pipeline.snapshot()
    finally:
        pipeline.cleanup()
    for name, first in (("a", 0), ("b", 100)):
        assert [r.item for r in results if r.source == name] == [
            10 * item for item in range(first, first + 20)
        ]
    assert all(1 <= len(call) <= 4 for call in stage.calls)
    assert sum(len(call) for call in stage.calls) == 40
    batch = snapshot.stage("Cams__Detect").batch
    assert batch is not None and batch.items == 40 and batch.batches == len(stage.calls)
    replicas = snapshot.replicas_of("Cams__Detect")
    assert sum(replica.latency.count for replica in replicas) == 40
    assert set(stage.threads) <= {"framescope:Cams__Detect#0", "framescope:Cams__Detect#1"}


def test_a_batched_stage_on_two_process_replicas_sends_each_batch_as_one_call(
    clock: FakeClock,
) -> None:
    pipeline = Pipeline(name="Cams", clock=clock)
    pipeline.add(BatchEcho(), "Detect", batch=4, replicas=2, executor="process")
    pipeline.parallelize(queue_size=4)
    try:
        for item in range(10):
            pipeline.forward(item)
        pipeline.close()
        results = list(pipeline.results(timeout=60))
        snapshot = pipeline.snapshot()
    finally:
        assert pipeline.cleanup(timeout=30) == []
    assert [item for item, _, _ in results] == list(range(10))
    # One call per batch: the items of a batch share its worker and its call number.
    calls: dict[tuple[int, int], list[int]] = {}
    for item, pid, call in results:
        calls.setdefault((pid, call), []).append(item)
    assert all(1 <= len(items) <= 4 for items in calls.values())
    batch = snapshot.stage("Cams__Detect").batch
    assert batch is not None and batch.items == 10 and batch.batches == len(calls)
    assert _accounted(snapshot.counters) and snapshot.counters["completed"] == 10


# -- the frame trace ----------------------------------------------------------------------


def test_each_frame_trace_links_its_item_to_its_batch(clock: FakeClock) -> None:
    pipeline = Pipeline(name="Cams", clock=clock, debug=True)
    pipeline.add(Detect(clock, 0.005), "Detect", batch=3).add(lambda item: item, "After")
    pipeline.parallelize(queue_size=8)
    try:
        for item in range(2):
            pipeline.forward(item)
        _joined(pipeline, 2)
        clock.advance(0.010)
        pipeline.forward(2)
        assert len(list(_take(pipeline, 3))) == 3
        traces = pipeline.frame_traces()
    finally:
        pipeline.cleanup()
    spans = [trace.spans[0] for trace in traces]
    assert [span.node_id for span in spans] == ["Cams__Detect"] * 3
    assert {span.batch_id for span in spans} == {0}
    assert {span.batch_size for span in spans} == {3}
    assert len({(span.t_start, span.t_end) for span in spans}) == 1  # the batch's one call
    assert spans[0].busy_ns == 5 * MS
    assert [span.batch_wait_ns for span in spans] == [10 * MS, 10 * MS, 0]
    assert all(span.wait_ns == 0 for span in spans)  # its queue wait is not its batch wait
    round_trip = type(traces[0]).from_dict(traces[0].to_dict())
    assert round_trip == traces[0]


class Held(Detect):
    """:class:`Detect` whose first call waits inside until ``release`` is set."""

    def __init__(self) -> None:
        super().__init__()
        self.entered = threading.Event()
        self.release = threading.Event()

    def __call__(self, items: list[Any]) -> list[Any]:
        if not self.entered.is_set():
            self.entered.set()
            assert self.release.wait(30)
        return super().__call__(items)


def test_an_item_s_queue_wait_and_its_batch_wait_are_told_apart(clock: FakeClock) -> None:
    stage = Held()
    pipeline = Pipeline(name="Cams", clock=clock, debug=True)
    pipeline.add(stage, "Detect", batch=2, batch_timeout=0.04).parallelize(queue_size=8)
    try:
        pipeline.forward(0)
        pipeline.forward(1)  # a full batch: its call waits inside
        assert stage.entered.wait(30)
        pipeline.forward(2)  # waits in the queue while the call runs
        clock.advance(0.010)
        stage.release.set()
        _joined(pipeline, 3, called=1)  # item 2 joined the next batch, 10 ms after it came
        clock.advance(0.040)
        assert len(list(_take(pipeline, 3))) == 3
        traces = {trace.frame_id: trace for trace in pipeline.frame_traces()}
        snapshot = pipeline.snapshot()
    finally:
        pipeline.cleanup()
    late = traces[2].spans[0]
    assert (late.wait_ns, late.batch_wait_ns, late.busy_ns) == (10 * MS, 40 * MS, 0)
    assert traces[2].latency_ns == 50 * MS
    first = traces[0].spans[0]
    assert (first.wait_ns, first.batch_wait_ns, first.busy_ns) == (0, 0, 10 * MS)
    batch = snapshot.stage("Cams__Detect").batch
    assert batch is not None
    assert sorted(batch.wait.samples) == [0, 0, 40 * MS]  # the queue's 10 ms not among them
    # The stage's timer holds each item's share of its batch's call: 5 + 5 + 0 ms.
    assert snapshot.stage("Cams__Detect").latency.total == pytest.approx(0.010)


def test_the_chrome_trace_draws_one_slice_a_batch_with_each_frame_flowing_into_it(
    clock: FakeClock,
) -> None:
    from framescope.trace import chrome_trace

    pipeline = Pipeline(name="Cams", clock=clock, debug=True)
    pipeline.add(lambda item: item, "Before").add(Detect(), "Detect", batch=2)
    pipeline.parallelize(queue_size=8)
    try:
        for item in range(4):
            pipeline.forward(item)
        assert len(list(_take(pipeline, 4))) == 4
        snapshot = pipeline.snapshot()
    finally:
        pipeline.cleanup()
    document = chrome_trace(snapshot.traces, snapshot.node_ids)
    slices = [e for e in document["traceEvents"] if e.get("cat") == "stage"]
    batches = [e for e in slices if e["args"].get("batch_size")]
    assert len(batches) == 2  # one slice for each batch, not one per frame
    assert sorted(tuple(e["args"]["frames"]) for e in batches) == [(0, 1), (2, 3)]
    tid = batches[0]["tid"]
    flows = [e for e in document["traceEvents"] if e.get("cat") == "flow" and e["tid"] == tid]
    assert sorted(flow["id"] for flow in flows) == [0, 1, 2, 3]  # each frame's arrow ends there
    starts = {e["ts"] for e in batches}
    assert {flow["ts"] for flow in flows} == starts


# -- the snapshot, its renderings ----------------------------------------------------------


def _batched_snapshot(clock: FakeClock) -> PipelineSnapshot:
    pipeline = _threaded(clock, Detect(), batch=4, batch_timeout=0.04)
    try:
        for item in range(6):
            pipeline.forward(item)
        _joined(pipeline, 6, called=1)
        clock.advance(0.040)
        assert len(list(_take(pipeline, 6))) == 6
        return pipeline.snapshot()
    finally:
        pipeline.cleanup()


def test_the_snapshot_carries_the_batches_to_json_and_back(clock: FakeClock) -> None:
    snapshot = _batched_snapshot(clock)
    batch = snapshot.stage("Cams__Detect").batch
    assert batch is not None
    assert batch.sizes == {4: 1, 2: 1}
    assert (batch.reason("full"), batch.reason("timeout")) == (1, 1)
    assert batch.wait.maximum == pytest.approx(0.040, abs=1e-12)
    again = PipelineSnapshot.from_dict(json.loads(snapshot.to_json()))
    assert again.stage("Cams__Detect").batch == batch
    with pytest.raises(KeyError, match="the reasons are: full, timeout, flush"):
        batch.reason("late")


def test_the_stage_table_shows_each_batched_stage_s_batches(clock: FakeClock) -> None:
    snapshot = _batched_snapshot(clock)
    text = str(snapshot)
    head, rows = text.rsplit("\nstage ", maxsplit=1)[-1].splitlines()[0], text.splitlines()
    assert "batch  timeout ms  batches  mean  full  timeout  flush  wait p50 ms" in head
    row = next(line for line in rows if line.startswith("Cams__Detect") and "4x1" in line)
    assert row.split() == [
        "Cams__Detect",
        "4",
        "40",
        "2",
        "3.0",
        "1",
        "1",
        "0",
        "0.00",  # p50 of 0, 0, 0, 0, 40, 40 ms
        "40.00",
        "40.00",
        "4x1",
        "2x1",
    ]
    rich = pytest.importorskip("rich.console")
    console = rich.Console(record=True, width=200)
    console.print(snapshot)
    shown = console.export_text()
    assert "batches" in shown and "4x1 2x1" in shown


def test_the_live_view_and_prometheus_show_the_batches(clock: FakeClock) -> None:
    from framescope.live.view import page_view

    snapshot = _batched_snapshot(clock)
    page = page_view(snapshot)
    assert page["batching"] == []  # 2 batches: too few to judge
    view = next(s for s in page["stages"] if s["key"] == "Cams__Detect")
    batch = view["batch"]
    assert (batch["size"], batch["batches"], batch["sizes"]) == (4, 2, {"2": 1, "4": 1})
    assert batch["reasons"] == {"full": 1, "timeout": 1, "flush": 0}
    assert batch["wait_max_ms"] == 40.0
    assert batch["text"].startswith("batch 4 (40 ms): 2 batches, mean 3.0 [4x1 2x1]; full 1")
    prometheus = pytest.importorskip("prometheus_client.exposition")
    from framescope.exporters.prometheus import PrometheusExporter

    class Reading:
        name = "Cams"

        def snapshot(self) -> PipelineSnapshot:
            return snapshot

    registry = pytest.importorskip("prometheus_client").CollectorRegistry()
    with PrometheusExporter(registry=registry) as exporter:
        exporter.add_pipeline(Reading())
        text = prometheus.generate_latest(registry).decode()
    parser = pytest.importorskip("prometheus_client.parser")
    samples = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in parser.text_string_to_metric_families(text)
        for sample in family.samples
    }

    def value(name: str, **labels: str) -> float:
        return samples[
            (name, tuple(sorted({"pipeline": "Cams", "stage": "Detect", **labels}.items())))
        ]

    assert value("framescope_stage_batch_size_bucket", le="1") == 0
    assert value("framescope_stage_batch_size_bucket", le="2") == 1
    assert value("framescope_stage_batch_size_bucket", le="4") == 2
    assert value("framescope_stage_batch_size_count") == 2
    assert value("framescope_stage_batch_size_sum") == 6  # items
    assert value("framescope_stage_batches_total", reason="full") == 1
    assert value("framescope_stage_batches_total", reason="timeout") == 1
    assert value("framescope_stage_batches_total", reason="flush") == 0
    assert value("framescope_stage_batch_wait_seconds_bucket", le="0.025") == 4
    assert value("framescope_stage_batch_wait_seconds_bucket", le="0.05") == 6
    assert value("framescope_stage_batch_wait_seconds_sum") == pytest.approx(0.080)


@pytest.mark.parametrize(
    ("change", "words"),
    [
        (lambda b: b.update(size=0), r"stages\[0\]\.batch\.size: expected an integer >= 1"),
        (lambda b: b.update(timeout_s=0), r"stages\[0\]\.batch\.timeout_s: expected a finite"),
        (lambda b: b.update(sizes=[[9, 1]]), r"stages\[0\]\.batch\.sizes\[0\]\[0\]: a batch of 9"),
        (
            lambda b: b.update(sizes=[[2]]),
            r"stages\[0\]\.batch\.sizes\[0\]: expected \[size, count",
        ),
        (lambda b: b["reasons"].update(full=-1), r"stages\[0\]\.batch\.reasons\.full: expected"),
    ],
)
def test_a_damaged_batch_in_json_is_refused_naming_the_field(
    clock: FakeClock, change: Any, words: str
) -> None:
    from framescope.pipeline import SnapshotFormatError

    data = json.loads(_batched_snapshot(clock).to_json())
    change(data["stages"][0]["batch"])
    with pytest.raises(SnapshotFormatError, match=words):
        PipelineSnapshot.from_dict(data)


@pytest.mark.parametrize("threaded", [True, False])
def test_a_tap_on_a_batched_stage_sees_each_item_s_result(clock: FakeClock, threaded: bool) -> None:
    pipeline = Pipeline(name="Cams", clock=clock).add(Detect(), "Detect", batch=4)
    if threaded:
        pipeline.parallelize(queue_size=8)
    seen: list[int] = []
    pipeline.tap("Detect", seen.append)
    try:
        assert list(pipeline.run(range(6))) == [0, 10, 20, 30, 40, 50]
    finally:
        pipeline.cleanup()
    assert seen == [0, 10, 20, 30, 40, 50]


def test_a_batched_stage_inside_a_threaded_nested_pipeline(clock: FakeClock) -> None:
    inner = Pipeline(name="Inner", clock=clock)
    inner.add(lambda item: item, "Pre").add(Detect(), "Detect", batch=2)
    inner.add(lambda item: item, "Post").parallelize()
    pipeline = Pipeline(name="Cams", clock=clock).add(inner).parallelize(queue_size=4)
    try:
        assert list(pipeline.run(range(5))) == [0, 10, 20, 30, 40]
        batch = pipeline.snapshot().stage("Cams__Inner__Detect").batch
    finally:
        pipeline.cleanup()
    assert batch is not None and batch.sizes == {2: 2, 1: 1}  # the last one flushed


@pytest.mark.parametrize("where", ["first", "last"])
def test_a_batched_first_or_last_stage_of_a_threaded_nested_pipeline_is_refused(
    where: str,
) -> None:
    inner = Pipeline(name="Inner")
    if where == "first":
        inner.add(Detect(), "Detect", batch=2).add(lambda item: item, "Post")
    else:
        inner.add(lambda item: item, "Pre").add(Detect(), "Detect", batch=2)
    inner.parallelize()
    pipeline = Pipeline(name="Cams").add(inner).parallelize()
    with pytest.raises(ValueError, match="batch: 'Cams__Inner__Detect' is the first or last"):
        pipeline.start()
    pipeline.cleanup()


def test_a_batch_snapshot_prints_as_one_line() -> None:
    batch = BatchSnapshot(4, 0.04, {4: 150, 2: 3}, {"full": 150, "timeout": 3})
    assert str(batch) == (
        "batch 4 (40 ms): 153 batches, mean 4.0 [4x150 2x3]; full 150, timeout 3, flush 0; "
        "wait p50 - p99 - max - ms"
    )
