"""CloudWatch ``MetricDatum`` dicts from timer statistics: pure functions, no network."""

from __future__ import annotations

import datetime
import math
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

__all__ = [
    "MAX_VALUES",
    "base_datum",
    "check_name",
    "cw_dimensions",
    "statistic_values",
    "timer_datum",
    "value_datum",
    "values_and_counts",
]

#: The most distinct values one datum may carry (PutMetricData ``Values``).
MAX_VALUES = 150
#: The most dimensions one metric may have.
MAX_DIMENSIONS = 30


class TimerLike(Protocol):
    """What a datum is built from: a TimerSnapshot, or any framescope timer."""

    def len(self) -> int: ...
    def sum(self) -> float: ...
    def min(self) -> float: ...
    def max(self) -> float: ...


def check_name(value: object, name: str, limit: int = 255) -> str:
    """A non-empty string of at most ``limit`` characters, or a clear error naming ``name``."""
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a str, got {type(value).__name__}")
    if not value or len(value) > limit:
        raise ValueError(f"{name} must be 1 to {limit} characters, got {value!r}")
    return value


def cw_dimensions(dimensions: Mapping[str, str] | None) -> list[dict[str, str]]:
    """``{"Device": "cam-1"}`` -> ``[{"Name": "Device", "Value": "cam-1"}]``, validated."""
    if dimensions is None:
        return []
    if not isinstance(dimensions, Mapping):
        raise TypeError(
            f"dimensions must be a mapping of names to values, got {type(dimensions).__name__}"
        )
    if len(dimensions) > MAX_DIMENSIONS:
        raise ValueError(
            f"dimensions: CloudWatch allows at most {MAX_DIMENSIONS}, got {len(dimensions)}"
        )
    return [
        {
            "Name": check_name(key, "dimensions name"),
            "Value": check_name(value, f"dimensions[{key!r}]", 1024),
        }
        for key, value in dimensions.items()
    ]


def _utc(timestamp: datetime.datetime) -> datetime.datetime:
    if not isinstance(timestamp, datetime.datetime):
        raise TypeError(f"timestamp must be a datetime, got {type(timestamp).__name__}")
    # A naive timestamp is taken as local time, as datetime.astimezone does.
    return timestamp.astimezone(datetime.timezone.utc)


def statistic_values(timer: TimerLike) -> dict[str, float]:
    """The ``StatisticValues`` of a timer: SampleCount, Sum, Minimum, Maximum."""
    return {
        "SampleCount": float(timer.len()),
        "Sum": timer.sum(),
        "Minimum": timer.min(),
        "Maximum": timer.max(),
    }


def values_and_counts(
    samples: Sequence[float],
    count: int,
    *,
    minimum: float | None = None,
    maximum: float | None = None,
    max_values: int = MAX_VALUES,
) -> tuple[list[float], list[float]]:
    """Describe ``count`` samples by at most ``max_values`` (value, count) pairs.

    ``samples`` are the kept samples (the most recent ones when more were
    taken). The exact minimum and maximum get a pair each; the rest, in sorted
    order, are split into equal-count groups, each represented by its mean, so
    the sum is kept. When ``count`` exceeds the kept samples the counts are
    scaled up so that they total ``count``; CloudWatch can then estimate
    percentiles from the pairs.
    """
    ordered = sorted(samples)
    if not ordered or count <= 0:
        return [], []
    low = ordered[0] if minimum is None else minimum
    high = ordered[-1] if maximum is None else maximum
    inner = ordered[1:-1] if len(ordered) > 2 else []
    values: list[float] = [low]
    counts: list[float] = [1.0]
    groups = max_values - 2
    if inner:
        size = math.ceil(len(inner) / groups)
        for start in range(0, len(inner), size):
            group = inner[start : start + size]
            values.append(sum(group) / len(group))
            counts.append(float(len(group)))
    if len(ordered) > 1:
        values.append(high)
        counts.append(1.0)
    kept = sum(counts)
    if count > kept:
        if len(counts) > 2:
            # The exact extremes stay single; the inner groups stand for the rest.
            scale = (count - 2) / (kept - 2)
            counts[1:-1] = [c * scale for c in counts[1:-1]]
        else:
            counts = [c * count / kept for c in counts]
    return values, counts


def base_datum(
    metric_name: str,
    dimensions: list[dict[str, str]],
    timestamp: datetime.datetime,
    unit: str,
    high_resolution: bool,
) -> dict[str, Any]:
    """The fields every datum has: name, dimensions, UTC timestamp, unit (and resolution)."""
    datum: dict[str, Any] = {
        "MetricName": metric_name,
        "Dimensions": dimensions,
        "Timestamp": _utc(timestamp),
        "Unit": unit,
    }
    if high_resolution:
        datum["StorageResolution"] = 1
    return datum


def timer_datum(
    metric_name: str,
    dimensions: list[dict[str, str]],
    timestamp: datetime.datetime,
    timer: TimerLike,
    *,
    unit: str = "Seconds",
    high_resolution: bool = False,
    percentiles: bool = False,
) -> dict[str, Any] | None:
    """One datum describing a timer's samples; None when it has none.

    By default it carries ``StatisticValues``. With ``percentiles=True`` it
    carries ``Values``/``Counts`` instead (see :func:`values_and_counts`), so
    that CloudWatch can also answer p50/p90/p99 queries.
    """
    count = timer.len()
    if not count:
        return None
    datum = base_datum(metric_name, dimensions, timestamp, unit, high_resolution)
    intervals = getattr(timer, "intervals", None)
    if percentiles and intervals:
        values, counts = values_and_counts(
            intervals, count, minimum=timer.min(), maximum=timer.max()
        )
        datum["Values"] = values
        datum["Counts"] = counts
    else:
        datum["StatisticValues"] = statistic_values(timer)
    return datum


def value_datum(
    metric_name: str,
    dimensions: list[dict[str, str]],
    timestamp: datetime.datetime,
    value: float,
    *,
    unit: str,
    high_resolution: bool = False,
) -> dict[str, Any]:
    """A datum with one plain value (a gauge reading or a count)."""
    datum = base_datum(metric_name, dimensions, timestamp, unit, high_resolution)
    datum["Value"] = float(value)
    return datum
