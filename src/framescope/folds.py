"""Bulk folds of timer records into exact batch aggregates.

A timer's hot path only appends clock readings to a list; a fold turns a batch
of them into what :class:`~framescope.stats.RollingStats` keeps: the count,
exact sum, minimum and maximum of the batch, and its newest values and
timestamps. Every value is needed only when a histogram or distribution is
kept, so it is computed on demand.

When the application has loaded NumPy (any program that handles frames has),
large batches are folded with it: a few nanoseconds a record instead of some
fifty in pure Python. NumPy is never imported here, so a timer never stalls a
frame loop on an import; both ways give the same exact integers.
"""

from __future__ import annotations

import operator
import sys
from array import array
from collections.abc import Sequence
from typing import Any

from framescope.stats import Batch

__all__ = [
    "NUMPY_FROM",
    "durations",
    "intervals",
    "numpy_columns",
    "numpy_loaded",
    "samples",
    "spans",
]

NUMPY_FROM = 256
"""Records from which a batch is folded with NumPy (below, its call overhead dominates)."""


def _numpy() -> Any:
    """NumPy when the application has imported it, else None."""
    return sys.modules.get("numpy")


def numpy_loaded() -> bool:
    """Whether the folds use NumPy now (the application has imported it)."""
    return _numpy() is not None


def _fits(low: int, high: int) -> bool:
    """Whether readings from ``low`` to ``high`` fit NumPy's int64 (a far-off clock may not)."""
    return low > -(2**62) and high < 2**62


def intervals(previous: int, stamps: list[int], window: int) -> Batch:
    """Fold the gaps between successive ``stamps`` (the first gap starts at ``previous``).

    ``stamps`` must not be empty. The sum telescopes: the last stamp minus ``previous``.
    """
    count = len(stamps)
    total = stamps[-1] - previous
    np = _numpy() if count >= NUMPY_FROM else None
    if np is not None and _fits(previous, stamps[-1]):
        readings = np.fromiter(stamps, np.int64, count)
        gaps = np.empty(count, np.int64)
        gaps[0] = stamps[0] - previous
        np.subtract(readings[1:], readings[:-1], out=gaps[1:])  # np.diff would copy
        return Batch(
            count,
            total,
            int(gaps.min()),
            int(gaps.max()),
            gaps[-window:].tolist(),
            stamps[-window:],
            lambda: gaps,  # histograms count a NumPy array in C
        )
    before = [previous]
    before.extend(stamps[:-1])
    values = list(map(operator.sub, stamps, before))
    return Batch(
        count,
        total,
        min(values),
        max(values),
        values[-window:],
        stamps[-window:],
        lambda: values,
    )


def durations(pairs: list[int] | array[int], window: int, *, ordered: bool = False) -> Batch:
    """Fold flat ``[start, end, start, end, ...]`` readings into block durations.

    ``pairs`` must hold at least one whole pair; the timestamp of a block is its end.
    An ``array('q')`` of readings is read by NumPy in place (no conversion).
    ``ordered``: a distribution will count every value (see :func:`spans`).
    """
    count = len(pairs) // 2
    np = _numpy() if count >= NUMPY_FROM else None
    if isinstance(pairs, array):
        if np is not None:
            readings = np.frombuffer(pairs, np.int64, 2 * count)
            if _fits(int(readings.min()), int(readings.max())):  # else differences may wrap
                readings = readings.reshape(count, 2)
                return spans(readings[:, 0], readings[:, 1], window)
        pairs = pairs.tolist()  # Python's own ints, exact (and faster than an array's)
    elif np is not None and _fits(min(pairs[0], pairs[-1]), max(pairs[0], pairs[-1])):
        readings = np.fromiter(pairs, np.int64, 2 * count).reshape(count, 2)
        return spans(readings[:, 0], readings[:, 1], window)
    return spans(pairs[0 : 2 * count : 2], pairs[1 : 2 * count : 2], window, ordered=ordered)


def numpy_columns(flat: array[int], width: int) -> Any:
    """The columns of a flat int64 run of ``width``-value records as NumPy views, or None.

    None when NumPy is not loaded or the run is too short to gain from it;
    the views share ``flat``'s memory (which must then not be resized).
    """
    np = _numpy() if len(flat) >= NUMPY_FROM * width else None
    if np is None:
        return None
    return np.frombuffer(flat, np.int64).reshape(-1, width).T


def spans(starts: Any, ends: Any, window: int, *, ordered: bool = False) -> Batch:
    """Fold ``ends[i] - starts[i]`` (stamped with ``ends``): NumPy columns or int sequences.

    ``ordered``: a distribution will count every value, which sorts them; the
    values of int sequences are then sorted here, once, and the smallest and
    largest read off the ends (in pure Python, ``min`` and ``max`` cost over
    half as much as the sort).
    """
    if not isinstance(starts, Sequence):  # NumPy columns from numpy_columns()
        return _column_batch(ends - starts, window, ends[-window:].tolist())
    values = list(map(operator.sub, ends, starts))
    recent = values[-window:]
    if ordered:
        values.sort()
        low, high = values[0], values[-1]
    else:
        low, high = min(values), max(values)
    return Batch(
        len(values), sum(values), low, high, recent, ends[-window:], lambda: values, ordered
    )


def samples(values: Any, window: int) -> Batch:
    """Fold plain samples (no timestamps): a NumPy column or an int sequence."""
    if not isinstance(values, Sequence):
        return _column_batch(values, window, ())
    return Batch(
        len(values), sum(values), min(values), max(values), values[-window:], (), lambda: values
    )


def _column_batch(values: Any, window: int, stamps: Sequence[int]) -> Batch:
    """The Batch of a NumPy int64 column (its aggregates computed in C)."""
    return Batch(
        len(values),
        int(values.sum()),
        int(values.min()),
        int(values.max()),
        values[-window:].tolist(),
        stamps,
        lambda: values,  # histograms count a NumPy array in C
    )
