"""The lock-free hand-over between one thread that appends and one that drains."""

from __future__ import annotations

from typing import TypeVar

__all__ = ["take_prefix"]

_T = TypeVar("_T")


def take_prefix(buffer: list[_T], n: int | None = None) -> list[_T]:
    """Remove and return the first ``n`` items (default: all there are now).

    Slicing then deleting the same prefix keeps anything the appending thread
    adds meanwhile: those items land after index ``n`` and stay for next time.
    """
    if n is None:
        n = len(buffer)
    if not n:
        return []
    taken = buffer[:n]
    del buffer[:n]
    return taken
