"""The worker process of a process replica: runs its copy of the stage on what comes in.

The parent sends ``(payload, layout, request_block, response_block,
response_size)`` per item (see :mod:`framescope.pipeline.replicas.shared_items`), or
None to stop. The worker answers ``("ok", rss, payload, layout, busy_ns,
needed)`` or ``("error", rss, pickled_exception_or_None, text, busy_ns)``;
``rss`` is this process's resident memory in bytes after the item (None where
it cannot be read), ``busy_ns`` the time the stage took here, ``needed`` the
bytes the result's buffers take (the parent grows the response block to fit
them next time). A stage that cannot be loaded here (its module does not
import) is answered ``("unloadable", traceback_text)`` to the first item.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import signal
import sys
import time
import traceback
from multiprocessing import shared_memory
from multiprocessing.connection import Connection
from typing import Any

try:
    import resource
except ImportError:  # pragma: no cover - Windows has no such module
    resource = None  # type: ignore[assignment]

from framescope._shm import attach_untracked
from framescope.pipeline.replicas.shared_items import pack, unpack

__all__ = ["resident_bytes", "serve"]


def resident_bytes() -> int | None:
    """This process's resident memory in bytes (from ``/proc``; elsewhere its peak)."""
    try:
        with open("/proc/self/statm", "rb") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        pass
    if resource is None:  # pragma: no cover
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak) if sys.platform == "darwin" else int(peak) * 1024


class _Blocks:
    """The parent's blocks this process has mapped, by name (older ones let go)."""

    def __init__(self) -> None:
        self._mapped: dict[str, shared_memory.SharedMemory] = {}

    def view(self, name: str | None) -> memoryview | None:
        if name is None:
            return None
        block = self._mapped.get(name)
        if block is None:
            block = self._mapped[name] = attach_untracked(name)
        return block.buf

    def keep_only(self, names: tuple[str | None, ...]) -> None:
        for name in [name for name in self._mapped if name not in names]:
            with contextlib.suppress(OSError, BufferError):
                self._mapped.pop(name).close()

    def close(self) -> None:
        self.keep_only(())


def serve(conn: Connection, stage_bytes: bytes) -> None:
    """Run the stage pickled in ``stage_bytes`` on each item ``conn`` brings, until told to stop."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    try:
        stage = pickle.loads(stage_bytes)
    except Exception:
        _refuse(conn, traceback.format_exc())
        return
    blocks = _Blocks()
    try:
        while True:
            try:
                message = conn.recv()
            except (EOFError, OSError):
                return
            if message is None:
                return
            conn.send(_answer(stage, message, blocks))
    finally:
        blocks.close()
        cleanup = getattr(stage, "cleanup", None)
        if callable(cleanup):
            with contextlib.suppress(Exception):
                cleanup()


def _refuse(conn: Connection, text: str) -> None:
    """The stage did not load: answer the first item with why, then end."""
    with contextlib.suppress(EOFError, OSError):
        if conn.recv() is not None:
            conn.send(("unloadable", text))
    conn.close()


def _answer(stage: Any, message: tuple[Any, ...], blocks: _Blocks) -> tuple[Any, ...]:
    payload, layout, request_name, response_name, response_size = message
    blocks.keep_only((request_name, response_name))
    start = time.monotonic_ns()
    try:
        data = unpack(payload, layout, blocks.view(request_name))
        start = time.monotonic_ns()
        result = stage(data)
        busy = time.monotonic_ns() - start
        response = blocks.view(response_name)

        def room(size: int) -> memoryview | None:
            return response if response is not None and size <= response_size else None

        payload, layout, needed = pack(result, room)
    except Exception as error:
        busy = time.monotonic_ns() - start
        text = traceback.format_exc()
        pickled: bytes | None = None
        with contextlib.suppress(Exception):
            candidate = pickle.dumps(error)
            pickle.loads(candidate)  # some exceptions pickle but cannot be rebuilt
            pickled = candidate
        return ("error", resident_bytes(), pickled, text, busy)
    return ("ok", resident_bytes(), payload, layout, busy, needed)
