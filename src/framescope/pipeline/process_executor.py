"""Process replicas: each replica a worker process with its own copy of the stage.

The stage is pickled at ``add()`` (a clear error when it cannot be) and
unpickled in each worker, started with the ``spawn`` method (safe with
threads and CUDA in the parent). The replica's thread in the pipeline sends
an item and waits for the answer without holding the interpreter lock, so N
replicas use N cores. Frames (NumPy arrays, also inside tuples, dicts or
objects) cross through shared memory (:mod:`framescope.pipeline.shared_items`);
the rest is pickled.

A worker that dies (killed, crashed, out of memory) fails the item it held
with :class:`~framescope.pipeline.executors.ReplicaLostError` (counted as
that stage's failure, under its error policy) and is started again on the
next item, after a back-off that doubles with each death in a row (0.1 s up
to 5 s, on the pipeline's clock); ``restarts`` counts them. Cleanup stops
every worker (the stage copy's ``cleanup()`` runs in it) and frees the blocks.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import pickle
import threading
from collections.abc import Callable
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Any

from framescope.clock import Clock, wait_on
from framescope.pipeline.executors import Replica, ReplicaLostError, check_picklable
from framescope.pipeline.replica_child import serve
from framescope.pipeline.shared_items import SharedBlock, pack, unpack

__all__ = ["ProcessExecutor", "ProcessReplica", "RemoteStageError"]

BACKOFF_S = (0.1, 5.0)
"""The first and the longest wait before a worker that died is started again."""


class RemoteStageError(RuntimeError):
    """A stage raised in a worker an exception that could not be pickled back (its text is kept)."""


class ProcessExecutor:
    """Runs each replica of a stage in a worker process (``executor="process"``)."""

    name = "process"
    remote = True

    def check(self, stage: Callable[[Any], Any], label: str) -> None:
        """Refuse a stage that cannot be pickled, saying why it must be."""
        check_picklable(stage, label, self.name)

    def replicas(
        self, stage: Callable[[Any], Any], count: int, label: str, clock: Clock
    ) -> list[Replica]:
        """Start ``count`` worker processes, each with a copy of ``stage``."""
        stage_bytes = check_picklable(stage, label, self.name)
        made: list[Replica] = []
        try:
            for index in range(count):
                made.append(ProcessReplica(stage_bytes, f"{label}#{index}", clock))
        except BaseException:
            for replica in made:
                replica.close(1.0)
            raise
        return made


class ProcessReplica:
    """One worker process and the pipe and shared blocks to it.

    Args:
        stage_bytes: the pickled stage.
        label: the replica's node id (``Main__Infer#0``), in the process name and errors.
        clock: waits the restart back-off on it.
    """

    def __init__(self, stage_bytes: bytes, label: str, clock: Clock) -> None:
        self.label = label
        self.restarts = 0
        self._stage_bytes = stage_bytes
        self._clock = clock
        self._context = multiprocessing.get_context("spawn")
        self._request, self._response = SharedBlock(), SharedBlock()
        self._deaths_in_a_row = 0
        self._busy = False
        self._closed = False
        self._stopping = threading.Event()  # cuts a restart back-off short
        self._lock = threading.Lock()
        self._conn: Connection | None = None
        self._process: BaseProcess | None = None
        self._start()

    def _start(self) -> None:
        parent, child = self._context.Pipe(duplex=True)
        process = self._context.Process(
            target=serve,
            args=(child, self._stage_bytes),
            name=f"framescope:{self.label}",
            daemon=True,  # ended with the parent even if nobody cleans up
        )
        process.start()
        child.close()
        self._conn, self._process = parent, process

    @property
    def pid(self) -> int | None:
        """The worker process's id (None when none runs)."""
        return None if self._process is None else self._process.pid

    def call(self, data: Any) -> tuple[Any, int]:
        """Run the stage on ``data`` in the worker; its result and the time it took there."""
        if self._closed:
            raise ReplicaLostError(f"replica {self.label} was closed")
        if self._process is None or not self._process.is_alive():
            self._restart()
        conn = self._conn
        assert conn is not None
        payload, layout, _ = pack(data, self._request.room)
        message = (payload, layout, self._request.name, self._response.name, self._response.size)
        self._busy = True
        try:
            conn.send(message)
            reply = conn.recv()
        except (EOFError, OSError) as lost:
            code = self._reap()
            raise ReplicaLostError(
                f"replica {self.label}: its worker process ended (exit code {code}) while it "
                "held this item; a new one starts with the next item"
            ) from lost
        finally:
            self._busy = False
        self._deaths_in_a_row = 0
        if reply[0] == "ok":
            _, payload, layout, busy, needed = reply
            result = unpack(payload, layout, self._response.buffer)
            if needed > self._response.size:
                self._response.room(needed)  # room for results this large from now on
            return result, int(busy)
        _, pickled, text, _busy_ns = reply
        raised = pickle.loads(pickled) if pickled is not None else None
        if not isinstance(raised, Exception):
            raised = RemoteStageError(text.strip().splitlines()[-1] if text else "stage failed")
        add_note = getattr(raised, "add_note", None)  # Python 3.11+
        if add_note is not None:
            add_note(f"raised in the worker process of {self.label}:\n{text.rstrip()}")
        raise raised

    def _reap(self) -> int | None:
        """The worker is gone: collect it, close the pipe; its exit code."""
        self._deaths_in_a_row += 1
        process, conn = self._process, self._conn
        self._process = self._conn = None
        if conn is not None:
            conn.close()
        if process is None:
            return None
        process.join(1.0)
        if process.is_alive():
            process.kill()
            process.join(1.0)
        return process.exitcode

    def _restart(self) -> None:
        if self._process is not None:
            self._reap()
        first, longest = BACKOFF_S
        delay = min(longest, first * 2 ** max(0, self._deaths_in_a_row - 1))
        wait_on(self._clock, self._stopping, delay)
        with self._lock:
            if self._closed:
                raise ReplicaLostError(f"replica {self.label} was closed")
            self.restarts += 1
            self._start()

    def halt(self) -> None:
        """The pipeline stops: end a worker that is busy on an item, so its thread returns."""
        self._stopping.set()
        with self._lock:
            self._closed = True
            process = self._process
            if self._busy and process is not None and process.is_alive():
                process.kill()

    def close(self, timeout: float | None) -> None:
        """Stop the worker (its stage's ``cleanup()`` runs), then free the pipe and blocks."""
        self._stopping.set()
        with self._lock:
            self._closed = True
            process, conn = self._process, self._conn
            self._process = self._conn = None
        if process is not None and conn is not None:
            if process.is_alive() and not self._busy:
                with contextlib.suppress(OSError, ValueError):
                    conn.send(None)
            process.join(2.0 if timeout is None else max(0.1, timeout))
            if process.is_alive():
                process.kill()
                process.join(1.0)
        if conn is not None:
            conn.close()
        self._request.close()
        self._response.close()
