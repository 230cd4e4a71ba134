"""Recording a running pipeline into a run file, off its frame loop.

A :class:`Recording` takes one snapshot of the pipeline per ``interval`` of
its clock, on a thread of its own (the snapshot every reader uses: the frame
loop does nothing more than it does for the live view), and appends what
happened since the last one: items completed, failed and dropped, each
stage's items and failures, the processing times of the items since then
(the stage's recent window holds them: up to the pipeline's ``window`` per
stage and interval, its newest), queue depths and CPU split, and each
source's frames. A recording made before the pipeline starts looks at
it every 50 ms until it does, and counts from the last look: nothing it
does is missed. Closing writes the final snapshot (frame traces included).
"""

from __future__ import annotations

import datetime
import logging
import os
import platform
import sys
import threading
import time
from pathlib import Path
from types import TracebackType
from typing import Any

from framescope._periodic import run_every
from framescope._validation import check_positive_seconds
from framescope._version import __version__
from framescope.clock import Clock
from framescope.pipeline.model.snapshot import PipelineSnapshot, StageSnapshot
from framescope.runs.runfile import FORMAT, VERSION, RunFile, existing_run
from framescope.statsnapshot import StatsSnapshot

__all__ = ["Recording", "record"]

logger = logging.getLogger(__name__)

_START_POLL_S = 0.05  # how often a pipeline not yet started is looked at
_PROBE_STEPS = 8000  # the machine probe's loop: about 0.3 ms of Python here


def _new_samples(stats: StatsSnapshot, before: int) -> list[int]:
    """The samples (ns) of ``stats`` since it had ``before``: its newest, up to its window."""
    new = stats.count - before
    if new <= 0 or not stats.samples:
        return []
    scale = 1e9 / stats.divisor
    return [round(value * scale) for value in stats.samples[-min(new, len(stats.samples)) :]]


def _probe_once() -> tuple[int, int]:
    start, start_cpu = time.perf_counter_ns(), time.thread_time_ns()
    total = 0
    for value in range(_PROBE_STEPS):
        total += value * value % 7
    return time.perf_counter_ns() - start, time.thread_time_ns() - start_cpu


def machine_probe() -> tuple[int, int]:
    """How long a fixed piece of Python work takes now: (wall ns, on-CPU ns), each the median of 3.

    Each interval of a recording carries one: a machine that runs code
    slower (a lower clock, a neighbour sharing its core or its caches, a
    host taking time from a virtual machine) shows it here as it shows in
    the stages, so ``compare(..., adjust=True)`` can tell the machine from
    the code. The wall time also counts waits for a core and for the
    interpreter lock the pipeline's threads hold; the on-CPU time (this
    thread's, from the system) does not, and is what a comparison uses. It
    costs about a millisecond a second.
    """
    readings = [_probe_once() for _ in range(3)]
    return sorted(r[0] for r in readings)[1], sorted(r[1] for r in readings)[1]


def _stage_part(
    stage: StageSnapshot, before: StageSnapshot | None, work: float | None
) -> dict[str, Any]:
    count_before = 0 if before is None else before.latency.count
    failures_before = 0 if before is None else before.failures
    part: dict[str, Any] = {
        "count": stage.latency.count - count_before,
        "failures": stage.failures - failures_before,
        "samples_ns": _new_samples(stage.latency, count_before),
    }
    if stage.queue_depth is not None:
        part["queue_depth"] = stage.queue_depth
    cpu = stage.cpu
    if cpu is not None:
        part["cpu"] = {"on_cpu": cpu.on_cpu, "waiting": cpu.waiting, "blocked": cpu.blocked}
    if stage.batch is not None and stage.batch.batches:
        part["batch_mean"] = stage.batch.items / stage.batch.batches
    if work is not None:  # the seconds its threads ran: with the items, its work per item
        part["on_cpu_s"] = work
    return part


def _structure(snapshot: PipelineSnapshot) -> list[dict[str, Any]]:
    return [
        {
            "key": stage.key,
            "stage": stage.stage,
            "working": stage.working,
            "replicas": stage.replicas,
            "executor": stage.executor,
            "queue_capacity": stage.queue_capacity,
            "batch": None if stage.batch is None else stage.batch.size,
        }
        for stage in snapshot.stages
        if stage.replica_of is None
    ]


def _check_joins(records: list[dict[str, Any]], pipeline: Any, path: Path) -> None:
    """ValueError when the run in ``records`` is another pipeline's (by name and stages)."""
    if not records:
        return
    header, snapshot = records[0], pipeline.snapshot()
    keys = [stage.key for stage in snapshot.stages if stage.replica_of is None and stage.working]
    recorded = [s.get("key") for s in header.get("stages", ()) if s.get("working", True)]
    if header.get("pipeline") != snapshot.pipeline or (keys and keys != recorded):
        raise ValueError(
            f"append: {str(path)!r} holds a run of pipeline {header.get('pipeline')!r} with "
            f"stages {recorded}; this is {snapshot.pipeline!r} with {keys}: record another "
            "version into a file of its own"
        )


class Recording:
    """A pipeline being recorded into a run file (see :func:`record`).

    ``close()`` (or leaving its ``with`` block) stops it and writes the
    final snapshot; it is also closed when the pipeline is cleaned up, if the
    pipeline was made with ``Pipeline(record=...)``.
    """

    def __init__(
        self,
        pipeline: Any,
        path: str | os.PathLike[str],
        *,
        interval: float = 1.0,
        label: str | None = None,
        max_intervals: int = 3600,
        append: bool = False,
    ) -> None:
        if not callable(getattr(pipeline, "snapshot", None)):
            raise TypeError(f"pipeline must have snapshot(), got {type(pipeline).__name__}")
        if not isinstance(path, (str, os.PathLike)):
            raise TypeError(f"path must be a file path, got {type(path).__name__}")
        if label is not None and not isinstance(label, str):
            raise TypeError(f"label must be a str or None, got {type(label).__name__}")
        if isinstance(max_intervals, bool) or not isinstance(max_intervals, int):
            raise TypeError(f"max_intervals must be an int, got {type(max_intervals).__name__}")
        if max_intervals < 4:
            raise ValueError(f"max_intervals must be at least 4, got {max_intervals}")
        if not isinstance(append, bool):
            raise TypeError(f"append must be a bool, got {type(append).__name__}")
        self.interval = check_positive_seconds(interval, "interval")
        self.pipeline = pipeline
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.append = append
        if append:  # not a run, or another pipeline's: an error here, not on its thread
            _check_joins(existing_run(self.path)[0], pipeline, self.path)
        # A path it cannot write fails here, not on its thread.
        with open(self.path, "ab" if append else "wb"):
            pass
        self._interval_ns = round(self.interval * 1e9)
        self.label = label
        self._max_intervals = max_intervals
        self._clock: Clock = pipeline.clock
        self._file: RunFile | None = None
        self._last: PipelineSnapshot | None = None
        self._cpu_seen: dict[str, float | None] = {}  # each stage's last on-CPU seconds
        self._start_ns = 0
        self._idle_ns: int | None = None  # last seen not started: the run counts from there
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self.failures = 0
        """Intervals that could not be written (logged; the recording goes on)."""
        self.take()  # a pipeline running already counts from now on; one not started, from now
        self._thread = threading.Thread(target=self._loop, name="framescope-record", daemon=True)
        self._thread.start()

    @property
    def intervals(self) -> int:
        """Interval records in the file now (after any compaction)."""
        return 0 if self._file is None else self._file.intervals

    def _loop(self) -> None:
        # Ticks of at most 50 ms until the pipeline starts, so its first items are not
        # missed; then one interval every `interval`.
        tick = min(self.interval, _START_POLL_S)
        run_every(
            self._clock,
            self._stop,
            tick,
            self._tick,
            what=f"recording {str(self.path)!r}",
            failed=self._failed,
        )

    def _tick(self) -> None:
        last = self._last
        due = last is None or self._clock.monotonic_ns() - last.taken_ns >= self._interval_ns
        if due:
            self.take()

    def _failed(self) -> None:
        self.failures += 1

    def take(self) -> bool:
        """Record the interval up to now (the recorder's thread does this every interval).

        False while the pipeline has not started (nothing is written yet).
        """
        snapshot = self.pipeline.snapshot()
        if snapshot.mode is None:
            self._idle_ns = snapshot.taken_ns
            return False
        with self._lock:
            if self._stop.is_set() and self._file is None:
                return False
            if self._file is None:
                self._begin(snapshot)
                return True
            assert self._last is not None
            self._file.write(self._interval(snapshot, self._last))
            self._last = snapshot
        return True

    def _begin(self, snapshot: PipelineSnapshot) -> None:
        load = os.getloadavg() if hasattr(os, "getloadavg") else None
        header = {
            "format": FORMAT,
            "version": VERSION,
            "framescope": __version__,
            "python": platform.python_version(),
            "platform": sys.platform,
            "host": {"cores": os.cpu_count(), "load": None if load is None else list(load)},
            "label": self.label,
            "pipeline": snapshot.pipeline,
            "mode": snapshot.mode,
            "debug": snapshot.debug,
            "interval": self.interval,
            "started": datetime.datetime.now(datetime.timezone.utc).isoformat(),
            "stages": _structure(snapshot),
            "sources": list(snapshot.sources),
        }
        self._file = RunFile(self.path, header, max_intervals=self._max_intervals)
        self._file.open(append=self.append)
        if self._idle_ns is None:  # recording a pipeline that ran already: from now on
            self._start_ns = snapshot.taken_ns
            self._last = snapshot
            return
        # Seen before it started: everything it did since counts, from that moment.
        start = PipelineSnapshot(snapshot.pipeline, StatsSnapshot(window=1), taken_ns=self._idle_ns)
        self._start_ns = self._idle_ns
        self._file.write(self._interval(snapshot, start))
        self._last = snapshot

    @property
    def _offset_s(self) -> float:
        return 0.0 if self._file is None else self._file.offset_s

    def _work(self, stage: StageSnapshot, before: StageSnapshot | None) -> float | None:
        """The seconds the stage's threads ran since its last reading (None: not known)."""
        if stage.key in self._cpu_seen:
            last = self._cpu_seen[stage.key]
        elif before is None or (before.cpu is None and before.latency.count == 0):
            last = 0.0  # not there before, or not yet at work: counted from its start
        else:
            last = None if before.cpu is None else before.cpu.on_cpu_s
        if stage.cpu is None:  # nothing read in its window: its total did not grow
            if last is not None:
                self._cpu_seen[stage.key] = last
            return None
        now = self._cpu_seen[stage.key] = stage.cpu.on_cpu_s
        if last is None:
            return None
        return now - last if now >= last else now  # it fell (a replica gone): counted anew

    def _interval(self, now: PipelineSnapshot, before: PipelineSnapshot) -> dict[str, Any]:
        earlier = {stage.key: stage for stage in before.stages}
        stages = {
            stage.key: _stage_part(
                stage, earlier.get(stage.key), self._work(stage, earlier.get(stage.key))
            )
            for stage in now.stages
            if stage.replica_of is None and stage.working
        }
        dropped = now.count("dropped") - before.count("dropped")
        return {
            "kind": "interval",
            "t": self._offset_s + (now.taken_ns - self._start_ns) / 1e9,
            "span": (now.taken_ns - before.taken_ns) / 1e9,
            "wall": None if now.wall_time is None else now.wall_time.isoformat(),
            "pipeline": {
                "completed": now.count("completed") - before.count("completed"),
                "failed": now.count("failed") - before.count("failed"),
                "dropped": dropped,
                "samples_ns": _new_samples(now.latency, before.latency.count),
            },
            "stages": stages,
            "sources": {
                name: {
                    "frames": source.frames
                    - (before.sources[name].frames if name in before.sources else 0),
                    "state": source.state.value,
                    "fps": source.fps,
                }
                for name, source in now.sources.items()
            },
            # Every interval: a run missing one is not adjusted.
            **dict(zip(("probe_ns", "probe_cpu_ns"), machine_probe(), strict=True)),
        }

    def close(self, timeout: float = 5.0) -> bool:
        """Record the last interval and the final snapshot; False if the thread outlived it."""
        self._stop.set()
        self._thread.join(timeout)
        with self._lock:
            if self._file is None:
                snapshot = self.pipeline.snapshot()
                if snapshot.mode is None:
                    return not self._thread.is_alive()
                self._begin(snapshot)
            assert self._file is not None
            assert self._last is not None
            final = self.pipeline.snapshot()
            records = []
            last = self._interval(final, self._last)
            # The moments after the pipeline's last item are not an interval of its work.
            worked = last["pipeline"]["completed"] or last["pipeline"]["failed"]
            if final.taken_ns > self._last.taken_ns and (
                worked or last["span"] >= self.interval / 2
            ):
                records.append(last)
            records.append({"kind": "end", "snapshot": final.to_dict()})
            self._file.close(*records)
        return not self._thread.is_alive()

    def __enter__(self) -> Recording:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


def record(
    pipeline: Any,
    path: str | os.PathLike[str],
    *,
    interval: float = 1.0,
    label: str | None = None,
    max_intervals: int = 3600,
    append: bool = False,
) -> Recording:
    """Record ``pipeline`` into the run file ``path`` while it runs (see :mod:`framescope.runs`).

    Every ``interval`` seconds of the pipeline's clock, on a thread of its
    own, what happened since: items, failures, drops, each stage's
    processing times, queue depths and CPU split. ``label`` names the run
    (a commit, a model version). Past ``max_intervals`` intervals the oldest
    half is merged two by two, so a run of days stays bounded. Use it as a
    context manager, or call ``close()`` when the run is over::

        with framescope.record(pipeline, "before.fsrun", label="v1.2"):
            for result in pipeline.run(frames):
                ...

    ``append=True`` adds this recording to the run already in ``path`` (a
    segment of it; a new file if there is none): on a shared machine, record
    the two versions you compare in turns, a short stretch each, appending
    each to its own file, and the machine's slow and fast minutes fall on
    both alike (docs: "Comparing on a noisy machine").
    """
    return Recording(
        pipeline, path, interval=interval, label=label, max_intervals=max_intervals, append=append
    )
