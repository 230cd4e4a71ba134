"""The call log behind ModelTiming: nested calls recorded cheaply, folded on demand.

Each instrumented call opens a frame ``[node, start, end, children]`` on the
calling thread's stack and closes it on return. Finished top-level frames wait
in a list; folding walks them once, computes per call the total, child (the
sum of the direct children's totals) and self time, and adds them to the
node's statistics. A child that runs three times inside one parent call is
charged three times to that one call; self time is clamped at zero.

Readings come from a :class:`CallTimer`: the host clock on the CPU, CUDA
events (or a synchronising host clock) on a GPU.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from framescope.clock import Clock
from framescope.pipeline.events import EventRecorder, current_recorder
from framescope.stats import RollingStats, StatsSnapshot

__all__ = ["CallLog", "CallTimer", "CudaEventTimer", "HostTimer", "NodeStats", "SyncedHostTimer"]

_FOLD_AT = 1024
"""Finished top-level calls kept before the log folds them (host timers only)."""


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
        self._reading = timer.reading
        self._warmup = warmup
        self._root_calls = [0] * node_count
        self._finished: list[list[Any]] = []
        self._local = threading.local()
        self._lock = threading.Lock()
        self._labels = list(labels)
        self.unbalanced = 0  # exits without a matching enter

    def _stack(self) -> list[list[Any]]:
        try:
            stack: list[list[Any]] = self._local.stack
        except AttributeError:
            stack = self._local.stack = []
        return stack

    def enter(self, node: int) -> None:
        """A call of ``node`` starts on this thread."""
        stack = self._stack()
        recorder = current_recorder()
        if recorder is not None and self._labels:
            recorder.start(self._labels[node])
        frame: list[Any] = [node, self._reading(), None, [], recorder]
        if stack:
            stack[-1][3].append(frame)
        stack.append(frame)

    def exit(self) -> None:
        """The innermost open call on this thread returns."""
        end = self._reading()
        stack = self._stack()
        if not stack:
            self.unbalanced += 1
            return
        frame = stack.pop()
        frame[2] = end
        recorder: EventRecorder | None = frame[4]
        if recorder is not None and self._labels:
            recorder.end(self._labels[frame[0]])
        if stack:
            return
        node = frame[0]
        self._root_calls[node] += 1
        if self._root_calls[node] <= self._warmup:
            return
        self._finished.append(frame)
        if len(self._finished) >= _FOLD_AT and not self._timer.deferred:
            self.fold()

    def fold(self) -> None:
        """Fold every finished top-level call into the node statistics."""
        with self._lock:
            finished = self._finished[:]
            del self._finished[: len(finished)]
            for frame in finished:
                self._fold_frame(frame)

    def _fold_frame(self, frame: list[Any]) -> int:
        node, start, end, children = frame[0], frame[1], frame[2], frame[3]
        total = self._timer.elapsed_ns(start, end)
        child = 0
        for inner in children:
            if inner[2] is not None:  # a child still open cannot be timed
                child += self._fold_frame(inner)
        stats = self.stats[node]
        stats.total.add(total)
        stats.child.add(child)
        stats.self.add(max(0, total - child))
        return total
