"""Argument checks shared by framescope's public constructors and methods.

One family for every check: a wrong type raises TypeError, a wrong value
ValueError, and the message names the argument and what is allowed.
"""

from __future__ import annotations

import math

__all__ = [
    "check_int_at_least",
    "check_number",
    "check_positive_int",
    "check_positive_seconds",
    "check_seconds_or_none",
]


def _is_number(value: object) -> bool:
    return not isinstance(value, bool) and isinstance(value, (int, float))


def _kind(minimum: int) -> str:
    return {1: "a positive integer", 0: "a non-negative integer"}.get(minimum, "an integer")


def check_int_at_least(
    value: object, name: str, minimum: int = 1, *, or_none: bool = False
) -> int | None:
    """Return ``value`` if it is an int >= ``minimum`` (or None, when allowed); else raise.

    TypeError: "``name`` must be a positive integer, got float"; ValueError:
    "``name`` must be a positive integer (>= 1), got 0" ("non-negative" for
    a minimum of 0; "or None" is added when None is allowed).
    """
    if or_none and value is None:
        return None
    allowed = " or None" if or_none else ""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be {_kind(minimum)}{allowed}, got {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{name} must be {_kind(minimum)} (>= {minimum}){allowed}, got {value!r}")
    return value


def check_positive_int(value: object, name: str) -> int:
    """Return ``value`` if it is an int >= 1, else raise a clear TypeError/ValueError."""
    checked = check_int_at_least(value, name, 1)
    assert checked is not None
    return checked


def check_number(
    value: object, name: str, *, low: float | None = None, high: float | None = None
) -> float:
    """Return ``value`` as a float if it is a finite number within [``low``, ``high``]."""
    if not _is_number(value):
        raise TypeError(f"{name} must be a number, got {type(value).__name__}")
    number = float(value)  # type: ignore[arg-type]
    if (
        not math.isfinite(number)
        or (low is not None and number < low)
        or (high is not None and number > high)
    ):
        bounds = (
            f" between {low:g} and {high:g}"
            if low is not None and high is not None
            else f" >= {low:g}"
            if low is not None
            else f" <= {high:g}"
            if high is not None
            else ""
        )
        raise ValueError(f"{name} must be a finite number{bounds}, got {value!r}")
    return number


def check_positive_seconds(value: object, name: str) -> float:
    """Return ``value`` as a float if it is a finite number of seconds > 0, else raise."""
    if not _is_number(value):
        raise TypeError(f"{name} must be a number of seconds, got {type(value).__name__}")
    if not (value > 0 and math.isfinite(value)):  # type: ignore[operator,arg-type]
        raise ValueError(f"{name} must be a positive number of seconds, got {value!r}")
    return float(value)  # type: ignore[arg-type]


def check_seconds_or_none(value: object, name: str) -> float | None:
    """Return ``value`` as a float if it is a number of seconds >= 0, or None; else raise."""
    if value is None:
        return None
    if not _is_number(value):
        raise TypeError(f"{name} must be a number of seconds or None, got {value!r}")
    if not value >= 0 or math.isnan(value):  # type: ignore[operator,arg-type]
        raise ValueError(f"{name} must be >= 0 (seconds) or None, got {value!r}")
    return float(value)  # type: ignore[arg-type]
