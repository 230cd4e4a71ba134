"""Repeated faults are logged in full a few times, then as a periodic count."""

from __future__ import annotations

import logging

import pytest

from framescope import Pipeline
from framescope._ratelimit import FULL, SILENT, LogLimiter
from framescope.clock import FakeClock


def test_the_first_few_in_full_then_a_summary_per_interval() -> None:
    clock = FakeClock()
    limiter = LogLimiter(first=2, interval_s=10, clock=clock, max_keys=2)
    assert [limiter.check("a") for _ in range(4)] == [FULL, FULL, SILENT, SILENT]
    clock.advance(10)
    assert limiter.check("a") == 3  # three held back: the two above and this one
    assert limiter.check("a") == SILENT
    assert limiter.check("b") == FULL  # another key counts on its own
    assert limiter.check("c") == FULL  # past max_keys: a shared key
    assert limiter.check("d") == FULL
    assert limiter.check("e") == SILENT


def test_a_stage_failing_every_item_logs_a_bounded_number_of_records(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = FakeClock()

    def broken(x: int) -> int:
        raise ValueError("always")

    pipeline = Pipeline(clock=clock).add(broken, "Broken", on_error="skip").serialize()
    with caplog.at_level(logging.ERROR, logger="framescope.pipeline.runtime.core"):
        for i in range(1000):
            pipeline.forward(i)
        clock.advance(60)
        pipeline.forward(1000)
    records = [r for r in caplog.records if r.name == "framescope.pipeline.runtime.core"]
    full = [r for r in records if "Traceback" in r.getMessage()]
    assert len(full) == 5
    (summary,) = [r for r in records if "more times" in r.getMessage()]
    assert "996 more times" in summary.getMessage()
    assert pipeline.counters()["failed"] == 1001  # every failure is still counted
    pipeline.cleanup()
