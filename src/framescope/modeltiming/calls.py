"""The call log behind ModelTiming: nested calls recorded cheaply, folded on demand.

Each instrumented call opens a frame on the calling thread's stack and closes
it on return. Per call it yields the total, the child time (the sum of the
totals of the calls made directly inside it) and the self time (total - child,
never negative), which are added to the node's statistics. A child that runs
three times inside one parent call is charged three times to that one call.

Readings come from a :class:`CallTimer`: the host clock on the CPU, CUDA
events (or a synchronising host clock) on a GPU.
"""

from __future__ import annotations

import operator
import threading
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from framescope._buffers import take_prefix
from framescope.clock import Clock
from framescope.running import RUNNING
from framescope.stats import RollingStats, StatsSnapshot

__all__ = ["CallLog", "CallTimer", "CudaEventTimer", "HostTimer", "NodeStats", "SyncedHostTimer"]

_FOLD_AT = 256
"""Top-level calls after which the log folds, which bounds its memory.

A deferred (CUDA-event) log folds only its oldest call trees then, whose
events have long completed, so folding never waits on work still running.
"""


class CallTimer(Protocol):
    """Takes the readings at a call's start and end and turns them into nanoseconds."""

    deferred: bool
    """True when readings can only be turned into times later (CUDA events)."""

    def reading(self) -> Any:
        """A reading now."""

    def elapsed_ns(self, start: Any, end: Any) -> int:
        """Nanoseconds between two readings."""


class HostTimer:
    """Readings from a host clock (CPU models)."""

    deferred = False

    def __init__(self, clock: Clock) -> None:
        self.reading: Callable[[], int] = clock.monotonic_ns

    def elapsed_ns(self, start: int, end: int) -> int:
        """Nanoseconds between two readings."""
        return end - start


class SyncedHostTimer(HostTimer):
    """Host clock readings taken after ``torch.cuda.synchronize()``.

    Exact for GPU work, but it serialises the host with the device at every
    module boundary, so the model runs slower while timed.
    """

    def __init__(self, clock: Clock, synchronize: Callable[[], None]) -> None:
        super().__init__(clock)
        now = clock.monotonic_ns

        def reading() -> int:
            synchronize()
            return now()

        self.reading = reading


class CudaEventTimer:
    """Readings as recorded CUDA events; their times are read when the log folds."""

    deferred = True

    def __init__(self, event_type: Callable[..., Any]) -> None:
        self._event_type = event_type

    def reading(self) -> Any:
        """Record a timing event on the current stream."""
        event = self._event_type(enable_timing=True)
        event.record()
        return event

    def elapsed_ns(self, start: Any, end: Any) -> int:
        """Device time between two recorded events (waits for the second)."""
        end.synchronize()
        return round(float(start.elapsed_time(end)) * 1_000_000)


class NodeStats:
    """Per-call total, child and self time of one node (seconds out)."""

    __slots__ = ("child", "self", "total")

    def __init__(self, window: int) -> None:
        self.total = RollingStats(window, divisor=1e9)
        self.child = RollingStats(window, divisor=1e9)
        self.self = RollingStats(window, divisor=1e9)

    def snapshots(self) -> tuple[StatsSnapshot, StatsSnapshot, StatsSnapshot]:
        """(total, child, self) snapshots."""
        return self.total.snapshot(), self.child.snapshot(), self.self.snapshot()


class CallLog:
    """Records nested calls of numbered nodes from any thread and folds them.

    :meth:`wrap` turns a callable into a timed one. With a host timer each
    call's times are worked out when it returns (its total is added to the
    caller's child time) and its (total, child) pair is appended; with a
    deferred timer (CUDA events) the calls are kept as a tree of readings and
    resolved when the log folds.

    Args:
        node_count: how many nodes (indices 0..node_count-1).
        timer: where readings come from.
        window: recent calls kept per node for percentiles.
        warmup: top-level calls of each node left out at the start (with
            everything inside them).
        labels: per node, the name of the CUSTOM event emitted to the pipeline
            stage running the call (when debugging is on), so the calls show as
            nested slices in the pipeline's trace.
    """

    def __init__(
        self,
        node_count: int,
        timer: CallTimer,
        *,
        window: int = 100,
        warmup: int = 0,
        labels: Sequence[str] = (),
    ) -> None:
        self.stats = [NodeStats(window) for _ in range(node_count)]
        self._timer = timer
        self._warmup = warmup
        self._root_calls = [0] * node_count
        self._labels = list(labels) or [str(i) for i in range(node_count)]
        self._local = threading.local()
        self._lock = threading.Lock()
        # host: per node, flat (total_ns, child_ns) pairs of finished calls
        self._node_results: list[list[int]] = [[] for _ in range(node_count)]
        self._trees: list[list[Any]] = []  # deferred: finished top-level call trees

    def _frames(self) -> list[list[Any]]:
        """This thread's stack of open deferred-timed calls."""
        try:
            frames: list[list[Any]] = self._local.frames
        except AttributeError:
            frames = self._local.frames = []
        return frames

    def root_calls(self) -> int:
        """The most top-level calls any node has had, warm-up included."""
        return max(self._root_calls, default=0)

    def _keep_root(self, node: int) -> bool:
        """Count a top-level call of ``node``; False while it is still warming up."""
        self._root_calls[node] += 1
        return self._root_calls[node] > self._warmup

    def wrap(
        self, function: Callable[..., Any], node: int, timer: CallTimer | None = None
    ) -> Callable[..., Any]:
        """A callable that runs ``function`` and records the call as one of ``node``.

        ``timer`` overrides the log's timer for this node (a transform that
        runs on the host inside a CUDA-timed model, say). Child time counts
        the calls inside that were timed by the same kind of timer.
        """
        timer = timer or self._timer
        if timer.deferred:
            return self._wrap_deferred(function, node, timer)
        return self._wrap_host(function, node, timer)

    def _wrap_host(
        self, function: Callable[..., Any], node: int, timer: CallTimer
    ) -> Callable[..., Any]:
        # The hot path of model timing: per call two clock reads, one list.extend
        # and the bookkeeping of the thread's stack of child-time accumulators
        # (None marks a call left out during warm-up, and everything inside it).
        local, now, label = self._local, timer.reading, self._labels[node]
        results = self._node_results[node]
        extend, keep_root, fold, running = results.extend, self._keep_root, self.fold, RUNNING
        fold_at = 2 * _FOLD_AT

        def timed(*args: Any, **kwargs: Any) -> Any:
            try:
                stack = local.stack
            except AttributeError:
                stack = local.stack = []
            counted = stack[-1] is not None if stack else keep_root(node)
            stack.append(0 if counted else None)
            recorder = running.recorder
            if recorder is not None:
                recorder.start(label)
            start = now()
            try:
                return function(*args, **kwargs)
            finally:
                total = now() - start
                child = stack.pop()
                if recorder is not None:
                    recorder.end(label)
                if child is not None:
                    extend((total, child))
                    if stack:
                        stack[-1] += total
                    elif len(results) >= fold_at:
                        fold()

        return timed

    def _wrap_deferred(
        self, function: Callable[..., Any], node: int, timer: CallTimer
    ) -> Callable[..., Any]:
        stack_of, reading, label = self._frames, timer.reading, self._labels[node]
        trees, keep_root, fold_trees, running = (
            self._trees,
            self._keep_root,
            self._fold_trees,
            RUNNING,
        )

        def timed(*args: Any, **kwargs: Any) -> Any:
            stack = stack_of()
            recorder = running.recorder
            if recorder is not None:
                recorder.start(label)
            # frame: [node, start reading, end reading, children, timer]
            frame: list[Any] = [node, reading(), None, [], timer]
            if stack:
                stack[-1][3].append(frame)
            stack.append(frame)
            try:
                return function(*args, **kwargs)
            finally:
                frame[2] = reading()
                stack.pop()
                if recorder is not None:
                    recorder.end(label)
                if not stack and keep_root(node):
                    trees.append(frame)
                    if len(trees) >= 2 * _FOLD_AT:
                        fold_trees(_FOLD_AT)

        return timed

    def fold(self) -> None:
        """Fold every finished call into the node statistics."""
        with self._lock:
            for node, results in enumerate(self._node_results):
                if results:
                    self._fold_pairs(self.stats[node], take_prefix(results))
        self._fold_trees()

    def _fold_trees(self, count: int | None = None) -> None:
        """Resolve and fold the oldest ``count`` finished call trees (default: all)."""
        with self._lock:
            for tree in take_prefix(self._trees, count):
                self._fold_tree(tree)

    @staticmethod
    def _fold_pairs(stats: NodeStats, pairs: list[int]) -> None:
        totals, children = pairs[0::2], pairs[1::2]
        selves = list(map(operator.sub, totals, children))
        if min(selves) < 0:  # only a clock that is not monotonic can get here
            selves = [max(0, value) for value in selves]
        stats.total.extend(totals)
        stats.child.extend(children)
        stats.self.extend(selves)

    def _fold_tree(self, frame: list[Any]) -> int:
        node, start, end, children, timer = frame
        total: int = timer.elapsed_ns(start, end)
        child = 0
        for inner in children:
            if inner[2] is not None:  # a child still open cannot be timed
                child += self._fold_tree(inner)
        stats = self.stats[node]
        stats.total.add(total)
        stats.child.add(child)
        stats.self.add(max(0, total - child))
        return total
