"""Shared fixtures: a fake clock for every test that needs time."""

from __future__ import annotations

import datetime
import sys
from collections.abc import Iterator

import pytest

from framescope.clock import FakeClock


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
