"""Buffers: the lock-free hand-over between two threads, and the bytes an item holds."""

from __future__ import annotations

from array import array
from typing import Any, TypeVar

__all__ = ["SCALARS", "held_bytes", "take_prefix"]

_Buffer = TypeVar("_Buffer", "list[Any]", "array[int]")

_CONTAINERS = (dict, list, tuple)
SCALARS = frozenset((int, float, str, bool, type(None)))
"""Types that hold no buffer: :func:`held_bytes` is 0 for them without a look."""
_LOOK_INSIDE = 2  # levels of dicts/lists/tuples looked into (an item, and one level of nesting)
_MAX_ENTRIES = 64  # entries looked at per container: a cheap look, never a deep walk


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


def _buffer_bytes(obj: Any, seen: set[int]) -> int:
    """The bytes of one buffer (numpy array, bytes, memoryview; a view: its base); 0 if none."""
    kind = type(obj)
    if kind is bytes or kind is bytearray:
        size = len(obj)
    else:
        nbytes = getattr(obj, "nbytes", None)
        if type(nbytes) is not int:
            return 0
        # A view keeps its whole base alive: count the outermost array it views
        # (or the view, when it is larger: a broadcast view counts as if copied).
        size = nbytes
        base = getattr(obj, "base", None)
        while base is not None and type(getattr(base, "nbytes", None)) is int:
            obj, size = base, max(size, base.nbytes)
            base = getattr(obj, "base", None)
    if id(obj) in seen:
        return 0
    seen.add(id(obj))
    return int(size)


def _bytes_of(obj: Any, depth: int, seen: set[int]) -> int:
    if isinstance(obj, _CONTAINERS):
        if depth >= _LOOK_INSIDE:
            return 0
        values = obj.values() if isinstance(obj, dict) else obj
        total = 0
        for index, value in enumerate(values):
            if index >= _MAX_ENTRIES:
                break
            total += _bytes_of(value, depth + 1, seen)
        return total
    size = _buffer_bytes(obj, seen)
    if size or obj is None or isinstance(obj, (int, float, str)):
        return size
    image = getattr(obj, "image", None)  # framescope.video.Frame and frame-like objects
    return 0 if image is None else _buffer_bytes(image, seen)


def held_bytes(obj: Any) -> int:
    """Bytes of the array buffers ``obj`` holds, counted cheaply (a lower bound).

    Counts numpy arrays (a view counts the array it views), ``bytes``,
    ``bytearray`` and ``memoryview`` objects, the ``image`` of a
    ``framescope.video.Frame`` (or any object with an array ``image``), and
    those found in the values of a dict, list or tuple, one level of nesting
    deep and the first 64 entries of each. Other objects count 0: nothing is
    walked deeply, so this costs a few attribute reads per item.
    """
    if type(obj) in SCALARS:
        return 0
    return _bytes_of(obj, 0, set())
