"""Items to and from a worker process: pickled, their array buffers through shared memory.

An item is pickled with protocol 5, which hands the buffers of contiguous
NumPy arrays (frames) out of band instead of copying them into the pickle.
Those buffers are copied into a shared-memory block that both processes have
mapped, and only the small pickle and the buffers' places cross the pipe. A
buffer too large for the block, or items with only small buffers, travel
inline through the pipe instead. The reader copies each buffer out (so the
writer can reuse its block at once, and the arrays it gets are its own and
writable).
"""

from __future__ import annotations

import contextlib
import pickle
from collections.abc import Callable
from multiprocessing import shared_memory
from typing import Any

__all__ = ["SHARED_MIN_BYTES", "Layout", "SharedBlock", "pack", "unpack"]

SHARED_MIN_BYTES = 64 * 1024
"""Buffers that add up to less than this go inline: a pipe write is cheaper than the copies."""

_ALIGN = 64

Layout = tuple[str, list[Any]] | None
"""Where an item's buffers are: None (no buffers), ``("inline", [bytes, ...])``, or
``("shared", [(offset, size), ...])`` in the block named in the message."""


class SharedBlock:
    """A shared-memory block this process owns, grown as items need (then unlinked)."""

    def __init__(self) -> None:
        self._block: shared_memory.SharedMemory | None = None

    @property
    def name(self) -> str | None:
        """The block's name (None before the first one was made)."""
        return None if self._block is None else self._block.name

    @property
    def size(self) -> int:
        """Its size in bytes (0 before the first one was made)."""
        return 0 if self._block is None else self._block.size

    @property
    def buffer(self) -> memoryview | None:
        """A view of the whole block (None before the first one was made)."""
        return None if self._block is None else self._block.buf

    def room(self, size: int) -> memoryview | None:
        """A view of at least ``size`` bytes, making a larger block when needed."""
        if self._block is None or self._block.size < size:
            self.close()
            self._block = shared_memory.SharedMemory(create=True, size=max(size, 1))
        return self._block.buf

    def close(self) -> None:
        """Unlink the block (a process still mapping it keeps its mapping)."""
        block, self._block = self._block, None
        if block is None:
            return
        with contextlib.suppress(OSError, BufferError):
            block.close()
        with contextlib.suppress(OSError):
            block.unlink()


def pack(obj: Any, room: Callable[[int], memoryview | None]) -> tuple[bytes, Layout, int]:
    """Pickle ``obj``; its large buffers go into ``room(total)`` when it gives a view.

    Returns the pickle, the layout of its buffers and their total size in bytes.
    """
    buffers: list[pickle.PickleBuffer] = []
    payload = pickle.dumps(obj, protocol=5, buffer_callback=buffers.append)
    if not buffers:
        return payload, None, 0
    raws = [buffer.raw() for buffer in buffers]
    places, offset = [], 0
    for raw in raws:
        places.append((offset, raw.nbytes))
        offset += -(-raw.nbytes // _ALIGN) * _ALIGN
    total = offset
    target = room(total) if total >= SHARED_MIN_BYTES else None
    if target is None or len(target) < total:
        return payload, ("inline", [raw.tobytes() for raw in raws]), total
    for raw, (start, size) in zip(raws, places, strict=True):
        target[start : start + size] = raw
    return payload, ("shared", places), total


def unpack(payload: bytes, layout: Layout, block: memoryview | None) -> Any:
    """Rebuild an item :func:`pack` made; ``block``: the shared block a shared layout is in."""
    if layout is None:
        return pickle.loads(payload)
    kind, parts = layout
    if kind == "inline":
        return pickle.loads(payload, buffers=[bytearray(part) for part in parts])
    if block is None:
        raise ValueError("an item's buffers are in shared memory, but no block was given")
    buffers = [bytearray(block[start : start + size]) for start, size in parts]
    return pickle.loads(payload, buffers=buffers)
