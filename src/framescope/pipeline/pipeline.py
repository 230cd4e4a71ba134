"""The :class:`Pipeline` facade: PyStream's and DepthAI's names over a stage tree and a runtime."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from functools import partial
from types import TracebackType
from typing import Any

from framescope._validation import (
    check_bool,
    check_positive_int,
    check_positive_seconds,
    check_seconds_or_none,
)
from framescope.clock import SYSTEM_CLOCK, Clock
from framescope.pipeline.aggregation import Aggregator
from framescope.pipeline.cpu import CpuSource
from framescope.pipeline.errors import ErrorPolicy, OverflowPolicy
from framescope.pipeline.executor_choice import resolve_executor
from framescope.pipeline.executors import Executor
from framescope.pipeline.pystream import PyStreamNames
from framescope.pipeline.readers import SnapshotReaders
from framescope.pipeline.readout import read_snapshot
from framescope.pipeline.results import DEFAULT_RESULTS_BYTES, ResultBuffer
from framescope.pipeline.runtime import Runtime
from framescope.pipeline.settings import RunSettings
from framescope.pipeline.snapshot import PipelineSnapshot
from framescope.pipeline.stage import PipelineStage
from framescope.pipeline.streaming import StreamControls
from framescope.pipeline.tree import PARALLEL, SEPARATOR, SERIAL, StageTree
from framescope.timepiece import StopWatch

__all__ = ["SEPARATOR", "Pipeline", "PipelineStage"]  # PipelineStage: see stage.py

_FROM_GENERATOR: Any = object()
MAX_TRACES = 1_000_000  # sampled frame traces kept at most: bounds their memory
MAX_REPLICAS = 1024  # workers of one stage: each is a thread, a process or an actor


def _check_cpu_source(source: object) -> CpuSource | None:
    if source is None:
        return None
    for method in ("thread", "process", "machine"):
        if not callable(getattr(source, method, None)):
            raise TypeError(
                "cpu_source must provide thread(), process() and machine() "
                f"(a CpuSource), got {type(source).__name__}"
            )
    return source  # type: ignore[return-value]


class Pipeline(StreamControls, SnapshotReaders, PyStreamNames):
    """A chain of stages that items flow through, serially or one thread per stage.

    Build it with :meth:`add`, choose how it runs with :meth:`serialize` or
    :meth:`parallelize`, push items with :meth:`forward` (or let
    :meth:`start_loop` pull them from ``input_generator``), and read results
    with :meth:`get_results` (the latest) or by iterating :meth:`results`
    (every result, in order). :meth:`cleanup` stops it; ``with Pipeline() as p``
    does that for you. Every stage's latency and throughput, and the pipeline's
    end-to-end latency, are measured all the time: :meth:`snapshot` reads them
    all at one instant, and :meth:`get_profiles` returns the PyStream summary.

    Args:
        input_generator: what :meth:`start_loop` pulls items from: a callable
            without arguments, or an iterable (its end closes the input, see
            :meth:`close`).
        use_profiler: accepted for compatibility; profiling is always on (it is cheap).
        name: the pipeline's name, the first part of every profile key.
        clock: where to read the time; the system clock by default.
        debug: record pipeline events (see :meth:`get_pipeline_state`); None
            (default) turns it on when the environment has ``FRAMESCOPE_DEBUG=1``.
        debug_interval: seconds between the aggregator's drains of the events.
        trace_every: with debugging on, keep the trace of one frame in this many.
        trace_frames: how many sampled frame traces to keep (oldest dropped; at
            most 1_000_000).
        window: how many recent items the profiles describe.
        results_size: how many results wait for the caller before the oldest is
            dropped; 0 keeps none (the last stage is the output: every item
            still runs through and is counted in ``results_not_kept``).
        results_bytes: how many bytes of arrays (numpy arrays, frames' images,
            also inside a dict, list or tuple) the waiting results may hold
            before the oldest is dropped (default 256 MiB; None: bounded by
            ``results_size`` only). Drops are counted in ``results_dropped``.
        block_names: how many distinct CUSTOM block names each stage keeps apart
            (later ones are timed together as ``other`` and counted in
            ``blocks_folded``).
        cpu_source: where each stage thread's time on a CPU and waiting for one
            is read (see :mod:`framescope.pipeline.cpu`): the kernel's accounting
            by default; a :class:`~framescope.pipeline.cpu.FakeCpuSource` in tests.
    """

    def __init__(
        self,
        input_generator: Callable[[], Any] | Iterable[Any] | None = None,
        use_profiler: bool = False,
        name: str = "MainPipeline",
        *,
        clock: Clock | None = None,
        debug: bool | None = None,
        debug_interval: float = 0.1,
        trace_every: int = 1,
        trace_frames: int = 1000,
        window: int = 100,
        results_size: int = 1024,
        results_bytes: int | None = DEFAULT_RESULTS_BYTES,
        block_names: int = 64,
        cpu_source: CpuSource | None = None,
    ) -> None:
        if input_generator is not None and not callable(input_generator):
            if not isinstance(input_generator, Iterable):
                raise TypeError(
                    "input_generator must be a callable without arguments or an iterable, "
                    f"got {type(input_generator).__name__}"
                )
            input_generator = iter(input_generator)
        self.input_generator = input_generator
        self.use_profiler = bool(check_bool(use_profiler, "use_profiler"))
        self._clock = SYSTEM_CLOCK if clock is None else clock
        if check_bool(debug, "debug", or_none=True) is None:
            debug = os.environ.get("FRAMESCOPE_DEBUG", "").strip().lower() in ("1", "true", "yes")
        self.debug = bool(debug)
        self._tree = StageTree(
            name, self._clock, window=window, debug=self.debug, block_names=block_names
        )
        self.name = self._tree.name
        aggregator = partial(
            Aggregator,
            self.name,
            clock=self._clock,
            interval_s=check_positive_seconds(debug_interval, "debug_interval"),
            window=window,
            trace_every=check_positive_int(trace_every, "trace_every"),
            trace_frames=check_positive_int(trace_frames, "trace_frames", maximum=MAX_TRACES),
        )
        self._watch = StopWatch(self.name, max_intervals=window, clock=self._clock)
        self._watch.keep_distribution()
        self._results = ResultBuffer(results_size, results_bytes)
        self._runtime = Runtime(
            self._tree,
            self._clock,
            self._results,
            self._watch,
            aggregator if self.debug else None,
            cpu_source=_check_cpu_source(cpu_source),
        )
        self._lock = threading.Lock()

    # -- building ---------------------------------------------------------------

    def add(
        self,
        stage: Callable[[Any], Any],
        name: str | None = None,
        *,
        on_error: ErrorPolicy | str = ErrorPolicy.RAISE,
        queue_size: int | None = None,
        replicas: int = 1,
        executor: str | Executor = "thread",
        ordered: bool = True,
    ) -> Pipeline:
        """Append a stage; returns the pipeline, so calls can be chained.

        Args:
            stage: a :class:`Stage`, any one-argument callable, or a pipeline
                (or its :meth:`as_stage`) to nest.
            name: the stage's name in profiles; by default the stage's own
                ``name`` attribute, else ``Stage_1``, ``Stage_2`` ...
            on_error: ``"raise"``, ``"skip"`` or ``"stop"``, see :class:`ErrorPolicy`.
            queue_size: capacity of the queue in front of this stage when the
                pipeline runs in parallel (default: the pipeline's queue size).
            replicas: run the stage on this many workers at once when the pipeline
                runs in parallel (``Stage#0``, ``Stage#1`` ... in the state); 1 to 1024.
            executor: where replicas run: ``"thread"`` (the stage object is shared),
                ``"process"`` (a copy in each worker process) or ``"ray"`` (actors).
            ordered: results leave the stage in input order (False: as they finish).
        """
        if self._tree.mode is not None:
            raise RuntimeError(
                f"add: pipeline {self.name!r} already started; add every stage before "
                "serialize() or parallelize()"
            )
        if isinstance(stage, Pipeline):  # framescope's form keeps the child's name
            stage, name = stage.as_stage(), stage.name if name is None else name
        child = stage.pipeline._tree if isinstance(stage, PipelineStage) else None
        if not callable(stage):
            raise TypeError(f"stage must be callable (a Stage or a function), got {stage!r}")
        check_positive_int(replicas, "replicas", maximum=MAX_REPLICAS)
        policy, plan = ErrorPolicy.parse(on_error, "on_error"), resolve_executor(executor, replicas)
        self._tree.add(
            stage,
            name,
            policy,
            queue_size,
            child,
            replicas=replicas,
            executor=plan,
            ordered=ordered,
        )
        return self

    def as_stage(self) -> PipelineStage:
        """Return this pipeline wrapped as a stage, to nest it inside another pipeline."""
        return PipelineStage(self)

    @property
    def stage_names(self) -> list[str]:
        """Names of the stages, in order."""
        return self._tree.names

    # -- choosing how it runs -----------------------------------------------------

    def serialize(self) -> Pipeline:
        """Run every stage in the calling thread (``forward`` returns with the result ready)."""
        self._configure(SERIAL)
        return self

    def parallelize(
        self,
        block_input: bool = True,
        input_timeout: float | None = 10,
        block_output: bool = False,
        output_timeout: float | None = 10,
        *,
        queue_size: int = 1,
        overflow: OverflowPolicy | str = OverflowPolicy.BLOCK,
    ) -> Pipeline:
        """Run each stage in its own thread, joined by bounded queues; order is kept.

        Args:
            block_input: with the ``block`` overflow policy, whether ``forward``
                waits for room in the input queue (False: it returns at once).
            input_timeout: longest wait in seconds (None: no limit); ``forward``
                returns False when the item could not be queued in time.
            block_output: whether :meth:`get_results` waits for a new result
                when there is none yet.
            output_timeout: longest such wait in seconds (None: no limit).
            queue_size: default capacity of the queue in front of each stage.
            overflow: ``"block"``, ``"drop_oldest"`` or ``"drop_newest"``, see
                :class:`OverflowPolicy`.
        """
        settings = RunSettings(
            block_input=bool(check_bool(block_input, "block_input")),
            input_timeout=check_seconds_or_none(input_timeout, "input_timeout"),
            block_output=bool(check_bool(block_output, "block_output")),
            output_timeout=check_seconds_or_none(output_timeout, "output_timeout"),
            queue_size=check_positive_int(queue_size, "queue_size"),
            overflow=OverflowPolicy.parse(overflow, "overflow"),
        )
        self._configure(PARALLEL)
        self._runtime.settings = settings
        return self

    def _configure(self, mode: str) -> None:
        self._runtime.configure(mode)

    @property
    def mode(self) -> str | None:
        """``"serial"``, ``"parallel"``, or None before either was chosen."""
        return self._tree.mode

    # -- running ------------------------------------------------------------------

    def start(self) -> Pipeline:
        """Start now instead of at the first ``forward`` (serial, if no mode was chosen)."""
        self._ensure_running()
        return self

    def _ensure_running(self) -> None:
        self._runtime.ensure_started()

    def forward(self, data: Any = _FROM_GENERATOR) -> bool:
        """Push one item into the pipeline (without ``data``: one from ``input_generator``).

        Serial: the stages run now, in this thread, and the result is ready when
        ``forward`` returns. Parallel: the item is queued per the overflow policy;
        returns False when it was not accepted (full queue) and True otherwise.
        The error of an earlier item waiting to be reported (``raise`` policy)
        is raised here, but only once this item was accepted: an item given to
        ``forward`` is never lost to another item's error.
        """
        if data is _FROM_GENERATOR:
            data = self._produce()()
        self._ensure_running()
        accepted = self._runtime.submit(data, raise_now=True)
        if accepted:
            error = self._results.pop_error()
            if error is not None:
                raise error
        return accepted

    def get_results(self) -> Any:
        """Return the newest result and discard older ones; None when there is nothing new.

        With ``parallelize(block_output=True)`` it waits up to ``output_timeout``
        for a result when there is none. The error of an item waiting to be
        reported (``raise`` policy) is raised first.
        """
        return self._runtime.take_latest()

    def results(self, timeout: float | None = None) -> Iterator[Any]:
        """Yield every result, in order, as it becomes available.

        Stops when ``timeout`` seconds (>= 0) pass without a result (None: wait on) or
        when the pipeline is cleaned up or stopped and every result was read.
        An item's stage error (``raise`` policy) is raised in that item's place;
        iterating again goes on with the next result. When the input ended
        because its source raised, that exception is raised after the last
        result, and again by every later call.
        """
        return self._runtime.iterate_results(check_seconds_or_none(timeout, "timeout"))

    def __iter__(self) -> Iterator[Any]:
        """Iterate over every result in order (see :meth:`results`)."""
        return self.results()

    # -- reading (the readers of SnapshotReaders are computed from one snapshot) ----

    def snapshot(self) -> PipelineSnapshot:
        """Read every number of the pipeline at one instant (see :class:`PipelineSnapshot`)."""
        return read_snapshot(self._tree, self._runtime)

    def timers(self) -> dict[str, StopWatch]:
        """The live StopWatch behind each entry of :meth:`statistics`, replicas' as ``Key#i``."""
        self._tree.qualify()
        return {self.name: self._watch, **dict(self._tree.watches())}

    # -- shutting down ------------------------------------------------------------

    def cleanup(self, timeout: float | None = 2.0, *, drain: bool = False) -> list[str]:
        """Stop every thread, call each stage's ``cleanup()`` once, and close the pipeline.

        Items still queued are discarded (counted); with ``drain=True`` the
        input is closed first and what is in flight is carried through (for
        up to ``timeout``). Threads are joined within ``timeout`` seconds in
        all (None: no limit); a stage that does not return by then is
        reported: its name is logged and returned (an empty list: every thread
        stopped). Calling it again does nothing.
        """
        timeout = check_seconds_or_none(timeout, "timeout")
        started = time.monotonic()
        if drain and self._runtime.running and not self._tree.closed:
            self.close()
            self._runtime.join(timeout, raise_source=False)
        with self._lock:
            if self._tree.closed:
                return []
            self._tree.closed = True
        left = None if timeout is None else max(0.0, timeout - (time.monotonic() - started))
        hung = self._runtime.shutdown(left)
        self._tree.cleanup_stages(set())
        return hung

    @property
    def clock(self) -> Clock:
        """The clock the pipeline's timings and traces are read from."""
        return self._clock

    @property
    def closed(self) -> bool:
        """Whether :meth:`cleanup` was called (on it, or on the pipeline it is nested in)."""
        return self._tree.closed

    def __enter__(self) -> Pipeline:
        """Use the pipeline in a ``with`` block; it is cleaned up on exit."""
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        """Clean up."""
        self.cleanup()

    def __repr__(self) -> str:
        stages = ", ".join(self.stage_names)
        state = "closed" if self._tree.closed else (self._tree.mode or "not started")
        return f"<Pipeline {self.name} [{stages}] {state}>"
