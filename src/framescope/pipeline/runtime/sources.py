"""A many-source run: a thread per source, their merge into one pipeline, and their health.

``Pipeline.run({"cam1": ..., "cam2": ...})`` makes one :class:`SourceFeeds`.
Each source is read on its own thread (``framescope:<pipeline>:source:<name>``),
which tags each item with the source's name and puts it into a small shared
:class:`Merge` (one place a source); the pipeline's feeder takes from it.
A source whose thread waits to put an item in is held back by the pipeline;
one whose thread waits inside ``next()`` has nothing to give.

The states (:class:`~framescope.pipeline.model.sources.SourceState`) change
in one place, :meth:`SourceFeeds.move`. A source's thread moves it to
``running`` when a frame comes, to ``ended`` or ``failed`` when its iterator
stops; the watcher thread (``framescope:<pipeline>:sources``) judges, every
``check_every`` seconds of the pipeline's clock, the states that need time:
``blocked`` (waiting to put for a whole round), ``stalled`` (waiting inside
``next()`` for ``stall_after`` seconds, after the warm-up, whether or not the
source says it is reconnecting meanwhile), ``reconnecting`` (the source's
``reconnecting`` attribute is true, before that) and the way back from
``blocked``. So a source that never returns from ``next()`` is judged stalled
within ``stall_after + check_every`` of its last frame (a dropped stream that
is seen at once is ``reconnecting`` first), and a source held by the pipeline
is never judged stalled: it is not inside ``next()``.

Stopping closes each source still being read that has a ``close()`` (a
``VideoSource``), so that a thread waiting on the network for a frame ends.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from framescope._periodic import run_every
from framescope._ratelimit import FULL, LogLimiter
from framescope._waits import Deadline
from framescope.capture import RECEIVED, Stamps, stamps_of
from framescope.clock import Clock
from framescope.pipeline.errors import StageError, describe_error
from framescope.pipeline.model.sources import (
    FINAL_STATES,
    FPS_WINDOW_S,
    Sourced,
    SourceSnapshot,
    SourceState,
    SourceTransition,
)
from framescope.pipeline.runtime.latency import LatencyRecorder
from framescope.pipeline.runtime.quality import QualityLedger, Totals

__all__ = ["FPS_WINDOW_S", "HISTORY_KEPT", "Merge", "SourceFeeds", "SourceHealth", "check_sources"]

logger = logging.getLogger(__name__)

_FPS_WINDOW_NS = round(FPS_WINDOW_S * 1e9)

# A source is blocked once it waited to hand frames over for half a watcher
# round (in one wait or many short ones), and running again below a quarter.
_BLOCKED_FROM = 0.5
_UNBLOCKED_BELOW = 0.25

HISTORY_KEPT = 256
"""The changes of state kept per source for the trace (bounded: a source runs for days)."""

_ARRIVALS_KEPT = 1024
"""The arrival times kept per source for its frame rate (bounded: a source runs for days)."""

_REVIVED_BY_A_FRAME = frozenset(
    {SourceState.STARTING, SourceState.STALLED, SourceState.RECONNECTING}
)

_LEVELS = {
    SourceState.DEGRADED: logging.WARNING,
    SourceState.STALLED: logging.WARNING,
    SourceState.FAILED: logging.ERROR,
    SourceState.RECONNECTING: logging.WARNING,
}

OnSourceState = Callable[[SourceTransition], object]


def check_sources(sources: object) -> dict[str, Iterable[Any]]:
    """``sources`` as a dict of names to iterables; TypeError/ValueError naming what is wrong."""
    if not isinstance(sources, Mapping):
        raise TypeError(f"sources must be a mapping of names to iterables, got {sources!r}")
    if not sources:
        raise ValueError("sources must name at least one source, got an empty mapping")
    checked: dict[str, Iterable[Any]] = {}
    for name, source in sources.items():
        if not isinstance(name, str) or not name:
            raise TypeError(f"sources: each name must be a non-empty str, got {name!r}")
        if not isinstance(source, Iterable):
            raise TypeError(
                f"sources[{name!r}] must be an iterable of items, got {type(source).__name__}"
            )
        checked[name] = source
    return checked


def _stall_reason(source: object, silent_ns: int, reconnecting: bool) -> str:
    """Why a source is stalled: how long no frame came, and its reconnects' last error."""
    reason = f"no frame for {silent_ns / 1e9:.3g} s"
    if not reconnecting:
        return reason
    error = getattr(source, "last_error", None)
    return f"{reason}; reconnecting" + (f" after {error}" if isinstance(error, str) else "")


def tag(item: Any, name: str, stamps: Stamps | None = None) -> Any:
    """``item`` carrying its source's name (and ``stamps``, where it has none of its own).

    An item with a ``source`` attribute (a video ``Frame``) gets the name in
    it (and a frame that did not say when it was captured the time it was
    received, clock ``received``); any other item (or one whose ``source``
    cannot be set) is wrapped in a :class:`Sourced`.
    """
    if isinstance(item, Sourced):
        return Sourced(name, item.item, item.stamps or stamps)
    if hasattr(item, "source"):
        try:
            item.source = name
            if stamps is not None and stamps_of(item) is None:
                item.stamps = stamps
                if getattr(item, "capture_clock", None) is None:  # a frame that did not say
                    item.capture_time, item.capture_clock = stamps.capture_time, RECEIVED
        except (AttributeError, TypeError):
            return Sourced(name, item, stamps)
        return item
    return Sourced(name, item, stamps)


def stamp(item: Any, clock: Clock, received_ns: int, sink: LatencyRecorder) -> Stamps:
    """The stamps ``item`` reports to ``sink``: its own (a ``VideoSource`` frame's) or new ones.

    New ones are read on ``clock`` and take the item's ``capture_time`` and
    ``capture_clock`` where it has them (a frame made by the user's own
    source), else the moment it was received (clock ``received``).
    """
    stamps = stamps_of(item)
    if stamps is None:
        capture = getattr(item, "capture_time", None)
        kind = getattr(item, "capture_clock", None)
        known = isinstance(capture, float | int) and isinstance(kind, str)
        # The wall clock only for a frame (its capture time, or when it was
        # received): an item of another kind has no use for it.
        wall = clock.wall().timestamp() if known or hasattr(item, "capture_clock") else 0.0
        stamps = Stamps(
            clock.monotonic_ns,
            capture_time=float(capture) if known else wall,  # type: ignore[arg-type]
            capture_clock=kind if known else RECEIVED,  # type: ignore[arg-type]
            received_wall=wall,
            received_ns=received_ns,
        )
    stamps.sink = sink
    return stamps


class SourceHealth:
    """One source's live state and counters.

    Its counters have one writer each (its thread: ``frames``, its times; the
    pipeline's feeder: ``refused``; the reader of the results: ``results``,
    ``failed``; a stop, under ``lock``: ``unfed``); the state changes under
    ``lock``, through :meth:`SourceFeeds.move`.
    """

    def __init__(self, name: str, source: Iterable[Any], now_ns: int) -> None:
        self.name = name
        self.source = source
        self.lock = threading.Lock()
        self.state = SourceState.STARTING
        self.since_ns = now_ns
        self.reason: str | None = None
        self.transitions: dict[str, int] = {}
        # its latest changes, (when, state entered), for the trace's track of it
        self.history: deque[tuple[int, SourceState]] = deque(
            [(now_ns, SourceState.STARTING)], maxlen=HISTORY_KEPT
        )
        self.callback_errors = 0
        self.frames = 0
        self.refused = 0  # items the pipeline refused (its overflow policy)
        self.unfed = 0  # items a stop of the run left between the source and the pipeline
        self.failed = 0
        self.results = 0
        self.last_frame_ns: int | None = None
        self.arrivals: deque[int] = deque(maxlen=_ARRIVALS_KEPT)
        self.waiting_since: int | None = None  # inside next() since then
        self.putting_since: int | None = None  # waiting for the pipeline to take a frame
        self.put_wait_ns = 0  # all the time it waited to put, up to its last put
        self.seen_put_wait_ns = 0  # what the watcher's last round read of it
        self.read_ns = 0  # all the time spent inside next(), up to its last frame
        # (time, frames, read_ns) at the watcher's rounds over the last FPS_WINDOW_S
        self.rate_marks: deque[tuple[int, int, int]] = deque()
        self.rate_restart = False  # set when it comes back: the window starts again
        self.quality = QualityLedger(now_ns)  # under lock
        self.latency = LatencyRecorder()  # its items' age split, from capture to glass

    def got_frame(self, now_ns: int) -> None:
        """A frame came (its thread)."""
        with self.lock:  # read_ns and frames move together (own_rate reads both)
            waiting = self.waiting_since
            if waiting is not None:
                self.read_ns += max(0, now_ns - waiting)
            self.waiting_since = None
            self.frames += 1
        self.last_frame_ns = now_ns
        self.arrivals.append(now_ns)

    def own_rate(self, now_ns: int) -> float | None:
        """Frames a second of its own time (inside ``next()``) over the last :data:`FPS_WINDOW_S`.

        Time it waited for the pipeline to take a frame does not count, so a
        source held back is not slow. None until a whole window was watched,
        and while no time was spent reading. The watcher calls it every round.
        """
        with self.lock:
            waiting = self.waiting_since
            read = self.read_ns + (0 if waiting is None else max(0, now_ns - waiting))
            frames = self.frames
            restart, self.rate_restart = self.rate_restart, False
        marks = self.rate_marks
        if restart:  # back from starting, stalled or reconnecting: its silence is not its rate
            marks.clear()
        marks.append((now_ns, frames, read))
        while len(marks) > 1 and marks[1][0] <= now_ns - _FPS_WINDOW_NS:
            marks.popleft()
        since, frames_then, read_then = marks[0]
        if now_ns - since < _FPS_WINDOW_NS or read <= read_then:
            return None
        return (frames - frames_then) / ((read - read_then) / 1e9)

    def totals(self) -> Totals:
        """Its running totals for the quality ledger."""
        reconnects = getattr(self.source, "reconnects", 0)
        return Totals(
            self.frames,
            self.refused + self.unfed,
            reconnects if isinstance(reconnects, int) else 0,
        )

    def nominal_fps(self) -> float | None:
        """The rate the source says it has (``fps``: a video stream's, a synthetic source's)."""
        fps = getattr(self.source, "fps", None)
        if isinstance(fps, bool) or not isinstance(fps, (int, float)) or not fps > 0:
            return None
        return float(fps)

    def fps(self, now_ns: int) -> float | None:
        """Frames a second over the last :data:`FPS_WINDOW_S` (None before a second frame)."""
        if self.frames < 2:
            return None
        start = now_ns - _FPS_WINDOW_NS
        recent = [t for t in tuple(self.arrivals) if t > start]
        if len(recent) < 2:
            return 0.0 if not recent else None
        return (
            (len(recent) - 1) / ((recent[-1] - recent[0]) / 1e9) if recent[-1] > recent[0] else None
        )

    def read(self, now_ns: int) -> SourceSnapshot:
        """Its snapshot at ``now_ns``."""
        nominal = self.nominal_fps()
        with self.lock:
            state, since_ns, reason = self.state, self.since_ns, self.reason
            transitions = dict(self.transitions)
            history = tuple(self.history)
            self.quality.account(now_ns, state, self.totals())
            quality = self.quality.read(nominal)
        last = self.last_frame_ns
        reconnects = getattr(self.source, "reconnects", 0)
        return SourceSnapshot(
            name=self.name,
            state=state,
            since=max(0, now_ns - since_ns) / 1e9,
            reason=reason,
            frames=self.frames,
            dropped=self.refused + self.unfed,
            failed=self.failed,
            results=self.results,
            fps=self.fps(now_ns),
            reconnects=reconnects if isinstance(reconnects, int) else 0,
            last_frame_age=None if last is None else max(0, now_ns - last) / 1e9,
            transitions=transitions,
            history=history,
            callback_errors=self.callback_errors,
            quality=quality,
            latency=self.latency.read(),
        )


class Merge:
    """The bounded queue the sources' threads put their items into and the feeder takes from.

    :meth:`take` raises StopIteration once every source is done and nothing
    is left, or once it is closed; :meth:`close` wakes every waiting thread
    (a blocked :meth:`put` returns False: the item was not taken).
    """

    def __init__(self, capacity: int, sources: int) -> None:
        self._items: deque[tuple[SourceHealth, Any]] = deque()
        self._capacity = capacity
        self._open = sources
        self._closed = False
        lock = threading.Lock()
        self._not_empty = threading.Condition(lock)
        self._not_full = threading.Condition(lock)

    def put(self, health: SourceHealth, item: Any) -> bool:
        """Put one item in, waiting for room; False when it was closed meanwhile."""
        with self._not_full:
            while len(self._items) >= self._capacity and not self._closed:
                self._not_full.wait()
            if self._closed:
                return False
            self._items.append((health, item))
            self._not_empty.notify()
        return True

    def take(self) -> tuple[SourceHealth, Any]:
        """The next item and its source; StopIteration when there will be none."""
        with self._not_empty:
            while not self._items and self._open and not self._closed:
                self._not_empty.wait()
            if self._closed or not self._items:
                raise StopIteration
            entry = self._items.popleft()
            self._not_full.notify()
        return entry

    def source_done(self) -> None:
        """One source will put no more."""
        with self._not_empty:
            self._open -= 1
            self._not_empty.notify_all()

    def close(self) -> list[tuple[SourceHealth, Any]]:
        """Stop taking and giving; return what was left inside."""
        with self._not_empty:
            self._closed = True
            left, self._items = list(self._items), deque()
            self._not_empty.notify_all()
            self._not_full.notify_all()
        return left

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._closed


class SourceFeeds:
    """The threads that read a many-source run's sources, their merge, and their health.

    Args:
        pipeline: the pipeline's name (in thread names and log lines).
        sources: the sources by name.
        clock: the pipeline's clock: every state change is timed on it, and the
            watcher's rounds wait on it.
        stall_after: seconds inside ``next()`` after which a source is stalled.
        warmup: seconds from the start during which no source is judged stalled.
        min_fps: a source whose own rate (:meth:`SourceHealth.own_rate`) is
            below it is ``degraded`` (None: never).
        on_source_state: called with each :class:`SourceTransition`, on the
            thread that made it (a source's or the watcher's); what it raises
            is logged and counted (``callback_errors``), never passed on.
    """

    def __init__(
        self,
        pipeline: str,
        sources: Mapping[str, Iterable[Any]],
        clock: Clock,
        *,
        stall_after: float,
        warmup: float,
        min_fps: float | None = None,
        on_source_state: OnSourceState | None = None,
    ) -> None:
        self.pipeline = pipeline
        self.min_fps = min_fps
        self.clock = clock
        self.stall_after_ns = round(stall_after * 1e9)
        self.check_every = min(0.25, stall_after / 4)
        self._check_ns = round(self.check_every * 1e9)
        start = clock.monotonic_ns()
        self._warm_at = start + round(warmup * 1e9)
        self.healths = {name: SourceHealth(name, source, start) for name, source in sources.items()}
        self.merge = Merge(len(self.healths), len(self.healths))
        self._on_state = on_source_state
        self._stop = threading.Event()
        self._started = False
        self._log_limit = LogLimiter(clock=clock)
        self.rounds = 0  # watcher rounds done (tests wait for one)
        self._last_round_ns = start
        self._threads = [
            threading.Thread(
                target=self._read,
                args=(health,),
                name=f"framescope:{pipeline}:source:{name}",
                daemon=True,  # it runs the user's iterator, which may never return
            )
            for name, health in self.healths.items()
        ]
        self._watcher = threading.Thread(
            target=run_every,
            args=(clock, self._stop, self.check_every, self.check),
            kwargs={"what": f"pipeline {pipeline!r}: the sources' watcher"},
            name=f"framescope:{pipeline}:sources",
        )

    def start(self) -> None:
        """Start the watcher and a thread per source."""
        self._started = True
        self._watcher.start()
        for thread in self._threads:
            thread.start()

    @property
    def running(self) -> bool:
        """Whether it was started and not stopped yet."""
        return self._started and not self._stop.is_set()

    def __iter__(self) -> Iterator[tuple[SourceHealth, Any]]:
        return self

    def __next__(self) -> tuple[SourceHealth, Any]:
        """The next item of any source, with its source (StopIteration once all are done).

        The feeder hands it to the pipeline next: its stamps say it went in now.
        """
        entry = self.merge.take()
        stamps = stamps_of(entry[1])
        if stamps is not None:
            stamps.mark_in()
        return entry

    def feeder(self, submit: Callable[..., bool]) -> Callable[[tuple[SourceHealth, Any]], None]:
        """The feeder's step for each item: submit it; a refusal is its source's drop."""

        def deliver(entry: tuple[SourceHealth, Any]) -> None:
            health, item = entry
            if not submit(item, raise_now=False, wait=True):
                health.refused += 1  # the overflow policy's drop, counted pipeline-wide too

        return deliver

    def ended(self, close_input: Callable[[], None]) -> Callable[[], None]:
        """What the feeder does when the merge ends: close the input, unless the run was stopped."""

        def on_end() -> None:
            if not self.merge.closed:
                close_input()

        return on_end

    def counted(self, results: Iterator[Any]) -> Iterator[Any]:
        """``results``, each counted for the source it names (a stage error too, as it passes)."""
        healths = self.healths
        while True:
            try:
                result = next(results)
            except StopIteration:
                return
            except StageError as error:
                name = getattr(error.item, "source", None)
                if isinstance(name, str) and name in healths:
                    healths[name].failed += 1
                raise
            name = getattr(result, "source", None)
            if isinstance(name, str) and name in healths:
                health = healths[name]
                health.results += 1
                stamps = stamps_of(result)
                if stamps is None:
                    health.latency.untimed()
                else:
                    stamps.mark_out()
            yield result

    # -- a source's thread -----------------------------------------------------------

    def _read(self, health: SourceHealth) -> None:
        now = self.clock.monotonic_ns
        stopped = True  # unless its iterator ends or fails: the run was stopped
        try:
            health.waiting_since = now()
            iterator = iter(health.source)
            while not self._stop.is_set():
                health.waiting_since = now()
                item = next(iterator)
                t_got = now()
                stamps = stamp(item, self.clock, t_got, health.latency)
                health.got_frame(t_got)
                if health.state in _REVIVED_BY_A_FRAME:
                    self.move(health, SourceState.RUNNING, t_got, only_from=_REVIVED_BY_A_FRAME)
                health.putting_since = t_got
                taken = self.merge.put(health, tag(item, health.name, stamps))
                health.put_wait_ns += now() - t_got
                health.putting_since = None
                if not taken:  # the run was stopped: the item goes nowhere
                    with health.lock:
                        health.unfed += 1
                    return
        except StopIteration:
            stopped = False
            self.move(health, SourceState.ENDED, now())
        except Exception as error:  # logged with its traceback as the move to failed
            stopped = False
            self.move(health, SourceState.FAILED, now(), reason=describe_error(error), error=error)
        finally:
            health.waiting_since = None
            if stopped:  # not read any more: never left looking alive (or healthy)
                self.move(health, SourceState.ENDED, now(), reason="the run was stopped")
            self.merge.source_done()

    # -- the watcher -----------------------------------------------------------------

    def check(self) -> None:
        """One round of the watcher: judge each source's state from what its thread does."""
        now = self.clock.monotonic_ns()
        round_ns = max(1, now - self._last_round_ns)
        self._last_round_ns = now
        for health in self.healths.values():
            new, reason = self._judge(health, now, round_ns)
            if new is not None:
                self.move(health, new, now, reason=reason)
            with health.lock:
                health.quality.account(now, health.state, health.totals())
        self.rounds += 1

    def _judge(
        self, health: SourceHealth, now: int, round_ns: int
    ) -> tuple[SourceState | None, str | None]:
        """The state ``health`` should move to now (None: stay), and why."""
        state = health.state
        if state in FINAL_STATES:
            return None, None
        rate = None if self.min_fps is None else health.own_rate(now)
        putting, waiting = health.putting_since, health.waiting_since
        put_wait = health.put_wait_ns + (0 if putting is None else max(0, now - putting))
        waited_share = (put_wait - health.seen_put_wait_ns) / round_ns
        health.seen_put_wait_ns = put_wait
        reconnecting = getattr(health.source, "reconnecting", False) is True
        if waiting is not None and now >= self._warm_at and now - waiting >= self.stall_after_ns:
            # Past the timeout a source is stalled, whatever it does about it
            # (a camera that is off is reconnected to for as long as it is off).
            if state is SourceState.STALLED:
                return None, None
            return SourceState.STALLED, _stall_reason(health.source, now - waiting, reconnecting)
        if reconnecting:
            return SourceState.RECONNECTING, None
        if state is not SourceState.BLOCKED and (
            (putting is not None and now - putting >= self._check_ns)
            or waited_share >= _BLOCKED_FROM
        ):
            return SourceState.BLOCKED, None
        if state is SourceState.BLOCKED and waited_share < _UNBLOCKED_BELOW:
            return SourceState.RUNNING, None
        if rate is not None and now >= self._warm_at:
            return self._judge_rate(state, rate)
        return None, None

    def _judge_rate(self, state: SourceState, rate: float) -> tuple[SourceState | None, str | None]:
        """``degraded`` below ``min_fps``, ``running`` again at or above it (else: stay)."""
        assert self.min_fps is not None
        if state is SourceState.RUNNING and rate < self.min_fps:
            reason = (
                f"{rate:.3g} fps over the last {FPS_WINDOW_S:g} s of its own time, "
                f"below min_fps {self.min_fps:g}"
            )
            return SourceState.DEGRADED, reason
        if state is SourceState.DEGRADED and rate >= self.min_fps:
            return SourceState.RUNNING, None
        return None, None

    # -- state changes ---------------------------------------------------------------

    def move(
        self,
        health: SourceHealth,
        new: SourceState,
        now_ns: int,
        *,
        reason: str | None = None,
        only_from: frozenset[SourceState] | None = None,
        error: Exception | None = None,
    ) -> SourceTransition | None:
        """Change ``health``'s state (unless final, the same, or not in ``only_from``).

        The one place a source's state changes: the change is timed, counted,
        logged (with ``error``'s traceback, for a failure) and handed to the
        callback. Returns it (None: no change).
        """
        with health.lock:
            old = health.state
            if old is new or old in FINAL_STATES or (only_from and old not in only_from):
                return None
            health.quality.account(now_ns, old, health.totals())
            health.state, health.since_ns, health.reason = new, now_ns, reason
            if new is SourceState.RUNNING and old in _REVIVED_BY_A_FRAME:
                health.rate_restart = True
            health.transitions[new.value] = health.transitions.get(new.value, 0) + 1
            health.history.append((now_ns, new))
        transition = SourceTransition(health.name, old, new, now_ns, reason)
        self._log(transition, error)
        if self._on_state is not None:
            try:
                self._on_state(transition)
            except Exception as fault:
                health.callback_errors += 1
                self._log_fault(transition, fault)
        return transition

    def _log(self, change: SourceTransition, error: Exception | None) -> None:
        verdict = self._log_limit.check((change.source, change.new))
        if verdict == FULL:
            logger.log(
                _LEVELS.get(change.new, logging.INFO),
                "pipeline %r: source %r %s -> %s%s",
                self.pipeline,
                change.source,
                change.old,
                change.new,
                "" if change.reason is None else f" ({change.reason})",
                exc_info=error,
            )
        elif verdict > 0:
            logger.warning(
                "pipeline %r: source %r became %s %d more times (not logged each)",
                self.pipeline,
                change.source,
                change.new,
                verdict,
            )

    def _log_fault(self, change: SourceTransition, error: Exception) -> None:
        verdict = self._log_limit.check(("callback", type(error).__name__))
        if verdict == FULL:
            logger.error(
                "pipeline %r: on_source_state raised on %s -> %s of %r",
                self.pipeline,
                change.old,
                change.new,
                change.source,
                exc_info=error,
            )
        elif verdict > 0:
            logger.error(
                "pipeline %r: on_source_state raised %s %d more times (not logged each)",
                self.pipeline,
                type(error).__name__,
                verdict,
            )

    # -- reading and stopping --------------------------------------------------------

    def read(self) -> dict[str, SourceSnapshot]:
        """Every source's snapshot, now."""
        now = self.clock.monotonic_ns()
        return {name: health.read(now) for name, health in self.healths.items()}

    def _close(self, health: SourceHealth) -> None:
        """Close a source still being read, if it can be (its read may wait on the network)."""
        close = getattr(health.source, "close", None)
        if not callable(close) or isinstance(health.source, Iterator):
            return  # an iterator (a generator) is its thread's to end, not ours to close
        try:
            close()
        except Exception:
            logger.warning(
                "pipeline %r: closing source %r failed", self.pipeline, health.name, exc_info=True
            )

    def stop(self, timeout: float | None) -> list[str]:
        """Stop the watcher and the sources' threads; return the names of those still running.

        An item left in the merge is counted as dropped by its source. A
        source still being read is closed when it has a ``close()`` (a
        ``VideoSource``: its read ends within its timeouts); a thread inside
        its source's ``next()`` ends when that returns; it is waited for up
        to ``timeout`` s (real time: a bound on real threads).
        """
        self._stop.set()
        for health, _ in self.merge.close():
            with health.lock:
                health.unfed += 1
        for health, thread in zip(self.healths.values(), self._threads, strict=True):
            if thread.is_alive():
                self._close(health)
        left = Deadline(timeout).left
        hung = []
        current = threading.current_thread()
        for thread in [self._watcher, *self._threads]:
            if thread.ident is not None and thread is not current:
                thread.join(left())
            if thread.is_alive():
                hung.append(thread.name)
        if hung:
            logger.warning(
                "pipeline %r: source threads did not stop within %s s: %s",
                self.pipeline,
                timeout,
                ", ".join(hung),
            )
        return hung
