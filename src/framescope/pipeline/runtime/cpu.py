"""Where the stages' time goes: on a CPU, waiting for one, or blocked; and how busy the machine is.

A stage's worker thread (or a process replica's worker process) is, at any
instant, running on a CPU, runnable but waiting on a run queue (the machine
is oversubscribed), or sleeping: on I/O, a lock, the interpreter lock, or its
input queue. The kernel keeps the first two for every thread (on Linux in
``/proc/<pid>/task/<tid>/schedstat``); the third, inside the stage's calls, is
the stage's busy time less the other two.

:class:`CpuAccounting` reads a :class:`CpuSource` for every tracked thread or
process and for the machine at most every :data:`MIN_GAP_S`, never per item
(the aggregator's drains with debugging on, and every snapshot), and turns
the deltas over the recent :data:`WINDOW_S` into a :class:`CpuSplit` per
stage and per replica and a :class:`MachineLoad`. Where the kernel reports
only a thread's CPU time, the waiting and blocked shares are None (unknown),
never guessed.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from framescope._periodic import run_every
from framescope.clock import TimeSource
from framescope.pipeline.model.cpu import CpuSplit, MachineLoad

__all__ = [
    "MIN_GAP_S",
    "WINDOW_S",
    "CpuAccounting",
    "CpuSampler",
    "CpuSource",
    "CpuSplit",
    "FakeCpuSource",
    "MachineLoad",
    "MachineTimes",
    "ProcCpuSource",
    "TaskTimes",
    "ThreadClockCpuSource",
    "default_cpu_source",
]

logger = logging.getLogger(__name__)

WINDOW_S = 5.0
"""Seconds of readings the shares describe (the same span as a stage's rate)."""
MIN_GAP_S = 0.25
"""Readings closer together than this are skipped (a snapshot taken in a tight loop reads once)."""


@dataclass(frozen=True, slots=True)
class TaskTimes:
    """One thread's (or process's) scheduler accounting so far, in nanoseconds.

    ``waiting_ns`` is the time it was runnable but not running (None where
    the system does not report it).
    """

    on_cpu_ns: int
    waiting_ns: int | None


@dataclass(frozen=True, slots=True)
class MachineTimes:
    """The machine's accounting so far: busy and total CPU time over all cores, load, this process.

    ``busy_ticks``/``total_ticks`` are None where the system does not report
    them; ``process_cpu_s`` is this process's CPU time (all its threads).
    """

    busy_ticks: int | None
    total_ticks: int | None
    load1: float | None
    process_cpu_s: float


class CpuSource(Protocol):
    """Where scheduler accounting is read: the kernel (:func:`default_cpu_source`) or a fake."""

    cores: int | None

    def thread(self, thread: threading.Thread) -> TaskTimes | None:
        """The accounting of one thread of this process (None: not readable, e.g. ended)."""

    def process(self, pid: int) -> TaskTimes | None:
        """The accounting of a child process, all its threads (None: not readable)."""

    def machine(self) -> MachineTimes:
        """The machine's accounting."""


def _schedstat(path: str) -> TaskTimes | None:
    try:
        with open(path, "rb") as file:
            fields = file.read().split()
        return TaskTimes(int(fields[0]), int(fields[1]))
    except (OSError, ValueError, IndexError):
        return None


def _load1() -> float | None:
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):
        return None


def usable_cpus() -> list[int] | None:
    """The CPUs this process may run on (its affinity; None where the system does not say)."""
    getaffinity = getattr(os, "sched_getaffinity", None)
    if getaffinity is None:
        return None
    try:
        return sorted(getaffinity(0))
    except OSError:
        return None


class ProcCpuSource:
    """Linux: ``/proc/self/task/<tid>/schedstat`` per thread, ``/proc/stat`` for the machine.

    The machine is the CPUs this process may run on (its affinity, e.g.
    under ``taskset``): ``cores`` counts them and their lines of
    ``/proc/stat`` give how busy they are, whatever else runs there. A
    container's CPU quota (cgroup ``cpu.max``) is not taken into account.
    """

    def __init__(self, proc: str = "/proc") -> None:
        self._cpus = usable_cpus()
        self.cores = len(self._cpus) if self._cpus else os.cpu_count()
        self._proc = proc
        self._tick_ns = 1e9 / os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 1e7

    def thread(self, thread: threading.Thread) -> TaskTimes | None:
        """The thread's time on a CPU and on a run queue (None once it ended)."""
        if thread.native_id is None:
            return None
        return _schedstat(f"{self._proc}/self/task/{thread.native_id}/schedstat")

    def process(self, pid: int) -> TaskTimes | None:
        """The process's CPU time (its threads, ended ones too) and its live threads' waiting."""
        try:
            with open(f"{self._proc}/{pid}/stat", "rb") as file:
                stat = file.read()
            tasks = os.listdir(f"{self._proc}/{pid}/task")
            # The fields after the command's closing parenthesis: utime and stime are 12 and 13.
            fields = stat[stat.rindex(b")") + 2 :].split()
            on_cpu = round((int(fields[11]) + int(fields[12])) * self._tick_ns)
        except (OSError, ValueError, IndexError):
            return None
        waiting = 0
        for task in tasks:
            times = _schedstat(f"{self._proc}/{pid}/task/{task}/schedstat")
            if times is not None:
                waiting += times.waiting_ns or 0
        return TaskTimes(on_cpu, waiting)

    def machine(self) -> MachineTimes:
        """``/proc/stat``'s lines of the usable CPUs: busy is everything but idle and I/O wait."""
        busy = total = None
        try:
            with open(f"{self._proc}/stat", "rb") as file:
                lines = file.read().split(b"\n")
            wanted = None if self._cpus is None else {b"cpu%d" % cpu for cpu in self._cpus}
            busy = total = 0
            for line in lines:
                parts = line.split()
                if not parts or not parts[0].startswith(b"cpu"):
                    continue
                if (parts[0] != b"cpu") if wanted is None else (parts[0] not in wanted):
                    continue
                values = [int(value) for value in parts[1:9]]
                spent = values[0] + values[1] + values[2] + values[5] + values[6] + values[7]
                busy += spent
                total += spent + values[3] + values[4]  # idle, iowait
        except (OSError, ValueError, IndexError):
            busy = total = None
        return MachineTimes(busy, total, _load1(), time.process_time())


class ThreadClockCpuSource:
    """Where there is no ``/proc``: a thread's CPU time from its CPU clock; the rest unknown."""

    def __init__(self) -> None:
        self.cores = os.cpu_count()

    def thread(self, thread: threading.Thread) -> TaskTimes | None:
        """The thread's CPU time (waiting unknown); None where it cannot be read."""
        getclock = getattr(time, "pthread_getcpuclockid", None)
        if getclock is None or thread.ident is None or not thread.is_alive():
            return None
        try:
            return TaskTimes(time.clock_gettime_ns(getclock(thread.ident)), None)
        except Exception:  # the thread may end between the check and the reading
            return None

    def process(self, pid: int) -> TaskTimes | None:
        """Not readable here: None."""
        return None

    def machine(self) -> MachineTimes:
        """Load average where the system has one; machine-wide CPU time unknown."""
        return MachineTimes(None, None, _load1(), time.process_time())


def default_cpu_source() -> CpuSource:
    """The kernel's accounting: ``/proc`` where it reports threads, else thread CPU clocks."""
    if Path(f"/proc/self/task/{threading.get_native_id()}/schedstat").exists():
        return ProcCpuSource()
    return ThreadClockCpuSource()


class FakeCpuSource:
    """Scheduler accounting set by a test: thread times by stage key, processes by pid.

    ``set(key, on_cpu=..., waiting=...)`` gives the cumulative seconds of the
    worker thread of stage (or replica) ``key``, or of a process when ``key``
    is a pid; ``set_rates(key, on_cpu=..., waiting=...)`` makes them grow at
    those shares of the ``clock``'s time from now on (a FakeClock drives
    them). ``set_machine``/``set_machine_rate`` do the same for the machine's
    busy CPU time over all ``cores``. What was never set reads as None
    (unknown).
    """

    def __init__(self, cores: int = 4, *, clock: TimeSource | None = None) -> None:
        self.cores: int | None = cores
        self._clock = clock
        self._fixed: dict[str | int, TaskTimes] = {}
        self._rates: dict[str | int, tuple[int, TaskTimes, float, float | None]] = {}
        # Busy and total CPU seconds, the busy share they grow at, since when (ns).
        self._machine: tuple[float, float, float, int | None] = (0.0, 0.0, 0.0, None)
        self._load1: float | None = None
        self._process_cpu = 0.0
        self._lock = threading.Lock()

    def _now(self) -> int:
        if self._clock is None:
            raise RuntimeError("FakeCpuSource needs clock= for rates")
        return self._clock.monotonic_ns()

    def set(self, key: str | int, *, on_cpu: float, waiting: float | None = 0.0) -> None:
        """Set the cumulative seconds on a CPU and waiting of stage ``key``'s thread (or a pid)."""
        times = TaskTimes(round(on_cpu * 1e9), None if waiting is None else round(waiting * 1e9))
        with self._lock:
            self._rates.pop(key, None)
            self._fixed[key] = times

    def forget(self, key: str | int) -> None:
        """From now on ``key`` reads as not known (a thread the system no longer reports)."""
        with self._lock:
            self._fixed.pop(key, None)
            self._rates.pop(key, None)

    def set_rates(self, key: str | int, *, on_cpu: float, waiting: float | None = 0.0) -> None:
        """From now on, ``key``'s times grow at these shares of the clock's time."""
        now = self._now()
        with self._lock:
            start = self._current(key, now) or TaskTimes(0, 0)
            self._fixed.pop(key, None)
            self._rates[key] = (now, start, on_cpu, waiting)

    def _current(self, key: str | int, now: int) -> TaskTimes | None:
        fixed = self._fixed.get(key)
        if fixed is not None:
            return fixed
        rate = self._rates.get(key)
        if rate is None:
            return None
        since, start, on_cpu, waiting = rate
        elapsed = now - since
        wait = None
        if waiting is not None and start.waiting_ns is not None:
            wait = start.waiting_ns + round(elapsed * waiting)
        return TaskTimes(start.on_cpu_ns + round(elapsed * on_cpu), wait)

    def set_machine(
        self, *, busy: float, total: float, load1: float | None = None, process: float = 0.0
    ) -> None:
        """Set the machine's cumulative busy and total CPU seconds (all cores) and its load."""
        with self._lock:
            self._machine = (busy, total, 0.0, None)
            self._load1, self._process_cpu = load1, process

    def set_machine_rate(self, busy: float, *, load1: float | None = None) -> None:
        """From now on, the machine's cores are busy this share of the clock's time."""
        now = self._now()
        with self._lock:
            done, total = self._machine_seconds(now)
            self._machine = (done, total, busy, now)
            self._load1 = load1

    def _machine_seconds(self, now: int) -> tuple[float, float]:
        busy, total, share, since = self._machine
        if since is None:
            return busy, total
        elapsed = (now - since) / 1e9 * (self.cores or 1)
        return busy + elapsed * share, total + elapsed

    def thread(self, thread: threading.Thread) -> TaskTimes | None:
        """What was set for the thread's key (its name without ``framescope:``)."""
        now = self._now() if self._clock is not None else 0
        with self._lock:
            return self._current(thread.name.removeprefix("framescope:"), now)

    def process(self, pid: int) -> TaskTimes | None:
        """What was set for ``pid``."""
        now = self._now() if self._clock is not None else 0
        with self._lock:
            return self._current(pid, now)

    def machine(self) -> MachineTimes:
        """What was set with :meth:`set_machine` or :meth:`set_machine_rate`."""
        now = self._now() if self._clock is not None else 0
        with self._lock:
            busy, total = self._machine_seconds(now)
            load1, process = self._load1, self._process_cpu
        return MachineTimes(round(busy * 100), round(total * 100), load1, process)


TaskReader = Callable[[], "tuple[object, TaskTimes | None]"]
"""Reads one tracked task now: an identity (a thread, a pid) and its times."""

Point = tuple[int, float, float, float | None, float]
"""One reading's deltas: (taken_ns, seconds covered, on CPU, waiting or None, busy)."""


class _Track:
    """The readings of one tracked thread or process, and its all-time totals."""

    def __init__(self, read: TaskReader, busy_s: Callable[[], float]) -> None:
        self.read, self.busy_s = read, busy_s
        self.points: deque[Point] = deque()
        self.last: tuple[object, TaskTimes | None, float, int] | None = None
        self.totals = [0.0, 0.0, 0.0]  # on CPU, waiting, blocked (s)
        # Busy time arrives when a call ends, on-CPU time while it runs: blocked time is
        # the running difference, never taken per reading (a long call would count twice).
        self.unexplained = 0.0
        self.known_waiting = True

    def take(self, now_ns: int) -> None:
        identity, times = self.read()
        busy = self.busy_s()
        last, self.last = self.last, (identity, times, busy, now_ns)
        if times is None or last is None or last[1] is None or now_ns <= last[3]:
            return
        if last[0] != identity:  # a new worker process: its first reading is its baseline
            return
        previous = last[1]
        on_cpu = max(0, times.on_cpu_ns - previous.on_cpu_ns) / 1e9
        waiting = None
        if times.waiting_ns is not None and previous.waiting_ns is not None:
            waiting = max(0, times.waiting_ns - previous.waiting_ns) / 1e9
        else:
            self.known_waiting = False
        busy_delta = max(0.0, busy - last[2])
        self.points.append((now_ns, (now_ns - last[3]) / 1e9, on_cpu, waiting, busy_delta))
        self.totals[0] += on_cpu
        if waiting is not None:
            self.totals[1] += waiting
            self.unexplained += busy_delta - on_cpu - waiting
            self.totals[2] = max(self.totals[2], self.unexplained)  # only ever grows

    def trim(self, now_ns: int, window_ns: int) -> None:
        while self.points and now_ns - self.points[0][0] >= window_ns:
            self.points.popleft()


class CpuAccounting:
    """Samples a :class:`CpuSource` for the tracked threads and processes and the machine.

    ``track(key, read, busy_s)`` adds a task: ``read()`` gives its identity and
    :class:`TaskTimes`, ``busy_s()`` the seconds its stage has spent in calls
    so far. :meth:`sample` reads everything (at most every ``min_gap_s``);
    :meth:`split` and :meth:`machine` describe the last ``window_s``.
    """

    def __init__(
        self,
        source: CpuSource,
        now_ns: Callable[[], int],
        *,
        window_s: float = WINDOW_S,
        min_gap_s: float = MIN_GAP_S,
    ) -> None:
        self.source = source
        self._now_ns = now_ns
        self._window_ns = round(window_s * 1e9)
        self._gap_ns = round(min_gap_s * 1e9)
        self._tracks: dict[str, _Track] = {}
        self._machine: deque[tuple[int, MachineTimes]] = deque()
        self._last_ns: int | None = None
        self._lock = threading.Lock()
        self.sample(force=True)

    @property
    def last_reading_ns(self) -> int | None:
        """When the last reading was taken (the clock's monotonic time)."""
        return self._last_ns

    def track(self, key: str, read: TaskReader, busy_s: Callable[[], float]) -> None:
        """Follow one worker thread or process, whose stage (or replica) is ``key``."""
        with self._lock:
            track = self._tracks[key] = _Track(read, busy_s)
            track.take(self._now_ns())

    def track_thread(self, key: str, thread: threading.Thread, busy_s: Callable[[], float]) -> None:
        """Follow a worker thread of this process."""
        source = self.source
        self.track(key, lambda: (thread, source.thread(thread)), busy_s)

    def track_process(
        self, key: str, pid: Callable[[], int | None], busy_s: Callable[[], float]
    ) -> None:
        """Follow a worker process whose pid may change (a restarted or recycled worker)."""
        source = self.source

        def read() -> tuple[object, TaskTimes | None]:
            current = pid()
            return current, None if current is None else source.process(current)

        self.track(key, read, busy_s)

    def sample(self, *, force: bool = False, gap_s: float | None = None) -> bool:
        """Read every tracked task and the machine (unless read less than ``min_gap_s`` ago).

        ``gap_s``: a shorter gap for this call (a snapshot wants figures up to
        its instant, not up to the last periodic reading).
        """
        gap = self._gap_ns if gap_s is None else min(self._gap_ns, round(gap_s * 1e9))
        with self._lock:
            now = self._now_ns()
            if not force and self._last_ns is not None and now - self._last_ns < gap:
                return False
            self._last_ns = now
            for key, track in self._tracks.items():
                try:
                    track.take(now)
                except Exception:  # one unreadable task must not cost the others their reading
                    logger.exception("reading the CPU accounting of %r failed", key)
                track.trim(now, self._window_ns)
            machine = self._machine
            machine.append((now, self.source.machine()))
            while len(machine) > 2 and now - machine[1][0] >= self._window_ns:
                machine.popleft()
            return True

    def split(self, keys: list[str]) -> CpuSplit | None:
        """The split of the tasks ``keys`` together (a stage's replicas; None: nothing read)."""
        with self._lock:
            tracks = [self._tracks[key] for key in keys if key in self._tracks]
            if not tracks or not any(track.points for track in tracks):
                return None
            return _split(tracks)

    def machine(self) -> MachineLoad:
        """The machine's load over the window."""
        with self._lock:
            (start, first), (end, last) = self._machine[0], self._machine[-1]
        wall = (end - start) / 1e9
        busy = process = None
        if wall > 0:
            process = max(0.0, (last.process_cpu_s - first.process_cpu_s) / wall)
            busy = _busy_share(first, last)
        return MachineLoad(self.source.cores, wall, busy, last.load1, process)


class CpuSampler:
    """A thread that reads ``accounting`` every :data:`MIN_GAP_S` of ``clock``'s time.

    A threaded pipeline without debugging runs one, so the shares describe
    the last :data:`WINDOW_S` whenever a snapshot is taken (with debugging,
    the aggregator reads after its drains). :meth:`stop` ends it.
    """

    def __init__(self, accounting: CpuAccounting, clock: TimeSource, name: str) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=run_every,
            args=(clock, self._stop, MIN_GAP_S, accounting.sample),
            kwargs={"what": "reading the CPU accounting"},
            name=f"framescope:{name}:cpu",
        )

    def start(self) -> None:
        """Start reading."""
        self._thread.start()

    def stop(self, timeout: float | None) -> bool:
        """Stop; True when the thread ended within ``timeout`` s."""
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout)
        return not self._thread.is_alive() or self._thread is threading.current_thread()


def _busy_share(first: MachineTimes, last: MachineTimes) -> float | None:
    if first.busy_ticks is None or last.busy_ticks is None:
        return None
    if first.total_ticks is None or last.total_ticks is None:
        return None
    total = last.total_ticks - first.total_ticks
    if total <= 0:
        return None
    return min(1.0, max(0.0, (last.busy_ticks - first.busy_ticks) / total))


def _split(tracks: list[_Track]) -> CpuSplit:
    read = [track for track in tracks if track.points]  # a replica not read says nothing
    points = [point for track in read for point in track.points]
    known = all(track.known_waiting for track in read)
    wall = sum(point[1] for point in points)
    # Per thread (a process replica: per worker, whose threads may keep several cores busy).
    on_cpu = sum(point[2] for point in points) / wall
    waiting = sum(point[3] or 0.0 for point in points) / wall
    busy = min(1.0, sum(point[4] for point in points) / wall)
    totals = [sum(track.totals[index] for track in tracks) for index in range(3)]
    return CpuSplit(
        window_s=wall / len(read),
        threads=len(read),
        busy=busy,
        on_cpu=on_cpu,
        waiting=waiting if known else None,
        blocked=max(0.0, busy - on_cpu - waiting) if known else None,
        on_cpu_s=totals[0],
        waiting_s=totals[1] if known else None,
        blocked_s=totals[2] if known else None,
        series=_series(points, known),
    )


def _series(
    points: list[Point], known: bool
) -> tuple[tuple[int, float, float | None, float | None], ...]:
    """Per reading (all tracks are read at one instant): the shares of its interval."""
    by_time: dict[int, list[float]] = {}
    for taken, covered, on_cpu, waiting, busy in points:
        sums = by_time.setdefault(taken, [0.0, 0.0, 0.0, 0.0])
        sums[0] += covered
        sums[1] += on_cpu
        sums[2] += waiting or 0.0
        sums[3] += busy
    series = []
    for taken in sorted(by_time):
        covered, on_cpu, waiting, busy = by_time[taken]
        if covered <= 0:
            continue
        on_share, wait_share = on_cpu / covered, waiting / covered
        blocked = max(0.0, min(1.0, busy / covered) - on_share - wait_share)
        series.append((taken, on_share, wait_share if known else None, blocked if known else None))
    return tuple(series)
