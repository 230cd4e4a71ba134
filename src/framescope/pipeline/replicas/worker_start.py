"""Starting a replica's worker process so that a failure while it starts can be told.

A ``spawn`` worker first re-runs the parent's main script (as
``__mp_main__``), then loads the stage. When the script starts a pipeline at
module level, without ``if __name__ == "__main__":``, that re-run fails in the
worker and the parent only saw "exit code 1". Here the worker's bootstrap is
wrapped: an exception that escapes it is written (its last lines) to a pipe
the parent reads once the worker has ended (:meth:`ReportingProcess.start_failure`).
The worker's own output still goes where the parent's does.
"""

from __future__ import annotations

import contextlib
import io
import os
from multiprocessing import context, popen_spawn_posix, reduction, resource_tracker, spawn, util
from typing import Any

__all__ = ["ReportingProcess", "read_report"]

REPORT_LIMIT = 4000
"""The most characters of the worker's start failure kept (its last ones)."""

_WRAPPER = """import os, traceback
try:
    {call}
except BaseException as error:
    if not isinstance(error, SystemExit):
        os.write({fd}, traceback.format_exc()[-{limit}:].encode(errors="replace"))
    raise
"""


class _ReportingPopen(popen_spawn_posix.Popen):
    """The standard ``spawn`` launch, with the bootstrap wrapped to report its failure."""

    report_fd: int | None = None
    _fds: list[int]  # set by the standard Popen: the descriptors the worker inherits

    def _launch(self, process_obj: Any) -> None:
        tracker_fd: Any = resource_tracker.getfd()
        self._fds.append(tracker_fd)
        prep_data = spawn.get_preparation_data(process_obj._name)
        buffer = io.BytesIO()
        context.set_spawning_popen(self)
        try:
            reduction.dump(prep_data, buffer)
            reduction.dump(process_obj, buffer)
        finally:
            context.set_spawning_popen(None)
        parent_r = child_w = child_r = parent_w = report_r = report_w = None
        try:
            parent_r, child_w = os.pipe()
            child_r, parent_w = os.pipe()
            report_r, report_w = os.pipe()
            cmd = spawn.get_command_line(tracker_fd=tracker_fd, pipe_handle=child_r)
            self._fds.extend([child_r, child_w, report_w])
            cmd = _wrapped(cmd, report_w)
            executable: Any = spawn.get_executable()
            self.pid = util.spawnv_passfds(executable, cmd, self._fds)
            self.sentinel = parent_r
            self.report_fd, report_r = report_r, None
            with open(parent_w, "wb", closefd=False) as pipe:
                pipe.write(buffer.getbuffer())
        finally:
            to_close = [fd for fd in (parent_r, parent_w, self.report_fd) if fd is not None]
            self.finalizer = util.Finalize(self, _close_fds, to_close)
            for fd in (child_r, child_w, report_w, report_r):
                if fd is not None:
                    os.close(fd)


def _close_fds(*fds: int) -> None:
    for fd in fds:
        os.close(fd)


def _wrapped(cmd: list[str], report_fd: int) -> list[str]:
    """The spawn command line with its ``-c`` program inside the reporting wrapper."""
    if "-c" not in cmd:  # a frozen executable: no program to wrap
        return cmd
    at = cmd.index("-c") + 1
    prefix = "from multiprocessing.spawn import spawn_main; "
    call = cmd[at].removeprefix(prefix)
    program = prefix + "\n" + _WRAPPER.format(call=call, fd=report_fd, limit=REPORT_LIMIT)
    return [*cmd[:at], program, *cmd[at + 1 :]]


class ReportingProcess(context.SpawnProcess):
    """A ``spawn`` process whose start failure can be read once it has ended."""

    @staticmethod
    def _Popen(process_obj: Any) -> Any:  # noqa: N802 - the name multiprocessing calls
        return _ReportingPopen(process_obj)

    def start_failure(self) -> str:
        """What escaped the worker's bootstrap (the traceback's end), or "" if nothing did.

        Read it after the process has ended: until then the pipe may still be written.
        """
        popen = getattr(self, "_popen", None)
        fd = getattr(popen, "report_fd", None)
        if fd is None or self.exitcode is None:
            return ""
        return read_report(fd)


def read_report(fd: int) -> str:
    """Everything written to the report pipe ``fd`` so far, as text (it is not waited for)."""
    chunks = []
    with contextlib.suppress(OSError):
        os.set_blocking(fd, False)
        while chunk := os.read(fd, 65536):
            chunks.append(chunk)
    return b"".join(chunks).decode(errors="replace")
