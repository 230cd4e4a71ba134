"""The one statistics engine behind every framescope timer.

:class:`RollingStats` accumulates samples: it keeps a bounded window of the most
recent ones together with exact all-time count, sum, minimum and maximum, and the
timestamps of the recent events so it can tell their rate. It does no work per
sample beyond appending; everything else is computed on demand, away from the hot
path, into an immutable :class:`StatsSnapshot` (plain data, in
``framescope.statsnapshot``: what every reader of a timer gets).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Sequence
from itertools import takewhile
from typing import NamedTuple

from framescope._validation import check_number, check_positive_int
from framescope.histogram import Distribution, Histogram
from framescope.statsnapshot import StatsSnapshot, Summary, percentile

MAX_WINDOW = 10_000_000
"""The largest recent window: it bounds memory (two deques, ~160 MB at most)."""

__all__ = ["MAX_WINDOW", "Batch", "RollingStats", "StatsSnapshot", "Summary", "percentile"]


class Batch(NamedTuple):
    """The exact aggregates of one batch of samples, folded in bulk.

    Attributes:
        size: how many samples.
        total: their exact sum.
        low: the smallest.
        high: the largest.
        recent: the newest samples (at most the window), oldest first.
        stamps: the timestamps of ``recent``, or empty when they have none.
        values: returns every sample (asked only for histograms): a sequence,
            oldest first unless ``ordered``, or a NumPy array when the batch
            was folded with NumPy.
        ordered: ``values`` are in ascending order (sorted for a
            distribution when folded, so it need not sort them again).
    """

    size: int
    total: float
    low: float
    high: float
    recent: Sequence[float]
    stamps: Sequence[int]
    values: Callable[[], Sequence[float]]
    ordered: bool = False


class RollingStats:
    """Accumulate samples: a bounded recent window plus exact all-time aggregates.

    Samples are stored as given (e.g. integer nanoseconds) and divided by
    ``divisor`` only when a snapshot is taken (``divisor=1e9`` reports seconds;
    dividing, rather than multiplying by 1e-9, gives the correctly rounded value).
    Optionally each sample carries the monotonic timestamp (ns) of its event;
    those give the rate of events over the recent window.

    Not synchronised: one thread adds samples; take snapshots from that thread,
    or guard both with a lock. Timers in framescope feed it in batches.

    Args:
        window: how many recent samples to keep (1 to :data:`MAX_WINDOW`).
        divisor: stored samples are divided by it in snapshots.
    """

    __slots__ = (
        "_count",
        "_distribution",
        "_divisor",
        "_histogram",
        "_max",
        "_min",
        "_recent",
        "_stamps",
        "_total",
        "_window",
    )

    def __init__(self, window: int = 100, *, divisor: float = 1.0) -> None:
        self._window = check_positive_int(window, "window", maximum=MAX_WINDOW)
        self._divisor = check_number(divisor, "divisor", positive=True)
        self._recent: deque[float] = deque(maxlen=window)
        self._stamps: deque[int] = deque(maxlen=window)
        self._count = 0
        self._total: float = 0
        self._min: float = 0
        self._max: float = 0
        self._histogram: Histogram | None = None
        self._distribution: Distribution | None = None

    @property
    def keeps_distribution(self) -> bool:
        """Whether a distribution is kept (see :meth:`keep_distribution`)."""
        return self._distribution is not None

    def keep_distribution(self) -> None:
        """Also count every sample added from now on on the fixed latency grid.

        The grid has no bounds to choose (see
        :data:`~framescope.histogram.LATENCY_GRID_NS`), so this never conflicts:
        each exporter sums it into its own buckets. Like a tracked histogram it
        is cumulative (:meth:`reset` does not clear it). Calling again does nothing.
        """
        if self._distribution is None:
            self._distribution = Distribution(self._divisor)

    def track_histogram(self, bounds: Sequence[float]) -> None:
        """Also count every sample added from now on into fixed buckets.

        ``bounds`` are upper bounds in the reported unit. The histogram is
        cumulative: :meth:`reset` does not clear it, so exporters see counts that
        only grow. Calling again with the same bounds does nothing; other bounds
        are an error, since counts cannot be moved between buckets.
        """
        histogram = Histogram(bounds, self._divisor)
        if self._histogram is not None:
            if self._histogram.bounds != histogram.bounds:
                raise ValueError(
                    f"this timer already tracks a histogram with bounds "
                    f"{self._histogram.bounds!r}; got {histogram.bounds!r}"
                )
            return
        self._histogram = histogram

    @property
    def window(self) -> int:
        """Capacity of the recent window."""
        return self._window

    @property
    def count(self) -> int:
        """Number of samples ever added (exact)."""
        return self._count

    def __len__(self) -> int:
        """Number of samples currently in the recent window."""
        return len(self._recent)

    def add(self, value: float, timestamp_ns: int | None = None) -> None:
        """Add one sample, optionally with the monotonic timestamp of its event."""
        if self._count:
            if value < self._min:
                self._min = value
            elif value > self._max:
                self._max = value
        else:
            self._min = self._max = value
        self._count += 1
        self._total += value
        self._recent.append(value)
        if timestamp_ns is not None:
            self._stamps.append(timestamp_ns)
        if self._histogram is not None:
            self._histogram.add(value)
        if self._distribution is not None:
            self._distribution.extend((value,))

    def extend(self, values: Iterable[float], timestamps_ns: Iterable[int] | None = None) -> None:
        """Add many samples at once (much faster than repeated :meth:`add`).

        ``timestamps_ns``, when given, must hold one timestamp per value.
        """
        batch = values if isinstance(values, list) else list(values)
        if not batch:
            return
        if timestamps_ns is not None:
            stamps = timestamps_ns if isinstance(timestamps_ns, list) else list(timestamps_ns)
            if len(stamps) != len(batch):
                raise ValueError(
                    f"timestamps_ns must have one entry per value: "
                    f"{len(stamps)} timestamps for {len(batch)} values"
                )
        else:
            stamps = []
        window = self._window
        self.add_batch(
            Batch(
                len(batch),
                sum(batch),
                min(batch),
                max(batch),
                batch[-window:],
                stamps[-window:],
                lambda: batch,
            )
        )

    def add_batch(self, batch: Batch) -> None:
        """Add a batch of samples whose aggregates were folded elsewhere, in bulk.

        ``batch.recent`` must be the batch's newest values (up to the window)
        and ``batch.stamps`` their timestamps, or empty when they have none.
        """
        if not batch.size:
            return
        if self._count:
            self._min = min(self._min, batch.low)
            self._max = max(self._max, batch.high)
        else:
            self._min, self._max = batch.low, batch.high
        self._count += batch.size
        self._total += batch.total
        self._recent.extend(batch.recent)
        if batch.stamps:
            self._stamps.extend(batch.stamps)
        if self._histogram is not None or self._distribution is not None:
            every = batch.values()
            if self._histogram is not None:
                self._histogram.extend(every)
            if self._distribution is not None:
                self._distribution.extend(every, ordered=batch.ordered, total=batch.total)

    def reset(self) -> None:
        """Forget every sample and aggregate (a histogram or distribution keeps counting)."""
        self._recent.clear()
        self._stamps.clear()
        self._count = 0
        self._total = 0
        self._min = self._max = 0

    def recent_values(self) -> tuple[float, ...]:
        """Return the recent window (divided by ``divisor``), oldest first."""
        divisor = self._divisor
        if divisor == 1.0:
            return tuple(self._recent)
        return tuple(map(divisor.__rtruediv__, self._recent))

    def total(self) -> float:
        """The sum of every value added so far (divided by ``divisor``), all time."""
        return self._total / self._divisor

    def snapshot(self) -> StatsSnapshot:
        """Return an immutable :class:`StatsSnapshot` of the current state."""
        divisor = self._divisor
        stamps = self._stamps
        return StatsSnapshot(
            window=self._window,
            count=self._count,
            total=self._total / divisor,
            minimum=self._min / divisor,
            maximum=self._max / divisor,
            samples=tuple(self._recent),
            divisor=divisor,
            events=len(stamps),
            first_event_ns=stamps[0] if stamps else None,
            last_event_ns=stamps[-1] if stamps else None,
            events_at_first=_ties(stamps),
            histogram=None if self._histogram is None else self._histogram.snapshot(),
            distribution=None if self._distribution is None else self._distribution.snapshot(),
        )

    def __repr__(self) -> str:
        return f"RollingStats(window={self._window}, count={self._count})"


def _ties(stamps: deque[int]) -> int:
    """How many of ``stamps`` share the first one's instant (1 when none do, or none at all)."""
    if not stamps:
        return 1
    first = stamps[0]
    return sum(1 for _ in takewhile(first.__eq__, stamps))
