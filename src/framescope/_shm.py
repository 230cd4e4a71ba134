"""Shared-memory blocks between a process and its child: the one transport under frames and items.

One process (the parent) makes a block, names it, writes bytes into it and
unlinks it when it is done (:class:`OwnedBlock`); the child attaches to it
by name and reads (:class:`AttachedBlocks`), never taking ownership, so a
child that ends, crashes or is killed takes no block with it and leaves none
behind: the parent unlinks every block it made when it closes it, and the
standard library's resource tracker unlinks what a parent that crashed left.

Both transports to a child stand on this module: SpyGlass's encoder process
(``video/frame_slots``: a ring of fixed-size frame slots, reused) and the
process replicas (``pipeline/shared_items``: one block a direction, replaced
by a larger one when an item needs it). Memory stays bounded because an
owner holds a fixed set of blocks, and a replaced block is unlinked before
its successor is made.

Blocks are named ``fs<pid in hex>_<random>``, so :func:`blocks_alive` can list
those one process made that still exist.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Collection, Iterable
from typing import TYPE_CHECKING, Any

from framescope._validation import check_int_at_least, check_positive_int

if TYPE_CHECKING:
    from multiprocessing import shared_memory

__all__ = [
    "AttachedBlocks",
    "OwnedBlock",
    "attach_untracked",
    "block_prefix",
    "blocks_alive",
    "put",
    "take",
]

SHM_FOLDER = "/dev/shm"
"""Where POSIX shared memory shows as files (Linux); elsewhere blocks cannot be listed."""

_NAME_TRIES = 100


def block_prefix(pid: int | None = None) -> str:
    """How the names of the blocks process ``pid`` (default: this one) made begin."""
    return f"fs{os.getpid() if pid is None else pid:x}_"


def blocks_alive(pid: int | None = None) -> list[str]:
    """The names of the blocks process ``pid`` (default: this one) made that still exist.

    Read from ``/dev/shm``; where there is none, an empty list.
    """
    prefix = block_prefix(pid)
    try:
        return sorted(name for name in os.listdir(SHM_FOLDER) if name.startswith(prefix))
    except OSError:
        return []


def _create(size: int) -> shared_memory.SharedMemory:
    from multiprocessing import shared_memory  # noqa: PLC0415 - loaded on first use (cold start)

    # 14 characters at most ("fs", a pid in hex up to 7, "_", 4): the limit on some BSDs
    for _ in range(_NAME_TRIES):
        name = block_prefix() + secrets.token_hex(2)
        with contextlib.suppress(FileExistsError):
            return shared_memory.SharedMemory(name=name, create=True, size=size)
    raise FileExistsError(f"no free shared-memory name after {_NAME_TRIES} tries")


def _check_offset(offset: int) -> None:
    """Refuse an ``offset`` that is not a non-negative int (the usual one checked cheaply)."""
    if type(offset) is not int or offset < 0:  # per item: the full check only when it may fail
        check_int_at_least(offset, "offset", 0)


def _check_span(offset: int, size: int, room: int) -> None:
    """Refuse a span of ``size`` bytes at ``offset`` that does not lie in ``room`` bytes."""
    _check_offset(offset)
    if type(size) is not int or size < 0:
        check_int_at_least(size, "size", 0)
    if offset + size > room:
        raise ValueError(
            f"offset + size must be at most the block's {room:_} bytes, got {offset:_} + {size:_}"
        )


def put(target: memoryview, data: Any, offset: int = 0) -> int:
    """Copy the bytes of ``data`` (any buffer: bytes, a NumPy array) into ``target`` at ``offset``.

    Returns how many bytes were copied. A ``data`` that does not fit is a
    ValueError naming it; one that is not a buffer a TypeError.
    """
    try:
        source = memoryview(data)
    except TypeError:
        raise TypeError(
            f"data must support the buffer protocol, got {type(data).__name__}"
        ) from None
    if not source.c_contiguous:  # a strided view: its bytes in C order, copied once more
        source = memoryview(source.tobytes())
    if source.ndim != 1 or source.format != "B":
        source = source.cast("B")
    size = source.nbytes
    _check_offset(offset)
    if offset + size > len(target):
        raise ValueError(
            f"data must fit the block: {size:_} bytes at offset {offset:_}, "
            f"the block has {len(target):_}"
        )
    target[offset : offset + size] = source
    return size


def take(source: memoryview, offset: int, size: int) -> bytearray:
    """A copy of ``size`` bytes of ``source`` at ``offset`` (the reader's own, writable)."""
    _check_span(offset, size, len(source))
    return bytearray(source[offset : offset + size])


class OwnedBlock:
    """A shared-memory block this process made and unlinks (:meth:`close`).

    Args:
        size: its size in bytes (a positive integer).

    A child attaches to it by :attr:`name` (:class:`AttachedBlocks`). OSError
    where the system has no shared memory.
    """

    def __init__(self, size: int) -> None:
        self._block = _create(check_positive_int(size, "size"))
        self.name: str = self._block.name
        """The name a child attaches to it by."""
        self.size: int = size
        """Its size in bytes."""
        self.closed = False

    @property
    def view(self) -> memoryview:
        """The whole block, writable; ValueError once it was closed."""
        view = self._block.buf
        if self.closed or view is None:
            raise ValueError(f"the shared-memory block {self.name} was closed")
        return view

    def write(self, data: Any, offset: int = 0) -> int:
        """Copy ``data`` (any buffer) into the block at ``offset``; the bytes it took (see put)."""
        return put(self.view, data, offset)

    def close(self) -> None:
        """Unmap and unlink the block (a process still mapping it keeps its mapping); idempotent."""
        if self.closed:
            return
        self.closed = True
        with contextlib.suppress(OSError, BufferError):  # a view still held: unlinked all the same
            self._block.close()
        with contextlib.suppress(OSError):
            self._block.unlink()


def attach_untracked(name: str) -> shared_memory.SharedMemory:
    """Open a block another process made, without this process's tracker removing it at exit.

    The maker owns the block and unlinks it; an attaching process that the
    tracker also watched would unlink it (and warn) when it ends.
    """
    from multiprocessing import resource_tracker, shared_memory  # noqa: PLC0415 - cold start

    untracked: dict[str, Any] = {"track": False}  # Python 3.13's switch
    try:
        return shared_memory.SharedMemory(name=name, **untracked)
    except TypeError:  # before Python 3.13 every attach is tracked: keep it out
        register = resource_tracker.register
        setattr(resource_tracker, "register", lambda *args, **kwargs: None)  # noqa: B010
        try:
            return shared_memory.SharedMemory(name=name)
        finally:
            setattr(resource_tracker, "register", register)  # noqa: B010


class AttachedBlocks:
    """Blocks another process owns that this one has mapped, by name; it never unlinks them.

    Args:
        names: blocks to attach to now (others are attached when first viewed).
    """

    def __init__(self, names: Iterable[str] = ()) -> None:
        self._mapped: dict[str, shared_memory.SharedMemory] = {}
        try:
            for name in names:
                self.view(name)
        except BaseException:
            self.close()
            raise

    def view(self, name: str) -> memoryview:
        """The block ``name``, attached on first use (FileNotFoundError when there is none)."""
        block = self._mapped.get(name)
        if block is None:
            block = self._mapped[name] = attach_untracked(name)
        view = block.buf
        assert view is not None  # closed blocks leave the map
        return view

    def keep_only(self, names: Collection[str | None]) -> None:
        """Let go of every mapped block but ``names`` (the owner replaced the others)."""
        for name in [name for name in self._mapped if name not in names]:
            with contextlib.suppress(OSError, BufferError):  # a view still held: unmapped at exit
                self._mapped.pop(name).close()

    def close(self) -> None:
        """Let go of every block (the owner unlinks them)."""
        self.keep_only(())
