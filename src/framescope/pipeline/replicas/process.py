"""Process replicas: each replica a worker process with its own copy of the stage.

The stage is pickled at ``add()`` (a clear error when it cannot be) and
unpickled in each worker. Workers are forked by the stage's worker server
(:mod:`framescope.pipeline.replicas.server`), started at ``parallelize()``
with ``spawn`` (safe with threads and CUDA in the parent) or, with
``start_method="fork"``, forked from the parent; a replica starts its worker
with its first item. The replica's thread in the pipeline sends
an item and waits for the answer without holding the interpreter lock, so N
replicas use N cores. Frames (NumPy arrays, also inside tuples, dicts or
objects) cross through shared memory (:mod:`framescope.pipeline.replicas.shared_items`);
the rest is pickled.

A worker that dies (killed, crashed, out of memory) fails the item it held
with :class:`~framescope.pipeline.ReplicaLostError` (counted as
that stage's failure, under its error policy) and is started again on the
next item, after a back-off that doubles with each death in a row (0.1 s up
to 5 s, on the pipeline's clock); ``restarts`` counts them. A worker that
could not start (the script re-run in it failed, or the stage's module does
not import there) fails the item with what went wrong there and what to do.

``ProcessExecutor(max_items=..., max_memory=...)`` recycles a worker that
served that many items, or whose resident memory after an item passed that
many bytes: the item is answered, then the worker is stopped (its
``cleanup()`` runs) and a fresh one started before the next item; nothing is
lost, and ``recycles`` counts it. Cleanup stops every worker (the stage
copy's ``cleanup()`` runs in it) and frees the blocks.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import pickle
import re
import signal
import sys
import threading
import time
from collections.abc import Callable
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import TYPE_CHECKING, Any

from framescope._keys import replica_key
from framescope._validation import check_int_at_least
from framescope._waits import backoff_delay
from framescope.clock import Clock, wait_on
from framescope.pipeline.replicas.base import (
    Replica,
    ReplicaLostError,
    check_picklable,
    pickle_stage,
)
from framescope.pipeline.replicas.child import serve
from framescope.pipeline.replicas.shared_items import SharedBlock, pack, unpack
from framescope.pipeline.replicas.worker_start import ReportingProcess

if TYPE_CHECKING:
    from framescope.pipeline.replicas.server import WorkerServer

__all__ = ["ProcessExecutor", "ProcessReplica", "RemoteStageError"]

logger = logging.getLogger(__name__)

BACKOFF_S = (0.1, 5.0)
"""The first and the longest wait before a worker that died is started again."""

SERVER_EXIT_WAIT_S = 1.0
"""How long a worker server that stopped answering is given to end, so its reason can be read."""

START_METHODS = ("forkserver", "fork", "spawn")
"""How workers start: forked by a spawned server of the stage (the default), forked by a
server forked from this process, or each spawned (a fresh interpreter per worker)."""

RECYCLE_WAIT_S = 10.0
"""How long a recycled worker's ``cleanup()`` may take before the worker is killed."""

START_ADVICE = (
    "guard the script's entry point with `if __name__ == '__main__':` or define the "
    "stage in an importable module"
)
"""What to do when a worker could not start (it re-runs the main script, then loads the stage)."""


class RemoteStageError(RuntimeError):
    """A stage raised in a worker an exception that could not be pickled back (its text is kept)."""


class Tally:
    """What the replicas of one executor did, summed: recycles and the largest memory seen."""

    def __init__(self) -> None:
        self.recycles = 0
        self.peak_memory = 0
        self._lock = threading.Lock()

    def recycled(self) -> None:
        """A worker was replaced by a fresh one."""
        with self._lock:
            self.recycles += 1

    def memory(self, rss: int) -> None:
        """A worker reported ``rss`` bytes resident after an item."""
        with self._lock:
            self.peak_memory = max(self.peak_memory, rss)


class ProcessExecutor:
    """Runs each replica of a stage in a worker process (``executor="process"``).

    Args:
        max_items: replace a worker after it served this many items (None: never).
        max_memory: replace a worker whose resident memory after an item is more
            than this many bytes (None: never). A stage that leaks is bounded by
            it, plus what one item adds.
        start_method: how workers start. ``"forkserver"`` (the default): a
            server of the stage's own, itself started with ``spawn`` at
            ``parallelize()`` (safe with threads and CUDA here), imports the stage
            and forks each worker, restarts and recycles included, in
            milliseconds. ``"fork"``: that server is forked from this process at
            ``parallelize()`` instead, so the first workers start at once; it
            copies this process as it is then (open files, an initialised CUDA
            that the workers then cannot use), and is only forked while no other
            thread runs here (else it is spawned, and a warning logged).
            ``"spawn"``: a fresh interpreter per worker (each runs the main
            script and imports the stage again).

    ``recycles`` counts the workers replaced for these bounds, ``peak_memory``
    the largest resident memory (bytes) a worker reported after an item.
    """

    name = "process"
    remote = True

    def __init__(
        self,
        *,
        max_items: int | None = None,
        max_memory: int | None = None,
        start_method: str = "forkserver",
    ) -> None:
        self.max_items = check_int_at_least(max_items, "max_items", 1, or_none=True)
        self.max_memory = check_int_at_least(max_memory, "max_memory", 1, or_none=True)
        if not isinstance(start_method, str):
            raise TypeError(
                f"start_method must be one of {', '.join(map(repr, START_METHODS))}, "
                f"got {type(start_method).__name__}"
            )
        if start_method not in START_METHODS:
            raise ValueError(
                f"start_method must be one of {', '.join(map(repr, START_METHODS))}, "
                f"got {start_method!r}"
            )
        self.start_method = start_method
        self._tally = Tally()
        self._servers: dict[str, WorkerServer] = {}  # by stage label
        self._lock = threading.Lock()

    @property
    def recycles(self) -> int:
        """How many of this executor's workers were replaced for its bounds."""
        return self._tally.recycles

    @property
    def peak_memory(self) -> int:
        """The largest resident memory, in bytes, a worker reported after an item (0: none yet)."""
        return self._tally.peak_memory

    def check(self, stage: Callable[[Any], Any], label: str) -> None:
        """Refuse a stage that cannot be pickled, saying why it must be."""
        check_picklable(stage, label, self.name)

    def prepare(self, stage: Callable[[Any], Any], label: str) -> Callable[[], None] | None:
        """Start the stage's worker server now (at ``parallelize()``), ahead of its first item.

        Returns what lets go of it (the pipeline calls it at cleanup, started
        or not); None where workers are not forked from a server (Windows).
        """
        server = self._server_for(stage, label)
        if server is None:
            return None
        server.acquire()
        return server.release

    def _server_for(self, stage: Callable[[Any], Any], label: str) -> WorkerServer | None:
        from framescope.pipeline.replicas.server import (  # noqa: PLC0415 - loaded on first use (cold start)
            WorkerServer,
            available,
            stage_modules,
        )

        if self.start_method == "spawn" or not available():
            return None
        with self._lock:
            server = self._servers.get(label)
            if server is None:
                modules, needs_main = stage_modules(stage, pickle_stage(stage))
                server = WorkerServer(
                    modules, with_main=needs_main, fork=self.start_method == "fork"
                )
                self._servers[label] = server
            return server

    def replicas(
        self, stage: Callable[[Any], Any], count: int, label: str, clock: Clock
    ) -> list[Replica]:
        """Make ``count`` replicas, each with a copy of ``stage`` in a worker it starts.

        Each worker is forked from the stage's worker server (started by
        :meth:`prepare`, or here) when its replica takes its first item.
        """
        from framescope.pipeline.replicas.server import (  # noqa: PLC0415 - loaded on first use (cold start)
            stage_modules,
        )

        stage_bytes = check_picklable(stage, label, self.name)
        server = self._server_for(stage, label)
        made: list[Replica] = []
        try:
            for index in range(count):
                made.append(
                    ProcessReplica(
                        stage_bytes,
                        replica_key(label, index),
                        clock,
                        max_items=self.max_items,
                        max_memory=self.max_memory,
                        tally=self._tally,
                        server=server,
                        needs_main=stage_modules(stage, stage_bytes)[1],
                    )
                )
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
        max_items: replace the worker after this many items (None: never).
        max_memory: replace the worker when its resident bytes after an item pass this.
        tally: where recycles and memory readings are summed (the executor's).
    """

    def __init__(
        self,
        stage_bytes: bytes,
        label: str,
        clock: Clock,
        *,
        max_items: int | None = None,
        max_memory: int | None = None,
        tally: Tally | None = None,
        server: WorkerServer | None = None,
        needs_main: bool | None = None,
    ) -> None:
        self.label = label
        self.restarts = 0
        self.recycles = 0
        self.memory: int | None = None  # the worker's resident bytes after its last item
        self._stage_bytes = stage_bytes
        self._clock = clock
        self._max_items, self._max_memory = max_items, max_memory
        self._tally = Tally() if tally is None else tally
        self._served = 0  # items the current worker answered
        self._context = multiprocessing.get_context("spawn")
        self._request, self._response = SharedBlock(), SharedBlock()
        self._deaths_in_a_row = 0
        self._busy = False
        self._closed = False
        self._stopping = threading.Event()  # cuts a restart back-off short
        self._lock = threading.Lock()
        self._conn: Connection | None = None
        self._process: BaseProcess | None = None
        self._retiring: BaseProcess | None = None  # a worker being recycled
        self._starting = False
        self._launched = False  # the first worker starts with the first item
        if needs_main is None:
            needs_main = b"__main__" in stage_bytes
        self._needs_main = needs_main
        self._server = server
        if server is not None:
            try:
                server.acquire()
            except BaseException:
                self._request.close()
                self._response.close()
                raise

    def _start(self) -> None:
        """Start a worker (the caller holds the lock, so a close waits for it)."""
        parent, child = self._context.Pipe(duplex=True)
        process: BaseProcess
        options: dict[str, Any] = {
            "target": serve,
            "args": (child, self._stage_bytes),
            "name": f"framescope:{self.label}",
            "daemon": True,  # ended with the parent even if nobody cleans up
        }
        server = self._server
        if server is not None:
            from framescope.pipeline.replicas.server import (  # noqa: PLC0415 - loaded on first use (cold start)
                ServedProcess,
            )

            process = ServedProcess(server.token, self._needs_main, **options)
        elif sys.platform != "win32":
            process = ReportingProcess(**options)
        else:
            process = self._context.Process(**options)
        self._starting = True  # set before halt() is looked at, which sets _stopping first
        try:
            if self._stopping.is_set():
                raise ReplicaLostError(f"replica {self.label} was closed")
            try:
                process.start()
            except (OSError, EOFError) as failed:
                if server is None:
                    raise
                # the server ended before it forked the worker
                raise ReplicaLostError(self._server_failure()) from failed
        except BaseException:
            parent.close()
            raise
        finally:
            self._starting = False
            child.close()
        self._conn, self._process, self._served = parent, process, 0

    def _server_failure(self) -> str:
        """Why the worker server could not fork a worker (it ended: how, and what escaped it)."""
        assert self._server is not None
        code, failure = self._server.failure()
        deadline = time.monotonic() + SERVER_EXIT_WAIT_S
        while code is None and time.monotonic() < deadline and not self._stopping.is_set():
            time.sleep(0.01)  # its socket closed as it exits: collect how it ended
            code, failure = self._server.failure()
        if failure:
            return self._could_not_start(code, failure)
        ended = "" if code is None else f" (exit code {code})"
        return (
            f"replica {self.label}: the worker server of this stage ended{ended} before it "
            "started a worker; a new one starts with the next item"
        )

    @property
    def pid(self) -> int | None:
        """The worker process's id (None when none runs)."""
        process = self._process  # read once: a restart may set it to None meanwhile
        return None if process is None else process.pid

    @property
    def alive(self) -> bool:
        """Whether its worker runs (a worker's end is known once its server has reaped it)."""
        process = self._process
        return process is not None and process.is_alive()

    def call(self, data: Any) -> tuple[Any, int]:
        """Run the stage on ``data`` in the worker; its result and the time it took there."""
        if self._closed:
            raise ReplicaLostError(f"replica {self.label} was closed")
        if not self._launched:
            self._launched = True
            with self._lock:
                if self._closed:
                    raise ReplicaLostError(f"replica {self.label} was closed")
                self._start()
        elif self._process is None or not self._process.is_alive():
            self._restart()
        payload, layout, _ = pack(data, self._request.room)
        reply = self._exchange(
            (payload, layout, self._request.name, self._response.name, self._response.size)
        )
        self._deaths_in_a_row = 0
        self._served += 1
        rss = reply[1]
        if rss is not None:
            self.memory = rss
            self._tally.memory(rss)
        try:
            return self._outcome(reply)
        finally:
            if self._due(rss):
                self._recycle()

    def _exchange(self, message: tuple[Any, ...]) -> tuple[Any, ...]:
        """Send one item and take the worker's reply; a worker gone is a ReplicaLostError."""
        conn = self._conn
        assert conn is not None
        self._busy = True
        try:
            conn.send(message)
            reply: tuple[Any, ...] = conn.recv()
        except (EOFError, OSError) as lost:
            process = self._process
            code = self._reap()
            start_failure = getattr(process, "start_failure", None)  # not on Windows
            failure = start_failure() if start_failure is not None else ""
            if failure:
                raise ReplicaLostError(self._could_not_start(code, failure)) from lost
            raise ReplicaLostError(
                f"replica {self.label}: its worker process ended (exit code {code}) while it "
                "held this item; a new one starts with the next item"
            ) from lost
        finally:
            self._busy = False
        if reply[0] == "unloadable":
            self._reap()
            raise ReplicaLostError(self._could_not_start(None, reply[1]))
        return reply

    def _could_not_start(self, code: int | None, failure: str) -> str:
        ended = "" if code is None else f" (exit code {code})"
        return (
            f"replica {self.label}: the worker process could not start{ended}: "
            f"{_raised_text(failure)}; {START_ADVICE}"
        )

    def _outcome(self, reply: tuple[Any, ...]) -> tuple[Any, int]:
        """The result of an ``ok`` reply; an ``error`` reply raised as the stage's exception."""
        if reply[0] == "ok":
            _, _rss, payload, layout, busy, needed = reply
            result = unpack(payload, layout, self._response.buffer)
            if needed > self._response.size:
                self._response.room(needed)  # room for results this large from now on
            return result, int(busy)
        _, _rss, pickled, text, _busy_ns = reply
        raised = pickle.loads(pickled) if pickled is not None else None
        if not isinstance(raised, Exception):
            raised = RemoteStageError(text.strip().splitlines()[-1] if text else "stage failed")
        add_note = getattr(raised, "add_note", None)  # Python 3.11+
        if add_note is not None:
            add_note(f"raised in the worker process of {self.label}:\n{text.rstrip()}")
        raise raised

    def _due(self, rss: int | None) -> bool:
        """Whether the worker has reached ``max_items`` or passed ``max_memory``."""
        if self._max_items is not None and self._served >= self._max_items:
            return True
        return self._max_memory is not None and rss is not None and rss > self._max_memory

    def _recycle(self) -> None:
        """Stop the worker (its ``cleanup()`` runs) and start a fresh one in its place."""
        with self._lock:
            if self._closed:
                return
            process, conn = self._process, self._conn
            self._process = self._conn = None
            self._retiring = process  # halt() ends it rather than wait for its cleanup()
        _stop(process, conn, RECYCLE_WAIT_S)
        with self._lock:
            self._retiring = None
            if self._closed:
                return
            self.recycles += 1
            self._tally.recycled()
            try:
                self._start()
            except Exception:  # the item was answered: the next call starts one (as a restart)
                logger.exception("replica %s: a fresh worker process did not start", self.label)

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
        delay = backoff_delay(self._deaths_in_a_row, first, longest, jitter=0.0)
        wait_on(self._clock, self._stopping, delay)
        with self._lock:
            if self._closed:
                raise ReplicaLostError(f"replica {self.label} was closed")
            self.restarts += 1
            self._start()

    def halt(self) -> None:
        """The pipeline stops: end a worker that is busy on an item, so its thread returns.

        A worker still being started is let go too: its server is ended (the
        stage's other replicas are halted with it), and the start returns.
        """
        self._stopping.set()
        if self._starting and self._server is not None:
            self._server.halt()
        with self._lock:
            self._closed = True
            process = self._process
            if self._busy and process is not None and process.is_alive():
                process.kill()
            if self._retiring is not None and self._retiring.is_alive():
                self._retiring.kill()

    def close(self, timeout: float | None) -> None:
        """Stop the worker (its stage's ``cleanup()`` runs), then free the pipe and blocks."""
        self._stopping.set()
        with self._lock:
            self._closed = True
            process, conn = self._process, self._conn
            self._process = self._conn = None
            busy = self._busy
        # a busy worker is not told to stop: it gets the time, then is ended
        _stop(process, conn, 2.0 if timeout is None else max(0.1, timeout), ask=not busy)
        self._request.close()
        self._response.close()
        server, self._server = self._server, None
        if server is not None:
            server.release()


_RAISED = re.compile(r"[A-Za-z_][\w.]*(:\s|:$)")
"""A traceback's line that names the exception (``RuntimeError: ...``)."""


def _raised_text(traceback_text: str, most: int = 600) -> str:
    """The exception a traceback ends with (its type and message), on one line."""
    lines = [line.strip() for line in traceback_text.strip().splitlines() if line.strip()]
    starts = [index for index, line in enumerate(lines) if _RAISED.match(line)]
    text = " ".join(lines[starts[-1] :] if starts else lines[-6:])
    return text if len(text) <= most else text[: most - 3] + "..."


def _stop(
    process: BaseProcess | None, conn: Connection | None, timeout: float, *, ask: bool = True
) -> None:
    """Ask a worker to stop (its ``cleanup()`` runs), wait ``timeout`` s, then kill it."""
    if process is not None and conn is not None:
        if ask and process.is_alive():
            with contextlib.suppress(OSError, ValueError):
                conn.send(None)
        process.join(timeout)
        if process.is_alive():
            process.kill()
            process.join(1.0)
        _wait_gone(process.pid, timeout)
    if conn is not None:
        conn.close()


def _wait_gone(pid: int | None, timeout: float) -> None:
    """Make sure a worker forked by a server that ended is gone too (killed after ``timeout``).

    Its exit code comes from its server; a server that ended reports none, so
    ``join`` returns while the worker may still run.
    """
    if pid is None or not _running(pid):
        return
    deadline = time.monotonic() + timeout
    while _running(pid) and time.monotonic() < deadline:
        time.sleep(0.005)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 1.0
    while _running(pid) and time.monotonic() < deadline:
        time.sleep(0.005)


def _running(pid: int) -> bool:
    """Whether process ``pid`` runs (a zombie, ended but not yet collected, does not)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            return stat.read().rsplit(b")", 1)[1].split()[0] != b"Z"
    except (OSError, IndexError):
        pass
    if sys.platform == "linux":
        return False
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    return True
