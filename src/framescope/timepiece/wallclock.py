"""Wall-clock helpers: timezone-aware local time."""

from __future__ import annotations

import datetime

__all__ = ["local_dt", "local_now", "panorama_timestamp_to_datetime"]


def local_now() -> datetime.datetime:
    """Return the current time as a timezone-aware datetime in the local time zone."""
    return datetime.datetime.now().astimezone()


def local_dt(dt: datetime.datetime) -> datetime.datetime:
    """Return ``dt`` as an aware datetime in the local time zone.

    A naive ``dt`` is taken to be local time already (it gains the local zone);
    an aware one is converted to the local zone.
    """
    if not isinstance(dt, datetime.datetime):
        raise TypeError(f"dt must be a datetime.datetime, got {type(dt).__name__}")
    return dt.astimezone()


def panorama_timestamp_to_datetime(panorama_ts: tuple[int, int]) -> datetime.datetime:
    """Convert a Panorama media timestamp ``(seconds, microseconds)`` to an aware UTC datetime."""
    try:
        seconds, micros = panorama_ts
    except (TypeError, ValueError):
        raise TypeError(
            f"panorama_ts must be a (seconds, microseconds) pair, got {panorama_ts!r}"
        ) from None
    return datetime.datetime.fromtimestamp(seconds, datetime.timezone.utc) + datetime.timedelta(
        microseconds=micros
    )
