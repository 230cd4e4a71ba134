"""The one shared-memory transport: blocks made, written, read in a child, and never left behind."""

from __future__ import annotations

import copy
import os
import pickle
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from framescope._shm import AttachedBlocks, OwnedBlock, blocks_alive, put, take
from framescope.clock import SYSTEM_CLOCK
from framescope.pipeline.replicas.process import ProcessReplica
from framescope.pipeline.replicas.shared_items import SharedBlock, pack, unpack
from framescope.video.frame_slots import AttachedSlots, FrameSlots
from tests.polling import wait_for

SRC = str(Path(__file__).resolve().parents[1] / "src")

ATTACH_AND_WAIT = """
import sys
from framescope._shm import AttachedBlocks
blocks = AttachedBlocks([sys.argv[1]])
print(bytes(blocks.view(sys.argv[1])[:5]).hex(), flush=True)
if sys.argv[2] == "wait":
    sys.stdin.read()
blocks.close()
"""

MAKE_AND_WAIT = """
import sys
from framescope._shm import OwnedBlock
block = OwnedBlock(4096)
print(block.name, flush=True)
sys.stdin.read()
"""


def python(script: str, *args: str) -> subprocess.Popen[str]:
    """A child interpreter running ``script``, its stdin and stdout piped."""
    return subprocess.Popen(
        [sys.executable, "-c", script, *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": SRC},
    )


def new_blocks(before: set[str]) -> list[str]:
    """The blocks this process made since ``before`` was listed that still exist.

    Other tests in this process may hold blocks of their own meanwhile.
    """
    return [name for name in blocks_alive() if name not in before]


def listed(name: str) -> bool:
    return name.lstrip("/") in os.listdir("/dev/shm")


def child_running(module: str) -> int:
    """The process id of this process's child that runs ``python -m module``."""
    for entry in os.listdir("/proc"):
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            command = Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        if parent == os.getpid() and module.encode() in command:
            return int(entry)
    raise AssertionError(f"no child runs {module}")


def test_a_block_reads_back_where_it_is_attached_and_is_gone_after_close() -> None:
    block = OwnedBlock(64)
    assert block.name in blocks_alive() and listed(block.name)
    frame = np.arange(12, dtype=np.uint8).reshape(2, 2, 3)
    assert block.write(frame) == 12 and block.write(b"xyz", 12) == 3
    attached = AttachedBlocks([block.name])
    assert take(attached.view(block.name), 0, 15) == bytearray(frame.tobytes() + b"xyz")
    attached.close()
    block.close()
    block.close()  # a second close does nothing
    assert block.name not in blocks_alive() and not listed(block.name)
    with pytest.raises(ValueError, match="was closed"):
        block.write(b"late")
    with pytest.raises(FileNotFoundError):
        AttachedBlocks([block.name])


def test_a_strided_array_is_written_in_c_order() -> None:
    image = np.arange(48, dtype=np.uint8).reshape(4, 4, 3)[:, ::2]
    target = memoryview(bytearray(image.nbytes))
    assert put(target, image) == image.nbytes
    assert bytes(target) == np.ascontiguousarray(image).tobytes()


def test_bad_sizes_and_places_are_refused_naming_the_argument() -> None:
    before = set(blocks_alive())
    for size in (0, -1):
        with pytest.raises(ValueError, match="size must be a positive integer"):
            OwnedBlock(size)
    for size in (1.5, "8", True):
        with pytest.raises(TypeError, match="size must be a positive integer"):
            OwnedBlock(size)  # type: ignore[arg-type]
    target = memoryview(bytearray(8))
    with pytest.raises(ValueError, match="data must fit the block: 9 bytes"):
        put(target, b"123456789")
    with pytest.raises(ValueError, match="data must fit the block: 4 bytes at offset 6"):
        put(target, b"1234", 6)
    with pytest.raises(ValueError, match="offset must be a non-negative integer"):
        put(target, b"1", -1)
    with pytest.raises(TypeError, match="data must support the buffer protocol, got int"):
        put(target, 7)
    with pytest.raises(ValueError, match="size must be a non-negative integer"):
        take(target, 0, -1)
    with pytest.raises(ValueError, match="offset \\+ size must be at most the block's 8 bytes"):
        take(target, 4, 5)
    with pytest.raises(ValueError, match="count must be a positive integer"):
        FrameSlots(0, 12, alive=lambda: True)
    with pytest.raises(ValueError, match="size must be a positive integer"):
        FrameSlots(2, 0, alive=lambda: True)
    assert new_blocks(before) == []  # the slot made before the refused size was unlinked


def test_many_items_through_a_growing_block_leave_one_block_then_none() -> None:
    block, most, before = SharedBlock(), 0, set(blocks_alive())
    try:
        for index in range(300):
            frame = np.full((120 + index % 7 * 40, 640), index % 251, np.uint8)
            payload, layout, _ = pack({"frame": frame, "index": index}, block.room)
            assert layout is not None and layout[0] == "shared"
            item = unpack(payload, layout, block.buffer)
            assert item["index"] == index and np.array_equal(item["frame"], frame)
            most = max(most, len(new_blocks(before)))
    finally:
        block.close()
    assert most == 1 and new_blocks(before) == []


def test_many_frames_through_the_ring_reuse_its_slots_then_leave_none() -> None:
    before = set(blocks_alive())
    slots = FrameSlots(3, 48 * 64 * 3, alive=lambda: True)
    child = AttachedSlots(slots.names)
    assert sorted(slots.names) == new_blocks(before)
    try:
        for index in range(300):
            image = np.full((48, 64, 3), index % 251, np.uint8)
            slot = slots.acquire()
            slots.write(slot, image)
            assert int(child.image(slot, 48, 64)[47, 63, 2]) == index % 251
            slots.release(slot)
            assert len(new_blocks(before)) == 3
    finally:
        child.close()
        slots.close()
    assert new_blocks(before) == []
    with pytest.raises(OSError, match="the encoder process ended"):
        slots.acquire()  # a closed pool hands out no slot, though all were free


@pytest.mark.integration
def test_a_child_reads_the_block_and_its_end_or_death_leaves_it_to_the_owner() -> None:
    block = OwnedBlock(16)
    try:
        block.write(b"\x01\x02\x03\x04\x05")
        ended = python(ATTACH_AND_WAIT, block.name, "exit")
        killed = python(ATTACH_AND_WAIT, block.name, "wait")
        for child in (ended, killed):
            assert child.stdout is not None
            assert child.stdout.readline().strip() == "0102030405"  # read in the child
        ended.communicate(timeout=30)
        killed.send_signal(signal.SIGKILL)
        killed.communicate(timeout=30)
        assert ended.returncode == 0 and killed.returncode == -signal.SIGKILL
        # neither child took the block with it: the owner still has it, whole
        assert listed(block.name) and bytes(block.view[:5]) == b"\x01\x02\x03\x04\x05"
    finally:
        block.close()
    assert not listed(block.name)


@pytest.mark.integration
def test_an_owner_that_is_killed_leaves_no_block() -> None:
    owner = python(MAKE_AND_WAIT)
    assert owner.stdout is not None
    name = owner.stdout.readline().strip()
    assert name.startswith(f"fs{owner.pid:x}_") and listed(name)
    owner.send_signal(signal.SIGKILL)
    owner.communicate(timeout=30)
    # the resource tracker the owner started unlinks what it made once it is gone
    wait_for(lambda: not listed(name), what=f"block {name} unlinked after its owner died")


@pytest.mark.integration
def test_a_replica_worker_killed_between_items_leaves_its_blocks_to_close() -> None:
    before = set(blocks_alive())
    replica = ProcessReplica(pickle.dumps(copy.copy), "Shm#0", SYSTEM_CLOCK)
    try:
        for index in range(120):
            frame = np.full((120 + index % 5 * 60, 640, 3), index % 251, np.uint8)
            result, _busy = replica.call(frame)
            assert np.array_equal(result, frame)
            assert len(new_blocks(before)) <= 2  # a request and a response block, reused
            if index == 60:
                worker = replica.pid
                assert worker is not None
                os.kill(worker, signal.SIGKILL)
                wait_for(lambda: not replica.alive, what="the worker ended")
        assert replica.restarts == 1
    finally:
        replica.close(5)
    assert new_blocks(before) == []


@pytest.mark.integration
def test_an_encoder_child_that_dies_leaves_no_slot_once_its_session_ends(tmp_path: Path) -> None:
    pytest.importorskip("av")
    from framescope.video.session import ENCODER_MODULE, EncoderSession, FrameProcess

    events: list[dict[str, object]] = []
    settings = {"uri": str(tmp_path / "out.mkv"), "fps": 10, "width": 64, "height": 48}
    before = set(blocks_alive())
    session = EncoderSession(settings, events.append, "shm-test")
    slots = new_blocks(before)
    assert len(slots) == FrameProcess.SLOTS
    try:
        for index in range(5):
            session.send(np.full((48, 64, 3), index * 40, np.uint8), index / 10)
        wait_for(lambda: any(event.get("event") == "free" for event in events), what="a free")
        os.kill(child_running(ENCODER_MODULE), signal.SIGKILL)
        wait_for(lambda: not session.alive, what="the encoder process ended")
        assert new_blocks(before) == slots  # the parent owns them until the session ends
    finally:
        session.kill()
    assert new_blocks(before) == []
