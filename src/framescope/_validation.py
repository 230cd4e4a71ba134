"""Argument checks shared by framescope's public constructors."""

from __future__ import annotations

__all__ = ["check_positive_int"]


def check_positive_int(value: object, name: str) -> int:
    """Return ``value`` if it is an int >= 1, else raise a clear TypeError/ValueError."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be a positive int, got {type(value).__name__}")
    if value < 1:
        raise ValueError(f"{name} must be >= 1, got {value}")
    return value
