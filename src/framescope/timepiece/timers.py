"""Timers: :class:`Ticker` (time between events) and :class:`StopWatch` (time inside a block).

The hot path of every timer only reads the monotonic clock and appends a record to
a pending list; records are folded in bulk (:mod:`framescope.folds`)
into the statistics engine (:class:`~framescope.stats.RollingStats`), when the
list grows long or when somebody reads the timer. Reading a timer from another thread is safe: the
fold takes a lock that the per-sample path never touches, and a record appended
while a fold runs is kept for the next one.
"""

from __future__ import annotations

import functools
import itertools
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from types import TracebackType
from typing import Any, ClassVar, TypeVar

from framescope._buffers import take_prefix
from framescope._validation import check_positive_int
from framescope.clock import SYSTEM_CLOCK, Clock, TimeSource
from framescope.folds import durations, intervals
from framescope.histogram import DEFAULT_LATENCY_BUCKETS
from framescope.stats import MAX_WINDOW, RollingStats, StatsSnapshot
from framescope.timepiece.timer_snapshot import MAX_REPR_INTERVALS, TimerSnapshot, format_timer

__all__ = [
    "MAX_REPR_INTERVALS",
    "BaseTimer",
    "CallableName",
    "Intervals",
    "StopWatch",
    "Ticker",
    "TimerSnapshot",
    "timed_by",
]

_F = TypeVar("_F", bound=Callable[..., Any])

FOLD_AT = 4096
"""Pending records that trigger a fold on the recording thread (bounds memory)."""


class Intervals(tuple[float, ...]):
    """A timer's remembered intervals: a tuple with ``maxlen``, ``copy()`` and ``clear()``."""

    maxlen: int
    _reset: Callable[[], None] | None

    def __new__(
        cls, values: Iterable[float], maxlen: int, reset: Callable[[], None] | None = None
    ) -> Intervals:
        made = super().__new__(cls, values)
        made.maxlen = maxlen
        made._reset = reset
        return made

    def copy(self) -> deque[float]:
        """The intervals as a new deque of the same ``maxlen`` (as Backpack's ``copy()``)."""
        return deque(self, maxlen=self.maxlen)

    def clear(self) -> None:
        """Forget the timer's intervals: :meth:`BaseTimer.reset` (this tuple stays as it is)."""
        if self._reset is not None:
            self._reset()


class BaseTimer:
    """Common base of :class:`Ticker` and :class:`StopWatch`.

    A timer remembers its ``max_intervals`` most recent intervals; ``min() max()
    mean() sum() len() freq() median() stddev() percentile(q)`` describe those, and
    return 0.0 when there is none. :meth:`statistics` adds the exact all-time
    aggregates. All values are in seconds.

    Args:
        max_intervals: how many recent intervals to remember (1 to 10_000_000).
        clock: where to read the time; the system clock by default.
    """

    _RECORD_WIDTH: ClassVar[int] = 1
    MAX_REPR_INTERVALS: ClassVar[int] = MAX_REPR_INTERVALS
    """At most this many intervals show in the repr (Backpack's name)."""

    def __init__(self, max_intervals: int = 10, *, clock: Clock | None = None) -> None:
        check_positive_int(max_intervals, "max_intervals", maximum=MAX_WINDOW)
        if clock is None:
            clock = SYSTEM_CLOCK
        elif not isinstance(clock, TimeSource):
            raise TypeError(
                f"clock must provide monotonic_ns() and wall(), got {type(clock).__name__}"
            )
        self._clock = clock
        self._now = clock.monotonic_ns
        self._stats = RollingStats(max_intervals, divisor=1e9)
        self._pending: list[int] = []
        self._fold_lock = threading.Lock()

    @property
    def clock(self) -> Clock:
        """The clock this timer reads."""
        return self._clock

    @property
    def max_intervals(self) -> int:
        """How many recent intervals the timer remembers."""
        return self._stats.window

    def _absorb(self, records: list[int]) -> None:
        """Turn a batch of raw records into samples of ``self._stats`` (lock held)."""
        raise NotImplementedError

    def _fold(self) -> None:
        with self._fold_lock:
            self._fold_locked()

    def _fold_locked(self) -> None:
        pending = self._pending
        n = len(pending)
        n -= n % self._RECORD_WIDTH  # a record still being written stays for the next fold
        if n:
            self._absorb(take_prefix(pending, n))

    def keep_distribution(self) -> None:
        """Count every interval recorded from now on on the fixed latency grid (cumulative).

        Exporters call this; ``statistics().distribution`` then holds the
        counts, and each exporter sums them into its own buckets, so several
        exporters with different buckets can share one timer. Pipelines keep
        one on every stage timer from the start. Calling again does nothing.
        """
        with self._fold_lock:
            self._fold_locked()
            self._stats.keep_distribution()

    def track_histogram(self, bounds: Sequence[float] = DEFAULT_LATENCY_BUCKETS) -> None:
        """Count every interval recorded from now on into cumulative buckets (seconds).

        Exporters call this (a Prometheus histogram needs counts that only
        grow); ``statistics().histogram`` then holds the counts. The buckets
        are filled when records are folded, off the measuring path, and survive
        ``statistics(reset=True)``.
        """
        with self._fold_lock:
            self._fold_locked()
            self._stats.track_histogram(bounds)

    def statistics(self, *, reset: bool = False) -> StatsSnapshot:
        """Return the full :class:`~framescope.stats.StatsSnapshot`, all-time aggregates included.

        With ``reset=True`` the timer is reset in the same step, so that taking
        statistics period after period reports every sample exactly once.
        """
        with self._fold_lock:
            self._fold_locked()
            snapshot = self._stats.snapshot()
            if reset:
                self._stats.reset()
            return snapshot

    def total_seconds(self) -> float:
        """The sum of every interval recorded so far, in seconds (all time; cheap to read)."""
        with self._fold_lock:
            self._fold_locked()
            return self._stats.total()

    def snapshot(self) -> TimerSnapshot:
        """Return an immutable :class:`TimerSnapshot` of the remembered intervals."""
        return TimerSnapshot.of_window(self.statistics(), type(self).__name__, self._name())

    def _name(self) -> str | None:
        """The name shown in reprs and snapshots (StopWatch has one)."""
        return None

    @property
    def intervals(self) -> Intervals:
        """The remembered intervals in seconds, most recent last (a read-only tuple).

        Backpack's was the timer's own ``deque``: this answers ``maxlen``,
        ``copy()`` (a deque) and ``clear()`` (which resets the timer) too.
        """
        with self._fold_lock:
            self._fold_locked()
            return Intervals(self._stats.recent_values(), self._stats.window, self.reset)

    def min(self) -> float:
        """Shortest remembered interval in seconds (0.0 when empty)."""
        return self.snapshot().min()

    def max(self) -> float:
        """Longest remembered interval in seconds (0.0 when empty)."""
        return self.snapshot().max()

    def mean(self) -> float:
        """Mean of the remembered intervals in seconds (0.0 when empty)."""
        return self.snapshot().mean()

    def sum(self) -> float:
        """Sum of the remembered intervals in seconds."""
        return self.snapshot().sum()

    def len(self) -> int:
        """Number of remembered intervals."""
        return len(self.intervals)

    def freq(self) -> float:
        """``1 / mean()`` in Hz over the remembered intervals, as Backpack's (0.0 if none).

        For a Ticker that is the tick rate (two ticks 0.5 s apart: 2.0 Hz);
        for a StopWatch, how many of the timed blocks fit in a second (10 ms
        blocks: 100.0 Hz, however often they run). ``snapshot().freq()`` is
        the same number.
        """
        return self.snapshot().freq()

    def median(self) -> float:
        """Median of the remembered intervals in seconds."""
        return self.statistics().median()

    def stddev(self) -> float:
        """Sample standard deviation of the remembered intervals in seconds."""
        return self.statistics().stddev()

    def percentile(self, q: float) -> float:
        """The ``q``-th percentile (0-100) of the remembered intervals in seconds."""
        return self.statistics().percentile(q)

    def reset(self) -> None:
        """Forget every interval and aggregate (the timer keeps running)."""
        with self._fold_lock:
            self._fold_locked()
            self._stats.reset()

    def __repr__(self) -> str:
        return format_timer(type(self).__name__, self._name(), self.snapshot()) + ">"


class Ticker(BaseTimer):
    """Measures the time between successive calls of :meth:`tick`.

    The first tick only starts the clock; every later tick records the interval
    since the previous one. Use it in a frame loop to learn the frame period::

        ticker = Ticker(max_intervals=5)
        for frame in frames:
            ticker.tick()
            process(frame)
        print(ticker)
        # <Ticker intervals=[0.0899, 0.0632, 0.0543, 0.0713, 0.0681] min=0.0543 ...>

    :meth:`reset` forgets the intervals but not the last tick, so the next tick
    still records the interval that ends with it. Ticking one ticker from
    several threads at once is not supported (reading it from others is):
    give each thread its own.

    Args:
        max_intervals: how many recent intervals to remember (1 to 10_000_000).
        clock: where to read the time; the system clock by default.
    """

    def __init__(self, max_intervals: int = 10, *, clock: Clock | None = None) -> None:
        super().__init__(max_intervals, clock=clock)
        self._last_tick: int | None = None
        self._recorder = itertools.chain.from_iterable(self._recording_batches())
        if type(self).tick is Ticker.tick:  # a subclass's own tick() stays in charge
            # Every tick is one C call: the chain reads the clock and appends the
            # reading without a Python frame (a frame cost about a fifth of a
            # tick). After FOLD_AT readings it resumes _recording_batches,
            # which folds them and hands it the next batch.
            self.tick = self._recorder.__next__  # type: ignore[method-assign]

    def tick(self) -> None:
        """Register an event now."""
        next(self._recorder)

    def _recording_batches(self) -> Iterator[Iterator[None]]:
        """Endless batches of FOLD_AT clock readings appended to the pending list, folded after."""
        now = self._now
        while True:
            yield map(self._pending.append, itertools.islice(iter(now, None), FOLD_AT))
            self._fold()

    def tick_at(self, timestamp_ns: int) -> None:
        """Register an event at a monotonic time (ns) the caller already read.

        Timestamps must come from this ticker's clock and must not go backwards.
        """
        pending = self._pending
        pending.append(timestamp_ns)
        if len(pending) >= FOLD_AT:
            self._fold()

    def _absorb(self, records: list[int]) -> None:
        if self._last_tick is None:
            self._last_tick = records[0]
            records = records[1:]
            if not records:
                return
        self._stats.add_batch(intervals(self._last_tick, records, self._stats.window))
        self._last_tick = records[-1]


def timed_by(block: AbstractContextManager[Any], func: _F) -> _F:
    """Wrap ``func`` so that every call runs inside ``block`` (a re-enterable timer).

    The wrapper keeps ``func``'s name and docstring and returns its result.
    """
    if not callable(func):
        raise TypeError(f"measure expects a callable, got {type(func).__name__}")

    @functools.wraps(func)
    def timed(*args: Any, **kwargs: Any) -> Any:
        with block:
            return func(*args, **kwargs)

    return timed  # type: ignore[return-value]


class CallableName(str):
    """A ``str`` that also returns itself when called.

    ``StopWatch.full_name`` is one, so both spellings users write work:
    ``watch.full_name`` and ``watch.full_name()``.
    """

    __slots__ = ()

    def __call__(self) -> str:
        return str(self)


class StopWatch(BaseTimer):
    """Measures how long a block of code takes, as a tree of named watches.

    Use it as a context manager (the same watch can be entered again in every
    iteration, or even nested in itself) or decorate a function with
    :meth:`measure`. :meth:`child` creates or returns a named sub-watch::

        with StopWatch('root') as root:
            with root.child('decode'):
                decode()
            with root.child('infer'):
                infer()
        print(root)   # the whole tree, one watch per line

    Entering and leaving a watch from several threads at once is not supported:
    give each thread its own watch (or child).

    Args:
        name: the watch's name (a non-empty str).
        max_intervals: how many recent intervals to remember (1 to 10_000_000).
        clock: where to read the time; the system clock by default.
    """

    _RECORD_WIDTH: ClassVar[int] = 2  # start, end

    def __init__(self, name: str, max_intervals: int = 10, *, clock: Clock | None = None) -> None:
        if not isinstance(name, str):
            raise TypeError(f"name must be a str, got {type(name).__name__}")
        if not name:
            raise ValueError("name must be a non-empty str")
        super().__init__(max_intervals, clock=clock)
        self.name: str = name
        self.parent: StopWatch | None = None
        self.children: dict[str, StopWatch] = {}
        self._start: int | None = None  # the innermost open block's start
        self._outer_starts: list[int] = []  # blocks of this watch open around it

    def _name(self) -> str:
        return self.name

    def __enter__(self) -> StopWatch:
        """Start timing a block; returns the watch itself."""
        if self._start is not None:  # entered again inside itself
            self._outer_starts.append(self._start)
        self._start = self._now()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        """Stop timing the innermost open block and record its duration."""
        end = self._now()
        start = self._start
        if start is None:
            raise RuntimeError(f"StopWatch {self.name!r} was exited more times than it was entered")
        pending = self._pending
        pending.extend((start, end))  # one call: a pair is never split (a signal, a thread)
        self._start = self._outer_starts.pop() if self._outer_starts else None
        if len(pending) >= FOLD_AT:
            self._fold()

    def record(self, start_ns: int, end_ns: int) -> None:
        """Record a block that was timed elsewhere, from its start and end readings (ns).

        The readings must come from this watch's clock. Safe to call from one
        thread while others read the watch.
        """
        pending = self._pending
        pending.extend((start_ns, end_ns))  # one call: a pair is never split
        if len(pending) >= FOLD_AT:
            self._fold()

    def raw_recording(self) -> tuple[Callable[[tuple[int, int]], None], Callable[[], None]]:
        """``(add, settle)`` for a hot loop that records many blocks timed elsewhere.

        ``add((start_ns, end_ns))`` records one block, as :meth:`record` does
        but without a call of its own (one C call: the pair is never split);
        the readings must be this watch's clock's. ``settle()`` folds what
        waits once there is enough of it: call it at least once every 1,000
        blocks or so, it is what keeps the memory bounded. The same rule as
        :meth:`record`: one writing thread, any number of readers.
        """
        pending = self._pending

        def settle() -> None:
            if len(pending) >= FOLD_AT:
                self._fold()

        return pending.extend, settle

    def _absorb(self, records: list[int]) -> None:
        stats = self._stats
        stats.add_batch(durations(records, stats.window, ordered=stats.keeps_distribution))

    def measure(self, func: _F) -> _F:
        """Decorate ``func`` so that every call is timed by this watch.

        The wrapper returns what ``func`` returns, and records the call's duration
        even when it raises (the exception propagates unchanged).
        """
        return timed_by(self, func)

    def child(self, name: str, max_intervals: int | None = None) -> StopWatch:
        """Return the child watch called ``name``, creating it when it does not exist.

        A new child remembers ``max_intervals`` intervals (the parent's setting when
        None) and reads the parent's clock. An existing child is returned as it is.
        """
        existing = self.children.get(name)
        if existing is not None:
            return existing
        child = type(self)(
            name,
            self.max_intervals if max_intervals is None else max_intervals,
            clock=self._clock,
        )
        child.parent = self
        self.children[name] = child
        return child

    def parents(self) -> Iterator[StopWatch]:
        """Yield the parent, the grandparent, ... up to the root."""
        current = self.parent
        while current is not None:
            yield current
            current = current.parent

    @property
    def full_name(self) -> CallableName:
        """The dotted path from the root, e.g. ``root.task1.subtask1_1``.

        Works both as an attribute and called as ``full_name()``.
        """
        family = [self.name, *(p.name for p in self.parents())]
        return CallableName(".".join(reversed(family)))

    @property
    def level(self) -> int:
        """The number of parents (0 for a root watch)."""
        return sum(1 for _ in self.parents())

    def walk(self) -> Iterator[StopWatch]:
        """Yield this watch and every descendant, depth first, in creation order."""
        yield self
        for child in self.children.values():
            yield from child.walk()

    def _repr_lines(self, depth: int) -> str:
        indent = "    " * depth
        line = indent + format_timer(type(self).__name__, self.name, self.snapshot())
        if not self.children:
            return line + ">"
        inner = ",\n".join(c._repr_lines(depth + 1) for c in self.children.values())
        return f"{line} children=[\n{inner}\n{indent}]>"

    def __repr__(self) -> str:
        return self._repr_lines(0)
