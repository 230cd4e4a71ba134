"""Immutable statistics: :class:`StatsSnapshot` (of a ``RollingStats``) and :class:`Summary`.

A snapshot is plain data: it can be handed to another thread, merged with other
snapshots, turned into a dict (JSON) and back, and summarised in one pass into a
:class:`Summary` (recent mean, median, stddev, p90, p99, rate ...).
"""

from __future__ import annotations

import math
import operator
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from framescope._snapshotformat import Fields, SnapshotFormatError, check_field_number
from framescope._validation import check_number
from framescope.histogram import (
    DistributionSnapshot,
    HistogramSnapshot,
    read_distribution,
    read_histogram,
)

__all__ = ["StatsSnapshot", "Summary", "percentile"]

_NS_PER_S = 1_000_000_000
RATE_WINDOW_S = 5.0
"""The look-back of a rate read at a given time (DepthAI's fps window is 5 s too)."""


def _check_quantile(q: float) -> float:
    return check_number(q, "q", low=0.0, high=100.0)


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Return the ``q``-th percentile (0-100) of already sorted values.

    Uses linear interpolation between the closest ranks (the same definition as
    NumPy's default), and returns 0.0 for an empty sequence.
    """
    if not isinstance(sorted_values, Sequence) or isinstance(sorted_values, (str, bytes)):
        raise TypeError(
            f"sorted_values must be a sequence of numbers, got {type(sorted_values).__name__}"
        )
    if sorted_values and not all(
        isinstance(value, (int, float)) and not isinstance(value, bool)
        for value in (sorted_values[0], sorted_values[-1])
    ):
        raise TypeError("sorted_values must hold numbers")
    return _interpolate(sorted_values, _check_quantile(q))


def _interpolate(sorted_values: Sequence[float], q: float) -> float:
    """:func:`percentile` without the check of ``q`` (for callers that pass constants)."""
    n = len(sorted_values)
    if n == 0:
        return 0.0
    position = (n - 1) * q / 100.0
    low = math.floor(position)
    high = min(low + 1, n - 1)
    fraction = position - low
    low_value = sorted_values[low]
    return float(low_value + (sorted_values[high] - low_value) * fraction)


def _raw_stddev(samples: Sequence[float], total: float) -> float:
    """Sample standard deviation (n-1) of raw samples whose sum is ``total``.

    Integer samples (nanoseconds) take the exact integer route: the numerator
    ``n*sum(x^2) - sum(x)^2`` is computed without rounding, so there is neither
    cancellation nor a second pass over the data.
    """
    n = len(samples)
    if n < 2:
        return 0.0
    if isinstance(total, int):
        square_sum = sum(map(operator.mul, samples, samples))
        return math.sqrt((n * square_sum - total * total) / (n * (n - 1)))
    mean = total / n
    deviations = list(map(mean.__rsub__, samples))
    return math.sqrt(sum(map(operator.mul, deviations, deviations)) / (n - 1))


@dataclass(frozen=True, slots=True)
class Summary:
    """Every statistic of a snapshot, computed at once.

    ``count``, ``total``, ``minimum`` and ``maximum`` are exact over every sample
    ever recorded (all-time); the ``recent_*`` values, ``median``, ``stddev``,
    ``p90`` and ``p99`` describe the recent window; ``rate`` is events per second
    over the recent window.
    """

    count: int
    total: float
    minimum: float
    maximum: float
    recent_count: int
    recent_min: float
    recent_max: float
    recent_mean: float
    median: float
    stddev: float
    p90: float
    p99: float
    rate: float

    def to_dict(self) -> dict[str, float | int]:
        """Return the summary as a plain dict (JSON-serialisable)."""
        return {name: getattr(self, name) for name in self.__dataclass_fields__}


@dataclass(frozen=True, slots=True)
class StatsSnapshot:
    """An immutable picture of a :class:`RollingStats` at one moment.

    The recent samples are kept as they were recorded (``samples``, e.g. integer
    nanoseconds) together with the ``divisor`` that turns them into the reported
    unit; ``recent`` and every statistic are in the reported unit. Computing on
    the raw integers keeps the statistics exact and cheap.

    Attributes:
        window: capacity of the recent window the samples came from.
        count: number of samples ever recorded (exact).
        total: sum of every sample ever recorded (reported unit).
        minimum: smallest sample ever recorded (0.0 when there is none).
        maximum: largest sample ever recorded (0.0 when there is none).
        samples: the most recent raw samples, oldest first.
        divisor: raw samples divided by it give the reported unit.
        events: number of event timestamps in the recent window.
        first_event_ns: monotonic timestamp of the oldest recent event, or None.
        last_event_ns: monotonic timestamp of the newest recent event, or None.
        events_at_first: how many of the recent events share the oldest one's
            timestamp (frames of several cameras that came in one instant):
            the rate counts the events after that instant over the span.
        histogram: cumulative bucket counts, when the source tracks a histogram
            (see :meth:`RollingStats.track_histogram`).
        distribution: cumulative counts on the fixed latency grid, when the
            source keeps one (see :meth:`RollingStats.keep_distribution`);
            exporters sum it into their own buckets.
    """

    window: int
    count: int = 0
    total: float = 0.0
    minimum: float = 0.0
    maximum: float = 0.0
    samples: tuple[float, ...] = ()
    divisor: float = 1.0
    events: int = 0
    first_event_ns: int | None = None
    last_event_ns: int | None = None
    events_at_first: int = 1
    histogram: HistogramSnapshot | None = None
    distribution: DistributionSnapshot | None = None
    _recent: tuple[float, ...] | None = field(default=None, init=False, repr=False, compare=False)
    _sorted: tuple[float, ...] | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def recent(self) -> tuple[float, ...]:
        """The most recent samples in the reported unit, oldest first (cached)."""
        cached = self._recent
        if cached is None:
            divisor = self.divisor
            if divisor == 1.0:
                cached = self.samples
            else:
                cached = tuple(map(divisor.__rtruediv__, self.samples))
            object.__setattr__(self, "_recent", cached)
        return cached

    def _sorted_samples(self) -> tuple[float, ...]:
        cached = self._sorted
        if cached is None:
            cached = tuple(sorted(self.samples))
            object.__setattr__(self, "_sorted", cached)
        return cached

    def mean(self) -> float:
        """Return the all-time mean (``total / count``), 0.0 when empty."""
        return self.total / self.count if self.count else 0.0

    def recent_mean(self) -> float:
        """Return the mean of the recent window, 0.0 when empty."""
        samples = self.samples
        return sum(samples) / len(samples) / self.divisor if samples else 0.0

    def recent_min(self) -> float:
        """Return the smallest recent sample, 0.0 when empty."""
        return min(self.samples) / self.divisor if self.samples else 0.0

    def recent_max(self) -> float:
        """Return the largest recent sample, 0.0 when empty."""
        return max(self.samples) / self.divisor if self.samples else 0.0

    def recent_sum(self) -> float:
        """Return the sum of the recent samples."""
        return sum(self.samples) / self.divisor

    def median(self) -> float:
        """Return the median of the recent window, 0.0 when empty."""
        return _interpolate(self._sorted_samples(), 50.0) / self.divisor

    def stddev(self) -> float:
        """Return the sample standard deviation (n-1) of the recent window."""
        return _raw_stddev(self.samples, sum(self.samples)) / self.divisor

    def percentile(self, q: float) -> float:
        """Return the ``q``-th percentile (0-100) of the recent window."""
        return percentile(self._sorted_samples(), q) / self.divisor

    def rate(self, now_ns: int | None = None, window_s: float = RATE_WINDOW_S) -> float:
        """Return events per second: over the recent window, or the last ``window_s`` s.

        Without ``now_ns``: (n-k)/(t_last-t_first) over the remembered events,
        ``k`` of them at ``t_first`` (``events_at_first``; 1 when no two
        events share an instant).
        With ``now_ns`` (the time of the reading): the events of the last
        ``window_s`` seconds before it, divided by that span (the
        remembered events taken as evenly spread; a reading less than one
        mean gap after the last event counts as on schedule), so a rate
        falls to 0 within ``window_s`` of the last event instead of holding
        its last value. 0.0 when fewer than two events were timestamped or they
        share one instant.
        """
        first, last = self.first_event_ns, self.last_event_ns
        if self.events < 2 or first is None or last is None or last <= first:
            return 0.0
        after_first = self.events - min(max(1, self.events_at_first), self.events - 1)
        if now_ns is None:
            return after_first * _NS_PER_S / (last - first)
        start = max(first, now_ns - round(window_s * _NS_PER_S))
        if last <= start:
            return 0.0
        intervals = after_first * (last - start) / (last - first)
        # A reading within one mean gap of the last event is on schedule: no decay yet.
        end = max(last, now_ns - (last - first) / after_first)
        return intervals * _NS_PER_S / (end - start)

    def summary(self) -> Summary:
        """Compute every statistic in one pass over the window (one sort, two sums)."""
        samples = self.samples
        ordered = self._sorted_samples()
        divisor = self.divisor
        n = len(samples)
        recent_total = sum(samples)
        return Summary(
            count=self.count,
            total=self.total,
            minimum=self.minimum,
            maximum=self.maximum,
            recent_count=n,
            recent_min=ordered[0] / divisor if n else 0.0,
            recent_max=ordered[-1] / divisor if n else 0.0,
            recent_mean=recent_total / n / divisor if n else 0.0,
            median=_interpolate(ordered, 50.0) / divisor,
            stddev=_raw_stddev(samples, recent_total) / divisor,
            p90=_interpolate(ordered, 90.0) / divisor,
            p99=_interpolate(ordered, 99.0) / divisor,
            rate=self.rate(),
        )

    def merge(self, other: StatsSnapshot) -> StatsSnapshot:
        """Combine two snapshots of the same quantity into one.

        Counts and sums add, extremes combine, the recent windows are pooled (so
        percentiles describe both sources). The rate: two sources whose
        remembered events overlap in time run side by side (replicas of one
        stage, on the same host's monotonic clock), so their rates add (the
        merged first event is placed where the summed rate puts it); events
        that do not overlap are one source's consecutive periods, taken as one
        stream over the union.
        """
        if not isinstance(other, StatsSnapshot):
            raise TypeError(f"other must be a StatsSnapshot, got {type(other).__name__}")
        if not other.count:
            return self
        if not self.count:
            return other
        if self.divisor == other.divisor:
            samples, divisor = self.samples + other.samples, self.divisor
        else:
            samples, divisor = self.recent + other.recent, 1.0
        histogram = self.histogram
        if histogram is None or other.histogram is None:
            histogram = histogram or other.histogram
        elif histogram.bounds == other.histogram.bounds:
            histogram = histogram.merge(other.histogram)
        else:
            histogram = None
        distribution = self.distribution
        if distribution is None or other.distribution is None:
            distribution = distribution or other.distribution
        else:
            distribution = distribution.merge(other.distribution)
        first, last = _merged_span(self, other)
        return StatsSnapshot(
            window=self.window + other.window,
            count=self.count + other.count,
            total=self.total + other.total,
            minimum=min(self.minimum, other.minimum),
            maximum=max(self.maximum, other.maximum),
            samples=samples,
            divisor=divisor,
            events=self.events + other.events,
            first_event_ns=first,
            last_event_ns=last,
            events_at_first=_ties_at(first, self, other),
            histogram=histogram,
            distribution=distribution,
        )

    def __add__(self, other: StatsSnapshot) -> StatsSnapshot:
        return self.merge(other)

    def to_dict(self) -> dict[str, Any]:
        """Return the snapshot as a plain dict that :meth:`from_dict` reads back exactly."""
        data: dict[str, Any] = {
            "window": self.window,
            "count": self.count,
            "total": self.total,
            "minimum": self.minimum,
            "maximum": self.maximum,
            "samples": list(self.samples),
            "divisor": self.divisor,
            "events": self.events,
            "first_event_ns": self.first_event_ns,
            "last_event_ns": self.last_event_ns,
            "events_at_first": self.events_at_first,
        }
        if self.histogram is not None:
            data["histogram"] = self.histogram.to_dict()
        if self.distribution is not None:
            data["distribution"] = self.distribution.to_dict()
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> StatsSnapshot:
        """Rebuild a snapshot from :meth:`to_dict` output (e.g. parsed JSON).

        Every field is checked: anything wrong (a missing key, a wrong type, a
        negative count, a NaN) is a :class:`SnapshotFormatError` naming the field.
        """
        return read_stats(Fields(data, ""))


def read_stats(fields: Fields) -> StatsSnapshot:
    """A :class:`StatsSnapshot` from checked fields (errors name the field's path)."""
    samples = fields.items("samples")
    for index, value in enumerate(samples):
        check_field_number(value, f"{fields.at('samples')}[{index}]")
    count = fields.integer("count")
    if count < len(samples):
        raise SnapshotFormatError(
            f"{fields.at('count')}: expected at least the {len(samples)} samples, got {count}"
        )
    histogram = fields.get("histogram", None)
    distribution = fields.get("distribution", None)
    return StatsSnapshot(
        window=fields.integer("window"),
        count=count,
        total=fields.number("total"),
        minimum=fields.number("minimum"),
        maximum=fields.number("maximum"),
        samples=tuple(samples),
        divisor=fields.number("divisor", 1.0, positive=True),
        events=fields.integer("events", 0),
        first_event_ns=fields.integer("first_event_ns", None, or_none=True),
        last_event_ns=fields.integer("last_event_ns", None, or_none=True),
        events_at_first=fields.integer("events_at_first", 1),
        histogram=None
        if histogram is None
        else read_histogram(Fields(histogram, fields.at("histogram"))),
        distribution=None
        if distribution is None
        else read_distribution(Fields(distribution, fields.at("distribution"))),
    )


def _ties_at(first: int | None, a: StatsSnapshot, b: StatsSnapshot) -> int:
    """How many events of two merged streams share the merged first instant (at least 1)."""
    ties = sum(s.events_at_first for s in (a, b) if first is not None and s.first_event_ns == first)
    return max(1, ties)


def _merged_span(a: StatsSnapshot, b: StatsSnapshot) -> tuple[int | None, int | None]:
    """The first and last event of two merged event streams (see :meth:`StatsSnapshot.merge`)."""
    firsts = [t for t in (a.first_event_ns, b.first_event_ns) if t is not None]
    lasts = [t for t in (a.last_event_ns, b.last_event_ns) if t is not None]
    first, last = (min(firsts) if firsts else None), (max(lasts) if lasts else None)
    spans: list[tuple[int, int, int]] = []
    for stats in (a, b):
        start, end = stats.first_event_ns, stats.last_event_ns
        if start is None or end is None or end <= start or stats.events < 2:
            return first, last
        spans.append((start, end, stats.events - min(stats.events_at_first, stats.events - 1)))
    if last is None or min(end for _, end, _ in spans) <= max(start for start, _, _ in spans):
        return first, last  # consecutive periods: one stream over the union
    rate = sum(after / (end - start) for start, end, after in spans)
    return last - round((a.events + b.events - 1) / rate), last
