"""The fixed time grid shared by IntervalSchedule, the input loop and run_every."""

from __future__ import annotations

import threading

import pytest

from framescope._grid import FixedGrid
from framescope._periodic import run_every
from framescope.clock import FakeClock


def test_nothing_is_taken_before_the_due_time() -> None:
    grid = FixedGrid(100, 1_000)
    assert not grid.take(0)
    assert not grid.take(999)
    assert (grid.due_ns, grid.skipped) == (1_000, 0)
    assert grid.wait_ns(999) == 1
    assert grid.wait_ns(400) == 600


def test_a_slot_is_taken_at_its_due_time_and_only_once() -> None:
    grid = FixedGrid(100, 1_000)
    assert grid.wait_ns(1_000) == 0
    assert grid.take(1_000)
    assert grid.due_ns == 1_100
    assert not grid.take(1_000)
    assert not grid.take(1_099)
    assert grid.skipped == 0


def test_a_reading_inside_the_period_after_the_due_time_stays_on_the_grid() -> None:
    grid = FixedGrid(100, 1_000)
    assert grid.take(1_099)  # late, but the next slot has not come
    assert (grid.due_ns, grid.skipped) == (1_100, 0)
    assert grid.take(1_130)
    assert (grid.due_ns, grid.skipped) == (1_200, 0)  # no drift: 1_130 + 100 is not a slot


def test_an_overrun_takes_one_slot_and_skips_the_others() -> None:
    grid = FixedGrid(100, 1_000)
    assert grid.take(1_100)  # exactly one period late: slot 1_000 skipped, slot 1_100 taken
    assert (grid.due_ns, grid.skipped) == (1_200, 1)
    assert grid.take(1_750)  # slots 1_200 .. 1_600 went by, 1_700 is taken
    assert (grid.due_ns, grid.skipped) == (1_800, 1 + 5)
    assert not grid.take(1_799)


def test_a_long_run_of_readings_never_drifts_nor_double_fires() -> None:
    grid = FixedGrid(7, 3)
    taken = [now for now in range(3, 3 + 7 * 1_000) if grid.take(now)]
    assert taken == list(range(3, 3 + 7 * 1_000, 7))
    assert grid.skipped == 0


@pytest.mark.parametrize("gap", [10**15, 10**30, 2**200])
def test_a_huge_gap_is_counted_exactly(gap: int) -> None:
    period = 1_000_000_007
    grid = FixedGrid(period, 0)
    assert grid.take(gap)
    assert grid.skipped == gap // period
    assert grid.due_ns == (gap // period + 1) * period
    assert 0 < grid.due_ns - gap <= period


def test_the_period_must_be_a_positive_int_of_nanoseconds() -> None:
    for bad in (0, -5):
        with pytest.raises(ValueError, match=r"period_ns must be >= 1, got -?\d"):
            FixedGrid(bad, 0)
    for wrong in (1.5, "100", True, None):
        with pytest.raises(TypeError, match="period_ns must be an int of nanoseconds"):
            FixedGrid(wrong, 0)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="due_ns must be an int of nanoseconds, got float"):
        FixedGrid(100, 1.0)  # type: ignore[arg-type]
    assert repr(FixedGrid(100, 5)) == "FixedGrid(period_ns=100, due_ns=5, skipped=0)"


def test_run_every_runs_on_the_grid_and_skips_the_slots_a_slow_round_overran() -> None:
    clock = FakeClock(start_ns=0, autojump=True)
    stop = threading.Event()
    rounds: list[int] = []

    def action() -> None:
        rounds.append(clock.monotonic_ns())
        if len(rounds) == 2:
            clock.advance(2.5)  # a slow round: slot 3 s goes by, slot 4 s runs late
        if len(rounds) == 5:
            stop.set()

    run_every(clock, stop, 1.0, action, what="rounds")
    second = 1_000_000_000
    assert rounds == [1 * second, 2 * second, 4_500_000_000, 5 * second, 6 * second]


def test_run_every_counts_a_failing_round_and_goes_on() -> None:
    clock = FakeClock(start_ns=0, autojump=True)
    stop = threading.Event()
    failures: list[int] = []
    rounds: list[int] = []

    def action() -> None:
        rounds.append(clock.monotonic_ns())
        if len(rounds) == 3:
            stop.set()
        raise RuntimeError("round failed")

    run_every(clock, stop, 0.25, action, what="rounds", failed=lambda: failures.append(1))
    assert rounds == [250_000_000, 500_000_000, 750_000_000]
    assert len(failures) == 3
