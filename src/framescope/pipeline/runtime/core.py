"""The runtime: runs a stage tree serially or one thread per unit, and shuts it down.

It owns everything that moves items: the input queue and the overflow
policy, the worker threads, the error policies (:meth:`Runtime.fail`), the
delivery of results, the counters, the input loop and the aggregator thread.
Every runner moves items with the one per-item protocol,
:func:`~framescope.pipeline.runtime.item.item_processor` (the serial runner
writes it inline: a new item has failed nowhere yet).
"""

from __future__ import annotations

import itertools
import logging
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from typing import Any

from framescope._ratelimit import FULL, LogLimiter
from framescope._waits import Deadline
from framescope.clock import Clock
from framescope.pipeline.debug.aggregation import Aggregator, NodeLink
from framescope.pipeline.errors import (
    ErrorPolicy,
    OverflowPolicy,
    PipelineClosedError,
    PipelineStoppedError,
)
from framescope.pipeline.model.clips import ClipRecorder
from framescope.pipeline.runtime.accounting import ItemCounts
from framescope.pipeline.runtime.channel import END, Channel
from framescope.pipeline.runtime.cpu import CpuAccounting, CpuSampler, CpuSource, default_cpu_source
from framescope.pipeline.runtime.item import (
    SETTLE_EVERY,
    Envelope,
    ItemFailedError,
    Unit,
    failed_item,
)
from framescope.pipeline.runtime.lifecycle import Phase
from framescope.pipeline.runtime.loop import InputLoop
from framescope.pipeline.runtime.results import NOTHING, ResultBuffer
from framescope.pipeline.runtime.sources import SourceFeeds
from framescope.pipeline.runtime.threads import StageThreads, node_links, start_threads, track_cpu
from framescope.pipeline.runtime.tree import PARALLEL, SERIAL, StageTree
from framescope.pipeline.runtime.worker import Worker
from framescope.timepiece import StopWatch

__all__ = ["RunSettings", "Runtime"]

logger = logging.getLogger(__name__)


AggregatorFactory = Callable[[list[NodeLink]], Aggregator]


@dataclass(frozen=True, slots=True)
class RunSettings:
    """How a threaded run takes items in and hands results out (see ``Pipeline.parallelize``)."""

    block_input: bool = True
    input_timeout: float | None = 10.0
    block_output: bool = False
    output_timeout: float | None = 10.0
    queue_size: int = 1
    overflow: OverflowPolicy = OverflowPolicy.BLOCK


class Runtime:
    """Runs one stage tree: submits items, applies policies, delivers, counts, shuts down.

    Args:
        tree: the stages to run (its ``mode`` says serial or threaded).
        clock: the pipeline's clock.
        results: where results and the errors of failed items go.
        latency: the pipeline's end-to-end timer.
        aggregator: builds the debugging aggregator from the node links (None: no debugging).
        cpu_source: where the threads' scheduler accounting is read (the kernel by default).
    """

    def __init__(
        self,
        tree: StageTree,
        clock: Clock,
        results: ResultBuffer,
        latency: StopWatch,
        aggregator: AggregatorFactory | None = None,
        *,
        cpu_source: CpuSource | None = None,
    ) -> None:
        self.tree = tree
        self.clock = clock
        self.results = results
        self.latency = latency
        self._latency_add, self._latency_settle = latency.raw_recording()
        self._settle_in = SETTLE_EVERY  # items delivered until the latency timer may fold
        # The input policy, as each item needs it (set at a threaded start).
        self._drop_oldest = False
        self._put_timeout: float | None = 0
        self._wait_timeout: float | None = 0
        self.settings = RunSettings()
        self.aggregator: Aggregator | None = None
        self.loop: InputLoop | None = None
        self.sources: SourceFeeds | None = None  # the sources of a many-source run
        self.clip_recorders: list[ClipRecorder] = []  # attached to the sources it ran
        self.life = tree.life
        self.workers: list[Worker] = []
        self.groups: list[StageThreads] = []
        self._make_aggregator = aggregator
        self._channels: list[Channel] = []
        self._input: Channel | None = None
        self._feeding = False  # True while a submit waits to put an item in
        self._frame_ids = itertools.count()
        self._lock = threading.Lock()
        self._start_lock = threading.Lock()
        self._log_limit = LogLimiter(clock=clock)
        self.counts = ItemCounts(completed=partial(getattr, results, "received"))
        source = default_cpu_source() if cpu_source is None else cpu_source
        self.cpu = CpuAccounting(source, clock.monotonic_ns)
        self._sampler: CpuSampler | None = None  # threaded, without debugging
        self._inline: Unit | None = None  # the serial runner's unit, built at the start
        # The stop policy: the frame id of the last item kept (every later one is discarded),
        # which stage thread each worker thread is, and what reached the end after it.
        self._stop_line = [sys.maxsize]  # shared with the workers: one list, read in place
        self._group_of: dict[threading.Thread, int] = {}
        self._discarded_late = 0
        # What remote executors started at parallelize() (let go of at shutdown), by step.
        self._prepared: dict[str, Callable[[], object] | None] = {}

    # -- starting --------------------------------------------------------------------

    def configure(self, mode: str) -> None:
        """Choose serial or threaded running, before the start."""
        if self.life.cleaned_up:
            raise PipelineClosedError(f"pipeline {self.tree.name!r} was cleaned up")
        if self.life.input_closed and not self.life.started:
            raise PipelineClosedError(f"pipeline {self.tree.name!r} was closed before it started")
        if self.life.started:
            raise RuntimeError(f"pipeline {self.tree.name!r} is already running")
        # A pipeline without stages passes its items through (as PyStream's does), in
        # the caller's thread: there is no stage to give a thread to.
        self.tree.mode = mode if self.tree.steps else SERIAL
        if self.tree.mode == PARALLEL:
            self._prepare_workers()

    def _prepare_workers(self) -> None:
        """Have remote executors start what their workers come from (``prepare``), early.

        A process replica's worker server imports the stage while the caller
        goes on; its workers are forked from it with the first items. What is
        started here is let go at shutdown, whether the pipeline started or not.
        """
        for step in self.tree.walk():
            prepare = getattr(step.executor, "prepare", None)
            if not step.replicated or prepare is None or step.qualified in self._prepared:
                continue
            release = prepare(step.stage, step.qualified)
            self._prepared[step.qualified] = release

    def ensure_started(self) -> None:
        """Start once (serial when no mode was chosen); raise if it takes no more items."""
        self.check_open()
        if self.life.started:
            return
        if self.life.input_closed:  # closed before it started: nothing will run
            self.life.refuse_input()
        with self._start_lock:
            if self.life.started:
                return
            if self.tree.nested_in is not None:
                raise RuntimeError(
                    f"pipeline {self.tree.name!r} is nested in {self.tree.nested_in.name!r}; "
                    "feed the outer pipeline"
                )
            if self.tree.mode is None:
                self.configure(SERIAL)
            self.start()

    def start(self) -> None:
        """Start the threads (threaded mode) and the aggregator (debugging)."""
        if self.tree.mode == PARALLEL:
            self._start_threads()
        else:
            self._inline = self.tree.inline_unit()
        if self._make_aggregator is not None:
            self.aggregator = self._make_aggregator(self._node_links())
            self.aggregator.after_drain = self.cpu.sample
            self.aggregator.start()
        elif self.tree.mode == PARALLEL:
            self._sampler = CpuSampler(self.cpu, self.clock, self.tree.name)
            self._sampler.start()
        self.life.advance(Phase.RUNNING)

    def _start_threads(self) -> None:
        settings = self.settings  # fixed from here on: what each item needs of it, read once
        self._drop_oldest = settings.overflow is OverflowPolicy.DROP_OLDEST
        no_wait = settings.overflow is OverflowPolicy.DROP_NEWEST or not settings.block_input
        self._put_timeout = 0 if no_wait else settings.input_timeout
        self._wait_timeout = 0 if no_wait else None
        self.groups = start_threads(
            self.tree.units(),
            settings.queue_size,
            fail=self._fail_later,
            deliver=self.deliver,
            finish=self._finish,
            crash=self.crash,
            clock=self.clock,
            stop_line=self._stop_line,
            on_exit=self._worker_ends,
        )
        track_cpu(self.tree, self.groups, self.cpu)
        self._channels = [group.inbox for group in self.groups]
        self._input = self._channels[0]
        self.counts.take_intake_from(self._input.intake)
        self.workers = [worker for group in self.groups for worker in group.workers]
        self._group_of = {
            worker.thread: index
            for index, group in enumerate(self.groups)
            for worker in group.workers
        }

    def _worker_ends(self) -> None:
        """A worker thread's last readings, taken in it as it ends (its accounting then goes)."""
        self.cpu.sample(force=True)

    def _node_links(self) -> list[NodeLink]:
        """How each node sits in the running pipeline, for the aggregator."""
        return node_links(self.tree, self.groups, self._is_feeding)

    def _is_feeding(self) -> bool:
        return self._feeding

    # -- items -----------------------------------------------------------------------

    def submit(self, data: Any, raise_now: bool, wait: bool = False) -> bool:
        """Take one item in: run it now (serial) or queue it per the overflow policy.

        ``raise_now``: a stage error of this very item (serial mode) is raised
        to the caller, as the policy says. ``wait``: with the ``block`` policy,
        wait for room as long as it takes (a feeder that follows the stages).
        Returns False when it was refused.
        """
        life = self.life
        if not life.started:
            self.ensure_started()
        if life.input_closed:
            life.refuse_input()
        t_in = self.clock.monotonic_ns()
        envelope = Envelope(data, t_in, next(self._frame_ids))
        unit = self._inline
        if unit is None:
            return self._enqueue(envelope, wait)
        # Serial: every stage runs on it now, in this thread, and it is delivered.
        self.counts.forwarded()
        try:
            done: int | None = unit(envelope, t_in)
        except ItemFailedError as failure:  # applies the policy (the raise policy raises)
            fail = self._fail_now if raise_now else self._fail_later
            done = failed_item(envelope, failure, fail, self.clock.monotonic_ns)
        except Exception:  # not an item's failure (a unit wraps its stages' errors)
            raise
        except BaseException:  # SystemExit, KeyboardInterrupt ...: propagates, counted
            self.counts.count("failed")
            raise
        if done is None:
            return True
        if envelope.error is not None:  # what deliver() does, inline (no stop line in serial)
            self.results.put_error(envelope.error)
            return True
        self._latency_add((t_in, done))
        self.results.put(envelope.data)  # counted there as completed
        self._settle_in -= 1
        if self._settle_in <= 0:  # (<=: two feeding threads may pass 0 together)
            self._settle_in = SETTLE_EVERY
            self._latency_settle()
        return True

    def _enqueue(self, envelope: Envelope, wait: bool) -> bool:
        """Put a new item into the first stage's queue per the overflow policy (threaded)."""
        channel = self._input
        assert channel is not None
        if self._drop_oldest:
            try:
                channel.put_drop_oldest(envelope)  # counted there: forwarded, dropped_oldest
            except RuntimeError:
                self._refused()  # raises the reason the channel is closed
                raise
            return True
        self._feeding = True
        try:
            accepted = channel.put(envelope, self._wait_timeout if wait else self._put_timeout)
        finally:
            self._feeding = False
        if accepted:  # counted as forwarded by the channel
            return True
        self._refused()  # a closed or stopped pipeline raises, not returns False
        newest = self.settings.overflow is OverflowPolicy.DROP_NEWEST
        self.count("dropped_newest" if newest else "rejected")
        return False

    def _refused(self) -> None:
        """Raise why the input queue refused an item, when it is closed or ended."""
        self.check_open()
        if self.life.input_closed:
            self.life.refuse_input()

    def deliver(self, envelope: Envelope, done_ns: int | None = None) -> bool:
        """Hand a finished item to the results (its error, when a stage failed on it).

        ``done_ns`` is the reading it was finished at (read now when not given).
        """
        if envelope.frame_id > self._stop_line[0]:  # came in after an item that stopped it
            with self._lock:
                self._discarded_late += envelope.error is None  # a failed one counts as failed
            return True
        if envelope.error is not None:
            self.results.put_error(envelope.error)
            return True
        end = self.clock.monotonic_ns() if done_ns is None else done_ns
        self._latency_add((envelope.t_in, end))  # one call: replicas side by side never split it
        self.results.put(envelope.data)  # counted there as completed
        self._settle_in -= 1
        if self._settle_in <= 0:  # (<=: replicas may pass 0 together)
            self._settle_in = SETTLE_EVERY
            self._latency_settle()
        return True

    def count(self, key: str, n: int = 1) -> None:
        """Add ``n`` to counter ``key``."""
        self.counts.count(key, n)

    def _fail_now(self, failure: ItemFailedError, envelope: Envelope) -> bool:
        return self.fail(failure, raise_now=True, envelope=envelope)

    def _fail_later(self, failure: ItemFailedError, envelope: Envelope) -> bool:
        return self.fail(failure, raise_now=False, envelope=envelope)

    def fail(
        self, failure: ItemFailedError, *, raise_now: bool, envelope: Envelope | None = None
    ) -> bool:
        """Count and log a stage failure and apply its stage's error policy.

        Raises when ``raise_now`` and the policy raises; otherwise returns True
        when the error must travel on to the results (``raise`` policy).
        ``envelope`` is the item that failed (the ``stop`` policy keeps what
        came in before it).
        """
        error, policy = failure.error, failure.policy
        self.count("failed")
        verdict = self._log_limit.check((error.stage, type(error.error).__name__))
        if verdict == FULL:
            logger.error(
                "pipeline %r: %s (policy %s)\n%s",
                self.tree.name,
                error,
                policy.value,
                error.traceback_text,
            )
        elif verdict > 0:
            logger.error(
                "pipeline %r: stage %r raised %s %d more times (policy %s; not logged each)",
                self.tree.name,
                error.stage,
                type(error.error).__name__,
                verdict,
                policy.value,
            )
        if policy is ErrorPolicy.SKIP:
            return False
        if policy is ErrorPolicy.STOP:
            self.life.stop(error)
            self._stop_after(envelope)
            if raise_now:
                raise PipelineStoppedError(error)
            return False
        if raise_now:
            raise error
        return True

    def _stop_after(self, envelope: Envelope | None) -> None:
        """A stage failed on ``envelope`` under ``stop``: take nothing more, finish what is ahead.

        Every item that came in before it goes through its remaining stages
        and is delivered; then the results end (and raise the stop). Items
        after it are discarded, counted: those queued at or before the failing
        stage now, and any taken by a later stage or reaching the end later (a
        replica of a stage may have been done with one already).
        """
        thread = threading.current_thread()
        index = self._group_of.get(thread) if envelope is not None else None
        if envelope is None or index is None:  # serial: nothing is in flight
            self.halt()
            return
        with self._lock:
            self._stop_line[0] = last = min(self._stop_line[0], envelope.frame_id)
        for channel in self._channels[: index + 1]:
            channel.cut(last)  # the end follows the items kept; a waiting forward is refused

    def crash(self, error: BaseException) -> None:
        """A BaseException escaped a stage in a worker thread: count it, stop, keep it to raise."""
        self.life.crash(error)  # the first one is raised; later ones are counted
        self.count("failed")
        logger.error(
            "pipeline %r: a stage raised %s; the pipeline stops",
            self.tree.name,
            type(error).__name__,
            exc_info=error,
        )
        self.halt()

    def raise_crash(self) -> None:
        """Raise, in the caller's thread, what escaped a stage in a worker thread (if anything)."""
        self.life.raise_crash()

    def check_open(self) -> None:
        """Raise if the pipeline takes no more items (cleaned up, or stopped by a stage)."""
        self.life.check_open()

    # -- the end of the input --------------------------------------------------------

    def close_input(self) -> None:
        """No more input: the end marker follows the last item; results end after it."""
        if not self.life.advance(Phase.INPUT_CLOSED):
            return  # closed, finished or cleaned up already
        if self.tree.mode != PARALLEL or self._input is None:
            self._finish()  # serial (or never started): nothing is in flight
        elif not self._input.put(END, None) and self._input.closed:
            self._finish()  # the pipeline was halted: nothing more will come
        # (refused but not closed: a stage stopped it, and the end is on its way already)

    def source_failed(self, error: Exception) -> None:
        """The source raised ``error``: it is over; close the input and keep the error to raise.

        What is inside is carried through; then :meth:`iterate_results` and
        :meth:`join` raise ``error`` (the first one, when several sources fail).
        """
        first = self.life.source_failed(error)
        logger.error(
            "pipeline %r: its source raised %s; the input ends here",
            self.tree.name,
            type(error).__name__,
            exc_info=error if first else None,
        )
        self.close_input()

    def raise_source_error(self) -> None:
        """Raise the source's error once every item before it is out and every result read."""
        error = self.life.source_error
        if error is not None and self.life.finished.is_set() and not len(self.results):
            raise error

    def _finish(self) -> None:
        # Finished before the results close: a reader woken by the close must see
        # it, or it would end quietly instead of raising the source's error.
        self.life.advance(Phase.FINISHED)
        self.results.close()
        if self._sampler is not None:  # every worker has ended: nothing left to read
            self._sampler.stop(0)

    def join(self, timeout: float | None, *, raise_source: bool = True) -> bool:
        """Wait until every item before the end of the input is out; False if time ran out.

        Raises what escaped a stage in a worker thread, if that is why it ended,
        and (with ``raise_source``) the source's error once every item is out.
        """
        done = self.life.finished.wait(timeout)
        self.raise_crash()
        if done and raise_source and self.life.source_error is not None:
            raise self.life.source_error
        return done

    # -- results ---------------------------------------------------------------------

    def take_latest(self) -> Any:
        """The newest result (older ones skipped), waiting if the settings say so."""
        settings = self.settings
        waits = self.results.maxsize > 0  # results_size=0: no result will come
        if waits and settings.block_output and self.tree.mode == PARALLEL and self.life.started:
            self.results.wait_for_any(settings.output_timeout)
        return self.results.take_latest()

    def iterate_results(self, timeout: float | None) -> Iterator[Any]:
        """Every result in order; ends after ``timeout`` s without one, or once closed and read."""
        while True:
            item = self.results.take_next(timeout)
            if item is NOTHING:
                self.raise_crash()
                if self.life.stopped_by is not None and not len(self.results):
                    raise PipelineStoppedError(self.life.stopped_by)
                self.raise_source_error()
                return
            yield item

    # -- the input loop --------------------------------------------------------------

    def start_loop(
        self,
        period_ns: int,
        produce: Callable[[], Any],
        *,
        deliver: Callable[[Any], Any] | None = None,
        on_end: Callable[[], object] | None = None,
    ) -> None:
        """Pull from ``produce`` every ``period_ns`` (0: as fast as accepted) and submit it.

        When ``produce`` is exhausted the input is closed (see :meth:`close_input`).
        ``deliver`` and ``on_end`` replace what is done with each item and at
        the end (a many-source run: its feeds count each source's drops, and a
        stopped run does not close the input).
        """
        if period_ns < 0:
            raise ValueError(f"period must be positive or 0, got {period_ns / 1e9!r} s")
        if self.loop is not None and self.loop.running:
            raise RuntimeError(
                f"pipeline {self.tree.name!r} already runs a loop; stop_loop() first"
            )
        self.ensure_started()
        self.loop = InputLoop(
            f"framescope:{self.tree.name}:loop",
            period_ns,
            produce,
            partial(self.submit, raise_now=False, wait=period_ns == 0)
            if deliver is None
            else deliver,
            self.clock,
            on_end=self.close_input if on_end is None else on_end,
            on_fail=self.source_failed,
        )
        self.loop.start()

    def attach_sources(self, feeds: SourceFeeds) -> None:
        """Run ``feeds`` (a many-source run): read into the snapshot, stopped at shutdown."""
        previous = self.sources
        if previous is not None and previous.running:
            raise RuntimeError(
                f"pipeline {self.tree.name!r} already runs its sources; end that run first"
            )
        self.sources = feeds
        for health in feeds.healths.values():
            self.note_source(health.source)

    def note_source(self, source: object) -> None:
        """Remember the clip recorders attached to a source it runs (for the snapshot)."""
        for recorder in getattr(source, "clip_recorders", ()):
            if isinstance(recorder, ClipRecorder) and not any(
                recorder is known for known in self.clip_recorders
            ):
                self.clip_recorders.append(recorder)

    def stop_loop(self, timeout: float) -> bool:
        """Stop the input loop; False when none was started."""
        loop = self.loop
        if loop is None:
            return False
        if not loop.stop(timeout):
            logger.warning(
                "pipeline %r: input loop did not stop within %s s", self.tree.name, timeout
            )
        return True

    # -- reading ---------------------------------------------------------------------

    def counters(self) -> dict[str, int]:
        """Counts of what happened to items (see ``Pipeline.counters``)."""
        discarded = [channel.discarded for channel in self._channels]
        discarded += [worker.discarded for worker in self.workers]
        discarded += [g.sequencer.discarded for g in self.groups if g.sequencer is not None]
        discarded.append(self._discarded_late)
        counts = self.counts.read(discarded)
        counts["replica_restarts"] = sum(group.restarts for group in self.groups)
        counts["replica_recycles"] = sum(group.recycles for group in self.groups)
        counts["reorder_waits"] = sum(
            group.sequencer.head_waits for group in self.groups if group.sequencer is not None
        )
        counts["blocks_folded"] = sum(step.recorder.folded_blocks for step in self.tree.walk())
        counts["results_dropped"] = self.results.dropped
        counts["results_not_kept"] = self.results.not_kept
        counts["results_held_bytes"] = self.results.held_bytes
        counts["results_skipped"] = self.results.skipped
        counts["errors_dropped"] = self.results.errors_dropped
        loop = self.loop
        counts["loop_overruns"] = loop.overruns if loop else 0
        counts["loop_errors"] = loop.errors if loop else 0
        counts["source_errors"] = 0 if self.life.source_error is None else 1
        return counts

    def queues(self) -> dict[str, tuple[int, int]]:
        """``(items waiting, capacity)`` of each thread's input queue, by node id."""
        return {group.label: (len(group.inbox), group.inbox.maxsize) for group in self.groups}

    def held(self) -> dict[str, int]:
        """Results each replicated stage holds until an earlier one is done, by node id."""
        return {g.label: len(g.sequencer) for g in self.groups if g.sequencer is not None}

    # -- stopping --------------------------------------------------------------------

    def halt(self) -> None:
        """Stop taking and moving items (threads end; stages are not cleaned up yet)."""
        for channel in self._channels:
            channel.close()
        for group in self.groups:
            group.halt()
        self._finish()

    def _release_prepared(self) -> None:
        prepared, self._prepared = self._prepared, {}
        for label, release in prepared.items():
            if release is None:
                continue
            try:
                release()
            except Exception:
                logger.exception("the workers' server of %r did not stop cleanly", label)

    def shutdown(self, timeout: float | None) -> list[str]:
        """Stop the loop, halt, join every thread within ``timeout`` s (None: no limit).

        Returns the threads left running. Every thread shares the one deadline;
        the aggregator (our own code, it ends at once) is stopped first, so a
        hung stage cannot spend its time, and folds the workers' last records
        after they are joined.
        """
        hung: list[str] = []
        # Joining is a real-time bound on real threads, whatever clock the timings use.
        left = Deadline(timeout).left

        aggregator = self.aggregator
        if aggregator is not None and not aggregator.stop(left()):
            hung.append(f"{self.tree.name}:aggregator")
        if self._sampler is not None and not self._sampler.stop(left()):
            hung.append(f"{self.tree.name}:cpu")
        loop = self.loop
        if loop is not None:
            loop.request_stop()
        if self.sources is not None:
            hung += self.sources.stop(left())
        self.halt()  # a loop waiting to put an item in is let go, not waited out
        if loop is not None and not loop.stop(left()):
            hung.append(f"{self.tree.name}:loop")
        current = threading.current_thread()
        for worker in self.workers:
            if worker.thread is current:
                continue
            worker.thread.join(left())
            if worker.thread.is_alive():
                hung.append(worker.label)
        for group in self.groups:
            group.close(left())
        self._release_prepared()
        if aggregator is not None:
            aggregator.drain()  # what the workers recorded since it stopped
        if hung:
            logger.warning(
                "pipeline %r: cleanup left threads that did not stop within %s s: %s",
                self.tree.name,
                timeout,
                ", ".join(hung),
            )
        return hung
