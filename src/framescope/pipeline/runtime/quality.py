"""A source's last hour, kept in minute buckets: time in each state, frames, drops, reconnects.

Each source of a many-source run has one :class:`QualityLedger`. Time is
accounted exactly: at every change of state, and whenever the watcher or a
reader looks, the time since the last accounting goes to the state the
source was in, split at the buckets' edges. Frames, drops and reconnects
are read from the source's running totals at those moments, so each lands
in the bucket of the look that first saw it: at most one watcher round
(``check_every``, 0.25 s at most) late. A bucket that started more than an
hour ago goes, so the figures cover the last 59 to 60 minutes and a ledger
holds at most 61 buckets, however long the run.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from framescope.pipeline.model.sources import (
    FINAL_STATES,
    QUALITY_WINDOW_S,
    UP_STATES,
    SourceQuality,
    SourceState,
)

__all__ = ["BUCKET_S", "QualityLedger", "Totals"]

BUCKET_S = 60.0
"""The width of a bucket (seconds): the quality window moves on a minute at a time."""

_BUCKET_NS = round(BUCKET_S * 1e9)
_WINDOW_NS = round(QUALITY_WINDOW_S * 1e9)


@dataclass(frozen=True, slots=True)
class Totals:
    """A source's running totals at one look: frames taken, frames dropped, reconnects."""

    frames: int = 0
    dropped: int = 0
    reconnects: int = 0


@dataclass(slots=True)
class _Bucket:
    start_ns: int
    times: dict[SourceState, int] = field(default_factory=dict)
    frames: int = 0
    dropped: int = 0
    reconnects: int = 0


class QualityLedger:
    """One source's last hour. Not synchronised: its owner calls it under the source's lock.

    Args:
        now_ns: when the source started (the pipeline's clock); buckets are
            minutes from there.
    """

    def __init__(self, now_ns: int) -> None:
        self._origin = now_ns
        self._accounted_ns = now_ns
        self._seen = Totals()
        self._buckets: deque[_Bucket] = deque([_Bucket(now_ns)])

    def account(self, now_ns: int, state: SourceState, totals: Totals) -> None:
        """Give the time since the last accounting to ``state``; take in what ``totals`` added."""
        start = self._accounted_ns
        if state in FINAL_STATES:  # its time ended at the move there (accounted then)
            now_ns = start
        if now_ns > start:
            self._accounted_ns = now_ns
            while start < now_ns:
                bucket = self._bucket_at(start)
                end = min(now_ns, bucket.start_ns + _BUCKET_NS)
                bucket.times[state] = bucket.times.get(state, 0) + (end - start)
                start = end
        bucket = self._bucket_at(max(now_ns, self._buckets[-1].start_ns))
        seen = self._seen
        bucket.frames += max(0, totals.frames - seen.frames)
        bucket.dropped += max(0, totals.dropped - seen.dropped)
        bucket.reconnects += max(0, totals.reconnects - seen.reconnects)
        self._seen = totals
        self._forget_before(now_ns - _WINDOW_NS)

    def _bucket_at(self, at_ns: int) -> _Bucket:
        """The bucket holding ``at_ns`` (made, with any empty ones between, when it is new)."""
        last = self._buckets[-1]
        while at_ns >= last.start_ns + _BUCKET_NS:
            last = _Bucket(last.start_ns + _BUCKET_NS)
            self._buckets.append(last)
        return last

    def _forget_before(self, cutoff_ns: int) -> None:
        """Drop the buckets that started before ``cutoff_ns`` (the window: 59 to 60 minutes)."""
        buckets = self._buckets
        while len(buckets) > 1 and buckets[0].start_ns < cutoff_ns:
            buckets.popleft()

    def read(self, nominal_fps: float | None) -> SourceQuality:
        """The figures of the kept buckets, up to the last accounting."""
        buckets = self._buckets
        window_ns = self._accounted_ns - buckets[0].start_ns
        times: dict[SourceState, int] = {}
        frames = dropped = reconnects = 0
        for bucket in buckets:
            for state, spent in bucket.times.items():
                times[state] = times.get(state, 0) + spent
            frames += bucket.frames
            dropped += bucket.dropped
            reconnects += bucket.reconnects
        covered = sum(times.values())
        up_ns = sum(spent for state, spent in times.items() if state in UP_STATES)
        return SourceQuality(
            window=window_ns / 1e9,
            shares={state.value: spent / covered for state, spent in times.items() if spent}
            if covered
            else {},
            frames=frames,
            dropped=dropped,
            reconnects=reconnects,
            fps=frames / (up_ns / 1e9) if up_ns > 0 else None,
            nominal_fps=nominal_fps,
        )
