from __future__ import annotations

import random
import subprocess
import sys
import time
from array import array

import numpy
import pytest

from framescope import folds
from framescope.clock import SYSTEM_CLOCK
from framescope.stats import Batch, RollingStats
from framescope.timepiece import StopWatch, Ticker


def without_numpy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(folds, "_numpy", lambda: None)


def same(a: Batch, b: Batch) -> None:
    assert a[:6] == b[:6]
    assert list(a.values()) == list(b.values())
    assert all(type(v) is int for v in (a.total, a.low, a.high, *a.recent, *a.stamps))
    for every in (a.values(), b.values()):  # a list of ints, or NumPy's int64 column
        assert isinstance(every, list) or every.dtype == numpy.int64


@pytest.mark.parametrize("size", [1, 2, folds.NUMPY_FROM - 1, folds.NUMPY_FROM, 5000])
def test_numpy_and_python_interval_folds_agree(size: int, monkeypatch: pytest.MonkeyPatch) -> None:
    assert "numpy" in sys.modules
    rng = random.Random(size)
    previous = 10**15
    stamps, t = [], previous
    for _ in range(size):
        t += rng.randint(0, 40_000_000)
        stamps.append(t)
    fast = folds.intervals(previous, stamps, 10)
    without_numpy(monkeypatch)
    slow = folds.intervals(previous, stamps, 10)
    same(fast, slow)
    gaps = [b - a for a, b in zip([previous, *stamps[:-1]], stamps, strict=True)]
    assert (fast.size, fast.total, fast.low, fast.high) == (size, sum(gaps), min(gaps), max(gaps))
    assert fast.recent == gaps[-10:] and fast.stamps == stamps[-10:]


@pytest.mark.parametrize("size", [1, folds.NUMPY_FROM, 3000])
def test_numpy_and_python_duration_folds_agree(size: int, monkeypatch: pytest.MonkeyPatch) -> None:
    rng = random.Random(size)
    pairs = []
    for _ in range(size):
        start = rng.randint(10**12, 10**13)
        pairs += [start, start + rng.randint(0, 10**9)]
    fast = folds.durations(pairs, 7)
    in_place = folds.durations(array("q", pairs), 7)  # a StopWatch's pending readings
    without_numpy(monkeypatch)
    slow = folds.durations(pairs, 7)
    slow_array = folds.durations(array("q", pairs), 7)
    same(fast, slow)
    same(in_place, slow)
    same(slow_array, slow)
    spans = [pairs[i + 1] - pairs[i] for i in range(0, len(pairs), 2)]
    assert (fast.total, fast.low, fast.high, fast.recent) == (
        sum(spans),
        min(spans),
        max(spans),
        spans[-7:],
    )
    assert fast.stamps == pairs[1::2][-7:]


def test_readings_beyond_int64_fold_exactly_in_python() -> None:
    base = 2**70
    stamps = [base + i * 3 for i in range(1, 600)]
    batch = folds.intervals(base, stamps, 5)
    assert (batch.total, batch.low, batch.high) == (599 * 3, 3, 3)
    pairs = [v for i in range(600) for v in (base + 10 * i, base + 10 * i + i)]
    assert folds.durations(pairs, 5)[1:4] == (sum(range(600)), 0, 599)


def test_a_kept_distribution_sees_every_value_of_a_bulk_fold() -> None:
    stats = RollingStats(4, divisor=1e9)
    stats.keep_distribution()
    stats.track_histogram((0.001, 0.01))
    stamps = [i * 2_000_000 for i in range(1, 1001)]  # 2 ms apart
    stats.add_batch(folds.intervals(0, stamps, 4))
    snapshot = stats.snapshot()
    assert snapshot.count == 1000 and snapshot.total == pytest.approx(2.0)
    assert snapshot.histogram is not None and snapshot.histogram.counts == (0, 1000, 0)
    assert snapshot.distribution is not None and sum(snapshot.distribution.counts) == 1000


def test_system_clock_timers_agree_with_the_clock() -> None:
    ticker, watch = Ticker(5), StopWatch("w", 5)
    assert ticker.clock is SYSTEM_CLOCK and watch.clock is SYSTEM_CLOCK
    before = time.perf_counter_ns()
    for _ in range(3 * 4096 + 1):
        ticker.tick()
        with watch:
            pass
    elapsed = (time.perf_counter_ns() - before) / 1e9
    ticks, blocks = ticker.statistics(), watch.statistics()
    assert ticks.count == 3 * 4096 and blocks.count == 3 * 4096 + 1
    assert 0 < ticks.total <= elapsed and 0 < blocks.total <= elapsed
    assert 0 <= blocks.minimum <= blocks.maximum <= elapsed


def test_a_fold_never_imports_numpy() -> None:
    code = (
        "import sys\n"
        "from framescope.timepiece import StopWatch, Ticker\n"
        "t, w = Ticker(), StopWatch('w')\n"
        "for _ in range(10_000):\n"
        "    t.tick()\n"
        "    with w: pass\n"
        "assert t.statistics().count == 9_999 and w.statistics().count == 10_000\n"
        "print('numpy' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"
    assert folds._numpy() is numpy  # this process loaded it: the folds use it


def test_histograms_count_a_numpy_fold_as_they_count_its_values() -> None:
    from framescope.histogram import LATENCY_GRID_NS, Distribution, Histogram

    rng = random.Random(7)
    values = [rng.randint(0, 10**11) for _ in range(3000)]
    values += [0, 1, 100, 101, *LATENCY_GRID_NS[:20], 10**13, 10**13 + 1, 10**15]  # on edges, past
    listed, counted = Distribution(), Distribution()
    listed.extend(values)
    counted.extend(numpy.array(values, dtype=numpy.int64))
    counted.extend(numpy.array([], dtype=numpy.int64))
    assert counted.snapshot() == listed.snapshot()
    assert type(counted.snapshot().total) is float
    bounds = (0.000001, 0.001, 0.01, 1.0)
    by_list, by_array = Histogram(bounds, 1e9), Histogram(bounds, 1e9)
    by_list.extend(values)
    by_array.extend(numpy.array(values, dtype=numpy.int64))
    assert by_array.snapshot() == by_list.snapshot()
    assert sum(by_array.snapshot().counts) == len(values)


@pytest.mark.parametrize("size", [1, 2, 300, 3000])
def test_an_ordered_fold_gives_what_an_unordered_one_gives(
    size: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    without_numpy(monkeypatch)
    rng = random.Random(size)
    pairs = []
    for _ in range(size):
        start = rng.randint(10**12, 10**13)
        pairs += [start, start + rng.choice((rng.randint(0, 500), rng.randint(0, 10**10)))]
    plain, ordered = folds.durations(pairs, 7), folds.durations(pairs, 7, ordered=True)
    assert ordered[:6] == plain[:6]  # size, total, low, high, the newest values in order, stamps
    assert ordered.recent == [pairs[i + 1] - pairs[i] for i in range(0, len(pairs), 2)][-7:]
    assert ordered.ordered and list(ordered.values()) == sorted(plain.values())
    counted = []
    for batch in (plain, ordered):
        stats = RollingStats(7, divisor=1e9)
        stats.keep_distribution()
        stats.track_histogram((1e-7, 1e-6, 1.0))
        stats.add_batch(batch)
        counted.append(stats.snapshot())
    assert counted[0] == counted[1]
    assert counted[1].distribution is not None and sum(counted[1].distribution.counts) == size


def test_a_stopwatch_keeping_a_distribution_folds_ordered(monkeypatch: pytest.MonkeyPatch) -> None:
    without_numpy(monkeypatch)
    seen: list[bool] = []
    real = folds.durations

    def spy(pairs: list[int], window: int, *, ordered: bool = False) -> Batch:
        seen.append(ordered)
        return real(pairs, window, ordered=ordered)

    monkeypatch.setattr("framescope.timepiece.timers.durations", spy)
    plain, kept = StopWatch("plain"), StopWatch("kept")
    kept.keep_distribution()
    for watch in (plain, kept):
        watch.record(0, 10)
        watch.statistics()  # folds what waits
    assert seen == [False, True]
    snapshot = kept.statistics()
    assert snapshot.distribution is not None and sum(snapshot.distribution.counts) == 1
