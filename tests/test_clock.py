from __future__ import annotations

import datetime
import threading
import time

import pytest

from framescope.clock import SYSTEM_CLOCK, Clock, FakeClock, SystemClock, to_nanoseconds


def test_system_clock_readings() -> None:
    clock = SystemClock()
    assert isinstance(clock, Clock)
    first = clock.monotonic_ns()
    second = clock.monotonic_ns()
    assert isinstance(first, int)
    assert second >= first
    wall = clock.wall()
    assert wall.tzinfo is not None
    assert wall.utcoffset() == datetime.timedelta(0)
    # The monotonic reading is perf_counter_ns itself, not a wrapper.
    assert SystemClock.monotonic_ns is time.perf_counter_ns
    assert SYSTEM_CLOCK.monotonic_ns is time.perf_counter_ns


def test_fake_clock_advances_both_readings(clock: FakeClock) -> None:
    start_wall = clock.wall()
    clock.advance(1.5)
    assert clock.monotonic_ns() == 2_500_000_000
    assert clock.wall() - start_wall == datetime.timedelta(seconds=1.5)
    clock.advance(datetime.timedelta(milliseconds=250))
    assert clock.monotonic_ns() == 2_750_000_000
    clock.advance_ns(7)
    assert clock.monotonic_ns() == 2_750_000_007


def test_fake_clock_wall_jump_leaves_monotonic_alone(clock: FakeClock) -> None:
    mono = clock.monotonic_ns()
    wall = clock.wall()
    clock.jump_wall(-3600)
    assert clock.monotonic_ns() == mono
    assert clock.wall() == wall - datetime.timedelta(hours=1)
    clock.jump_wall(datetime.timedelta(days=1))
    assert clock.wall() == wall + datetime.timedelta(hours=23)


def test_fake_clock_rejects_going_back_and_bad_types(clock: FakeClock) -> None:
    with pytest.raises(ValueError, match="seconds must be >= 0"):
        clock.advance(-1)
    with pytest.raises(ValueError, match="nanoseconds must be >= 0"):
        clock.advance_ns(-1)
    with pytest.raises(TypeError, match="nanoseconds must be an int"):
        clock.advance_ns(1.5)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="seconds must be a number"):
        clock.advance("1")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="timezone-aware"):
        FakeClock(wall=datetime.datetime(2024, 1, 1))
    with pytest.raises(TypeError, match="start_ns must be an int"):
        FakeClock(start_ns=1.0)  # type: ignore[arg-type]


def test_to_nanoseconds() -> None:
    assert to_nanoseconds(datetime.timedelta(seconds=1.35), "x") == 1_350_000_000
    assert to_nanoseconds(0.001, "x") == 1_000_000
    assert to_nanoseconds(2, "x") == 2_000_000_000
    with pytest.raises(ValueError, match="x must be finite"):
        to_nanoseconds(float("nan"), "x")
    with pytest.raises(ValueError, match="x must be finite"):
        to_nanoseconds(float("inf"), "x")
    with pytest.raises(TypeError, match="x must be a number"):
        to_nanoseconds(True, "x")


def test_a_fake_clock_wait_lasts_until_the_clock_is_advanced() -> None:
    import threading

    clock = FakeClock()
    stop = threading.Event()
    outcome: list[bool] = []
    waiter = threading.Thread(target=lambda: outcome.append(clock.wait(stop, 5.0)))
    waiter.start()
    time.sleep(0.05)  # real time passes; fake time does not
    assert outcome == []
    clock.advance(4.999)
    time.sleep(0.02)
    assert outcome == []
    clock.advance(0.001)
    waiter.join(5)
    assert outcome == [False]  # the timeout passed on the fake clock
    waiter = threading.Thread(target=lambda: outcome.append(clock.wait(stop, 5.0)))
    waiter.start()
    stop.set()
    waiter.join(5)
    assert outcome == [False, True]  # woken before its timeout


def test_autojump_moves_the_clock_to_the_deadline_of_an_unwoken_wait() -> None:
    import threading

    from framescope.clock import sleep_on, wait_on

    clock = FakeClock(autojump=True)
    start = clock.monotonic_ns()
    wall = clock.wall()
    assert not clock.wait(threading.Event(), 2.5)
    assert clock.monotonic_ns() - start == 2_500_000_000
    assert clock.wall() - wall == datetime.timedelta(seconds=2.5)
    sleep_on(clock, 1.0)
    assert clock.monotonic_ns() - start == 3_500_000_000
    woken = threading.Event()
    woken.set()
    assert clock.wait(woken, 10.0)  # already set: no jump
    assert clock.monotonic_ns() - start == 3_500_000_000
    condition = threading.Condition()
    with condition:
        assert not wait_on(clock, condition, 0.5)  # a held Condition works too
    assert clock.monotonic_ns() - start == 4_000_000_000


def test_wait_on_falls_back_to_a_real_wait_for_a_clock_without_wait() -> None:
    import threading

    from framescope.clock import wait_on

    class ReadingsOnly:
        def monotonic_ns(self) -> int:
            return 0

        def wall(self) -> datetime.datetime:
            return datetime.datetime.now(datetime.timezone.utc)

    class Recording:
        def __init__(self) -> None:
            self.timeouts: list[float | None] = []

        def wait(self, timeout: float | None = None) -> bool:
            self.timeouts.append(timeout)
            return False

    waitable = Recording()
    assert not wait_on(ReadingsOnly(), waitable, 0.25)
    assert waitable.timeouts == [0.25]  # handed to the waitable itself: a real wait
    ready = threading.Event()
    ready.set()
    assert wait_on(ReadingsOnly(), ready, 0.25)
    assert SYSTEM_CLOCK.wait(threading.Event(), 0) is False


def test_a_fake_clock_stays_within_int64() -> None:
    from framescope.clock import FAKE_LIMIT_NS

    with pytest.raises(ValueError, match="start_ns"):
        FakeClock(start_ns=FAKE_LIMIT_NS)
    clock = FakeClock(start_ns=FAKE_LIMIT_NS - 10)
    with pytest.raises(ValueError, match="nanoseconds"):
        clock.advance_ns(10)
    with pytest.raises(ValueError, match="seconds"):
        clock.advance(1.0)
    assert clock.monotonic_ns() == FAKE_LIMIT_NS - 10  # unchanged by a refused move
    clock.advance_ns(9)
    jumping = FakeClock(start_ns=0, autojump=True)
    assert jumping.wait(threading.Event(), 1e12) is False  # a deadline past the limit
    assert jumping.monotonic_ns() == FAKE_LIMIT_NS - 1
