"""Cumulative latency histograms with fixed bucket bounds.

A :class:`Histogram` counts every sample into the first bucket whose upper bound
is at least the sample (Prometheus ``le`` semantics), plus one overflow bucket.
Unlike the recent window of :class:`~framescope.stats.RollingStats`, it never
forgets: counts only grow, which is what a Prometheus histogram or an
OpenTelemetry cumulative histogram needs. It is fed in batches when a timer
folds its records, never on the measuring path.
"""

from __future__ import annotations

import itertools
import math
import sys
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from framescope._snapshotformat import (
    Fields,
    SnapshotFormatError,
    check_field_number,
    check_integer,
    shown,
)
from framescope._validation import check_number

__all__ = [
    "DEFAULT_LATENCY_BUCKETS",
    "LATENCY_GRID_NS",
    "Distribution",
    "DistributionSnapshot",
    "Histogram",
    "HistogramSnapshot",
    "check_bounds",
]

#: Upper bounds in seconds: sub-millisecond steps for fast stages, up to 10 s.
DEFAULT_LATENCY_BUCKETS: tuple[float, ...] = (
    0.0001,
    0.00025,
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)


def check_bounds(bounds: Iterable[float], name: str = "buckets") -> tuple[float, ...]:
    """Validate bucket upper bounds: finite numbers, strictly increasing, at least one.

    ``name``: the argument the bounds were given as, named in the error.
    """
    if not isinstance(name, str):
        raise TypeError(f"name must be the argument's name (a str), got {type(name).__name__}")
    if isinstance(bounds, (str, bytes)) or not isinstance(bounds, Iterable):
        raise TypeError(f"{name} must be a sequence of numbers, got {type(bounds).__name__}")
    values = tuple(bounds)
    if not values:
        raise ValueError(f"{name} must hold at least one upper bound")
    for value in values:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise TypeError(f"{name} must hold numbers, found {value!r}")
        if not math.isfinite(value):
            raise ValueError(f"{name} must be finite (+Inf is implied), found {value!r}")
    if any(b <= a for a, b in itertools.pairwise(values)):
        raise ValueError(f"{name} must be strictly increasing, got {values!r}")
    return tuple(float(value) for value in values)


@dataclass(frozen=True, slots=True)
class HistogramSnapshot:
    """The counts of a :class:`Histogram` at one moment, in the reported unit.

    Attributes:
        bounds: the upper bounds, ascending (``+Inf`` is implied after the last).
        counts: samples per bucket, one more entry than ``bounds`` (the overflow).
        total: sum of every counted sample.
    """

    bounds: tuple[float, ...]
    counts: tuple[int, ...]
    total: float = 0.0

    @property
    def count(self) -> int:
        """Number of samples counted."""
        return sum(self.counts)

    def cumulative(self) -> list[tuple[float, int]]:
        """``(upper bound, samples <= bound)`` pairs, ending with ``(inf, count)``."""
        pairs = []
        running = 0
        for bound, count in zip((*self.bounds, math.inf), self.counts, strict=True):
            running += count
            pairs.append((bound, running))
        return pairs

    def merge(self, other: HistogramSnapshot) -> HistogramSnapshot:
        """Add two histograms with the same bounds."""
        if other.bounds != self.bounds:
            raise ValueError("cannot merge histograms with different bounds")
        counts = tuple(a + b for a, b in zip(self.counts, other.counts, strict=True))
        return HistogramSnapshot(self.bounds, counts, self.total + other.total)

    def to_dict(self) -> dict[str, Any]:
        """Return the histogram as a plain dict (JSON-able)."""
        return {"bounds": list(self.bounds), "counts": list(self.counts), "total": self.total}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> HistogramSnapshot:
        """Rebuild a histogram from :meth:`to_dict` output (checked; see SnapshotFormatError)."""
        return read_histogram(Fields(data, ""))


def read_histogram(fields: Fields) -> HistogramSnapshot:
    """A :class:`HistogramSnapshot` from checked fields (errors name the field's path)."""
    raw = fields.items("bounds")
    for index, value in enumerate(raw):
        check_field_number(value, f"{fields.at('bounds')}[{index}]")
    if any(b <= a for a, b in itertools.pairwise(raw)):
        raise fields.fail("bounds", "strictly increasing bounds", raw)
    counts = fields.items("counts")
    for index, value in enumerate(counts):
        check_integer(value, f"{fields.at('counts')}[{index}]")
    if len(counts) != len(raw) + 1:
        raise SnapshotFormatError(
            f"{fields.at('counts')}: expected {len(raw) + 1} counts (one more than the bounds), "
            f"got {len(counts)}"
        )
    return HistogramSnapshot(
        tuple(float(b) for b in raw), tuple(counts), fields.number("total", 0.0)
    )


class Histogram:
    """Fixed-bucket cumulative counts of samples stored in raw units.

    Args:
        bounds: upper bounds in the reported unit (e.g. seconds).
        divisor: raw samples divided by it give the reported unit (1e9 for ns);
            a finite positive number.
    """

    __slots__ = ("_bounds", "_counts", "_divisor", "_raw_bounds", "_total")

    def __init__(self, bounds: Sequence[float], divisor: float = 1.0) -> None:
        self._bounds = check_bounds(bounds, "bounds")
        self._divisor = check_number(divisor, "divisor", positive=True)
        # A raw sample x falls in bucket i when x / divisor <= bounds[i].
        self._raw_bounds = [bound * self._divisor for bound in self._bounds]
        self._counts = [0] * (len(self._bounds) + 1)
        self._total: float = 0

    @property
    def bounds(self) -> tuple[float, ...]:
        """The upper bounds in the reported unit."""
        return self._bounds

    def add(self, value: float) -> None:
        """Count one raw sample."""
        self._counts[bisect_left(self._raw_bounds, value)] += 1
        self._total += value

    def extend(self, values: Sequence[float]) -> None:
        """Count a batch of raw samples (a sequence, or a NumPy array: counted in C)."""
        counts, raw_bounds = self._counts, self._raw_bounds
        if hasattr(values, "dtype"):  # a NumPy array
            self._total += _count_array(raw_bounds, values, counts)
            return
        for value in values:
            counts[bisect_left(raw_bounds, value)] += 1
        self._total += sum(values)

    def snapshot(self) -> HistogramSnapshot:
        """Return the counts so far, in the reported unit."""
        return HistogramSnapshot(self._bounds, tuple(self._counts), self._total / self._divisor)


_QUARTER_MANTISSAS = (4, 5, 6, 7, 8, 10, 12, 14, 16, 18, 20, 24, 28, 30, 32, 36)
# 1, 1.25, 1.5, 1.75, 2, 2.5, 3, 3.5, 4, 4.5, 5, 6, 7, 7.5, 8, 9 (in quarters) per decade.

LATENCY_GRID_NS: tuple[int, ...] = (
    0,
    *(quarter * 10**exponent // 4 for exponent in range(2, 13) for quarter in _QUARTER_MANTISSAS),
    10**13,
)
"""The fixed bucket edges (ns) every distribution counts on: 0, then 100 ns to 10,000 s.

Sixteen edges per decade (1, 1.25, 1.5, 1.75, 2, 2.5, 3, 3.5, 4, 4.5, 5, 6, 7,
7.5, 8, 9): Prometheus' default buckets, OpenTelemetry's default explicit
buckets and framescope's own all lie on it, so a histogram summed from the
grid at those bounds is exact.
"""


@dataclass(frozen=True, slots=True)
class DistributionSnapshot:
    """Cumulative counts on :data:`LATENCY_GRID_NS` at one moment; exporters sum them into buckets.

    Attributes:
        counts: samples per grid bucket (``edge[i-1] < x <= edge[i]``), plus one overflow.
        total: sum of every counted sample (seconds).
    """

    counts: tuple[int, ...]
    total: float = 0.0

    @property
    def count(self) -> int:
        """Number of samples counted."""
        return sum(self.counts)

    def histogram(self, bounds: Sequence[float]) -> HistogramSnapshot:
        """The counts summed into ``bounds`` (seconds, ascending), as a :class:`HistogramSnapshot`.

        A bound on the grid is exact. A bound between two grid edges counts the
        samples up to the edge below it, so a bucket never holds a sample above
        its bound (it may miss some of those between that edge and the bound).
        """
        values = check_bounds(bounds, "bounds")
        counts = []
        position = 0
        edges = LATENCY_GRID_NS
        for bound in values:
            limit = bound * 1e9 * (1 + 1e-12)  # absorbs the rounding of seconds to ns
            taken = 0
            while position < len(edges) and edges[position] <= limit:
                taken += self.counts[position]
                position += 1
            counts.append(taken)
        counts.append(sum(self.counts[position:]))
        return HistogramSnapshot(values, tuple(counts), self.total)

    def merge(self, other: DistributionSnapshot) -> DistributionSnapshot:
        """Add two distributions (of replicas, periods or boxes)."""
        counts = tuple(a + b for a, b in zip(self.counts, other.counts, strict=True))
        return DistributionSnapshot(counts, self.total + other.total)

    def to_dict(self) -> dict[str, Any]:
        """Return the distribution as a plain dict: only the buckets that hold samples."""
        nonzero = {str(index): count for index, count in enumerate(self.counts) if count}
        return {"counts": nonzero, "total": self.total}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DistributionSnapshot:
        """Rebuild a distribution from :meth:`to_dict` output (checked; see SnapshotFormatError)."""
        return read_distribution(Fields(data, ""))


def read_distribution(fields: Fields) -> DistributionSnapshot:
    """A :class:`DistributionSnapshot` from checked fields (errors name the field's path)."""
    counts = [0] * (len(LATENCY_GRID_NS) + 1)
    given = fields.child("counts", {})
    for index in given.data:
        ok = isinstance(index, str) and index.isascii() and index.isdigit() and len(index) < 6
        if not (ok and int(index) < len(counts)):
            raise SnapshotFormatError(
                f"{fields.at('counts')}: a bucket index out of range 0..{len(counts) - 1}: "
                f"{shown(index)}"
            )
        counts[int(index)] = given.integer(index)
    return DistributionSnapshot(tuple(counts), fields.number("total", 0.0))


def _count_array(edges: Sequence[float], values: Any, counts: list[int]) -> Any:
    """Add a NumPy array's samples to ``counts`` (bucket i: the edges' bisect_left); its sum.

    The same buckets as ``counts[bisect_left(edges, value)] += 1`` for each
    value, and the exact sum for an integer array.
    """
    np = sys.modules["numpy"]  # loaded: ``values`` is one of its arrays
    if not len(values):
        return 0
    found = np.bincount(np.searchsorted(edges, values, side="left"), minlength=len(counts))
    for index in np.flatnonzero(found).tolist():
        counts[index] += int(found[index])
    return values.sum().item()


class Distribution:
    """Counts raw samples on the fixed latency grid, cumulatively (a reset does not clear it).

    Unlike a :class:`Histogram`, it has no bounds to choose: every exporter
    sums the grid into its own buckets (:meth:`DistributionSnapshot.histogram`),
    so any number of exporters with different buckets can read one timer.

    Args:
        divisor: raw samples divided by it give seconds (1e9 for nanoseconds);
            a finite positive number.
    """

    __slots__ = ("_counts", "_divisor", "_edges", "_total")

    def __init__(self, divisor: float = 1e9) -> None:
        self._divisor = check_number(divisor, "divisor", positive=True)
        if self._divisor == 1e9:
            self._edges: list[float] = list(LATENCY_GRID_NS)
        else:
            self._edges = [edge * self._divisor / 1e9 for edge in LATENCY_GRID_NS]
        self._counts = [0] * (len(self._edges) + 1)
        self._total: float = 0

    def extend(
        self, values: Sequence[float], *, ordered: bool = False, total: float | None = None
    ) -> None:
        """Count a batch of raw samples (sorted once, then cut at the grid edges).

        ``values`` may be a NumPy array (a fold's column): counted in C.
        ``ordered``: they are in ascending order already (not sorted again);
        ``total``: their sum, where it is known (not summed again).
        """
        if hasattr(values, "dtype"):  # a NumPy array
            self._total += _count_array(self._edges, values, self._counts)
            return
        if not values:
            return
        if not ordered:
            values = sorted(values)
        edges, counts = self._edges, self._counts
        first = bisect_left(edges, values[0])
        last = bisect_left(edges, values[-1])
        taken = 0
        for index in range(first, last):
            upto = bisect_right(values, edges[index], taken)
            counts[index] += upto - taken
            taken = upto
        counts[last] += len(values) - taken
        self._total += sum(values) if total is None else total

    def snapshot(self) -> DistributionSnapshot:
        """Return the counts so far (total in seconds)."""
        return DistributionSnapshot(tuple(self._counts), self._total / self._divisor)
