"""What a timer reads as: :class:`TimerSnapshot`, and the one-line repr every timer prints."""

from __future__ import annotations

from dataclasses import dataclass
from itertools import islice

from framescope.stats import StatsSnapshot

__all__ = ["MAX_REPR_INTERVALS", "TimerSnapshot", "format_timer"]

MAX_REPR_INTERVALS = 5
"""At most this many intervals are printed by a timer's repr, then ``...``."""


def format_timer(kind: str, name: str | None, snapshot: TimerSnapshot) -> str:
    """Render the one-line timer repr: ``<Ticker intervals=[...] min=... mean=... max=...>``."""
    props = [kind]
    if name is not None:
        props.append(f"name={name}")
    intervals = snapshot.intervals
    if intervals:
        shown = [f"{iv:.4f}" for iv in islice(intervals, MAX_REPR_INTERVALS)]
        if len(intervals) > MAX_REPR_INTERVALS:
            shown.append("...")
        props.append(f"intervals=[{', '.join(shown)}]")
        props.append(f"min={snapshot.min():.4f}")
        props.append(f"mean={snapshot.mean():.4f}")
        props.append(f"max={snapshot.max():.4f}")
    return "<" + " ".join(props)


@dataclass(frozen=True, slots=True)
class TimerSnapshot:
    """An immutable reading of a timer, with the same methods as the timer.

    This is what tachometers hand to their ``stats_callback``: it can be read on
    any thread while the timer keeps running. ``min() max() sum() len() mean()``
    are exact over the samples the snapshot summarises (a timer's window, or every
    sample of a tachometer's reporting period); ``median() stddev() percentile()``
    use ``intervals``, the samples that were kept.

    Attributes:
        intervals: kept samples in seconds, oldest first.
        count: number of samples summarised.
        total: their sum in seconds.
        minimum: the shortest one (0.0 when there is none).
        maximum: the longest one (0.0 when there is none).
        rate: events per second over the kept samples, (n-1)/(t_last-t_first)
            (for a StopWatch: how often its blocks ran, not :meth:`freq`).
        stats: the full statistics snapshot (all-time aggregates included).
        kind: the timer class name, used by the repr.
        name: the timer's name, when it has one.
    """

    intervals: tuple[float, ...]
    count: int
    total: float
    minimum: float
    maximum: float
    rate: float
    stats: StatsSnapshot
    kind: str = "Ticker"
    name: str | None = None

    @classmethod
    def of_window(cls, stats: StatsSnapshot, kind: str, name: str | None) -> TimerSnapshot:
        """Summarise the recent window of ``stats`` (what a timer's own methods report)."""
        return cls(
            intervals=stats.recent,
            count=len(stats.samples),
            total=stats.recent_sum(),
            minimum=stats.recent_min(),
            maximum=stats.recent_max(),
            rate=stats.rate(),
            stats=stats,
            kind=kind,
            name=name,
        )

    @classmethod
    def of_all(cls, stats: StatsSnapshot, kind: str, name: str | None) -> TimerSnapshot:
        """Summarise every sample of ``stats`` exactly (what a tachometer reports)."""
        return cls(
            intervals=stats.recent,
            count=stats.count,
            total=stats.total,
            minimum=stats.minimum,
            maximum=stats.maximum,
            rate=stats.rate(),
            stats=stats,
            kind=kind,
            name=name,
        )

    def min(self) -> float:
        """Shortest interval in seconds (0.0 when empty)."""
        return self.minimum

    def max(self) -> float:
        """Longest interval in seconds (0.0 when empty)."""
        return self.maximum

    def sum(self) -> float:
        """Sum of the intervals in seconds."""
        return self.total

    def len(self) -> int:
        """Number of intervals."""
        return self.count

    def mean(self) -> float:
        """Mean interval in seconds (0.0 when empty)."""
        return self.total / self.count if self.count else 0.0

    def freq(self) -> float:
        """``1 / mean()`` in Hz, as Backpack's ``freq()`` (0.0 when empty).

        For a Ticker that is the tick rate (ticks 0.1 s apart: 10.0 Hz); for a
        StopWatch, how many of the timed blocks fit in a second (10 ms blocks:
        100.0 Hz, however often they run). The timer's own ``freq()`` is the
        same. How often blocks *start* is ``rate``.
        """
        mean = self.mean()
        return 1.0 / mean if mean > 0 else 0.0

    def median(self) -> float:
        """Median of the kept intervals in seconds."""
        return self.stats.median()

    def stddev(self) -> float:
        """Sample standard deviation of the kept intervals in seconds."""
        return self.stats.stddev()

    def percentile(self, q: float) -> float:
        """The ``q``-th percentile (0-100) of the kept intervals in seconds."""
        return self.stats.percentile(q)

    def __repr__(self) -> str:
        return format_timer(self.kind, self.name, self) + ">"
