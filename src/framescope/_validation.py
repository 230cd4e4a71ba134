"""Argument checks shared by framescope's public constructors and methods.

One family for every check: a wrong type raises TypeError, a wrong value
ValueError, and the message names the argument and what is allowed.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Mapping
from numbers import Real
from typing import TypeVar

__all__ = [
    "MAX_SECONDS",
    "check_bool",
    "check_callable_or_none",
    "check_int_at_least",
    "check_int_between",
    "check_number",
    "check_positive_int",
    "check_positive_seconds",
    "check_seconds_or_none",
    "check_str_mapping",
]


# The longest wait the standard library's locks and events accept: a longer
# timeout would raise OverflowError from deep inside the wait.
MAX_SECONDS = float(threading.TIMEOUT_MAX)


_C = TypeVar("_C")


def _is_number(value: object) -> bool:
    kind = type(value)
    if kind is int or kind is float:  # the common case, without the slow ABC check
        return True
    return not isinstance(value, bool) and isinstance(value, Real)


def _kind(minimum: int) -> str:
    return {1: "a positive integer", 0: "a non-negative integer"}.get(minimum, "an integer")


def check_int_at_least(
    value: object,
    name: str,
    minimum: int = 1,
    *,
    or_none: bool = False,
    maximum: int | None = None,
) -> int | None:
    """Return ``value`` if it is an int >= ``minimum`` (or None, when allowed); else raise.

    TypeError: "``name`` must be a positive integer, got float"; ValueError:
    "``name`` must be a positive integer (>= 1), got 0" ("non-negative" for
    a minimum of 0; "or None" is added when None is allowed). ``maximum``,
    when given, is an inclusive upper bound (ValueError above it).
    """
    if or_none and value is None:
        return None
    allowed = " or None" if or_none else ""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be {_kind(minimum)}{allowed}, got {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{name} must be {_kind(minimum)} (>= {minimum}){allowed}, got {value!r}")
    if maximum is not None and value > maximum:
        raise ValueError(f"{name} must be at most {maximum:_}, got {value!r}")
    return value


def check_positive_int(value: object, name: str, *, maximum: int | None = None) -> int:
    """Return ``value`` if it is an int >= 1 (<= ``maximum``, if given); else raise."""
    checked = check_int_at_least(value, name, 1, maximum=maximum)
    assert checked is not None
    return checked


def as_float(value: object, name: str) -> float:
    """``value`` (an int or float) as a float; an int too large for one is a ValueError."""
    try:
        return float(value)  # type: ignore[arg-type]
    except OverflowError:
        bits = value.bit_length() if isinstance(value, int) else "many"
        raise ValueError(f"{name} is too large a number: an int of {bits} bits") from None


def check_number(
    value: object,
    name: str,
    *,
    low: float | None = None,
    high: float | None = None,
    positive: bool = False,
) -> float:
    """Return ``value`` as a float if it is a finite real number in range; else raise.

    ``positive``: it must be > 0; ``low``/``high``: inclusive bounds. The
    message says what is allowed: "a positive number", "a number between 0
    and 1", "a number >= 0", or "a real number" (finite) without bounds.
    """
    if positive:
        allowed = "a positive number"
    elif low is not None and high is not None:
        allowed = f"a number between {low:g} and {high:g}"
    elif low is not None:
        allowed = f"a number >= {low:g}"
    elif high is not None:
        allowed = f"a number <= {high:g}"
    else:
        allowed = "a real number"
    if not _is_number(value):
        raise TypeError(f"{name} must be {allowed}, got {type(value).__name__}")
    number = as_float(value, name)
    if not math.isfinite(number):
        raise ValueError(f"{name} must be a finite number, got {number!r}")
    if (
        (positive and not number > 0)
        or (low is not None and number < low)
        or (high is not None and number > high)
    ):
        raise ValueError(f"{name} must be {allowed}, got {value!r}")
    return number


def check_int_between(value: object, name: str, low: int, high: int) -> int:
    """Return ``value`` if it is an int in [``low``, ``high``], else raise TypeError/ValueError."""
    allowed = f"an integer between {low} and {high}"
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be {allowed}, got {type(value).__name__}")
    if not low <= value <= high:
        raise ValueError(f"{name} must be {allowed}, got {value!r}")
    return value


def check_positive_seconds(value: object, name: str) -> float:
    """Return ``value`` as a float if it is a finite number of seconds > 0, else raise."""
    if not _is_number(value):
        raise TypeError(f"{name} must be a number of seconds, got {type(value).__name__}")
    seconds = as_float(value, name)
    if not (seconds > 0 and math.isfinite(seconds)):
        raise ValueError(f"{name} must be a positive number of seconds (finite), got {value!r}")
    return _at_most_max(seconds, name)


def _at_most_max(seconds: float, name: str) -> float:
    if seconds > MAX_SECONDS:
        raise ValueError(
            f"{name} must be at most {MAX_SECONDS:g} seconds (threading.TIMEOUT_MAX), "
            f"got {seconds!r}"
        )
    return seconds


def check_seconds_or_none(value: object, name: str) -> float | None:
    """Return ``value`` as a float if it is a finite number of seconds >= 0, or None; else raise.

    None means no limit; infinity is refused (say None), as are NaN and negatives.
    """
    if value is None:
        return None
    if not _is_number(value):
        raise TypeError(f"{name} must be a number of seconds or None, got {value!r}")
    seconds = as_float(value, name)
    if not (seconds >= 0 and math.isfinite(seconds)):
        raise ValueError(
            f"{name} must be >= 0 (seconds) and finite, or None for no limit, got {value!r}"
        )
    return _at_most_max(seconds, name)


def check_bool(value: object, name: str, *, or_none: bool = False) -> bool | None:
    """Return ``value`` as a bool (or None, when allowed); else raise TypeError.

    True, False, and the integers 1 and 0 that older code passes for them;
    anything else is refused: a string such as ``"no"`` would otherwise count
    as true.
    """
    if or_none and value is None:
        return None
    if isinstance(value, bool):
        return value
    if type(value) is int and value in (0, 1):
        return bool(value)
    allowed = "True, False or None" if or_none else "True or False"
    raise TypeError(f"{name} must be {allowed}, got {type(value).__name__}")


def check_str_mapping(value: object, name: str) -> dict[str, str]:
    """Return a dict of str keys and str values from a mapping (or None: empty); else raise.

    Keys must be str; values may be str, int or float (written as text).
    """
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise TypeError(
            f"{name} must be a dict of str keys to str values, got {type(value).__name__}"
        )
    checked: dict[str, str] = {}
    for key, item in value.items():
        if not isinstance(key, str):
            raise TypeError(f"{name} keys must be str, got {type(key).__name__} ({key!r})")
        if isinstance(item, bool) or not isinstance(item, (str, int, float)):
            raise TypeError(
                f"{name}[{key!r}] must be a str (or a number), got {type(item).__name__}"
            )
        checked[key] = str(item)
    return checked


def check_callable_or_none(value: _C | None, name: str) -> _C | None:
    """Return ``value`` if it is callable or None, else raise TypeError naming ``name``."""
    if value is not None and not callable(value):
        raise TypeError(f"{name} must be a callable or None, got {type(value).__name__}")
    return value
