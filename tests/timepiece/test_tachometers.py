from __future__ import annotations

import datetime
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from framescope.clock import FakeClock
from framescope.timepiece import (
    BaseTachometer,
    StopWatchTachometer,
    Tachometer,
    Ticker,
    TickerTachometer,
    TimerSnapshot,
)
from framescope.timepiece.timers import FOLD_AT


class Reports:
    """Collects (timestamp, snapshot) pairs, safe to call from executor threads."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.items: list[tuple[datetime.datetime, TimerSnapshot]] = []

    def __call__(self, timestamp: datetime.datetime, timer: TimerSnapshot) -> str:
        with self.lock:
            self.items.append((timestamp, timer))
        return "reported"


def test_ticker_tachometer_reports_each_period(clock: FakeClock) -> None:
    reports = Reports()
    tach = TickerTachometer(
        stats_callback=reports, stats_interval=datetime.timedelta(seconds=2), clock=clock
    )
    results = []
    for _ in range(100):  # 10 s at 10 fps
        results.append(tach.tick())
        clock.advance(0.1)
    fired = [r for r in results if r[0]]
    assert len(fired) == 4  # at 2, 4, 6, 8 s (the grid starts at construction)
    assert all(r[1] == (True, "reported") for r in fired)  # Backpack's (fired, (sent, result))
    counts = [t.len() for _, t in reports.items]
    assert counts == [20, 20, 20, 20]  # the tick at 2.0 s closes the first period
    for timestamp, timer in reports.items:
        assert timestamp.tzinfo is not None
        assert timer.min() == pytest.approx(0.1)
        assert timer.max() == pytest.approx(0.1)
        assert timer.sum() == pytest.approx(0.1 * timer.len())
        assert timer.freq() == pytest.approx(10.0)
    assert reports.items[0][0] == datetime.datetime(
        2024, 1, 1, 0, 0, 2, tzinfo=datetime.timezone.utc
    )


@pytest.mark.parametrize("fps", [1_000, 100_000])
def test_no_sample_is_lost_or_counted_twice_at_high_rates(clock: FakeClock, fps: int) -> None:
    reports = Reports()
    tach = TickerTachometer(stats_callback=reports, stats_interval=1.0, clock=clock)
    period_ns = 1_000_000_000 // fps
    n_ticks = fps * 3 + 123
    for _ in range(n_ticks):
        tach.tick()
        clock.advance_ns(period_ns)
    tach.flush()
    total = sum(t.len() for _, t in reports.items)
    assert total == n_ticks - 1
    assert sum(t.sum() for _, t in reports.items) == pytest.approx((n_ticks - 1) * period_ns / 1e9)
    # Percentiles use a bounded sample, counts stay exact.
    assert all(len(t.intervals) <= 10_000 for _, t in reports.items)
    assert reports.items[0][1].len() == fps
    assert reports.items[1][1].len() == fps


def test_callback_on_executor_gets_an_immutable_snapshot(clock: FakeClock) -> None:
    reports = Reports()
    release = threading.Event()
    seen: list[int] = []

    def slow_callback(timestamp: datetime.datetime, timer: TimerSnapshot) -> None:
        release.wait(timeout=10)  # measuring continues meanwhile
        seen.append(timer.len())
        reports(timestamp, timer)

    with ThreadPoolExecutor(max_workers=1) as executor:
        tach = TickerTachometer(
            stats_callback=slow_callback, stats_interval=1, executor=executor, clock=clock
        )
        fired_future = None
        for _ in range(15):
            fired, report = tach.tick()
            if fired:
                fired_future = report[1]
            clock.advance(0.1)
        assert fired_future is not None
        for _ in range(500):  # keep ticking while the callback is blocked
            tach.tick()
            clock.advance(0.001)
        release.set()
        fired_future.result(timeout=10)
    assert seen[0] == 10  # the period ending at 1 s: ticks at 0.0 .. 1.0
    assert reports.items[0][1].len() == 10
    assert isinstance(reports.items[0][1], TimerSnapshot)


def test_executor_callback_failure_is_counted(clock: FakeClock) -> None:
    def boom(timestamp: datetime.datetime, timer: TimerSnapshot) -> None:
        raise RuntimeError("report failed")

    with ThreadPoolExecutor(max_workers=1) as executor:
        tach = TickerTachometer(
            stats_callback=boom, stats_interval=1, executor=executor, clock=clock
        )
        futures = []
        for _ in range(35):
            fired, report = tach.tick()
            if fired:
                futures.append(report[1])
            clock.advance(0.1)
        for f in futures:
            f.exception(timeout=10)
    assert tach.callback.failures == len(futures) == 3
    assert tach.reports == 3
    assert tach.executor is executor


def test_empty_period_sends_no_report(clock: FakeClock) -> None:
    reports = Reports()
    tach = TickerTachometer(stats_callback=reports, stats_interval=1, clock=clock)
    tach.tick()
    clock.advance(5)
    tach.tick()  # one interval: reported
    clock.advance(5)
    assert tach.flush() == (False, None)
    assert len(reports.items) == 1
    assert reports.items[0][1].len() == 1


def test_stopwatch_tachometer_context_and_measure(clock: FakeClock) -> None:
    reports = Reports()
    tach = StopWatchTachometer(stats_callback=reports, stats_interval=2, clock=clock)
    for _ in range(10):
        with tach:
            clock.advance(0.05)
        clock.advance(0.05)

    @tach.measure
    def work(x: int) -> int:
        clock.advance(0.2)
        return x * 2

    assert [work(i) for i in range(5)] == [0, 2, 4, 6, 8]
    # Blocks end at 0.05, 0.15 ... 0.95 s, then five 0.2 s calls end at 1.2 .. 2.0 s.
    assert len(reports.items) == 1
    timer = reports.items[0][1]
    assert timer.len() == 15
    assert timer.min() == pytest.approx(0.05)
    assert timer.max() == pytest.approx(0.2)
    assert timer.sum() == pytest.approx(10 * 0.05 + 5 * 0.2)
    assert repr(timer).startswith("<StopWatch name=tachometer intervals=[0.0500")


def test_stopwatch_tachometer_measures_raising_blocks(clock: FakeClock) -> None:
    reports = Reports()
    tach = StopWatchTachometer(stats_callback=reports, stats_interval=1, clock=clock)

    @tach.measure
    def fails() -> None:
        clock.advance(0.3)
        raise KeyError("x")

    for _ in range(4):
        with pytest.raises(KeyError):
            fails()
    assert reports.items[0][1].len() == 4


def test_old_tachometer_flat_callback(clock: FakeClock) -> None:
    calls: list[tuple[Any, ...]] = []

    def stats_callback(
        timestamp: datetime.datetime,
        min_proc_time: float,
        max_proc_time: float,
        sum_proc_time: float,
        num_events: int,
    ) -> None:
        calls.append((timestamp, min_proc_time, max_proc_time, sum_proc_time, num_events))

    tach = Tachometer(stats_callback, datetime.timedelta(seconds=2), clock=clock)
    for i in range(41):
        tach.tick()
        clock.advance(0.05 if i % 2 else 0.15)
    assert len(calls) == 2
    _, low, high, total, num = calls[0]
    assert (low, high, num) == (pytest.approx(0.05), pytest.approx(0.15), 20)
    assert total == pytest.approx(2.0)
    assert tach.flat_stats_callback is stats_callback


def test_tachometer_exact_across_fold_boundary(clock: FakeClock) -> None:
    reports = Reports()
    tach = TickerTachometer(stats_callback=reports, stats_interval=1, clock=clock, max_intervals=5)
    n = FOLD_AT * 2 + 5
    for _ in range(n):
        tach.tick()
        clock.advance_ns(100_000)  # 10 kHz
    tach.flush()
    assert sum(t.len() for _, t in reports.items) == n - 1
    assert all(len(t.intervals) <= 5 for _, t in reports.items)


@pytest.mark.parametrize(
    ("factory", "error", "message"),
    [
        (lambda: TickerTachometer(stats_callback=3), TypeError, "stats_callback must be callable"),
        (lambda: Tachometer(stats_callback=None), TypeError, "stats_callback must be callable"),
        (
            lambda: TickerTachometer(print, stats_interval=0),
            ValueError,
            "interval must be positive",
        ),
        (
            lambda: StopWatchTachometer(print, stats_interval=datetime.timedelta(seconds=-1)),
            ValueError,
            "interval must be positive",
        ),
        (lambda: TickerTachometer(print, max_intervals=0), ValueError, "max_intervals must be"),
        (lambda: TickerTachometer(print, executor=1), TypeError, "executor must be"),
        (lambda: BaseTachometer(timer="t", stats_callback=print), TypeError, "timer must be"),
    ],
)
def test_bad_arguments(factory: Any, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        factory()


def test_base_tachometer_with_own_timer(clock: FakeClock) -> None:
    reports = Reports()
    ticker = Ticker(clock=clock)
    tach = BaseTachometer(ticker, reports, stats_interval=1)
    for _ in range(3):
        ticker.tick()
        clock.advance(0.4)
    assert tach.flush()[0]
    assert reports.items[0][1].len() == 2


def test_a_bad_stats_interval_is_named_as_such() -> None:
    with pytest.raises(ValueError, match="stats_interval must be positive"):
        TickerTachometer(lambda *args: None, stats_interval=0)
    with pytest.raises(TypeError, match="stats_interval"):
        TickerTachometer(lambda *args: None, stats_interval="60")  # type: ignore[arg-type]
