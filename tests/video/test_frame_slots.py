"""Frames through shared-memory slots: the pool, the child's view, the pipe fallback."""

from __future__ import annotations

import io
import os
import threading

import numpy as np
import pytest

from framescope.video.frame_slots import SLOT_HEADER, AttachedSlots, FrameSlots, read_frame


def test_a_frame_written_to_a_slot_reads_back_in_the_child_view() -> None:
    slots = FrameSlots(2, 4 * 6 * 3, alive=lambda: True)
    try:
        image = np.arange(72, dtype=np.uint8).reshape(4, 6, 3)
        index = slots.acquire()
        slots.write(index, image)
        child = AttachedSlots(slots.names)
        stream = io.BytesIO(SLOT_HEADER.pack(4, 6, 1.5, index))
        read = read_frame(stream, child, bytearray())
        assert read is not None
        seen, stream_time, slot, _ = read
        assert slot == index and stream_time == 1.5
        assert np.array_equal(seen, image)
        del seen, read  # the view goes before the slot is closed
        child.close()
    finally:
        slots.close()
    assert not any(name.lstrip("/") in os.listdir("/dev/shm") for name in slots.names)


def test_frames_that_do_not_fit_go_through_the_pipe() -> None:
    image = np.full((2, 2, 3), 7, np.uint8)
    stream = io.BytesIO(SLOT_HEADER.pack(2, 2, 0.25, -1) + image.tobytes())
    read = read_frame(stream, None, bytearray())
    assert read is not None
    assert np.array_equal(read[0], image) and read[2] == -1
    assert read_frame(stream, None, read[3]) is None  # the end of the stream


def test_a_full_pool_waits_for_a_release_and_gives_up_when_the_child_is_gone() -> None:
    alive = threading.Event()
    alive.set()
    slots = FrameSlots(1, 12, alive=alive.is_set)
    try:
        first = slots.acquire()
        got: list[int] = []
        waiter = threading.Thread(target=lambda: got.append(slots.acquire()))
        waiter.start()
        slots.release(first)
        waiter.join(5)
        assert got == [first]
        alive.clear()  # the child ended while holding the only slot
        with pytest.raises(OSError, match="the encoder process ended"):
            slots.acquire()
        assert slots.fits(np.zeros((2, 2, 3), np.uint8))
        assert not slots.fits(np.zeros((3, 3, 3), np.uint8))
    finally:
        slots.close()
