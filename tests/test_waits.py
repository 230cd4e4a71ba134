"""Back-off and deadlines, written once for every retry loop and every bounded close."""

from __future__ import annotations

import time

import pytest

from framescope._waits import Deadline, backoff_delay


def test_the_backoff_doubles_from_the_first_delay_up_to_the_longest() -> None:
    delays = [backoff_delay(n, 0.5, 30.0, jitter=0.0) for n in range(1, 10)]
    assert delays == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0]
    assert backoff_delay(0, 0.5, 30.0, jitter=0.0) == 0.5


@pytest.mark.parametrize("failures", [1025, 10_000, 10**9])
def test_a_peer_down_for_days_still_gets_a_finite_backoff(failures: int) -> None:
    # 0.5 * 2 ** 1100 was an OverflowError: a retry loop died after ~1,000 failures.
    assert backoff_delay(failures, 0.5, 30.0, jitter=0.0) == 30.0
    assert 24.0 <= backoff_delay(failures, 0.5, 30.0) <= 30.0


def test_jitter_only_ever_shortens_the_wait() -> None:
    waits = [backoff_delay(3, 1.0, 60.0) for _ in range(200)]
    assert all(3.2 <= wait <= 4.0 for wait in waits)
    assert len(set(waits)) > 1


def test_a_deadline_spreads_one_bound_over_several_steps() -> None:
    assert Deadline(None).left() is None
    assert not Deadline(None).passed
    deadline = Deadline(0.05)
    first = deadline.left()
    assert first is not None and 0.0 < first <= 0.05
    while not deadline.passed:
        time.sleep(0.005)
    assert deadline.left() == 0.0
