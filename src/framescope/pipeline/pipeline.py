"""The :class:`Pipeline` facade: PyStream's and DepthAI's names over a stage tree and a runtime."""

from __future__ import annotations

import datetime
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from functools import partial
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from framescope._validation import (
    check_bool,
    check_callable_or_none,
    check_number,
    check_positive_int,
    check_positive_seconds,
    check_seconds_or_none,
)
from framescope.clock import SYSTEM_CLOCK, Clock, to_nanoseconds
from framescope.pipeline.debug.aggregation import Aggregator
from framescope.pipeline.errors import ErrorPolicy, OverflowPolicy, PipelineClosedError
from framescope.pipeline.model.query import PipelineStateQuery
from framescope.pipeline.model.snapshot import PipelineSnapshot
from framescope.pipeline.model.sources import SourceTransition
from framescope.pipeline.model.traces import FrameTrace
from framescope.pipeline.replicas.base import Executor
from framescope.pipeline.replicas.choice import resolve_executor
from framescope.pipeline.runtime.batching import DEFAULT_BATCH_TIMEOUT
from framescope.pipeline.runtime.core import RunSettings, Runtime
from framescope.pipeline.runtime.cpu import CpuSource
from framescope.pipeline.runtime.lifecycle import Phase
from framescope.pipeline.runtime.readout import read_snapshot
from framescope.pipeline.runtime.results import DEFAULT_RESULTS_BYTES, ResultBuffer
from framescope.pipeline.runtime.sources import SourceFeeds, check_sources
from framescope.pipeline.runtime.tree import PARALLEL, SEPARATOR, SERIAL, StageTree
from framescope.pipeline.stage import PipelineStage
from framescope.stats import StatsSnapshot
from framescope.timepiece import StopWatch

if TYPE_CHECKING:
    from framescope.pipeline.views.diagnosis import Diagnosis

__all__ = ["SEPARATOR", "Pipeline", "PipelineStage"]  # PipelineStage: see stage.py

_FROM_GENERATOR: Any = object()
MAX_TRACES = 1_000_000  # sampled frame traces kept at most: bounds their memory
MAX_REPLICAS = 1024  # workers of one stage: each is a thread, a process or an actor
MAX_BATCH = 65536  # items of one batch: its figures keep a count per size


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


class Pipeline:
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
            is read (see :mod:`framescope.pipeline.runtime.cpu`): the kernel's accounting
            by default; a :class:`~framescope.pipeline.lowlevel.FakeCpuSource` in tests.
        record: a run file to record the pipeline into while it runs (a path;
            one snapshot a second, see :func:`framescope.record`), closed with
            the final snapshot at :meth:`cleanup`.
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
        record: str | os.PathLike[str] | None = None,
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
        self._recording: Any = None
        if record is not None:
            from framescope.runs.recorder import Recording  # noqa: PLC0415 - only when asked

            self._recording = Recording(self, record)

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
        batch: int | None = None,
        batch_timeout: float | None = None,
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
            batch: call the stage with a ``list`` of up to this many items (from
                any source) when the pipeline runs in parallel; it returns a list
                (or sequence) of as many results, in order (``batch=1``: a list
                of one). None (default): one item a call, not in a list. Its
                queue then holds at least ``batch`` items.
            batch_timeout: seconds (> 0) the oldest item of a forming batch may
                wait in it before the batch goes part full (default 0.04: about
                one frame at 25 fps), from when it joined (items queued while the
                previous batch ran join the next one together). A full batch goes
                at once, and so does a part full one when the input ends.
                Measured on the pipeline's clock.
                A serial pipeline calls a batched stage with each item alone (it
                runs one item through every stage before it takes the next).
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
        batch, timeout_ns = _batching(batch, batch_timeout)
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
            batch=batch,
            batch_timeout_ns=timeout_ns,
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
        accepted = self._runtime.submit(data, True)  # raise_now; starts it, or says why it cannot
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
        life = self._tree.life
        crash: BaseException | None = None
        if drain and life.started and not life.cleaned_up:
            self.close()
            try:
                self._runtime.join(timeout, raise_source=False)
            except BaseException as error:  # escaped a stage: shut down first, then raise it
                crash = error
        with self._lock:
            if life.cleaned_up:
                return []
            life.advance(Phase.CLEANED_UP)
        left = None if timeout is None else max(0.0, timeout - (time.monotonic() - started))
        hung = self._runtime.shutdown(left)
        self._tree.cleanup_stages(set())
        if self._recording is not None:
            self._recording.close()
        if crash is not None:
            raise crash
        return hung

    @property
    def clock(self) -> Clock:
        """The clock the pipeline's timings and traces are read from."""
        return self._clock

    @property
    def closed(self) -> bool:
        """Whether :meth:`cleanup` was called (on it, or on the pipeline it is nested in)."""
        return self._tree.life.cleaned_up

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
        state = "closed" if self._tree.life.cleaned_up else (self._tree.mode or "not started")
        return f"<Pipeline {self.name} [{stages}] {state}>"

    def start_loop(self, period: float | datetime.timedelta = 0.01) -> None:
        """Pull an item from ``input_generator`` every ``period`` and forward it.

        The period is kept on the monotonic clock without drift; a cycle that
        overruns starts the next one at once and is counted (``counters()``).
        A period of 0 feeds as fast as the first stage accepts. When the input
        ends, the pipeline closes itself (see :meth:`close`). When it raises
        (a file that cannot be read, a generator that fails part-way), that is
        the end of the input too: the items already inside are carried
        through, then :meth:`results` and :meth:`join` raise the source's
        exception, and the snapshot's ``source_error`` and the diagnosis say so.
        """
        if self.input_generator is None:
            raise ValueError("start_loop needs the pipeline's input_generator; none was given")
        self._runtime.start_loop(to_nanoseconds(period, "period"), self._produce())

    def stop_loop(self, timeout: float = 5.0) -> bool:
        """Stop the loop started by :meth:`start_loop`; a no-op returning False if none runs.

        Waits up to ``timeout`` seconds (a number >= 0) for it to end.
        """
        seconds = check_seconds_or_none(timeout, "timeout")
        if seconds is None:
            raise TypeError("timeout must be a number of seconds >= 0, got None")
        return self._runtime.stop_loop(seconds)

    def _produce(self) -> Callable[[], Any]:
        source = self.input_generator
        if source is None:
            raise ValueError("no data given and the pipeline has no input_generator")
        return source.__next__ if isinstance(source, Iterator) else source

    def close(self) -> None:
        """No more input: every item already in is carried through all stages.

        Then :meth:`results` iteration ends (it does not wait out its timeout)
        and ``get_results()`` returns the last result. A later ``forward``
        raises :class:`~framescope.pipeline.PipelineClosedError`. Threads keep
        running until :meth:`cleanup`; see :meth:`join` to wait for the end.
        """
        self._runtime.close_input()

    def join(self, timeout: float | None = None) -> bool:
        """Wait until every item given before :meth:`close` is out (or the pipeline stopped).

        Returns False when ``timeout`` seconds (None: no limit) passed first.
        Raises the source's exception when the input ended because its source
        raised (see :meth:`start_loop`), once every item before it is out.
        ``timeout`` is a number of seconds >= 0, or None.
        """
        return self._runtime.join(check_seconds_or_none(timeout, "timeout"))

    def run(
        self,
        source: Iterable[Any] | Mapping[str, Iterable[Any]],
        *,
        stall_after: float | None = None,
        warmup: float | None = None,
        on_source_state: Callable[[SourceTransition], object] | None = None,
        min_fps: float | None = None,
    ) -> Iterator[Any]:
        """Feed ``source`` as fast as the stages accept it, and yield every result in order.

        The one-liner for a file or a finite stream: ``for frame in
        pipeline.run(frames): ...``. Feeding follows the first stage
        (back-pressure, not a timer), and results wait for you (none is
        dropped while you iterate); iteration ends after the last result. A
        serial pipeline runs each item in the calling thread between yields;
        a threaded one is fed by its input-loop thread. A stage error
        (``raise`` policy) is raised in its item's place. When ``source``
        raises, its exception is raised after the results of the items it
        gave before it (and the snapshot and diagnosis say the source failed).

        Many sources: ``run({"cam1": source1, "cam2": source2})`` reads each
        on its own thread (``framescope:<pipeline>:source:<name>``) into this
        one pipeline. Each item carries its source's name: an item with a
        ``source`` attribute (a video ``Frame``) gets it there, any other is
        wrapped in :class:`~framescope.pipeline.Sourced` (``.source``,
        ``.item``). Results come out in order per source; a source that ends
        or raises leaves the others running (one that raises is ``failed``,
        with its error, in ``snapshot().sources``; nothing is raised for it
        here); iteration ends when every source has ended. Each source has a
        health state (``snapshot().sources[name].state``): ``stalled`` after
        ``stall_after`` seconds (default 5) inside its ``next()`` without a
        frame, once ``warmup`` seconds (default 0) from the start have passed,
        also while it reconnects (``reconnecting`` before that); ``blocked``
        while the pipeline will not take its frame (never ``stalled`` then);
        with ``min_fps``, ``degraded`` while its own rate over the last 5 s
        (frames per second of the time it spent inside ``next()``, so not
        slowed by the pipeline) is below it. Each source's last hour is in
        ``snapshot().sources[name].quality`` (share of the time in each
        state, frames, drops, reconnects, fps against its nominal rate).
        ``on_source_state`` is called with each
        :class:`~framescope.pipeline.SourceTransition`. Breaking out of the
        loop stops the sources' threads: a source still being read that has a
        ``close()`` (a ``VideoSource``, not an iterator) is closed, so a read
        waiting on the network ends; a thread inside a ``next()`` that never
        returns is waited for 5 s, then reported.
        """
        if isinstance(source, Mapping):
            health = {"stall_after": stall_after, "warmup": warmup, "min_fps": min_fps}
            return self._run_sources(self._source_feeds(source, on_source_state, **health))
        given = (stall_after, warmup, on_source_state, min_fps)
        if any(value is not None for value in given):
            raise TypeError(
                "stall_after, warmup, on_source_state and min_fps apply to many sources: "
                "pass source as a mapping of names to iterables"
            )
        if not isinstance(source, Iterable):
            raise TypeError(f"source must be an iterable of items, got {type(source).__name__}")
        self._runtime.note_source(source)
        return self._run_one(iter(source))

    def _source_feeds(
        self,
        sources: Mapping[str, Iterable[Any]],
        on_source_state: Callable[[SourceTransition], object] | None,
        *,
        stall_after: float | None,
        warmup: float | None,
        min_fps: float | None,
    ) -> SourceFeeds:
        """The feeds of a many-source :meth:`run`, its arguments checked."""
        return SourceFeeds(
            self.name,
            check_sources(sources),
            self._clock,
            stall_after=5.0
            if stall_after is None
            else check_positive_seconds(stall_after, "stall_after"),
            warmup=check_seconds_or_none(warmup, "warmup") or 0.0,
            min_fps=None if min_fps is None else check_number(min_fps, "min_fps", positive=True),
            on_source_state=check_callable_or_none(on_source_state, "on_source_state"),
        )

    def _run_one(self, iterator: Iterator[Any]) -> Iterator[Any]:
        runtime = self._runtime
        self._ensure_running()
        if runtime.tree.mode != "parallel":
            while True:
                try:
                    item = next(iterator)
                except StopIteration:
                    break
                except Exception as error:
                    runtime.source_failed(error)
                    break
                runtime.submit(item, raise_now=False)
                yield from self.results(timeout=0)
            runtime.close_input()
            yield from self.results(timeout=0)
            return
        self._results.set_blocking(True)
        try:
            runtime.start_loop(0, iterator.__next__)
            yield from self.results()
        finally:
            self._results.set_blocking(False)
            runtime.stop_loop(5.0)

    def _run_sources(self, feeds: SourceFeeds) -> Iterator[Any]:
        """The many-source :meth:`run`: the sources' threads feed the merge, the pipeline takes."""
        runtime = self._runtime
        self._ensure_running()
        runtime.attach_sources(feeds)
        feeds.start()
        threaded = runtime.tree.mode == PARALLEL
        try:
            if not threaded:
                for _, item in feeds:
                    runtime.submit(item, raise_now=False)
                    yield from feeds.counted(self.results(timeout=0))
                runtime.close_input()
                yield from feeds.counted(self.results(timeout=0))
                return
            self._results.set_blocking(True)
            runtime.start_loop(
                0,
                feeds.__next__,
                deliver=feeds.feeder(runtime.submit),
                on_end=feeds.ended(runtime.close_input),
            )
            yield from feeds.counted(self.results())
        finally:
            feeds.stop(5.0)
            if threaded:
                self._results.set_blocking(False)
                runtime.stop_loop(5.0)

    def get_pipeline_state(self) -> PipelineStateQuery:
        """Every node's live state, to query: ``.nodes()``, ``.nodes(id).inputs("in")`` ...

        Node ids are the profile keys. With debugging on (``debug=True`` or
        ``FRAMESCOPE_DEBUG=1``) the state is current, aggregated from the
        nodes' events; before the pipeline starts every node is IDLE with
        invalid timings. With debugging off only the main loop timings (from
        the profiles) are filled in.
        """
        return PipelineStateQuery(self.snapshot().state)

    def frame_traces(self) -> list[FrameTrace]:
        """The sampled per-frame traces kept so far (needs debugging on), oldest first.

        Each tells, per stage, how long the frame waited in the queue and was
        processed, and its end-to-end latency.
        """
        return list(self._traced_snapshot("frame_traces").traces)

    def export_trace(self, path: str | os.PathLike[str], *, overwrite: bool = False) -> Path:
        """Write the sampled frame traces as Chrome Trace Event JSON (opens in Perfetto).

        One track per stage thread with a slice per stage call and custom
        blocks nested inside, flow arrows following each frame across the
        stages, a track of whole frames, and counter tracks for queue depth,
        fps and each stage's (and replica's) recent time on a CPU, waiting for
        one and blocked (``"<stage> cpu"``, in percent), and for a run of many
        sources a track per source with the states it was in. The file is
        gzip-compressed when ``path`` ends in ``.gz``. It is written whole or
        not at all; an existing file at ``path`` is replaced only with
        ``overwrite=True`` (otherwise ``FileExistsError``).
        """
        if not isinstance(overwrite, bool):
            raise TypeError(f"overwrite must be True or False, got {type(overwrite).__name__}")
        if not overwrite and os.path.lexists(path):
            raise FileExistsError(
                f"path: {os.fspath(path)!r} exists; pass overwrite=True to replace it"
            )
        from framescope.trace import chrome_trace, write_trace  # noqa: PLC0415 - loaded on first use (cold start)

        snapshot = self._traced_snapshot("export_trace")
        cpu = {stage.key: stage.cpu.series for stage in snapshot.stages if stage.cpu is not None}
        document = chrome_trace(
            snapshot.traces,
            snapshot.node_ids,
            title=self.name,
            cpu=cpu,
            sources=snapshot.sources,
            now_ns=snapshot.taken_ns,
        )
        return write_trace(path, document)

    def _traced_snapshot(self, what: str) -> PipelineSnapshot:
        if not self.debug:
            raise RuntimeError(
                f"{what} needs debugging on: Pipeline(debug=True) or FRAMESCOPE_DEBUG=1"
            )
        snapshot = self.snapshot()
        if not snapshot.debug:
            raise RuntimeError(f"{what}: pipeline {self.name!r} has not started yet")
        return snapshot

    def tap(self, stage: str, callback: Callable[[Any], None]) -> None:
        """Call ``callback(result)`` with every result of ``stage``, in the stage's own thread.

        For quick looks at the items (a live preview keeps a reference): the
        callback runs inside the stage's time, and an exception from it fails
        the item as the stage's would. ``stage`` is a stage name or profile
        key; taps are set before the pipeline starts.
        """
        life = self._tree.life
        if life.cleaned_up:
            raise PipelineClosedError(f"tap: pipeline {self.name!r} was cleaned up")
        if life.started:
            raise RuntimeError(f"tap: pipeline {self.name!r} is running; tap before it starts")
        self._tree.tap(stage, callback)

    def diagnose(self, *, baseline: PipelineSnapshot | None = None) -> Diagnosis:
        """What holds the pipeline back, and why (``str()`` is a report).

        One verdict with its evidence: ``source failed`` (the source raised;
        the input ended there), ``stalled`` (no item out for 5 s while
        items are inside), ``failing``, ``dropping`` (by policy, or results
        nobody read), ``stage-bound`` (a stage busy nearly all the time,
        with a suggestion where the numbers support one), ``source-bound``
        (the pipeline keeps up, with its headroom) or ``not enough data``.
        Busy is processing time over wall time in the recent window; where
        the scheduler's accounting was read, the pace-setting stage is also
        compute-bound, CPU-starved or blocked, and replicas are suggested
        only where the whole machine has idle cores. It also gives
        end-to-end latency p50/p90/p99 and every loss counted.

        ``baseline``: a snapshot of an earlier run of the same stages (e.g.
        with fewer replicas): a replicated stage's gain is then also given as
        measured, its rate now against its rate then.
        """
        from framescope.pipeline.views.diagnosis import diagnose_snapshot  # noqa: PLC0415 - loaded on first use (cold start)

        return diagnose_snapshot(self.snapshot(), baseline=baseline)

    def statistics(self) -> dict[str, StatsSnapshot]:
        """Return the timing statistics of the pipeline and of every stage, by profile key.

        The pipeline's entry is end-to-end latency (``forward`` to result); a
        stage's entry is its processing latency; a nested pipeline's entry spans
        its stages. Each snapshot's ``rate()`` is the throughput.
        """
        return self.snapshot().statistics()

    def get_profiles(self) -> tuple[dict[str, float], dict[str, float]]:
        """Return ``(latency_s, throughput_per_s)``, two dicts keyed like ``MainPipeline__Stage1``.

        Latency is the mean over the recent window in seconds; throughput is
        items per second over the same window, (n-1)/(t_last-t_first).
        """
        return self.snapshot().get_profiles()

    def counters(self) -> dict[str, int]:
        """Counts of what happened to items, including every drop and failure.

        ``forwarded`` items accepted, ``completed`` results, ``failed`` stage
        errors, ``dropped_oldest`` queued items dropped for newer ones
        (``drop_oldest``), ``discarded`` items still inside at cleanup, and
        ``in_flight`` the items inside now. Every accepted item is in exactly
        one of these: ``forwarded == completed + failed + dropped_oldest +
        discarded + in_flight`` at every instant and after shutdown.

        Items ``forward`` did not accept (it returned False): ``rejected`` by
        a full queue (``block``) and ``dropped_newest`` (``drop_newest``);
        ``dropped`` is both drop policies together. An item a waiting
        ``forward`` gave up on because the pipeline stopped raised an error to
        its caller and is not counted. Parts of the outcomes above:
        ``results_dropped`` results lost because nobody read them (past
        ``results_size`` or ``results_bytes``), ``results_not_kept`` results
        let go at once because ``results_size=0``, ``results_held_bytes`` the
        bytes of the results waiting now (a gauge, not a count),
        ``results_skipped`` results passed over by :meth:`get_results`,
        ``errors_dropped`` stage errors nobody read (only when nothing but
        errors waited). And ``loop_overruns``/``loop_errors`` of the input loop,
        ``source_errors`` (1 when the source raised and the input ended there;
        the snapshot's ``source_error`` says why),
        ``blocks_folded``: CUSTOM blocks timed as ``other`` past the
        ``block_names`` bound; for replicated stages, ``replica_restarts``
        (workers started again after they died), ``replica_recycles`` (workers
        replaced at ``ProcessExecutor``'s ``max_items``/``max_memory``) and ``reorder_waits`` (times
        a replica waited for a slow item at the head of the line).
        ``framescope.pipeline.lowlevel.COUNTERS`` lists them all, and
        ``snapshot.count(name)`` reads one (a misspelt name is a KeyError).
        """
        return dict(self.snapshot().counters)

    def stage_failures(self) -> dict[str, int]:
        """How many items each stage failed on, by profile key."""
        return {stage.key: stage.failures for stage in self.snapshot().stages}

    @property
    def stages_sequence(self) -> list[Callable[[Any], Any]]:
        """The stages in the order they were added, as given to ``add`` (PyStream's list).

        A nested pipeline appears as its :meth:`~framescope.Pipeline.as_stage`.
        The list is a copy: changing it changes no pipeline.
        """
        return [step.stage for step in self._tree.steps]


def _batching(batch: int | None, batch_timeout: float | None) -> tuple[int | None, int]:
    """``add``'s ``batch`` and ``batch_timeout`` checked: (the batch or None, the timeout in ns)."""
    if batch is not None:
        batch = check_positive_int(batch, "batch", maximum=MAX_BATCH)
    elif batch_timeout is not None:
        raise TypeError("batch_timeout applies to a batched stage: give batch= too")
    timeout_s = DEFAULT_BATCH_TIMEOUT if batch_timeout is None else batch_timeout
    return batch, max(1, to_nanoseconds(check_positive_seconds(timeout_s, "batch_timeout"), ""))
