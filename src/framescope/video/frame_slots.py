"""Frames to an encoder child process through shared memory instead of its pipe.

A 1280x720 frame is 2.7 MB; pushed through a pipe it costs the kernel two
copies and the child about 4 ms of system time. :class:`FrameSlots` is a
small, bounded pool of shared-memory slots the parent writes a frame into
(one copy); the pipe then carries only a header naming the slot, and the
child tells the parent when the slot is free again. A frame that does not
fit a slot goes through the pipe as before (slot ``-1``).

The child reads its frames with :func:`incoming_frames` (which attaches to
the slots and frees each one once the child asked for the next frame), or
one at a time with :func:`read_frame`.
"""

from __future__ import annotations

import contextlib
import struct
import threading
from collections import deque
from collections.abc import Callable, Generator
from typing import Any, BinaryIO

from framescope._optional import require
from framescope._shm import attach_untracked

__all__ = ["SLOT_HEADER", "AttachedSlots", "FrameSlots", "incoming_frames", "read_frame"]

numpy = require("numpy", "video", "frames through shared memory")

SLOT_HEADER = struct.Struct("<IIdi")
"""Per frame: height, width (uint32), stream time (float64 s), slot (-1: the pixels follow)."""


class FrameSlots:
    """The parent's pool of ``count`` slots of ``size`` bytes each.

    Args:
        count: slots (frames the child may hold at once).
        size: bytes per slot (a frame's ``height * width * 3``).
        alive: tells whether the child still runs (a wait for a slot gives up when not).
    """

    def __init__(self, count: int, size: int, alive: Callable[[], bool]) -> None:
        from multiprocessing import shared_memory  # noqa: PLC0415 - loaded on first use (cold start)

        self.size = size
        self._blocks = [shared_memory.SharedMemory(create=True, size=size) for _ in range(count)]
        self._free = deque(range(count))
        self._ready = threading.Condition()
        self._alive = alive
        self.closed = False

    @property
    def names(self) -> list[str]:
        """The slots' names, for the child to attach to."""
        return [block.name for block in self._blocks]

    def fits(self, image: Any) -> bool:
        """Whether ``image`` (a contiguous uint8 array) fits a slot."""
        return bool(image.nbytes <= self.size)

    def acquire(self) -> int:
        """A free slot, waiting while the child holds them all; OSError once it is gone."""
        with self._ready:
            while not self._free:
                if self.closed or not self._alive():
                    raise OSError("the encoder process ended")
                self._ready.wait(0.2)
            return self._free.popleft()

    def write(self, index: int, image: Any) -> None:
        """Copy ``image`` into slot ``index``."""
        target = numpy.ndarray(image.shape, numpy.uint8, buffer=self._blocks[index].buf)
        numpy.copyto(target, image)

    def release(self, index: int) -> None:
        """The child is done with slot ``index``."""
        with self._ready:
            if 0 <= index < len(self._blocks) and index not in self._free:
                self._free.append(index)
                self._ready.notify()

    def close(self) -> None:
        """Free the shared memory (after the child ended)."""
        with self._ready:
            self.closed = True
            self._ready.notify_all()
        for block in self._blocks:
            with contextlib.suppress(OSError, BufferError):
                block.close()
            with contextlib.suppress(OSError):
                block.unlink()


class AttachedSlots:
    """The child's view of the parent's slots."""

    def __init__(self, names: list[str]) -> None:
        self._blocks = [attach_untracked(name) for name in names]

    def image(self, index: int, height: int, width: int) -> Any:
        """The frame in slot ``index`` (valid until the slot is released)."""
        return numpy.ndarray((height, width, 3), numpy.uint8, buffer=self._blocks[index].buf)

    def close(self) -> None:
        """Let go of the slots (the parent frees them)."""
        for block in self._blocks:
            with contextlib.suppress(OSError, BufferError):
                block.close()


def _read_into(source: BinaryIO, buffer: bytearray | memoryview) -> bool:
    view, got = memoryview(buffer), 0
    while got < len(view):
        chunk = source.readinto(view[got:])  # type: ignore[attr-defined]
        if not chunk:
            return False
        got += chunk
    return True


def read_frame(
    source: BinaryIO, slots: AttachedSlots | None, spare: bytearray
) -> tuple[Any, float, int, bytearray] | None:
    """The next frame: (image, stream time, slot or -1, the spare buffer); None at the end.

    A frame sent through the pipe is read into ``spare`` (reused while its
    size stays the same; the encoder copies every frame it takes).
    """
    header = bytearray(SLOT_HEADER.size)
    if not _read_into(source, header):
        return None
    height, width, stream_time, slot = SLOT_HEADER.unpack(header)
    if slot >= 0 and slots is not None:
        return slots.image(slot, height, width), stream_time, slot, spare
    if len(spare) != height * width * 3:
        spare = bytearray(height * width * 3)
    if not _read_into(source, spare):
        return None
    image = numpy.frombuffer(spare, numpy.uint8).reshape(height, width, 3)
    return image, stream_time, -1, spare


def incoming_frames(
    source: BinaryIO, slot_names: list[str] | None, free: Callable[[int], None]
) -> Generator[tuple[Any, float], None, None]:
    """Each frame on ``source`` as (image, stream time), until the parent closes it.

    Attaches to ``slot_names`` (the ``slots`` setting, None: every frame
    comes through the pipe); a slot's frame is valid until the next one is
    asked for, and then ``free(slot)`` tells the parent it may reuse it. The
    consumer must copy what it keeps (the encoders do).
    """
    slots = AttachedSlots(slot_names) if slot_names else None
    spare = bytearray()
    try:
        while (read := read_frame(source, slots, spare)) is not None:
            image, stream_time, slot, spare = read
            yield image, stream_time
            del image, read  # no view of the slot outlives it
            if slot >= 0:
                free(slot)
    finally:
        if slots is not None:
            slots.close()
