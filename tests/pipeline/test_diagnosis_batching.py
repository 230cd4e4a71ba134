"""The diagnosis of a batched stage's batches, exactly at each boundary and just beside it."""

from __future__ import annotations

from fractions import Fraction

import pytest

from framescope.pipeline import BatchSnapshot
from framescope.pipeline.views.advice import (
    BATCH_BUSY,
    BATCHES_JUDGED,
    FULL_SHARE,
    TIMEOUT_SHARE,
    batch_advice,
)
from framescope.pipeline.views.diagnosis import diagnose_snapshot
from tests.pipeline.test_diagnosis_boundaries import snapshot, stage

SIZE = 8


def batched(full: int, timed_out: int, flushed: int = 0, part: int = 3) -> BatchSnapshot:
    """``full`` batches of 8, ``timed_out`` of ``part`` items, ``flushed`` of one."""
    sizes: dict[int, int] = {}
    for size, count in ((SIZE, full), (part, timed_out), (1, flushed)):
        if count:
            sizes[size] = sizes.get(size, 0) + count
    reasons = {"full": full, "timeout": timed_out, "flush": flushed}
    return BatchSnapshot(size=SIZE, timeout_s=0.04, sizes=sizes, reasons=reasons)


def advice(batch: BatchSnapshot, busy: float | None = 1.0) -> str | None:
    return batch_advice(stage("Detect", 1000, batch=batch), busy)


def test_the_thresholds_are_the_documented_shares() -> None:
    assert (10, Fraction(1, 2), Fraction(19, 20)) == (BATCHES_JUDGED, TIMEOUT_SHARE, FULL_SHARE)
    assert BATCH_BUSY == 0.9


@pytest.mark.parametrize(
    ("busy", "says"), [(0.9, True), (0.8999, False), (0.0, False), (None, False)]
)
def test_full_batches_of_a_stage_with_time_to_spare_call_for_no_bigger_batch(
    busy: float | None, says: bool
) -> None:
    # Batches fill before their timeout whenever items come faster than a batch a
    # timeout; only a stage that is busy has items waiting that a bigger batch would take.
    text = advice(batched(20, 0), busy)
    assert (text is not None) is says
    assert advice(batched(0, 20), busy) is not None  # "too big" needs no busy share


@pytest.mark.parametrize(
    ("full", "timed_out", "says"),
    [
        (4, 6, True),  # 6 of 10 timed out: more than half
        (5, 5, False),  # exactly half: not "mostly"
        (0, 10, True),
        (0, 9, False),  # 9 batches judged: too few to say
        (49, 51, True),
        (50, 50, False),
    ],
)
def test_batches_leaving_mostly_at_their_timeout_say_the_batch_is_too_big(
    full: int, timed_out: int, says: bool
) -> None:
    text = advice(batched(full, timed_out))
    if not says:
        assert text is None
        return
    assert text is not None
    assert f"{timed_out} of {full + timed_out} batches left at their 40 ms timeout" in text
    assert "a smaller batch (about 3) or a longer batch_timeout" in text


@pytest.mark.parametrize(
    ("full", "timed_out", "says"),
    [
        (19, 1, True),  # 95% full: at the boundary
        (18, 2, False),  # 90%
        (10, 0, True),
        (9, 0, False),  # too few batches
        (95, 5, True),
        (94, 6, False),  # 94%: just below
    ],
)
def test_batches_nearly_always_full_say_a_bigger_batch_may_pay(
    full: int, timed_out: int, says: bool
) -> None:
    text = advice(batched(full, timed_out))
    if not says:
        assert text is None
        return
    assert text is not None
    assert f"{full} of {full + timed_out} batches left full (8 items)" in text
    assert "a bigger batch may pay" in text


def test_flushed_batches_at_the_end_of_the_input_are_no_evidence() -> None:
    assert advice(batched(0, 9, flushed=100)) is None
    assert advice(batched(18, 0, flushed=2)) is not None  # 18 of 18 judged left full


def test_a_stage_that_is_not_batched_gets_no_batch_advice() -> None:
    assert batch_advice(stage("Detect", 1000)) is None


def test_the_report_says_it_under_batching() -> None:
    diagnosis = diagnose_snapshot(snapshot(stage("Detect", 1000, batch=batched(0, 12))))
    assert len(diagnosis.batching) == 1
    assert f"  Batching: {diagnosis.batching[0]}" in diagnosis.report()
    assert diagnosis.batching[0].startswith("P__Detect: 12 of 12 batches left at their")
    plain = diagnose_snapshot(snapshot(stage("Detect", 1000)))
    assert plain.batching == () and "Batching" not in plain.report()
