from __future__ import annotations

import random
import threading

import numpy
import pytest

from framescope import folds
from framescope.clock import FakeClock
from framescope.pipeline.debug.aggregation import Aggregator, NodeLink
from framescope.pipeline.debug.nodestate import NodeReading
from framescope.pipeline.debug.recorder import EventRecorder
from framescope.pipeline.model.events import (
    NO_QUEUE,
    IterationRecord,
    iteration_records,
    pack_iteration,
)
from tests.polling import wait_for


def recorded(count: int, seed: int) -> tuple[EventRecorder, list[IterationRecord]]:
    """A recorder holding ``count`` iterations with random timings (some not sent)."""
    rng = random.Random(seed)
    recorder = EventRecorder("P__S", FakeClock())
    records, t = [], 10**13
    for sequence in range(count):
        got = t + rng.randint(0, 5_000_000)
        send = got + rng.randint(0, 20_000_000)
        sent_at = send + rng.randint(0, 1_000_000)
        record = IterationRecord(
            sequence,
            sequence * 3,
            t,
            rng.randint(0, 8),
            got,
            send,
            rng.choice([None, rng.randint(0, 4)]),
            sent_at,
            rng.random() > 0.1,
            t - rng.randint(0, 10**8),
        )
        recorder.extend_iterations(pack_iteration(*(NO_QUEUE if v is None else v for v in record)))
        records.append(record)
        t = sent_at
    return recorder, records


def read(recorder: EventRecorder) -> NodeReading:
    link = NodeLink(recorder.node_id, recorder, inbox_length=lambda: 0, capacity=8)
    aggregator = Aggregator("P", [link], FakeClock(), window=50, events_kept=32)
    (reading,) = aggregator.readings()
    return reading


@pytest.mark.parametrize("count", [3, folds.NUMPY_FROM + 1, 2_000])
def test_numpy_and_python_folds_of_iterations_agree(
    count: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert folds._numpy() is numpy
    fast = read(recorded(count, count)[0])
    monkeypatch.setattr(folds, "_numpy", lambda: None)
    slow = read(recorded(count, count)[0])
    for name in ("loop", "inputs_get", "outputs_send", "queued_stats"):
        assert getattr(fast, name) == getattr(slow, name), name
    assert fast.recent_iterations == slow.recent_iterations


def test_folded_iterations_are_exact(monkeypatch: pytest.MonkeyPatch) -> None:
    recorder, records = recorded(1_000, 7)
    reading = read(recorder)
    loops = [r.t_sent - r.t_get for r in records]
    gets = [r.t_got - r.t_get for r in records]
    queued = [r.queued for r in records]
    assert reading.loop.count == 1_000
    assert reading.loop.total == pytest.approx(sum(loops) / 1_000)  # microseconds
    assert (reading.loop.minimum, reading.loop.maximum) == (min(loops) / 1e3, max(loops) / 1e3)
    assert (reading.inputs_get.minimum, reading.inputs_get.maximum) == (
        min(gets) / 1e3,
        max(gets) / 1e3,
    )
    assert reading.queued_stats is not None
    assert (reading.queued_stats.minimum, reading.queued_stats.maximum) == (
        min(queued),
        max(queued),
    )


def test_recorded_iterations_come_back_as_they_went_in() -> None:
    recorder, records = recorded(40, 1)
    flat = recorder.drain_iterations()
    assert iteration_records(flat) == records  # None for "no next queue", sent as a bool
    assert NO_QUEUE in flat[6::10] and all(type(r.sent) is bool for r in iteration_records(flat))


@pytest.mark.parametrize(("with_numpy", "first_drain_ms"), [(True, 100), (False, 10)])
def test_a_backlog_drains_early_as_suits_the_fold_in_use(
    with_numpy: bool, first_drain_ms: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    # 600 records wait: past the pure-Python fold's early-drain mark (512),
    # short of NumPy's (2048), where only the 100 ms interval drains them.
    if not with_numpy:
        monkeypatch.setattr(folds, "_numpy", lambda: None)
    recorder, _ = recorded(600, 7)
    clock = FakeClock(autojump=True)
    aggregator = Aggregator("P", [NodeLink(recorder.node_id, recorder)], clock, interval_s=0.1)
    start, drained_at, drained = clock.monotonic_ns(), [], threading.Event()
    drain = aggregator.drain

    def noted_drain() -> None:
        drained_at.append(clock.monotonic_ns() - start)
        drained.set()
        drain()

    monkeypatch.setattr(aggregator, "drain", noted_drain)
    aggregator.start()
    try:
        assert drained.wait(10)
    finally:
        assert aggregator.stop(10)
    assert drained_at[0] == first_drain_ms * 1_000_000
    assert recorder.backlog() == 0


def test_an_idle_aggregator_wakes_seldom_and_a_burst_is_drained_at_the_usual_interval(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    recorder = EventRecorder("P__S", FakeClock())
    clock = FakeClock(autojump=True)
    aggregator = Aggregator("P", [NodeLink(recorder.node_id, recorder)], clock, interval_s=0.1)
    checks: list[int] = []
    rounds: list[int] = []
    drains: list[int] = []
    burst_at: list[int] = []
    backlog = EventRecorder.backlog

    def counted_backlog(self: EventRecorder) -> int:
        checks.append(clock.monotonic_ns())
        return backlog(self)

    def counted_drain() -> None:
        drains.append(clock.monotonic_ns())
        drain()

    def round_done() -> None:  # the periodic round's CPU reading
        rounds.append(clock.monotonic_ns())
        if clock.monotonic_ns() >= idle_until and not burst_at:
            recorder.extend_iterations(pack_iteration(*range(10)))
            burst_at.append(clock.monotonic_ns())

    monkeypatch.setattr(EventRecorder, "backlog", counted_backlog)
    drain = aggregator.drain
    monkeypatch.setattr(aggregator, "drain", counted_drain)
    idle_until = clock.monotonic_ns() + 10 * 10**9
    aggregator.after_drain = round_done
    aggregator.start()
    try:
        wait_for(lambda: burst_at and any(t > burst_at[0] for t in drains), what="the burst")
    finally:
        assert aggregator.stop(10)
    # Idle for 10 s: a backlog check at most every 0.25 s and a round once a
    # second, where a busy aggregator checks every 10 ms.
    assert len([t for t in checks if t < idle_until]) <= 10 * 4 + 8
    assert 9 <= len([t for t in rounds if t < idle_until]) <= 11
    assert not [t for t in drains if t < idle_until]  # nothing recorded: nothing folded
    # The burst is drained within one idle check and the usual interval.
    first = min(t for t in drains if t > burst_at[0])
    assert first - burst_at[0] <= 350_000_000
    assert recorder.backlog() == 0
