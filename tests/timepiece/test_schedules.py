from __future__ import annotations

import datetime
import logging
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import pytest

from framescope.clock import FakeClock
from framescope.timepiece import (
    AlarmClock,
    AtSchedule,
    Callback,
    IntervalSchedule,
    OrdinalSchedule,
    Schedule,
)

UTC = datetime.timezone.utc


class Recorder:
    """A callable that remembers its calls."""

    def __init__(self, result: Any = None) -> None:
        self.calls: list[tuple[tuple[Any, ...], dict[str, Any]]] = []
        self.result = result

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self.calls.append((args, kwargs))
        return self.result


# --- Callback -------------------------------------------------------------------


def test_callback_direct_call_passes_arguments_and_returns() -> None:
    rec = Recorder(result=42)
    cb = Callback(rec, cbargs=[1, 2], cbkwargs={"k": "v"})
    assert cb() == 42
    assert cb("extra") == 42
    assert rec.calls == [((1, 2), {"k": "v"}), ((1, 2, "extra"), {"k": "v"})]


def test_callback_direct_exception_propagates() -> None:
    def boom() -> None:
        raise RuntimeError("direct")

    with pytest.raises(RuntimeError, match="direct"):
        Callback(boom)()


def test_callback_on_executor_returns_future() -> None:
    rec = Recorder(result="done")
    with ThreadPoolExecutor(max_workers=1) as executor:
        future = Callback(rec, cbkwargs={"name": "x"}, executor=executor)()
        assert isinstance(future, Future)
        assert future.result(timeout=5) == "done"
    assert rec.calls == [((), {"name": "x"})]


def test_callback_failure_on_executor_is_logged_and_counted(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def boom() -> None:
        raise ValueError("on executor")

    cb = Callback(boom, executor=ThreadPoolExecutor(max_workers=1))
    assert cb.executor is not None
    with caplog.at_level(logging.ERROR, logger="framescope.timepiece.schedules"):
        futures = [cb() for _ in range(3)]
        cb.executor.shutdown(wait=True)
    for f in futures:
        assert isinstance(f.exception(), ValueError)
    assert cb.failures == 3
    assert isinstance(cb.last_error, ValueError)
    assert sum("boom" in r.getMessage() for r in caplog.records) == 3
    assert all(r.exc_info is not None for r in caplog.records)


def test_callback_on_shut_down_executor_is_counted_not_raised(
    caplog: pytest.LogCaptureFixture,
) -> None:
    executor = ThreadPoolExecutor(max_workers=1)
    executor.shutdown()
    rec = Recorder()
    cb = Callback(rec, executor=executor)
    with caplog.at_level(logging.ERROR):
        assert cb() is None
    assert cb.failures == 1
    assert isinstance(cb.last_error, RuntimeError)
    assert rec.calls == []
    assert "failed on executor" in caplog.text


def test_callback_counter_is_thread_safe() -> None:
    def boom() -> None:
        raise ValueError

    with ThreadPoolExecutor(max_workers=8) as executor:
        cb = Callback(boom, executor=executor)
        logging.getLogger("framescope.timepiece.schedules").disabled = True
        try:
            futures = [cb() for _ in range(500)]
            for f in futures:
                f.exception()
        finally:
            logging.getLogger("framescope.timepiece.schedules").disabled = False
    assert cb.failures == 500


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"cb": 3}, TypeError, "cb must be callable"),
        ({"cb": print, "cbargs": "ab"}, TypeError, "cbargs must be a list or tuple"),
        ({"cb": print, "cbkwargs": [1]}, TypeError, "cbkwargs must be a dict"),
        ({"cb": print, "executor": object()}, TypeError, "executor must be a concurrent"),
    ],
)
def test_callback_bad_arguments(
    kwargs: dict[str, Any], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        Callback(**kwargs)


# --- AtSchedule -----------------------------------------------------------------


def test_at_schedule_fires_once_at_the_first_tick_after_at(clock: FakeClock) -> None:
    rec = Recorder(result="r")
    sched = AtSchedule(at=clock.wall() + datetime.timedelta(seconds=3), callback=rec, clock=clock)
    assert sched.tick() == (False, None)
    clock.advance(2.999)
    assert sched.tick() == (False, None)
    clock.advance(0.5)
    assert sched.tick() == (True, "r")
    assert sched.fired and sched.done
    clock.advance(10)
    assert sched.tick() == (False, None)
    assert len(rec.calls) == 1


def test_at_schedule_rearms_when_at_is_set(clock: FakeClock) -> None:
    rec = Recorder()
    sched = AtSchedule(at=clock.wall(), callback=rec, clock=clock)
    assert sched.tick()[0]
    sched.at = clock.wall() + datetime.timedelta(seconds=1)
    assert not sched.fired
    clock.advance(1)
    assert sched.tick()[0]
    assert len(rec.calls) == 2


def test_at_schedule_naive_at_is_local_time(clock: FakeClock) -> None:
    naive_local = (clock.wall() + datetime.timedelta(seconds=5)).astimezone().replace(tzinfo=None)
    sched = AtSchedule(at=naive_local, callback=Recorder(), clock=clock)
    assert sched.at.tzinfo is not None
    assert sched.at == clock.wall() + datetime.timedelta(seconds=5)
    clock.advance(4)
    assert not sched.tick()[0]
    clock.advance(1)
    assert sched.tick()[0]


def test_at_schedule_compares_across_time_zones(clock: FakeClock) -> None:
    plus_two = datetime.timezone(datetime.timedelta(hours=2))
    at = (clock.wall() + datetime.timedelta(seconds=1)).astimezone(plus_two)
    sched = AtSchedule(at=at, callback=Recorder(), clock=clock)
    assert not sched.tick()[0]
    clock.advance(1)
    assert sched.tick()[0]


def test_at_schedule_follows_the_wall_clock(clock: FakeClock) -> None:
    sched = AtSchedule(
        at=clock.wall() + datetime.timedelta(hours=1), callback=Recorder(), clock=clock
    )
    clock.jump_wall(datetime.timedelta(hours=2))  # the wall time has passed
    assert sched.tick()[0]


def test_at_schedule_raising_callback_does_not_refire(clock: FakeClock) -> None:
    calls = []

    def boom() -> None:
        calls.append(1)
        raise RuntimeError("x")

    sched = AtSchedule(at=clock.wall(), callback=boom, clock=clock)
    with pytest.raises(RuntimeError):
        sched.tick()
    assert sched.tick() == (False, None)
    assert calls == [1]


def test_at_schedule_bad_at() -> None:
    with pytest.raises(TypeError, match="at must be a datetime"):
        AtSchedule(at="tomorrow", callback=print)  # type: ignore[arg-type]


# --- IntervalSchedule -----------------------------------------------------------


def test_interval_schedule_fires_first_tick_then_on_grid(clock: FakeClock) -> None:
    rec = Recorder()
    sched = IntervalSchedule(interval=datetime.timedelta(seconds=1.35), callback=rec, clock=clock)
    fired_at = []
    for i in range(25 * 5):  # 5 s of ticks at 25 fps
        if sched.tick()[0]:
            fired_at.append(i)
        clock.advance(0.04)
    # Grid 0, 1.35, 2.70, 4.05 s -> ticks 0, 34 (1.36 s), 68 (2.72 s), 102 (4.08 s).
    assert fired_at == [0, 34, 68, 102]
    assert sched.skipped == 0
    assert sched.fire_count == 4


def test_interval_schedule_does_not_drift(clock: FakeClock) -> None:
    sched = IntervalSchedule(interval=1.0, callback=Recorder(), clock=clock)
    sched.tick()
    start = clock.monotonic_ns()
    fired = 0
    for _ in range(10_000):  # 100 s of ticks, each 10.7 ms: lateness must not accumulate
        clock.advance(0.0107)
        fired += sched.tick()[0]
    elapsed = (clock.monotonic_ns() - start) / 1e9
    assert fired == int(elapsed)
    assert sched.next_due_ns == start + (fired + 1) * 1_000_000_000


def test_interval_schedule_late_tick_fires_once_and_skips(clock: FakeClock) -> None:
    rec = Recorder()
    sched = IntervalSchedule(interval=1, callback=rec, clock=clock)
    sched.tick()
    clock.advance(5.5)  # the loop stalled for 5.5 s
    assert sched.tick()[0]
    assert sched.skipped == 4
    assert not sched.tick()[0]
    clock.advance(0.5)  # next slot stays on the original grid: 6 s
    assert sched.tick()[0]
    assert len(rec.calls) == 3


def test_interval_schedule_ignores_wall_clock_jumps(clock: FakeClock) -> None:
    rec = Recorder()
    sched = IntervalSchedule(interval=1, callback=rec, clock=clock)
    sched.tick()
    clock.jump_wall(datetime.timedelta(days=365))  # forward: no burst of firings
    assert not sched.tick()[0]
    clock.jump_wall(datetime.timedelta(days=-730))  # backward: no stall
    clock.advance(1)
    assert sched.tick()[0]
    assert len(rec.calls) == 2


def test_interval_schedule_with_executor_and_kwargs(clock: FakeClock) -> None:
    rec = Recorder()
    with ThreadPoolExecutor(max_workers=1) as executor:
        sched = IntervalSchedule(
            1, callback=rec, cbkwargs={"name": "iv"}, executor=executor, clock=clock
        )
        fired, future = sched.tick()
        assert fired
        future.result(timeout=5)
    assert rec.calls == [((), {"name": "iv"})]


@pytest.mark.parametrize("interval", [0, -1, datetime.timedelta(0), datetime.timedelta(-1)])
def test_interval_schedule_rejects_non_positive_interval(interval: Any) -> None:
    with pytest.raises(ValueError, match="interval must be positive"):
        IntervalSchedule(interval=interval, callback=print)


def test_interval_schedule_rejects_bad_interval_type() -> None:
    with pytest.raises(TypeError, match="interval must be a number of seconds or a datetime"):
        IntervalSchedule(interval="1s", callback=print)  # type: ignore[arg-type]


def test_interval_property(clock: FakeClock) -> None:
    sched = IntervalSchedule(interval=1.35, callback=print, clock=clock)
    assert sched.interval == datetime.timedelta(seconds=1.35)
    assert sched.next_due_ns is None


# --- OrdinalSchedule ------------------------------------------------------------


def test_ordinal_schedule_fires_every_nth_tick() -> None:
    rec = Recorder()
    sched = OrdinalSchedule(ordinal=3, callback=rec)
    fired = [sched.tick()[0] for _ in range(9)]
    assert fired == [False, False, True] * 3
    every = OrdinalSchedule(ordinal=1, callback=rec)
    assert all(every.tick()[0] for _ in range(4))


@pytest.mark.parametrize(
    ("ordinal", "error"), [(0, ValueError), (-2, ValueError), (1.5, TypeError)]
)
def test_ordinal_schedule_rejects_bad_ordinal(ordinal: Any, error: type[Exception]) -> None:
    with pytest.raises(error, match="ordinal must be"):
        OrdinalSchedule(ordinal=ordinal, callback=print)


# --- schedule construction --------------------------------------------------------


def test_callback_and_its_arguments_go_in_one_place() -> None:
    with pytest.raises(ValueError, match="either into the Callback or to the schedule"):
        OrdinalSchedule(2, callback=Callback(print), cbkwargs={"a": 1})
    with pytest.raises(TypeError, match="callback must be a Callback or a callable"):
        OrdinalSchedule(2, callback=5)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="clock must provide"):
        OrdinalSchedule(2, callback=print, clock="now")  # type: ignore[arg-type]


# --- AlarmClock -----------------------------------------------------------------


def test_alarm_clock_ticks_all_and_drops_fired_one_shots(clock: FakeClock) -> None:
    log: list[str] = []
    at = AtSchedule(
        at=clock.wall() + datetime.timedelta(seconds=3),
        callback=log.append,
        cbargs=["at"],
        clock=clock,
    )
    iv = IntervalSchedule(
        interval=datetime.timedelta(seconds=1.35),
        callback=Callback(cb=log.append, cbargs=["iv"]),
        clock=clock,
    )
    ordinal = OrdinalSchedule(ordinal=17, callback=log.append, cbargs=["ord"], clock=clock)
    alarm = AlarmClock([at, iv, ordinal])
    for _ in range(25 * 5):
        alarm.tick()
        clock.advance(1 / 25)
    assert log.count("at") == 1
    assert log.count("iv") == 4
    assert log.count("ord") == 7
    assert at not in alarm.schedules
    assert alarm.schedules == [iv, ordinal]


def test_alarm_clock_keeps_ticking_others_when_one_raises(
    clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    log: list[str] = []

    def boom(name: str) -> None:
        raise RuntimeError(name)

    alarm = AlarmClock(
        [
            OrdinalSchedule(1, callback=boom, cbargs=["first"]),
            OrdinalSchedule(1, callback=boom, cbargs=["second"]),
            OrdinalSchedule(1, callback=log.append, cbargs=["ok"]),
            AtSchedule(at=clock.wall(), callback=boom, cbargs=["once"], clock=clock),
        ]
    )
    with caplog.at_level(logging.ERROR), pytest.raises(RuntimeError, match="first"):
        alarm.tick()
    assert log == ["ok"]
    assert "second" in caplog.text and "once" in caplog.text
    assert len(alarm.schedules) == 3  # the fired AtSchedule is gone even though it raised


def test_alarm_clock_add_remove_and_validation() -> None:
    alarm = AlarmClock()
    sched = OrdinalSchedule(2, callback=print)
    alarm.add(sched)
    assert alarm.schedules == [sched]
    alarm.remove(sched)
    assert alarm.schedules == []
    with pytest.raises(TypeError, match="schedules must hold Schedules"):
        AlarmClock([print])  # type: ignore[list-item]
    with pytest.raises(TypeError, match="schedule must be a Schedule"):
        alarm.add(print)  # type: ignore[arg-type]


def test_schedule_is_abstract() -> None:
    with pytest.raises(TypeError):
        Schedule(True, print)  # type: ignore[abstract]


def test_executor_callbacks_from_many_schedules_run_concurrently_safely(clock: FakeClock) -> None:
    lock = threading.Lock()
    counts: dict[str, int] = {}

    def count(name: str) -> None:
        with lock:
            counts[name] = counts.get(name, 0) + 1

    with ThreadPoolExecutor(max_workers=4) as executor:
        alarm = AlarmClock(
            [
                OrdinalSchedule(1, callback=count, cbargs=[f"s{i}"], executor=executor)
                for i in range(4)
            ]
        )
        for _ in range(250):
            alarm.tick()
    assert counts == {f"s{i}": 250 for i in range(4)}


def test_at_schedule_utc_default_wall(clock: FakeClock) -> None:
    sched = AtSchedule(
        at=datetime.datetime(2024, 1, 1, 0, 0, 1, tzinfo=UTC), callback=print, clock=clock
    )
    assert not sched.tick()[0]
