"""Code written against released Backpack's timepiece (0.1.9-0.3.2) runs unchanged."""

from __future__ import annotations

import datetime
from collections import deque
from concurrent.futures import Future
from typing import Any

import pytest

from framescope.clock import FakeClock
from framescope.timepiece import (
    AlarmClock,
    Callback,
    Schedule,
    StopWatch,
    StopWatchTachometer,
    Tachometer,
    Ticker,
    TickerTachometer,
)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def test_released_tachometer_callback_gets_the_ticker(clock: FakeClock) -> None:
    seen: list[int] = []
    tach = Tachometer(
        lambda ts, t: seen.append(t.len()), datetime.timedelta(seconds=1), clock=clock
    )
    for _ in range(25):
        tach.tick()
        clock.advance(0.1)
    assert seen == [10, 10]


def test_readme_form_of_the_tachometer_callback_still_gets_five_values(clock: FakeClock) -> None:
    seen: list[tuple[Any, ...]] = []

    def flat(ts: datetime.datetime, mn: float, mx: float, total: float, num: int) -> None:
        seen.append((mn, mx, round(total, 6), num))

    tach = Tachometer(flat, 1, clock=clock)
    for _ in range(12):
        tach.tick()
        clock.advance(0.1)
    assert seen == [(pytest.approx(0.1), pytest.approx(0.1), 1.0, 10)]


def test_tick_answers_fired_and_the_report(clock: FakeClock) -> None:
    tach = TickerTachometer(stats_callback=lambda ts, t: t.len(), stats_interval=1, clock=clock)
    answers = []
    for _ in range(12):
        answers.append(tach.tick())
        clock.advance(0.1)
    fired = [answer for answer in answers if answer[0]]
    assert answers[0] == (False, None)
    ((was_fired, (sent, result)),) = fired  # Backpack's tests unpack it this way
    assert was_fired and sent and result == 10


def test_a_period_without_samples_fires_but_sends_nothing(clock: FakeClock) -> None:
    tach = TickerTachometer(stats_callback=lambda ts, t: "sent", stats_interval=1, clock=clock)
    clock.advance(1.5)
    assert tach.tick() == (True, (False, None))  # the period is over; its first tick: no interval


def test_executor_result_is_the_future(clock: FakeClock) -> None:
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1) as executor:
        tach = TickerTachometer(lambda ts, t: t.len(), 1, executor, clock=clock)
        for _ in range(11):
            answer = tach.tick()
            clock.advance(0.1)
        fired, (sent, future) = answer
        assert fired and sent and isinstance(future, Future)
        assert future.result(timeout=5) == 10


class OneShot(Schedule):
    """A user's schedule, written as Backpack's docs show: fires on the first tick."""

    def __init__(self, callback: Callback) -> None:
        super().__init__(repeating=False, callback=callback)

    def tick(self) -> tuple[bool, Any]:
        return True, self.fire()


def test_alarm_clock_drops_a_fired_schedule_that_does_not_repeat() -> None:
    calls: list[str] = []
    alarm = AlarmClock([OneShot(Callback(calls.append, cbargs=["fired"]))])
    for _ in range(3):
        alarm.tick()
    assert calls == ["fired"]
    assert alarm.schedules == []


class DuckSchedule:
    """Anything with tick(), as Backpack accepts."""

    repeating = True

    def __init__(self) -> None:
        self.ticks = 0

    def tick(self) -> tuple[bool, Any]:
        self.ticks += 1
        return False, None


class DuckExecutor:
    """Anything with submit(), as Backpack accepts."""

    def __init__(self) -> None:
        self.submitted: list[Any] = []

    def submit(self, fn: Any, *args: Any, **kwargs: Any) -> Future[Any]:
        future: Future[Any] = Future()
        future.set_result(fn(*args, **kwargs))
        self.submitted.append(fn)
        return future


def test_duck_typed_schedules_and_executors_are_accepted(clock: FakeClock) -> None:
    duck = DuckSchedule()
    alarm = AlarmClock([duck])
    alarm.tick()
    assert duck.ticks == 1 and alarm.schedules == [duck]
    executor = DuckExecutor()
    tach = TickerTachometer(lambda ts, t: t.len(), 1, executor, clock=clock)  # type: ignore[arg-type]
    for _ in range(11):
        tach.tick()
        clock.advance(0.1)
    assert len(executor.submitted) == 1


def test_intervals_answer_as_the_deque_did(clock: FakeClock) -> None:
    ticker = Ticker(max_intervals=3, clock=clock)
    for _ in range(5):
        ticker.tick()
        clock.advance(0.5)
    intervals = ticker.intervals
    assert intervals.maxlen == 3
    assert list(intervals) == [0.5, 0.5, 0.5] and len(intervals) == 3
    assert intervals.copy() == deque([0.5, 0.5, 0.5], maxlen=3)
    ticker.intervals.clear()  # Backpack's tachometer cleared its timer this way
    assert ticker.len() == 0
    watch = StopWatch("w", max_intervals=4, clock=clock)
    with watch:
        clock.advance(0.25)
    assert watch.intervals.maxlen == 4 and watch.intervals == (0.25,)


def test_backpack_class_attributes_exist() -> None:
    assert TickerTachometer.EXPECTED_MAX_FPS == StopWatchTachometer.EXPECTED_MAX_FPS == 100
    assert Ticker.MAX_REPR_INTERVALS == StopWatch.MAX_REPR_INTERVALS == 5


def test_tachometer_callback_intervals_copy_and_maxlen_as_backpacks(clock: FakeClock) -> None:
    """Backpack's tests call ``ticker.intervals.copy()`` inside the stats callback."""
    copies: list[deque[float]] = []
    tach = TickerTachometer(
        lambda ts, ticker: copies.append(ticker.intervals.copy()),
        datetime.timedelta(seconds=1),
        max_intervals=50,
        clock=clock,
    )
    for _ in range(12):
        tach.tick()
        clock.advance(0.25)
    assert len(copies) == 2
    assert isinstance(copies[0], deque) and copies[0].maxlen == 50
    assert list(copies[0]) == [0.25] * 4
    watched: list[deque[float]] = []
    watch = StopWatchTachometer(
        lambda ts, timer: watched.append(timer.intervals.copy()), 1, max_intervals=7, clock=clock
    )
    with watch:
        clock.advance(0.5)
    watch.flush()
    assert watched == [deque([0.5], maxlen=7)] and watched[0].maxlen == 7


class RepeatingWithDone(Schedule):
    """A repeating user schedule whose ``done`` is truthy without meaning 'remove me'."""

    done = True  # type: ignore[assignment]

    def __init__(self) -> None:
        super().__init__(True, lambda: None)
        self.ticks = 0

    def tick(self) -> tuple[bool, Any]:
        self.ticks += 1
        return False, None


def test_alarm_clock_keeps_a_repeating_schedule_whatever_its_done_says() -> None:
    schedule = RepeatingWithDone()
    alarm = AlarmClock([schedule])
    for _ in range(3):
        alarm.tick()
    assert alarm.schedules == [schedule] and schedule.ticks == 3
