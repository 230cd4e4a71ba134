"""Argument checks shared by framescope's public constructors."""

from __future__ import annotations

import math

__all__ = ["check_int_at_least", "check_positive_int", "check_positive_seconds"]


def check_positive_int(value: object, name: str) -> int:
    """Return ``value`` if it is an int >= 1, else raise a clear TypeError/ValueError."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be a positive int, got {type(value).__name__}")
    if value < 1:
        raise ValueError(f"{name} must be >= 1, got {value}")
    return value


def check_int_at_least(value: object, name: str, minimum: int, *, or_none: bool = False) -> None:
    """Raise ValueError unless ``value`` is an int >= ``minimum`` (0 or 1), or None if allowed.

    The message reads "``name`` must be a positive integer" (minimum 1) or "a
    non-negative integer" (minimum 0), with "or None" when None is allowed.
    """
    if or_none and value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        kind = "positive" if minimum == 1 else "non-negative"
        allowed = " or None" if or_none else ""
        raise ValueError(f"{name} must be a {kind} integer{allowed}, got {value!r}")


def check_positive_seconds(value: object, name: str) -> float:
    """Return ``value`` as a float if it is a finite number > 0, else raise a clear ValueError."""
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not (value > 0 and math.isfinite(value))
    ):
        raise ValueError(f"{name} must be a positive number of seconds, got {value!r}")
    return float(value)
