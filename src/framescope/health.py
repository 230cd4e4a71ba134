"""Health for container supervisors: a heartbeat file, and the check ``framescope health`` runs.

A :class:`Heartbeat` writes a small JSON file every ``interval`` seconds of
the pipeline's clock: the health verdict
(:func:`~framescope.pipeline.views.health.judge_health`, the one behind
``/healthz``), the pipeline's fps, frames and seconds since its last
result, the process id, and the same per source. Each write goes to a
temporary file in the same folder, renamed over the old one, so a reader
never sees half a file. :func:`check_heartbeat` is what
``framescope health FILE --max-age S`` runs: fresh and healthy, or why not.

Example::

    with Heartbeat(pipeline, "/tmp/framescope.json", interval=5):
        for result in pipeline.run({"cam1": cam1, "cam2": cam2}):
            ...

and in the Dockerfile: ``HEALTHCHECK CMD framescope health /tmp/framescope.json --max-age 15``.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from pathlib import Path
from types import TracebackType
from typing import Any

from framescope._files import replace_file
from framescope._periodic import run_every
from framescope._ratelimit import FULL, LogLimiter
from framescope._validation import check_positive_seconds
from framescope.clock import SYSTEM_CLOCK, TimeSource
from framescope.pipeline.model.snapshot import PipelineSnapshot
from framescope.pipeline.views.health import RECONNECT_LIMIT_S, Health, judge_health

__all__ = ["HEARTBEAT_FORMAT", "Heartbeat", "check_heartbeat", "heartbeat_data"]

logger = logging.getLogger(__name__)

HEARTBEAT_FORMAT = "framescope-heartbeat/1"
"""The ``format`` field of a heartbeat file."""


def heartbeat_data(snapshot: PipelineSnapshot, health: Health, *, pid: int) -> dict[str, Any]:
    """What a heartbeat file holds for ``snapshot`` judged as ``health``, as JSON-ready data.

    ``time`` is the wall time the snapshot was taken (Unix seconds; the
    check measures freshness from it), ``fps`` the pipeline's results a
    second over the last 5 s (falling to 0 within 5 s once results stop:
    ``StatsSnapshot.rate``), ``frames`` its completed items,
    ``last_frame_age`` the seconds since its last result (None: none yet).
    """
    now = snapshot.taken_ns
    latency = snapshot.latency
    last = latency.last_event_ns
    wall = snapshot.wall_time
    return {
        "format": HEARTBEAT_FORMAT,
        "time": None if wall is None else wall.timestamp(),
        "wall_time": None if wall is None else wall.isoformat(),
        "pid": pid,
        "pipeline": snapshot.pipeline,
        "status": health.status,
        "problems": [problem.to_dict() for problem in health.problems],
        "fps": latency.rate(now) if latency.count else 0.0,
        "frames": snapshot.count("completed"),
        "last_frame_age": None if last is None else max(0.0, (now - last) / 1e9),
        "sources": {
            name: {
                "state": source.state.value,
                "reason": source.reason,
                "fps": source.fps,
                "frames": source.frames,
                "last_frame_age": source.last_frame_age,
            }
            for name, source in snapshot.sources.items()
        },
    }


class Heartbeat:
    """Write a pipeline's health to ``path`` every ``interval`` seconds, on a thread of its own.

    The first file is written by :meth:`start`, the next ones every
    ``interval`` seconds of ``clock`` (the pipeline's own clock unless given,
    so a ``FakeClock`` drives it in tests). A write that fails (a full disk)
    is logged and counted in :attr:`write_errors`; the old file stays whole
    and the next interval tries again. :meth:`close` stops the thread and
    joins it; the file stays, and grows stale, which is what the check sees
    once the process has stopped.

    Args:
        pipeline: a ``Pipeline`` (or anything with ``snapshot()``).
        path: the file to write (its folder must exist).
        interval: seconds between writes (give ``--max-age`` a few of them).
        stall_after: seconds without a completed item, items inside, that
            make a stage stalled (as :meth:`Pipeline.diagnose` judges).
        reconnect_limit: seconds without a frame a ``reconnecting`` source may
            have and still be healthy.
        clock: where the interval and the file's time are read.

    Attributes:
        writes: files written so far.
        write_errors: writes that failed.
    """

    def __init__(
        self,
        pipeline: Any,
        path: str | os.PathLike[str],
        interval: float = 5.0,
        *,
        stall_after: float = 5.0,
        reconnect_limit: float = RECONNECT_LIMIT_S,
        clock: TimeSource | None = None,
    ) -> None:
        if not callable(getattr(pipeline, "snapshot", None)):
            raise TypeError(
                f"pipeline must be a Pipeline (with snapshot()), got {type(pipeline).__name__}"
            )
        if not isinstance(path, str | os.PathLike):
            raise TypeError(f"path must be a str or a path, got {type(path).__name__}")
        if clock is not None and not isinstance(clock, TimeSource):
            raise TypeError(f"clock must be a framescope Clock or None, got {type(clock).__name__}")
        self.pipeline = pipeline
        self.path = Path(path)
        self.interval = check_positive_seconds(interval, "interval")
        self.stall_after = check_positive_seconds(stall_after, "stall_after")
        self.reconnect_limit = check_positive_seconds(reconnect_limit, "reconnect_limit")
        own = getattr(pipeline, "clock", None)
        self._clock: TimeSource = (
            clock if clock is not None else own if isinstance(own, TimeSource) else SYSTEM_CLOCK
        )
        self.writes = 0
        self.write_errors = 0
        self._log_limit = LogLimiter(clock=self._clock)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __repr__(self) -> str:
        return f"Heartbeat({str(self.path)!r}, interval={self.interval:g})"

    def write(self) -> Health:
        """Take a snapshot, judge it and write the file now (atomically); returns the verdict."""
        snapshot = self.pipeline.snapshot()
        health = judge_health(
            snapshot, stall_after=self.stall_after, reconnect_limit=self.reconnect_limit
        )
        data = heartbeat_data(snapshot, health, pid=os.getpid())
        if data["time"] is None:  # a snapshot source without wall time: the clock's
            wall = self._clock.wall()
            data["time"], data["wall_time"] = wall.timestamp(), wall.isoformat()
        data["interval"] = self.interval
        body = json.dumps(data).encode()
        replace_file(self.path, body)
        self.writes += 1
        return health

    def _beat(self) -> None:
        try:
            self.write()
        except Exception as error:  # a full disk, a pipeline that cannot be read: next time
            self.write_errors += 1
            said = self._log_limit.check(type(error).__name__)
            if said == FULL:
                logger.error("heartbeat: cannot write %s", self.path, exc_info=True)
            elif said > 0:
                logger.error("heartbeat: %d more failed writes of %s: %s", said, self.path, error)

    def start(self) -> Heartbeat:
        """Write the first file now, then every ``interval`` on a thread (returns self).

        The first write raises what fails it (a folder that does not exist);
        a later one is logged and counted.
        """
        if self._thread is not None:
            return self
        self.write()
        self._thread = threading.Thread(
            target=run_every,
            args=(self._clock, self._stop, self.interval, self._beat),
            kwargs={"what": f"heartbeat {self.path}"},
            name=f"framescope-heartbeat-{self.path.name}",
        )
        self._thread.start()
        return self

    def close(self, timeout: float = 2.0) -> bool:
        """Stop writing, join the thread and write the file a last time (the state at the end).

        Returns False if the thread outlived ``timeout`` seconds. A last write
        that fails is counted and logged like any later one. The file then
        goes stale, as it should once nothing watches the pipeline.
        """
        if self._stop.is_set():
            return self._thread is None or not self._thread.is_alive()
        self._stop.set()
        thread = self._thread
        if thread is None:
            return True
        thread.join(timeout)
        stopped = not thread.is_alive()
        if stopped:
            self._beat()
        return stopped

    def __enter__(self) -> Heartbeat:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


def check_heartbeat(path: str | os.PathLike[str], max_age: float, now: float) -> tuple[bool, str]:
    """Whether the heartbeat file at ``path`` is fresh and healthy, and one line saying so.

    Fresh: its ``time`` is at most ``max_age`` seconds before ``now`` (Unix
    seconds). Not fresh, not readable, not a heartbeat file, or unhealthy:
    False, with why.
    """
    max_age = check_positive_seconds(max_age, "max_age")
    try:
        data = json.loads(Path(path).read_bytes())
    except OSError as error:
        return False, f"cannot read {path}: {error.strerror or error}"
    except ValueError as error:
        return False, f"{path} is not a heartbeat file: {error}"
    if not isinstance(data, dict) or data.get("format") != HEARTBEAT_FORMAT:
        return False, f"{path} is not a heartbeat file (no format {HEARTBEAT_FORMAT!r})"
    written = data.get("time")
    if isinstance(written, bool) or not isinstance(written, int | float):
        return False, f"{path} is not a heartbeat file (no time)"
    age = now - written
    if age > max_age:
        pid = data.get("pid")
        return False, f"stale: written {age:.1f} s ago (more than {max_age:g} s) by pid {pid}"
    if data.get("status") != "ok":
        return False, _unhealthy_line(data)
    fps = data.get("fps")
    shown = f"{fps:.1f} fps" if isinstance(fps, int | float) else "fps unknown"
    return True, f"ok: {data.get('pipeline')}, {shown}, written {max(age, 0.0):.1f} s ago"


def _unhealthy_line(data: dict[str, Any]) -> str:
    problems = data.get("problems")
    said = []
    for problem in problems if isinstance(problems, list) else []:
        if isinstance(problem, dict):
            said.append(
                f"{problem.get('kind')} {problem.get('name')} {problem.get('state')} "
                f"({problem.get('reason')})"
            )
    return "unhealthy: " + ("; ".join(said) or f"status {data.get('status')!r}")
