"""The lock-free hand-over between one thread that appends and one that drains."""

from __future__ import annotations

from array import array
from typing import Any, TypeVar

__all__ = ["take_prefix"]

_Buffer = TypeVar("_Buffer", "list[Any]", "array[int]")


def take_prefix(buffer: _Buffer, n: int | None = None) -> _Buffer:
    """Remove and return the first ``n`` items (default: all there are now).

    Slicing then deleting the same prefix keeps anything the appending thread
    adds meanwhile: those items land after index ``n`` and stay for next time.
    """
    if n is None:
        n = len(buffer)
    if not n:
        return buffer[:0]
    taken = buffer[:n]
    del buffer[:n]
    return taken
