"""Shared fixtures: a fake clock for every test that needs time."""

from __future__ import annotations

import datetime
import sys
import threading
from collections.abc import Iterator

import pytest

from framescope.clock import FakeClock
from tests.polling import holds_within

pytest_plugins = ("tests.moto_server",)  # the ``moto`` fixture: a moto server on loopback


@pytest.fixture
def clock() -> FakeClock:
    """A fake clock at monotonic 1 s, wall 2024-01-01 00:00 UTC."""
    return FakeClock(
        start_ns=1_000_000_000,
        wall=datetime.datetime(2024, 1, 1, tzinfo=datetime.timezone.utc),
    )


@pytest.fixture
def fast_thread_switching() -> Iterator[None]:
    """Make the interpreter switch threads as often as it can, to expose races."""
    old_interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        yield
    finally:
        sys.setswitchinterval(old_interval)


@pytest.fixture(autouse=True)
def no_threads_left_behind() -> Iterator[None]:
    """Every framescope thread a test starts is gone when it ends (a real-time grace of 2 s)."""
    before = {t.ident for t in threading.enumerate()}
    yield

    def left() -> list[str]:
        return [
            t.name
            for t in threading.enumerate()
            if t.name.startswith("framescope") and t.ident not in before
        ]

    holds_within(lambda: not left(), 2.0)
    still = left()
    assert not still, f"threads left running: {still}"
