"""The :class:`Pipeline`: stages run serially or one thread per stage."""

from __future__ import annotations

import datetime
import itertools
import logging
import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from types import TracebackType
from typing import Any

from framescope._validation import check_positive_int
from framescope.clock import SYSTEM_CLOCK, Clock, to_nanoseconds
from framescope.pipeline.aggregation import Aggregator, NodeLink, in_micros, timing_from
from framescope.pipeline.channel import CLOSED, Channel
from framescope.pipeline.diagnosis import Diagnosis, diagnose
from framescope.pipeline.errors import (
    ErrorPolicy,
    OverflowPolicy,
    PipelineClosedError,
    PipelineStoppedError,
    StageError,
)
from framescope.pipeline.events import EventRecorder, NodePhase, bind_recorder
from framescope.pipeline.loop import InputLoop
from framescope.pipeline.query import PipelineStateQuery
from framescope.pipeline.results import NOTHING, ResultBuffer
from framescope.pipeline.stage import Stage, stage_display_name
from framescope.pipeline.state import (
    InputQueueState,
    NodeState,
    OutputQueueState,
    PipelineState,
    Timing,
)
from framescope.pipeline.steps import (
    Envelope,
    ItemFailedError,
    Step,
    Unit,
    close_span,
    open_span,
    step_unit,
)
from framescope.pipeline.worker import Worker
from framescope.stats import StatsSnapshot
from framescope.timepiece import StopWatch
from framescope.trace import FrameTrace, chrome_trace, write_trace

__all__ = ["Pipeline", "PipelineStage"]

logger = logging.getLogger(__name__)

SEPARATOR = "__"
"""Joins pipeline and stage names in profile keys: ``MainPipeline__Stage1``."""

_SERIAL, _PARALLEL = "serial", "parallel"
_FROM_GENERATOR: Any = object()


class PipelineStage(Stage):
    """A pipeline used as a stage of another pipeline (see :meth:`Pipeline.as_stage`)."""

    def __init__(self, pipeline: Pipeline) -> None:
        self.pipeline = pipeline
        self.name = pipeline.name

    def __call__(self, data: Any) -> Any:
        """Run the nested pipeline's stages on ``data`` and return the result."""
        return self.pipeline._run_inline(data)

    def cleanup(self) -> None:
        """Clean up the nested pipeline."""
        self.pipeline.cleanup()


class Pipeline:
    """A chain of stages that items flow through, serially or one thread per stage.

    Build it with :meth:`add`, choose how it runs with :meth:`serialize` or
    :meth:`parallelize`, push items with :meth:`forward` (or let
    :meth:`start_loop` pull them from ``input_generator``), and read results
    with :meth:`get_results` (the latest) or by iterating :meth:`results`
    (every result, in order). :meth:`cleanup` stops it; ``with Pipeline() as p``
    does that for you. Every stage's latency and throughput, and the pipeline's
    end-to-end latency, are measured all the time; :meth:`get_profiles` returns
    them.

    Args:
        input_generator: what :meth:`start_loop` pulls items from: a callable
            without arguments, or an iterator (its end stops the loop).
        use_profiler: accepted for compatibility; profiling is always on (it is cheap).
        name: the pipeline's name, the first part of every profile key.
        clock: where to read the time; the system clock by default.
        debug: record pipeline events (see :meth:`get_pipeline_state`); None
            (default) turns it on when the environment has ``FRAMESCOPE_DEBUG=1``.
        debug_interval: seconds between the aggregator's drains of the events.
        trace_every: with debugging on, keep the trace of one frame in this many.
        trace_frames: how many sampled frame traces to keep (oldest dropped).
        window: how many recent items the profiles describe.
        results_size: how many results wait for the caller before the oldest is dropped.
    """

    def __init__(
        self,
        input_generator: Callable[[], Any] | Iterator[Any] | None = None,
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
    ) -> None:
        if input_generator is not None and not (
            callable(input_generator) or isinstance(input_generator, Iterator)
        ):
            raise TypeError(
                "input_generator must be a callable without arguments or an iterator, "
                f"got {type(input_generator).__name__}"
            )
        self.name = _check_name(name, "name")
        self.input_generator = input_generator
        self.use_profiler = bool(use_profiler)
        self._clock = SYSTEM_CLOCK if clock is None else clock
        self._window = check_positive_int(window, "window")
        if debug is None:
            debug = os.environ.get("FRAMESCOPE_DEBUG", "").strip().lower() in ("1", "true", "yes")
        self.debug = bool(debug)
        if isinstance(debug_interval, bool) or not isinstance(debug_interval, (int, float)):
            raise TypeError(f"debug_interval must be a number of seconds, got {debug_interval!r}")
        if not debug_interval > 0:
            raise ValueError(f"debug_interval must be positive, got {debug_interval!r}")
        self._debug_interval = float(debug_interval)
        self._trace_every = check_positive_int(trace_every, "trace_every")
        self._trace_frames = check_positive_int(trace_frames, "trace_frames")
        self._aggregator: Aggregator | None = None
        self._feeding = False  # True while forward() waits to put an item in
        self._frame_ids = itertools.count()
        self._watch = StopWatch(self.name, max_intervals=window, clock=self._clock)
        self._results = ResultBuffer(results_size)
        self._steps: list[Step] = []
        self._unnamed = 0
        self._mode: str | None = None
        self._running = False
        self._closed = False
        self._nested_in: Pipeline | None = None
        self._lock = threading.Lock()
        self._stopped_by: StageError | None = None
        self._workers: list[Worker] = []
        self._channels: list[Channel] = []
        self._input: Channel | None = None
        self._loop: InputLoop | None = None
        self._block_input = True
        self._input_timeout: float | None = 10.0
        self._block_output = False
        self._output_timeout: float | None = 10.0
        self._queue_size = 1
        self._overflow = OverflowPolicy.BLOCK
        self._counts = dict.fromkeys(("forwarded", "completed", "rejected", "dropped", "failed"), 0)

    # -- building ---------------------------------------------------------------

    def add(
        self,
        stage: Callable[[Any], Any],
        name: str | None = None,
        *,
        on_error: ErrorPolicy | str = ErrorPolicy.RAISE,
        queue_size: int | None = None,
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
        """
        if self._mode is not None:
            raise RuntimeError(
                f"add: pipeline {self.name!r} already started; add every stage before "
                "serialize() or parallelize()"
            )
        if isinstance(stage, Pipeline):
            stage = stage.as_stage()
        child = stage.pipeline if isinstance(stage, PipelineStage) else None
        if not callable(stage):
            raise TypeError(f"stage must be callable (a Stage or a function), got {stage!r}")
        policy = ErrorPolicy.parse(on_error, "on_error")
        if queue_size is not None:
            check_positive_int(queue_size, "queue_size")
        if name is None:
            name = stage_display_name(stage) if child is None else child.name
            if name is None:
                name = self._next_default_name()
        else:
            name = _check_name(name, "name")
        if any(step.name == name for step in self._steps):
            raise ValueError(f"name: pipeline {self.name!r} already has a stage named {name!r}")
        if child is not None:
            if child is self or self._contains(child) or child._contains(self):
                raise ValueError("stage: a pipeline cannot contain itself")
            if child._nested_in is not None:
                raise ValueError(f"stage: pipeline {child.name!r} is already nested elsewhere")
            child._nested_in = self
        watch = StopWatch(name, max_intervals=self._window, clock=self._clock)
        recorder = EventRecorder(name, self._clock, enabled=self.debug)
        if isinstance(stage, Stage) and child is None:
            stage.__dict__["_framescope_events"] = recorder
        self._steps.append(Step(name, stage, stage, watch, policy, queue_size, recorder, child))
        return self

    def _next_default_name(self) -> str:
        taken = {step.name for step in self._steps}
        while True:
            self._unnamed += 1
            candidate = f"Stage_{self._unnamed}"
            if candidate not in taken:
                return candidate

    def _contains(self, other: Pipeline) -> bool:
        return any(
            step.child is other or (step.child is not None and step.child._contains(other))
            for step in self._steps
        )

    def as_stage(self) -> PipelineStage:
        """Return this pipeline wrapped as a stage, to nest it inside another pipeline."""
        return PipelineStage(self)

    @property
    def stage_names(self) -> list[str]:
        """Names of the stages, in order."""
        return [step.name for step in self._steps]

    # -- choosing how it runs -----------------------------------------------------

    def serialize(self) -> Pipeline:
        """Run every stage in the calling thread (``forward`` returns with the result ready)."""
        self._configure(_SERIAL)
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
        self._overflow = OverflowPolicy.parse(overflow, "overflow")
        self._queue_size = check_positive_int(queue_size, "queue_size")
        self._block_input = bool(block_input)
        self._input_timeout = _check_timeout(input_timeout, "input_timeout")
        self._block_output = bool(block_output)
        self._output_timeout = _check_timeout(output_timeout, "output_timeout")
        self._configure(_PARALLEL)
        return self

    def _configure(self, mode: str) -> None:
        if self._closed:
            raise PipelineClosedError(f"pipeline {self.name!r} was cleaned up")
        if self._running:
            raise RuntimeError(f"pipeline {self.name!r} is already running")
        if not self._steps:
            raise ValueError(f"pipeline {self.name!r} has no stages; add() some first")
        self._mode = mode

    @property
    def mode(self) -> str | None:
        """``"serial"``, ``"parallel"``, or None before either was chosen."""
        return self._mode

    # -- starting -----------------------------------------------------------------

    def start(self) -> Pipeline:
        """Start now (threads, in parallel mode) instead of at the first ``forward``.

        A pipeline whose mode was not chosen starts in serial mode. Returns the pipeline.
        """
        self._ensure_running()
        return self

    def _keyed_steps(self, prefix: str) -> Iterator[tuple[str, Step]]:
        """Every step of the tree, depth first, with its profile key under ``prefix``."""
        for step in self._steps:
            key = f"{prefix}{SEPARATOR}{step.name}"
            yield key, step
            if step.child is not None:
                yield from step.child._keyed_steps(key)

    def _qualify(self, prefix: str) -> None:
        for key, step in self._keyed_steps(prefix):
            step.qualified = key
            step.recorder.node_id = key

    def _ensure_running(self) -> None:
        if self._closed:
            raise PipelineClosedError(f"pipeline {self.name!r} was cleaned up; build a new one")
        if self._stopped_by is not None:
            raise PipelineStoppedError(self._stopped_by)
        if self._running:
            return
        with self._lock:
            if self._running:
                return
            if self._nested_in is not None:
                raise RuntimeError(
                    f"pipeline {self.name!r} is nested in {self._nested_in.name!r}; "
                    "feed the outer pipeline"
                )
            if self._mode is None:
                self._configure(_SERIAL)
            self._qualify(self.name)
            if self._mode == _PARALLEL:
                self._start_threads()
            if self.debug:
                self._aggregator = Aggregator(
                    self.name,
                    self._node_links(),
                    self._clock,
                    interval_s=self._debug_interval,
                    window=self._window,
                    trace_every=self._trace_every,
                    trace_frames=self._trace_frames,
                )
                self._aggregator.start()
            self._running = True

    def _node_links(self) -> list[NodeLink]:
        """How each node (step) sits in the running pipeline, for the aggregator."""
        workers = {worker.label: worker for worker in self._workers}
        links = []
        for step in self._walk_steps():
            worker = workers.get(step.qualified)
            if worker is None:
                links.append(
                    NodeLink(step.qualified, step.recorder, fallback=step.watch.statistics)
                )
                continue
            index = self._workers.index(worker)
            upstream = (
                self._is_feeding if index == 0 else _sending(self._workers[index - 1].recorder)
            )
            links.append(
                NodeLink(
                    step.qualified,
                    step.recorder,
                    inbox_length=worker.inbox.__len__,
                    capacity=worker.inbox.maxsize,
                    upstream_sending=upstream,
                    out_capacity=worker.outbox.maxsize if worker.outbox is not None else None,
                    fallback=step.watch.statistics,
                )
            )
        return links

    def _units(self) -> list[tuple[Unit, int | None, str, Step | None]]:
        """The per-thread units of a parallel run.

        Each is (unit, queue size, thread label, the step when the unit is
        exactly one plain step).
        """
        units: list[tuple[Unit, int | None, str, Step | None]] = []
        for step in self._steps:
            child = step.child
            if child is not None and child._mode == _PARALLEL:
                inner = child._units()
                key = id(step)
                first, size, label, _ = inner[0]
                inner[0] = (open_span(first, key, self._clock.monotonic_ns), size, label, None)
                last, size, label, _ = inner[-1]
                inner[-1] = (close_span(last, key, step.watch), size, label, None)
                if step.queue_size is not None:
                    inner[0] = (inner[0][0], step.queue_size, inner[0][2], None)
                units.extend(inner)
            else:
                plain = step if child is None else None
                units.append((step_unit(step), step.queue_size, step.qualified, plain))
        return units

    def _start_threads(self) -> None:
        units = self._units()
        channels = [Channel(size or self._queue_size) for _, size, _, _ in units]
        self._channels = channels
        self._input = channels[0]
        recorders = {step.qualified: step.recorder for step in self._walk_steps()}
        for index, (unit, _, label, plain) in enumerate(units):
            outbox = channels[index + 1] if index + 1 < len(channels) else None
            worker = Worker(
                self,
                unit,
                channels[index],
                outbox,
                label,
                recorder=recorders[label],
                step=plain,
            )
            self._workers.append(worker)
        for worker in self._workers:
            worker.thread.start()

    # -- running items ----------------------------------------------------------

    def _walk_steps(self) -> Iterator[Step]:
        """Every step of this pipeline and of nested ones, depth first."""
        for step in self._steps:
            yield step
            if step.child is not None:
                yield from step.child._walk_steps()

    def _run_inline(self, data: Any, frame_id: int | None = None) -> Any:
        """Run every stage on ``data`` in this thread (serial mode, or as a nested stage).

        With debugging on, each stage's node shows PROCESSING while it runs and
        its custom events carry ``frame_id``.
        """
        if not self.debug:
            for step in self._steps:
                data = step.run(data)
            return data
        for step in self._steps:
            recorder = step.recorder
            recorder.frame_id = frame_id
            recorder.phase = NodePhase.PROCESSING
            outer = bind_recorder(recorder)
            try:
                data = step.run(data)
            finally:
                recorder.phase = NodePhase.IDLE
                bind_recorder(outer)
        return data

    def forward(self, data: Any = _FROM_GENERATOR) -> bool:
        """Push one item into the pipeline (without ``data``: one from ``input_generator``).

        Serial: the stages run now, in this thread, and the result is ready when
        ``forward`` returns. Parallel: the item is queued per the overflow policy;
        returns False when it was not accepted (full queue) and True otherwise.
        The error of an earlier item waiting to be reported (``raise`` policy)
        is raised here.
        """
        error = self._results.pop_error()
        if error is not None:
            raise error
        if data is _FROM_GENERATOR:
            data = self._produce()()
        return self._submit(data, raise_now=True)

    def _produce(self) -> Callable[[], Any]:
        source = self.input_generator
        if source is None:
            raise ValueError("no data given and the pipeline has no input_generator")
        if isinstance(source, Iterator):
            return source.__next__
        return source

    def _submit(self, data: Any, *, raise_now: bool) -> bool:
        self._ensure_running()
        t_in = self._clock.monotonic_ns()
        frame_id = next(self._frame_ids)
        if self._mode == _SERIAL:
            self._count("forwarded")
            envelope = Envelope(data, t_in, frame_id)
            try:
                envelope.data = self._run_inline(data, frame_id)
            except ItemFailedError as failure:
                if not self._handle_failure(failure, raise_now=raise_now):
                    return True
                envelope.error = failure.error
            self._deliver(envelope)
            return True
        channel = self._input
        assert channel is not None
        envelope = Envelope(data, t_in, frame_id)
        if self._overflow is OverflowPolicy.DROP_OLDEST:
            try:
                dropped = channel.put_drop_oldest(envelope)
            except RuntimeError:
                self._ensure_running()  # raises the reason the channel is closed
                raise
            self._count("forwarded")
            if dropped is not CLOSED:
                self._count("dropped")
            return True
        if self._overflow is OverflowPolicy.DROP_NEWEST:
            timeout: float | None = 0
        else:
            timeout = self._input_timeout if self._block_input else 0
        self._feeding = True
        try:
            accepted = channel.put(envelope, timeout)
        finally:
            self._feeding = False
        if accepted:
            self._count("forwarded")
            return True
        self._ensure_running()  # a closed or stopped pipeline raises, not returns False
        self._count("dropped" if self._overflow is OverflowPolicy.DROP_NEWEST else "rejected")
        return False

    def _deliver(self, envelope: Envelope) -> None:
        if envelope.error is not None:
            self._results.put_error(envelope.error)
            return
        self._watch.record(envelope.t_in, self._clock.monotonic_ns())
        self._results.put(envelope.data)
        self._count("completed")

    def _count(self, key: str, n: int = 1) -> None:
        with self._lock:
            self._counts[key] += n

    def _handle_failure(self, failure: ItemFailedError, *, raise_now: bool) -> bool:
        """Count and log a failure and apply the stage's policy.

        Raises when ``raise_now`` and the policy raises; otherwise returns True
        when the error must travel on to the results (``raise`` policy).
        """
        error, policy = failure.error, failure.step.on_error
        self._count("failed")
        logger.error(
            "pipeline %r: %s (policy %s)\n%s",
            self.name,
            error,
            policy.value,
            error.traceback_text,
        )
        if policy is ErrorPolicy.SKIP:
            return False
        if policy is ErrorPolicy.STOP:
            with self._lock:
                if self._stopped_by is None:
                    self._stopped_by = error
            self._halt()
            if raise_now:
                raise PipelineStoppedError(error)
            return False
        if raise_now:
            raise error
        return True

    def _halt(self) -> None:
        """Stop taking and moving items (threads end; stages are not cleaned up yet)."""
        for channel in self._channels:
            channel.close()
        self._results.close()

    # -- reading results ------------------------------------------------------------

    def get_results(self) -> Any:
        """Return the newest result and discard older ones; None when there is nothing new.

        With ``parallelize(block_output=True)`` it waits up to ``output_timeout``
        for a result when there is none. The error of an item waiting to be
        reported (``raise`` policy) is raised first.
        """
        if self._block_output and self._mode == _PARALLEL and self._running:
            self._results.wait_for_any(self._output_timeout)
        return self._results.take_latest()

    def results(self, timeout: float | None = None) -> Iterator[Any]:
        """Yield every result, in order, as it becomes available.

        Stops when ``timeout`` seconds pass without a result (None: wait on) or
        when the pipeline is cleaned up or stopped and every result was read.
        An item's stage error (``raise`` policy) is raised in that item's place;
        iterating again goes on with the next result.
        """
        while True:
            item = self._results.take_next(timeout)
            if item is NOTHING:
                if self._stopped_by is not None and not len(self._results):
                    raise PipelineStoppedError(self._stopped_by)
                return
            yield item

    def __iter__(self) -> Iterator[Any]:
        """Iterate over every result in order (see :meth:`results`)."""
        return self.results()

    # -- the automatic loop -----------------------------------------------------

    def start_loop(self, period: float | datetime.timedelta = 0.01) -> None:
        """Pull an item from ``input_generator`` every ``period`` and forward it.

        The period is kept on the monotonic clock without drift; a cycle that
        overruns starts the next one at once and is counted (``counters()``).
        """
        period_ns = to_nanoseconds(period, "period")
        if period_ns <= 0:
            raise ValueError(f"period must be positive, got {period!r}")
        if self.input_generator is None:
            raise ValueError("start_loop needs the pipeline's input_generator; none was given")
        if self._loop is not None and self._loop.running:
            raise RuntimeError(f"pipeline {self.name!r} already runs a loop; stop_loop() first")
        self._ensure_running()
        produce = self._produce()
        self._loop = InputLoop(
            f"framescope:{self.name}:loop",
            period_ns,
            produce,
            lambda item: self._submit(item, raise_now=False),
            self._clock,
        )
        self._loop.start()

    def stop_loop(self, timeout: float = 5.0) -> bool:
        """Stop the loop started by :meth:`start_loop`; a no-op returning False if none runs."""
        loop = self._loop
        if loop is None:
            return False
        if not loop.stop(timeout):
            logger.warning("pipeline %r: input loop did not stop within %s s", self.name, timeout)
        return True

    # -- live state -------------------------------------------------------------

    def _is_feeding(self) -> bool:
        return self._feeding

    def get_pipeline_state(self) -> PipelineStateQuery:
        """Every node's live state, to query: ``.nodes()``, ``.nodes(id).inputs("in")`` ...

        Node ids are the profile keys. With debugging on (``debug=True`` or
        ``FRAMESCOPE_DEBUG=1``) the state is current, aggregated from the
        nodes' events; before the pipeline starts every node is IDLE with
        invalid timings. With debugging off only the main loop timings (from
        the profiles) are filled in.
        """
        aggregator = self._aggregator
        if aggregator is not None:
            return PipelineStateQuery(aggregator.state())
        self._qualify(self.name)
        started = self._running or self._closed
        now = self._clock.monotonic_ns()
        nodes = {}
        for step in self._walk_steps():
            timing = timing_from(in_micros(step.watch.statistics()), now) if started else Timing()
            nodes[step.qualified] = NodeState(
                input_states={"in": InputQueueState()},
                output_states={"out": OutputQueueState()},
                main_loop_timing=timing,
            )
        return PipelineStateQuery(PipelineState(nodes))

    def frame_traces(self) -> list[FrameTrace]:
        """The sampled per-frame traces kept so far (needs debugging on), oldest first.

        Each tells, per stage, how long the frame waited in the queue and was
        processed, and its end-to-end latency.
        """
        return self._require_aggregator("frame_traces").frame_traces()

    def export_trace(self, path: str | os.PathLike[str]) -> Path:
        """Write the sampled frame traces as Chrome Trace Event JSON (opens in Perfetto).

        One track per stage thread with a slice per stage call and custom
        blocks nested inside, flow arrows following each frame across the
        stages, a track of whole frames, and counter tracks for queue depth and
        fps. The file is gzip-compressed when ``path`` ends in ``.gz``.
        """
        aggregator = self._require_aggregator("export_trace")
        node_ids = [link.node_id for link in aggregator.links]
        document = chrome_trace(aggregator.frame_traces(), node_ids, title=self.name)
        return write_trace(path, document)

    def _require_aggregator(self, what: str) -> Aggregator:
        if not self.debug:
            raise RuntimeError(
                f"{what} needs debugging on: Pipeline(debug=True) or FRAMESCOPE_DEBUG=1"
            )
        if self._aggregator is None:
            raise RuntimeError(f"{what}: pipeline {self.name!r} has not started yet")
        return self._aggregator

    def diagnose(self) -> Diagnosis:
        """Name the stage that holds the pipeline back, and why.

        The bottleneck is the stage busy the largest fraction of the time
        (mean processing time x throughput over the recent window). With
        debugging on, queue evidence is added: its input queue full most of
        the time, the next stage waiting for input. The diagnosis also gives
        end-to-end latency p50/p90/p99 and every loss counted.
        ``str(pipeline.diagnose())`` is a readable report.
        """
        self._qualify(self.name)
        stats = self.statistics()
        running = self._running_steps()
        stage_stats = {key: stats[key] for key in running}
        counts = self.counters()
        losses = {
            key: counts[key]
            for key in ("rejected", "dropped", "failed", "results_dropped", "discarded")
        }
        state = capacities = None
        if self._aggregator is not None:
            state = self._aggregator.state()
            capacities = {
                link.node_id: link.capacity
                for link in self._aggregator.links
                if link.capacity is not None
            }
        return diagnose(
            stats[self.name],
            stage_stats,
            losses,
            state=state,
            capacities=capacities,
            order=running,
        )

    def _running_steps(self) -> list[str]:
        """Profile keys of the steps that do the work (a parallel child's own stages)."""
        keys = []
        for step in self._steps:
            child = step.child
            if child is not None and child._mode == _PARALLEL and self._mode == _PARALLEL:
                keys.extend(child._running_steps())
            else:
                keys.append(step.qualified)
        return keys

    # -- profiles and counters --------------------------------------------------

    def statistics(self) -> dict[str, StatsSnapshot]:
        """Return the timing statistics of the pipeline and of every stage, by profile key.

        The pipeline's entry is end-to-end latency (``forward`` to result); a
        stage's entry is its processing latency; a nested pipeline's entry spans
        its stages. Each snapshot's ``rate()`` is the throughput.
        """
        stats = {self.name: self._watch.statistics()}
        stats.update((key, step.watch.statistics()) for key, step in self._keyed_steps(self.name))
        return stats

    def timers(self) -> dict[str, StopWatch]:
        """The live StopWatch behind each entry of :meth:`statistics`, by profile key.

        Exporters use them to track latency histograms
        (:meth:`~framescope.timepiece.BaseTimer.track_histogram`).
        """
        self._qualify(self.name)
        timers = {self.name: self._watch}
        timers.update((key, step.watch) for key, step in self._keyed_steps(self.name))
        return timers

    def queue_depths(self) -> dict[str, int]:
        """Items waiting in each stage thread's input queue now, by profile key.

        Empty unless the pipeline runs threaded (a serial pipeline has no queues).
        """
        return {worker.label: len(worker.inbox) for worker in self._workers}

    def node_phases(self) -> dict[str, str]:
        """What each stage is doing now (IDLE, PROCESSING, ...), by profile key.

        Needs debugging on; empty otherwise, since only debugging records phases.
        """
        aggregator = self._aggregator
        if aggregator is None:
            return {}
        return {link.node_id: link.recorder.phase.name for link in aggregator.links}

    def get_profiles(self) -> tuple[dict[str, float], dict[str, float]]:
        """Return ``(latency_s, throughput_per_s)``, two dicts keyed like ``MainPipeline__Stage1``.

        Latency is the mean over the recent window in seconds; throughput is
        items per second over the same window, (n-1)/(t_last-t_first).
        """
        stats = self.statistics()
        latency = {key: snap.recent_mean() for key, snap in stats.items()}
        throughput = {key: snap.rate() for key, snap in stats.items()}
        return latency, throughput

    def counters(self) -> dict[str, int]:
        """Counts of what happened to items, including every drop and failure.

        ``forwarded`` accepted items, ``completed`` results, ``rejected`` items
        refused by a full queue (``block``), ``dropped`` items dropped by the
        overflow policy, ``failed`` stage errors, ``results_dropped``
        results lost because nobody read them, ``results_skipped`` results
        passed over by :meth:`get_results`, ``discarded`` items still queued at
        cleanup, ``loop_overruns``/``loop_errors`` of the input loop.
        """
        with self._lock:
            counts = dict(self._counts)
        counts["results_dropped"] = self._results.dropped
        counts["results_skipped"] = self._results.skipped
        counts["discarded"] = sum(channel.discarded for channel in self._channels)
        loop = self._loop
        counts["loop_overruns"] = loop.overruns if loop else 0
        counts["loop_errors"] = loop.errors if loop else 0
        return counts

    def stage_failures(self) -> dict[str, int]:
        """How many items each stage failed on, by profile key."""
        return {key: step.failures for key, step in self._keyed_steps(self.name)}

    # -- shutting down ------------------------------------------------------------

    def cleanup(self, timeout: float = 2.0) -> list[str]:
        """Stop every thread, call each stage's ``cleanup()`` once, and close the pipeline.

        Items still queued are discarded (counted). Threads are joined for at most
        ``timeout`` seconds in all; a stage that does not return by then is
        reported: its name is logged and returned (an empty list means every
        thread stopped). Calling it again does nothing.
        """
        with self._lock:
            if self._closed:
                return []
            self._closed = True
        hung: list[str] = []
        if self._loop is not None and not self._loop.stop(timeout):
            hung.append(f"{self.name}:loop")
        self._halt()
        deadline = self._clock.monotonic_ns() + round(timeout * 1e9)
        current = threading.current_thread()
        for worker in self._workers:
            if worker.thread is current:
                continue
            remaining = max(0.0, (deadline - self._clock.monotonic_ns()) / 1e9)
            worker.thread.join(remaining)
            if worker.thread.is_alive():
                hung.append(worker.label)
        if self._aggregator is not None and not self._aggregator.stop(timeout):
            hung.append(f"{self.name}:aggregator")
        if hung:
            logger.warning(
                "pipeline %r: cleanup left threads that did not stop within %s s: %s",
                self.name,
                timeout,
                ", ".join(hung),
            )
        self._cleanup_stages(set())
        return hung

    def _cleanup_stages(self, seen: set[int]) -> None:
        """Call ``cleanup()`` of every stage in the tree once, even if added twice."""
        for step in self._steps:
            child = step.child
            if child is not None:
                child._closed = True
                child._halt()
                child._cleanup_stages(seen)
                continue
            if id(step.stage) in seen:
                continue
            seen.add(id(step.stage))
            stage_cleanup = getattr(step.stage, "cleanup", None)
            if not callable(stage_cleanup):
                continue
            try:
                stage_cleanup()
            except Exception:
                logger.exception("pipeline %r: cleanup() of stage %r raised", self.name, step.name)

    @property
    def clock(self) -> Clock:
        """The clock the pipeline's timings and traces are read from."""
        return self._clock

    @property
    def closed(self) -> bool:
        """Whether :meth:`cleanup` was called."""
        return self._closed

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
        state = "closed" if self._closed else (self._mode or "not started")
        return f"<Pipeline {self.name} [{stages}] {state}>"


def _sending(recorder: EventRecorder) -> Callable[[], bool]:
    """Whether the node behind ``recorder`` is trying to send its output right now."""

    def is_sending() -> bool:
        return recorder.phase is NodePhase.SENDING_OUTPUTS

    return is_sending


def _check_timeout(value: float | None, argument: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{argument} must be a number of seconds or None, got {value!r}")
    if value < 0:
        raise ValueError(f"{argument} must be >= 0, got {value!r}")
    return float(value)


def _check_name(name: object, argument: str) -> str:
    if not isinstance(name, str):
        raise TypeError(f"{argument} must be a str, got {type(name).__name__}")
    if not name or SEPARATOR in name:
        raise ValueError(
            f"{argument} must be a non-empty str without {SEPARATOR!r} "
            f"(it separates levels in profile keys), got {name!r}"
        )
    return name
