from __future__ import annotations

import json
import math
import statistics

import pytest
from hypothesis import given
from hypothesis import strategies as st

from framescope.pipeline import SnapshotFormatError
from framescope.stats import RollingStats, StatsSnapshot, percentile

finite = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, allow_infinity=False)


def test_empty_stats_are_zero() -> None:
    snap = RollingStats(window=5).snapshot()
    assert snap.count == 0
    assert snap.recent == ()
    s = snap.summary()
    assert (s.minimum, s.maximum, s.recent_mean, s.median, s.stddev, s.p90, s.p99, s.rate) == (
        0.0,
        0.0,
        0.0,
        0.0,
        0.0,
        0.0,
        0.0,
        0.0,
    )
    assert snap.mean() == 0.0


def test_window_is_bounded_but_all_time_aggregates_are_exact() -> None:
    stats = RollingStats(window=3)
    for value in [5, 1, 9, 4, 6, 7]:
        stats.add(value)
    snap = stats.snapshot()
    assert snap.recent == (4, 6, 7)
    assert snap.count == 6
    assert snap.total == 32
    assert snap.minimum == 1  # fell out of the window long ago
    assert snap.maximum == 9
    assert snap.recent_min() == 4
    assert snap.recent_max() == 7
    assert snap.mean() == pytest.approx(32 / 6)
    assert snap.recent_mean() == pytest.approx(17 / 3)


def test_add_and_extend_agree() -> None:
    values = [3, 8, 1, 1, 12, 7, 2]
    one = RollingStats(window=4)
    for i, v in enumerate(values):
        one.add(v, timestamp_ns=i * 10)
    many = RollingStats(window=4)
    many.extend(values[:3], [0, 10, 20])
    many.extend(values[3:], [30, 40, 50, 60])
    assert one.snapshot() == many.snapshot()


def test_extend_checks_timestamp_count() -> None:
    with pytest.raises(ValueError, match="one entry per value: 1 timestamps for 2 values"):
        RollingStats().extend([1, 2], [5])


def test_divisor_reports_correctly_rounded_units() -> None:
    stats = RollingStats(window=10, divisor=1e9)
    stats.extend([13_900_491, 1_937_025_402])
    snap = stats.snapshot()
    assert snap.recent == (0.013900491, 1.937025402)
    assert snap.minimum == 0.013900491
    assert snap.total == 1.950925893


def test_rate_is_events_minus_one_over_span() -> None:
    stats = RollingStats(window=100)
    # 11 events, 100 ms apart: 10 intervals in 1 s -> 10 per second.
    stats.extend([1.0] * 11, [i * 100_000_000 for i in range(11)])
    assert stats.snapshot().rate() == pytest.approx(10.0)
    # A window keeps only the newest timestamps.
    small = RollingStats(window=3)
    small.extend([1.0] * 5, [0, 1_000_000_000, 2_000_000_000, 2_500_000_000, 3_000_000_000])
    assert small.snapshot().rate() == pytest.approx(2 / 1.0)


@pytest.mark.parametrize("window", [100, 101, 102, 103, 1000])
def test_events_in_bursts_count_from_the_first_instant(window: int) -> None:
    # Four cameras whose frames come together every 1/30 s: 120 frames a second,
    # whatever the window cuts off of the oldest burst.
    stats = RollingStats(window=window)
    stamps = [burst * 33_333_333 for burst in range(400) for _ in range(4)]
    stats.extend([1.0] * len(stamps), stamps)
    snapshot = stats.snapshot()
    assert snapshot.events_at_first == (window % 4 or 4)
    assert snapshot.rate() == pytest.approx(4 / 0.033333333)
    back = StatsSnapshot.from_dict(json.loads(json.dumps(snapshot.to_dict())))
    assert back == snapshot
    merged = snapshot.merge(snapshot)  # side by side: twice the rate
    assert merged.rate() == pytest.approx(2 * 4 / 0.033333333, rel=0.01)


def test_rate_is_not_a_mean_of_reciprocals() -> None:
    stats = RollingStats(window=10)
    # Irregular events: 0, 0.1 s, 1.0 s -> 2 intervals in 1 s = 2/s.
    stats.extend([0.0, 0.1, 0.9], [0, 100_000_000, 1_000_000_000])
    rate = stats.snapshot().rate()
    assert rate == pytest.approx(2.0)
    mean_of_reciprocals = (1 / 0.1 + 1 / 0.9) / 2
    assert rate != pytest.approx(mean_of_reciprocals)


def test_rate_needs_two_distinct_events() -> None:
    stats = RollingStats()
    stats.add(1.0, timestamp_ns=5)
    assert stats.snapshot().rate() == 0.0
    stats.add(1.0, timestamp_ns=5)
    assert stats.snapshot().rate() == 0.0
    untimed = RollingStats()
    untimed.extend([1.0, 2.0])
    assert untimed.snapshot().rate() == 0.0


@given(st.lists(finite, min_size=1, max_size=300), st.integers(min_value=1, max_value=400))
def test_recent_statistics_match_the_statistics_module(values: list[float], window: int) -> None:
    stats = RollingStats(window=window)
    stats.extend(values)
    snap = stats.snapshot()
    recent = values[-window:]
    summary = snap.summary()
    assert summary.count == len(values)
    assert summary.minimum == min(values)
    assert summary.maximum == max(values)
    assert summary.recent_count == len(recent)
    assert summary.recent_min == min(recent)
    assert summary.recent_max == max(recent)
    assert summary.recent_mean == pytest.approx(statistics.fmean(recent), abs=1e-6)
    assert summary.median == pytest.approx(statistics.median(recent), abs=1e-6)
    if len(recent) >= 2:
        assert summary.stddev == pytest.approx(statistics.stdev(recent), rel=1e-6, abs=1e-6)
        quantiles = statistics.quantiles(recent, n=100, method="inclusive")
        assert summary.p90 == pytest.approx(quantiles[89], abs=1e-6)
        assert summary.p99 == pytest.approx(quantiles[98], abs=1e-6)
    else:
        assert summary.stddev == 0.0
        assert summary.p90 == summary.p99 == recent[0]
    assert snap.median() == summary.median
    assert snap.stddev() == summary.stddev
    assert snap.percentile(90) == summary.p90


def test_percentile_interpolates_and_validates() -> None:
    ordered = [10.0, 20.0, 30.0, 40.0]
    assert percentile(ordered, 0) == 10.0
    assert percentile(ordered, 100) == 40.0
    assert percentile(ordered, 50) == 25.0
    assert percentile(ordered, 90) == pytest.approx(37.0)
    assert percentile([], 50) == 0.0
    with pytest.raises(ValueError, match="q must be a number between 0 and 100"):
        percentile(ordered, 101)
    with pytest.raises(ValueError, match="q must be a number between 0 and 100"):
        percentile(ordered, -0.5)
    with pytest.raises(TypeError, match="q must be a number"):
        percentile(ordered, "50")  # type: ignore[arg-type]


@given(
    st.lists(finite, max_size=50),
    st.lists(finite, max_size=50),
)
def test_merge_equals_recording_both(first: list[float], second: list[float]) -> None:
    a, b, both = RollingStats(window=50), RollingStats(window=50), RollingStats(window=100)
    a.extend(first, [i * 1000 for i in range(len(first))])
    b.extend(second, [10**9 + i * 1000 for i in range(len(second))])
    both.extend(
        first + second,
        [i * 1000 for i in range(len(first))] + [10**9 + i * 1000 for i in range(len(second))],
    )
    merged = a.snapshot().merge(b.snapshot())
    expected = both.snapshot()
    assert merged.count == expected.count
    assert merged.total == pytest.approx(expected.total)
    assert merged.minimum == expected.minimum
    assert merged.maximum == expected.maximum
    assert sorted(merged.recent) == sorted(expected.recent)
    assert merged.rate() == pytest.approx(expected.rate())
    assert (a.snapshot() + b.snapshot()).count == merged.count


def test_merge_of_parallel_sources_adds_rates() -> None:
    a, b = RollingStats(), RollingStats()
    # Two replicas, each 10 events/s over the same second.
    a.extend([1.0] * 11, [i * 100_000_000 for i in range(11)])
    b.extend([2.0] * 11, [50_000_000 + i * 100_000_000 for i in range(11)])
    merged = a.snapshot().merge(b.snapshot())
    assert merged.rate() == pytest.approx(20.0, rel=0.1)
    assert merged.median() == pytest.approx(1.5)


def test_merge_rejects_other_types() -> None:
    with pytest.raises(TypeError, match="other must be a StatsSnapshot"):
        RollingStats().snapshot().merge({})  # type: ignore[arg-type]


def test_snapshot_round_trips_through_json() -> None:
    stats = RollingStats(window=4, divisor=1e9)
    stats.extend([1_000_000, 3_000_000, 2_000_000], [10, 20, 30])
    snap = stats.snapshot()
    text = json.dumps(snap.to_dict())
    again = StatsSnapshot.from_dict(json.loads(text))
    assert again == snap
    assert again.summary() == snap.summary()
    assert json.loads(json.dumps(snap.summary().to_dict()))["p99"] == snap.summary().p99


def test_from_dict_reports_missing_keys() -> None:
    with pytest.raises(SnapshotFormatError, match=r"^count: missing"):
        StatsSnapshot.from_dict({"window": 1, "total": 0, "minimum": 0, "samples": []})
    with pytest.raises(SnapshotFormatError, match=r"^data: expected an object, got list"):
        StatsSnapshot.from_dict([])  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {"samples": [1.0, float("nan")]},
            r"^samples\[1\]: expected a finite number, got float nan",
        ),
        ({"window": -3}, "^window: expected a non-negative integer"),
        ({"count": -1}, "^count: expected a non-negative integer"),
        ({"count": 1}, "^count: expected at least the 2 samples"),
        ({"events": 2**70}, "^events: expected a non-negative integer up to 2\\*\\*63-1"),
        ({"total": float("inf")}, "^total: expected a finite number"),
        ({"maximum": 10**400}, "^maximum: expected a finite number"),
        ({"divisor": 0}, "^divisor: expected a finite number > 0"),
        ({"first_event_ns": "soon"}, "^first_event_ns: expected a non-negative integer"),
        ({"histogram": {"bounds": [1.0], "counts": [1, -1]}}, r"^histogram\.counts\[1\]"),
        ({"histogram": {"bounds": [2.0, 1.0], "counts": [1, 1, 1]}}, "^histogram.bounds"),
        ({"distribution": {"counts": {"3": -1}}}, "^distribution.counts.3"),
        ({"distribution": {"counts": {"x": 1}}}, "^distribution.counts: a bucket index"),
        ({"distribution": []}, "^distribution: expected an object"),
    ],
)
def test_from_dict_refuses_what_is_not_a_snapshot_naming_the_field(
    change: dict[str, object], message: str
) -> None:
    stats = RollingStats(window=4)
    stats.extend([1.0, 2.0])
    data = stats.snapshot().to_dict() | change
    with pytest.raises(SnapshotFormatError, match=message):
        StatsSnapshot.from_dict(data)


def test_snapshot_is_immutable_and_independent() -> None:
    stats = RollingStats(window=3)
    stats.extend([1, 2, 3])
    snap = stats.snapshot()
    stats.extend([100, 200])
    assert snap.recent == (1, 2, 3)
    with pytest.raises(AttributeError):
        snap.count = 7  # type: ignore[misc]


def test_reset_forgets_everything() -> None:
    stats = RollingStats(window=3)
    stats.extend([1, 2, 3], [1, 2, 3])
    stats.reset()
    snap = stats.snapshot()
    assert (snap.count, snap.total, snap.recent, snap.events) == (0, 0, (), 0)
    assert len(stats) == 0


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"window": 0}, ValueError, "window must be a positive integer \\(>= 1\\)"),
        ({"window": 2.5}, TypeError, "window must be a positive int"),
        ({"window": True}, TypeError, "window must be a positive int"),
        ({"divisor": 0}, ValueError, "divisor must be a positive number"),
        ({"divisor": math.inf}, ValueError, "divisor must be a finite number"),
        ({"divisor": "1"}, TypeError, "divisor must be a positive number"),
    ],
)
def test_bad_arguments(kwargs: dict[str, object], error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        RollingStats(**kwargs)  # type: ignore[arg-type]


@given(
    st.lists(st.integers(min_value=0, max_value=10**12), min_size=1, max_size=300),
    st.integers(min_value=1, max_value=400),
)
def test_integer_nanoseconds_give_exact_statistics_in_seconds(raw: list[int], window: int) -> None:
    stats = RollingStats(window=window, divisor=1e9)
    stats.extend(raw)
    summary = stats.snapshot().summary()
    recent = [v / 1e9 for v in raw[-window:]]
    assert summary.recent_mean == pytest.approx(statistics.fmean(recent), rel=1e-12, abs=1e-15)
    assert summary.median == pytest.approx(statistics.median(recent), rel=1e-12, abs=1e-15)
    if len(recent) >= 2:
        expected = statistics.stdev(raw[-window:]) / 1e9  # exact on the integers
        assert summary.stddev == pytest.approx(expected, rel=1e-9, abs=1e-15)
    assert summary.total == pytest.approx(sum(raw) / 1e9, rel=1e-12)
    assert stats.snapshot().recent == tuple(recent)


def test_stddev_of_identical_large_integers_is_exactly_zero() -> None:
    stats = RollingStats(window=10, divisor=1e9)
    stats.extend([10**15 + 7] * 10)
    assert stats.snapshot().stddev() == 0.0


def test_merge_of_different_units_converts_to_reported_units() -> None:
    seconds_from_ns = RollingStats(divisor=1e9)
    seconds_from_ns.extend([1_000_000_000, 3_000_000_000])
    seconds = RollingStats()
    seconds.extend([2.0])
    merged = seconds_from_ns.snapshot().merge(seconds.snapshot())
    assert merged.divisor == 1.0
    assert sorted(merged.recent) == [1.0, 2.0, 3.0]
    assert merged.median() == 2.0
    assert merged.total == 6.0


def test_from_dict_rejects_non_numeric_samples() -> None:
    data = RollingStats().snapshot().to_dict()
    data["samples"] = [1, "2"]
    with pytest.raises(ValueError, match=r"^samples\[1\]: expected a finite number, got str '2'"):
        StatsSnapshot.from_dict(data)


def test_histogram_counts_with_le_semantics_and_survives_reset() -> None:
    from framescope.histogram import HistogramSnapshot

    stats = RollingStats(window=4, divisor=1e9)
    stats.add(5)  # before tracking: not counted
    stats.track_histogram((0.001, 0.01))
    stats.extend([1_000_000, 1_000_001, 10_000_000, 20_000_000])  # 1 ms is <= 0.001
    stats.add(500_000)
    stats.reset()
    histogram = stats.snapshot().histogram
    assert histogram is not None
    assert histogram.counts == (2, 2, 1)
    assert histogram.cumulative() == [(0.001, 2), (0.01, 4), (math.inf, 5)]
    assert histogram.count == 5
    assert histogram.total == pytest.approx(0.032500001)
    assert HistogramSnapshot.from_dict(histogram.to_dict()) == histogram
    assert histogram.merge(histogram).counts == (4, 4, 2)
    stats.track_histogram((0.001, 0.01))  # the same bounds again: nothing changes
    with pytest.raises(ValueError, match="already tracks a histogram"):
        stats.track_histogram((0.5,))
    with pytest.raises(ValueError, match="strictly increasing"):
        RollingStats().track_histogram((1.0, 1.0))
    with pytest.raises(ValueError, match="must be finite"):
        RollingStats().track_histogram((1.0, math.inf))


def test_snapshot_with_histogram_round_trips_and_merges() -> None:
    a = RollingStats(divisor=1e9)
    a.track_histogram((0.5,))
    a.extend([100_000_000, 900_000_000])
    b = RollingStats(divisor=1e9)
    b.track_histogram((0.5,))
    b.add(200_000_000)
    snap = a.snapshot()
    assert StatsSnapshot.from_dict(snap.to_dict()) == snap
    merged = snap.merge(b.snapshot())
    assert merged.histogram is not None and merged.histogram.counts == (2, 1)


def test_distribution_sums_into_any_buckets_exactly_on_the_grid() -> None:
    import random

    from framescope.histogram import DEFAULT_LATENCY_BUCKETS, LATENCY_GRID_NS, Histogram

    rng = random.Random(7)
    samples = [rng.randint(0, 20_000_000_000) for _ in range(3000)] + [0, 100, 125, 10**14]
    stats = RollingStats(10, divisor=1e9)
    stats.keep_distribution()
    stats.extend(samples[:1000])
    for value in samples[1000:1010]:
        stats.add(value)
    stats.reset()  # the distribution is cumulative
    stats.extend(samples[1010:])
    distribution = stats.snapshot().distribution
    assert distribution is not None
    assert distribution.count == len(samples)
    assert distribution.total == pytest.approx(sum(samples) / 1e9)
    prometheus_defaults = (
        0.005,
        0.01,
        0.025,
        0.05,
        0.075,
        0.1,
        0.25,
        0.5,
        0.75,
        1,
        2.5,
        5,
        7.5,
        10,
    )
    for bounds in (DEFAULT_LATENCY_BUCKETS, prometheus_defaults, (0.0,)):
        exact = Histogram(bounds, 1e9)
        exact.extend(samples)
        assert distribution.histogram(bounds).counts == exact.snapshot().counts, bounds
    assert len(LATENCY_GRID_NS) == 178


def test_distribution_off_the_grid_never_counts_a_sample_above_its_bound() -> None:
    stats = RollingStats(10, divisor=1e9)
    stats.keep_distribution()
    stats.extend([4_000_000, 4_100_000, 4_300_000, 4_500_000])  # ns
    distribution = stats.snapshot().distribution
    assert distribution is not None
    # 4.2 ms lies between the grid edges 4 and 4.5 ms: only the 4 ms sample is counted.
    assert distribution.histogram((0.0042,)).cumulative() == [(0.0042, 1), (math.inf, 4)]
    assert distribution.histogram((0.0045,)).cumulative() == [(0.0045, 4), (math.inf, 4)]


def test_distribution_merges_and_round_trips() -> None:
    from framescope.histogram import DistributionSnapshot

    a, b = RollingStats(divisor=1e9), RollingStats(divisor=1e9)
    a.keep_distribution()
    b.keep_distribution()
    a.extend([1_000, 2_000_000])
    b.extend([2_000_000])
    merged = a.snapshot().merge(b.snapshot())
    assert merged.distribution is not None
    assert merged.distribution.histogram((0.001, 0.002)).counts == (1, 2, 0)
    data = merged.to_dict()
    assert StatsSnapshot.from_dict(json.loads(json.dumps(data))) == merged
    assert DistributionSnapshot.from_dict(merged.distribution.to_dict()) == merged.distribution
    with pytest.raises(ValueError, match="out of range"):
        DistributionSnapshot.from_dict({"counts": {"999": 1}})
    plain = RollingStats()
    plain.add(1.0)
    assert plain.snapshot().distribution is None


def test_a_rate_read_at_a_time_falls_to_zero_within_its_window() -> None:
    from framescope.stats import RollingStats

    stats = RollingStats(100)
    for tick in range(50):  # 20 Hz for 2.45 s
        stats.add(1.0, timestamp_ns=tick * 50_000_000)
    snap = stats.snapshot()
    last = 49 * 50_000_000
    assert snap.rate() == pytest.approx(20)
    assert snap.rate(last) == pytest.approx(20)
    assert snap.rate(last + 40_000_000) == pytest.approx(20)  # within one gap: on schedule
    assert 0 < snap.rate(last + 3_000_000_000) < 20
    assert snap.rate(last + 5_000_000_000) == 0
    assert snap.rate(last + 60_000_000_000) == 0
    assert snap.rate(last + 1_000_000_000, window_s=1.0) == 0


def test_the_rate_of_replicas_side_by_side_is_the_sum_of_theirs() -> None:
    # A fast replica remembers its last 100 events over 0.5 s, a slow one 4 events over
    # 2.1 s: pooled over the union their rate read 48/s where the stage did 199/s.
    def stats(events: int, first: float, last: float) -> StatsSnapshot:
        return StatsSnapshot(
            window=100,
            count=events,
            total=events * 0.005,
            minimum=0.005,
            maximum=0.005,
            samples=(0.005,) * min(events, 100),
            events=events,
            first_event_ns=round(first * 1e9),
            last_event_ns=round(last * 1e9),
        )

    fast, slow = stats(100, 1.6, 2.1), stats(4, 0.001, 2.1)
    merged = fast.merge(slow)
    assert merged.rate() == pytest.approx(fast.rate() + slow.rate(), rel=1e-6)
    assert merged.rate(round(2.1e9)) == pytest.approx(fast.rate() + slow.rate(), rel=1e-6)
    # One source's consecutive periods (no overlap) stay one stream over the union.
    before, after = stats(11, 0.0, 1.0), stats(11, 2.0, 3.0)
    assert before.merge(after).rate() == pytest.approx(21 / 3.0)
