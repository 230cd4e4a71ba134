"""Reading snapshots back from JSON data: one error type, naming the field that was wrong.

A snapshot read from another box (``PipelineSnapshot.from_dict``,
``StatsSnapshot.from_dict``, ...) is checked field by field; whatever is
wrong with it is a :class:`SnapshotFormatError` whose message starts with the
field's path (``stages[2].latency.count: expected a non-negative integer, got
int -1``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

__all__ = [
    "MAX_INT",
    "Fields",
    "SnapshotFormatError",
    "check_field_number",
    "check_integer",
    "shown",
]

MAX_INT = 2**63 - 1
"""The largest integer a snapshot field may hold (a 64-bit counter or nanosecond stamp)."""

_MISSING: Any = object()


class SnapshotFormatError(ValueError):
    """Data (e.g. another box's JSON) that is not a snapshot; the message names the field."""


def shown(value: Any) -> str:
    """A value for an error message: its type, and a short repr."""
    text = repr(value)
    return f"{type(value).__name__} {text if len(text) <= 40 else text[:37] + '...'}"


class Fields:
    """The fields of one JSON object, each read with a check; errors name the field's path."""

    __slots__ = ("data", "path")

    def __init__(self, data: Any, path: str) -> None:
        if not isinstance(data, Mapping):
            raise SnapshotFormatError(f"{path or 'data'}: expected an object, got {shown(data)}")
        self.data: Mapping[str, Any] = data
        self.path = path

    def at(self, key: str | int) -> str:
        """The path of field ``key`` (an index for a list's item)."""
        if isinstance(key, int):
            return f"{self.path}[{key}]"
        return f"{self.path}.{key}" if self.path else key

    def fail(self, key: str | int, expected: str, value: Any) -> SnapshotFormatError:
        """The error for field ``key``: what it should be, and what it was."""
        return SnapshotFormatError(f"{self.at(key)}: expected {expected}, got {shown(value)}")

    def get(self, key: str, default: Any) -> Any:
        """The raw value of ``key`` (``default`` when absent; a required field has none)."""
        value = self.data.get(key, default)
        if value is _MISSING:
            raise SnapshotFormatError(f"{self.at(key)}: missing")
        return value

    def integer(
        self, key: str, default: Any = _MISSING, *, minimum: int = 0, or_none: bool = False
    ) -> Any:
        """An int in ``minimum..MAX_INT`` (None too, when ``or_none``)."""
        value = self.get(key, default)
        if value is None and or_none:
            return None
        return check_integer(value, self.at(key), minimum)

    def number(
        self, key: str, default: Any = _MISSING, *, positive: bool = False, or_none: bool = False
    ) -> Any:
        """A finite number, as a float (> 0 when ``positive``; None too, when ``or_none``)."""
        value = self.get(key, default)
        if value is None and or_none:
            return None
        return check_field_number(value, self.at(key), positive=positive)

    def text(self, key: str, default: Any = _MISSING, *, or_none: bool = False) -> Any:
        """A string (None too, when ``or_none``)."""
        value = self.get(key, default)
        if value is None and or_none:
            return None
        if not isinstance(value, str):
            raise self.fail(key, "a string" + (" or null" if or_none else ""), value)
        return value

    def boolean(self, key: str, default: Any = _MISSING) -> bool:
        """A bool."""
        value = self.get(key, default)
        if not isinstance(value, bool):
            raise self.fail(key, "true or false", value)
        return value

    def items(self, key: str, default: Any = _MISSING) -> list[Any]:
        """A list (JSON array)."""
        value = self.get(key, default)
        if not isinstance(value, (list, tuple)):
            raise self.fail(key, "a list", value)
        return list(value)

    def child(self, key: str, default: Any = _MISSING) -> Fields:
        """The nested object ``key``."""
        return Fields(self.get(key, default), self.at(key))


def check_integer(value: Any, path: str, minimum: int = 0) -> int:
    """``value`` if it is an int in ``minimum..MAX_INT``; else the error naming ``path``."""
    kind = "a non-negative integer" if minimum == 0 else f"an integer >= {minimum}"
    if isinstance(value, bool) or not isinstance(value, int):
        raise SnapshotFormatError(f"{path}: expected {kind}, got {shown(value)}")
    if not minimum <= value <= MAX_INT:
        raise SnapshotFormatError(f"{path}: expected {kind} up to 2**63-1, got {shown(value)}")
    return value


def check_field_number(value: Any, path: str, *, positive: bool = False) -> float:
    """``value`` as a float if it is a finite number (> 0 when ``positive``); else the error."""
    kind = "a finite number" + (" > 0" if positive else "")
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise SnapshotFormatError(f"{path}: expected {kind}, got {shown(value)}")
    if isinstance(value, int) and abs(value) > 2**64:
        raise SnapshotFormatError(f"{path}: expected {kind} up to 2**64, got {shown(value)}")
    number = float(value)
    if not math.isfinite(number) or (positive and number <= 0):
        raise SnapshotFormatError(f"{path}: expected {kind}, got {shown(value)}")
    return number
