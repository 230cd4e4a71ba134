"""The fork server of a process-replicated stage: one clean process that forks its workers.

Starting a worker with ``spawn`` costs a fresh interpreter, the re-run of the
main script (its imports: NumPy, the framework, the model's libraries) and
the imports of the stage, per worker and again at each restart or recycle:
about 1 s on a busy 2-core machine. A :class:`WorkerServer` pays it once per
stage and early: it is started when the pipeline is parallelized, itself with
``spawn`` (so it is safe with threads and CUDA in the parent), imports the
worker's code and the stage's module (and the main script only when the
stage is defined there), then forks each worker from itself in milliseconds.

It speaks the standard library's forkserver protocol
(``multiprocessing.forkserver``: a Unix socket for fork requests, an "alive"
pipe whose end tells it to exit, the exit code of each worker reported back),
with a server of the stage's own, stopped when its last user lets go of it.
An exception that ends the server while it starts (the main script run
without ``if __name__ == "__main__":``) is written to a pipe the parent
reads, as :mod:`framescope.pipeline.replicas.worker_start` does for a spawned
worker.
"""

from __future__ import annotations

import contextlib
import gc
import io
import itertools
import logging
import os
import signal
import socket
import sys
import threading
import time
import traceback
from multiprocessing import (
    connection,
    context,
    popen_forkserver,
    reduction,
    resource_tracker,
    spawn,
    util,
)
from multiprocessing.forkserver import main as serve_forks
from multiprocessing.forkserver import read_signed
from typing import Any

from framescope.pipeline.replicas.worker_start import read_report

__all__ = ["ServedProcess", "WorkerServer", "available", "stage_modules"]

logger = logging.getLogger(__name__)

REPORT_LIMIT = 4000
"""The most characters of the server's start failure kept (its last ones)."""

WORKER_MODULE = "framescope.pipeline.replicas.child"
"""What every worker runs: imported by the server, so no worker imports it again."""

_PROGRAM = """import os, sys, traceback
try:
    {path}
    from multiprocessing.forkserver import main
    main({listener}, {alive}, {preload!r}, {main_path!r})
except BaseException as error:
    if not isinstance(error, SystemExit):
        os.write({report}, traceback.format_exc()[-{limit}:].encode(errors="replace"))
    raise
"""

_SERVERS: dict[int, WorkerServer] = {}
"""The servers that have users, by token: how a process being started finds its server."""

_tokens = itertools.count()


def _alive_ends() -> list[int]:
    """The "alive" pipe ends this process holds for its servers."""
    return [fd for server in list(_SERVERS.values()) if (fd := server._alive_w) is not None]


def available() -> bool:
    """Whether workers can be forked from a server here (not on Windows)."""
    return sys.platform != "win32"


def stage_modules(stage: object, stage_bytes: bytes) -> tuple[list[str], bool]:
    """The modules the server imports for ``stage``, and whether it needs the main script.

    The main script is needed when the pickled stage names ``__main__`` (the
    stage, or something it holds, is defined there).
    """
    module = getattr(stage, "__module__", None) or type(stage).__module__
    needs_main = b"__main__" in stage_bytes or module == "__main__"
    modules = [WORKER_MODULE]
    if isinstance(module, str) and module not in ("__main__", "__mp_main__", "builtins"):
        modules.append(module)
    return modules, needs_main


class WorkerServer:
    """A fork server for one stage's workers, running while it has users.

    Args:
        modules: what the server imports before it forks (the worker's code,
            the stage's module); one that does not import is left to the worker,
            which then reports it as it loads the stage.
        with_main: also import the main script (as ``__mp_main__``, the way
            ``spawn`` does), for a stage defined there; workers of a stage defined
            elsewhere never run it.
        fork: fork the server from this process (it then has all this process
            imported and holds what it has open) instead of spawning it; done only
            while no other thread runs here, else it is spawned.

    :meth:`acquire` starts it (a server that died is replaced), :meth:`release`
    stops it once no one holds it. It ends with this process in any case: it
    exits when the last copy of its "alive" pipe closes.
    """

    def __init__(self, modules: list[str], *, with_main: bool, fork: bool = False) -> None:
        self.token = next(_tokens)
        self.modules = list(modules)
        self.with_main = with_main
        self.fork = fork
        self._lock = threading.Lock()
        self._users = 0
        self._pid: int | None = None
        self._address: Any = None
        self._alive_w: int | None = None
        self._report_r: int | None = None
        self._exit_code: int | None = None
        self._failure = ""

    @property
    def pid(self) -> int | None:
        """The server process's id (None when none runs)."""
        return self._pid

    def acquire(self) -> None:
        """Hold the server, starting it when none runs."""
        with self._lock:
            self._ensure_running()
            self._users += 1
            _SERVERS[self.token] = self

    def release(self, timeout: float = 2.0) -> None:
        """Let go of it; the last user stops it (killed if it has not exited in ``timeout`` s)."""
        with self._lock:
            self._users = max(0, self._users - 1)
            if self._users == 0:
                _SERVERS.pop(self.token, None)
                self._stop(timeout)

    def halt(self) -> None:
        """End the server now (a start waiting on it returns with an error)."""
        pid = self._pid
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)

    def connect(self, fds: list[int]) -> tuple[int, int]:
        """Ask for a new worker; the ends to read its pid and exit code and to send it its data.

        Raises OSError or EOFError when the server cannot fork one (it ended).
        """
        with self._lock:
            self._ensure_running()
            address, alive = self._address, self._alive_w
        assert alive is not None
        with socket.socket(socket.AF_UNIX) as client:
            client.connect(address)
            parent_r, child_w = os.pipe()
            child_r, parent_w = os.pipe()
            try:
                tracker: Any = resource_tracker.getfd()
                reduction.sendfds(client, [child_r, child_w, alive, tracker, *fds])
            except BaseException:
                os.close(parent_r)
                os.close(parent_w)
                raise
            finally:
                os.close(child_r)
                os.close(child_w)
        return parent_r, parent_w

    def failure(self) -> tuple[int | None, str]:
        """Why the server ended, once it has: its exit code and what escaped its start ("")."""
        with self._lock:
            self._poll()
            return self._exit_code, self._failure

    # -- inside the lock -------------------------------------------------------------

    def _ensure_running(self) -> None:
        if self._pid is not None and self._poll():
            return
        self._close_fds()
        data = spawn.get_preparation_data("framescope-worker-server")  # refused while bootstrapping
        with socket.socket(socket.AF_UNIX) as listener:
            address = connection.arbitrary_address("AF_UNIX")  # type: ignore[attr-defined]
            listener.bind(address)
            if not util.is_abstract_socket_namespace(address):
                os.chmod(address, 0o600)
            listener.listen()
            alive_r, alive_w = os.pipe()
            report_r, report_w = os.pipe()
            ends = (listener.fileno(), alive_r, report_w)
            try:
                pid = self._fork(ends, (alive_w, report_r)) if self._may_fork() else None
                if pid is None:
                    pid = self._spawn(ends, data)
            except BaseException:
                os.close(alive_w)
                os.close(report_r)
                raise
            finally:
                os.close(alive_r)
                os.close(report_w)
        self._pid, self._address, self._alive_w, self._report_r = pid, address, alive_w, report_r
        self._exit_code, self._failure = None, ""

    def _may_fork(self) -> bool:
        if not self.fork:
            return False
        if threading.active_count() > 1:
            logger.warning(
                "start_method='fork': other threads run in this process, so the worker "
                "server is spawned instead (forking now could copy a lock another thread holds)"
            )
            return False
        return True

    def _spawn(self, ends: tuple[int, int, int], data: dict[str, Any]) -> int:
        """Start the server as a fresh interpreter that imports the stage; its process id."""
        listener, alive_r, report_w = ends
        main_path = data.get("init_main_from_path") if self.with_main else None
        preload = [*(["__main__"] if main_path else []), *self.modules]
        sys_path = data.get("sys_path")
        program = _PROGRAM.format(
            path=f"sys.path[:] = {sys_path!r}" if sys_path is not None else "pass",
            listener=listener,
            alive=alive_r,
            preload=preload,
            main_path=main_path,
            report=report_w,
            limit=REPORT_LIMIT,
        )
        exe: Any = spawn.get_executable()
        flags = util._args_from_interpreter_flags()  # type: ignore[attr-defined]
        pid: int = util.spawnv_passfds(exe, [exe, *flags, "-c", program], list(ends))
        return pid

    def _fork(self, ends: tuple[int, int, int], ours: tuple[int, int]) -> int:
        """Fork the server from this process (one thread runs here); its process id."""
        listener, alive_r, report_w = ends
        pid = os.fork()
        if pid:
            return pid
        code = 1
        try:  # the server: this process as it was, with this thread only
            for fd in (*ours, *_alive_ends()):  # else no server would see its end
                with contextlib.suppress(OSError):
                    os.close(fd)
            gc.freeze()  # what was here stays shared with this process, untouched

            serve_forks(listener, alive_r, [])
        except SystemExit:
            code = 0
        except BaseException:
            text = traceback.format_exc()[-REPORT_LIMIT:]
            with contextlib.suppress(OSError):
                os.write(report_w, text.encode(errors="replace"))
        finally:
            os._exit(code)

    def _poll(self) -> bool:
        """Whether the server runs; when it ended, collect its exit code and start failure."""
        pid = self._pid
        if pid is None:
            return False
        try:
            done, status = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            done, status = pid, 0
        if not done:
            return True
        self._pid = None
        self._exit_code = os.waitstatus_to_exitcode(status)
        self._failure = self._read_report()
        return False

    def _read_report(self) -> str:
        fd = self._report_r
        return "" if fd is None else read_report(fd)

    def _stop(self, timeout: float) -> None:
        """Close the alive pipe (it exits once its workers have), then wait, then kill."""
        if self._alive_w is not None:
            os.close(self._alive_w)
            self._alive_w = None
        deadline = time.monotonic() + timeout
        while self._poll() and time.monotonic() < deadline:
            time.sleep(0.005)
        if self._poll():
            self.halt()
            pid = self._pid
            if pid is not None:
                with contextlib.suppress(ChildProcessError):
                    os.waitpid(pid, 0)
                self._pid = None
        self._close_fds()

    def _close_fds(self) -> None:
        for fd in (self._alive_w, self._report_r):
            if fd is not None:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self._alive_w = self._report_r = None
        address, self._address = self._address, None
        if isinstance(address, str) and not util.is_abstract_socket_namespace(address):
            with contextlib.suppress(OSError):
                os.unlink(address)


class _ServedPopen(popen_forkserver.Popen):
    """The standard forkserver launch, through the stage's own server."""

    _fds: list[int]

    def _launch(self, process_obj: Any) -> None:
        server = _SERVERS[process_obj.server_token]
        prep_data = spawn.get_preparation_data(process_obj._name)
        if not process_obj.needs_main:  # the worker does not re-run the main script
            prep_data.pop("init_main_from_path", None)
            prep_data.pop("init_main_from_name", None)
        buffer = io.BytesIO()
        context.set_spawning_popen(self)
        try:
            reduction.dump(prep_data, buffer)
            reduction.dump(process_obj, buffer)
        finally:
            context.set_spawning_popen(None)
        self.sentinel, data_w = server.connect(self._fds)
        parent_w = os.dup(data_w)  # the worker's sign that this process lives
        close: Any = util.close_fds  # type: ignore[attr-defined]
        self.finalizer = util.Finalize(self, close, (parent_w, self.sentinel))
        with open(data_w, "wb", closefd=True) as pipe:
            pipe.write(buffer.getbuffer())
        self.pid = read_signed(self.sentinel)


class ServedProcess(context.ForkServerProcess):
    """A worker forked by a :class:`WorkerServer` (it must be held while this one starts).

    Args:
        server_token: the server's :attr:`WorkerServer.token`.
        needs_main: whether the worker must run the main script (its stage is defined there).
        **kwargs: as for :class:`multiprocessing.Process`.
    """

    def __init__(self, server_token: int, needs_main: bool, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.server_token = server_token
        self.needs_main = needs_main

    @staticmethod
    def _Popen(process_obj: Any) -> Any:  # noqa: N802 - the name multiprocessing calls
        return _ServedPopen(process_obj)
