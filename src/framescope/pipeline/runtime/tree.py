"""The stage tree: stage names, profile keys, nesting, and compilation into runnable units.

A :class:`StageTree` is what a pipeline is made of before it runs: its steps
in order, each with its timer, error policy and event recorder, and possibly a
nested tree. It knows nothing of the pipeline facade or of threads; the
runtime asks it for one unit that runs inline (:meth:`StageTree.inline_unit`) or
for one unit per thread (:meth:`StageTree.units`).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from framescope._keys import SEPARATOR, check_name, join_key, replica_key
from framescope._validation import check_positive_int
from framescope.clock import Clock
from framescope.pipeline.debug.recorder import EventRecorder
from framescope.pipeline.errors import ErrorPolicy, StageError
from framescope.pipeline.model.events import BLOCK_NAMES, NodePhase
from framescope.pipeline.replicas.base import Executor, ThreadExecutor
from framescope.pipeline.runtime.batching import BatchCounts, one_item_batches
from framescope.pipeline.runtime.item import (
    SETTLE_EVERY,
    Envelope,
    Fail,
    ItemFailedError,
    PlainStage,
    Process,
    Unit,
    close_span,
    item_processor,
    open_span,
    stage_processor,
)
from framescope.pipeline.runtime.lifecycle import Lifecycle, Phase
from framescope.pipeline.stage import Stage, stage_display_name
from framescope.running import RUNNING, bind_recorder
from framescope.stats import StatsSnapshot
from framescope.timepiece import StopWatch

__all__ = ["PARALLEL", "SEPARATOR", "SERIAL", "StageTree", "Step", "UnitSpec", "check_name"]

logger = logging.getLogger(__name__)

SERIAL, PARALLEL = "serial", "parallel"


@dataclass(eq=False)
class Step:
    """One stage of a tree: the callable, its name, policy, timer and recorder.

    ``child`` is the tree of a nested pipeline (whose stages do the work);
    ``qualified`` is the profile key, set when the root tree is qualified.
    A step with ``replicas`` > 1 runs on that many threads of a threaded
    pipeline (driving processes or actors per its ``executor``), each timed by
    its own watch in ``replica_watches`` and recorded by its own recorder
    (node ``Key#0``, ``Key#1`` ...).
    """

    name: str
    stage: Callable[[Any], Any]
    watch: StopWatch
    on_error: ErrorPolicy
    queue_size: int | None
    recorder: EventRecorder
    child: StageTree | None = None
    qualified: str = ""
    failures: int = 0
    taps: list[Callable[[Any], None]] = field(default_factory=list)
    replicas: int = 1
    executor: Executor = field(default_factory=ThreadExecutor)
    ordered: bool = True
    replica_watches: list[StopWatch] = field(default_factory=list)
    replica_recorders: list[EventRecorder] = field(default_factory=list)
    batches: BatchCounts | None = None
    """A batched stage's batch figures (None: not batched; see ``runtime/batching``)."""
    _failure_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    settle_left: list[int] = field(default_factory=lambda: [SETTLE_EVERY], repr=False)
    """Items until the inline units that start with this step let their timers fold.

    Kept here, not in a unit, so that it counts on when a unit is built anew
    for each item (a pipeline called as a stage): its timers stay bounded.
    """

    @property
    def replicated(self) -> bool:
        """Whether the step has replicas (more than one, or any that run elsewhere)."""
        return self.replicas > 1 or self.executor.remote

    def statistics(self) -> StatsSnapshot:
        """The stage's timing: its own watch's, merged with every replica's."""
        stats = self.watch.statistics()
        for watch in self.replica_watches:
            stats = stats.merge(watch.statistics())
        return stats

    @property
    def batch(self) -> int:
        """The most items the stage is called with at once (1: one item a call)."""
        return 1 if self.batches is None else self.batches.size

    def work(self) -> Callable[[Any], Any]:
        """The stage's callable, followed by its taps if any (see :meth:`StageTree.tap`).

        A batched stage's is for a thread that runs one item at a time (a
        serial run): each item is a batch of one.
        """
        stage = self.stage
        if self.batches is not None:
            stage = one_item_batches(
                stage, self.qualified, self.batches, self.watch.clock.monotonic_ns
            )
        if not self.taps:
            return stage
        taps = tuple(self.taps)

        def tapped(data: Any) -> Any:
            result = stage(data)
            for tap in taps:
                tap(result)
            return result

        return tapped

    def failure(self, data: Any, error: Exception) -> ItemFailedError:
        """Count a failure of the stage on ``data`` and wrap it for the runtime."""
        with self._failure_lock:  # replicas fail from several threads
            self.failures += 1
        failure = ItemFailedError(StageError(self.qualified, data, error), self.on_error)
        failure.__cause__ = error
        return failure


@dataclass(frozen=True, slots=True)
class UnitSpec:
    """What one thread of a threaded run does: its unit, queue size, label and recorder.

    ``step`` is set when the unit is exactly one plain step (the runtime then
    runs that stage through the fused :func:`~framescope.pipeline.runtime.item.stage_processor`,
    and its unit is built only if something asks for it: ``built`` is None).
    """

    built: Unit | None
    queue_size: int | None
    label: str
    recorder: EventRecorder
    step: Step | None = None

    @property
    def unit(self) -> Unit:
        """The unit the thread runs (a plain step's is built when asked for)."""
        if self.built is not None:
            return self.built
        assert self.step is not None  # a spec has a unit or a step
        return step_unit(self.step)

    def processor(self, fail: Fail, now: Callable[[], int]) -> Process:
        """The per-item protocol for this thread (fused when it is one plain stage)."""
        plain = self.plain(fail)
        if plain is None:
            return item_processor(self.unit, fail, now)
        return stage_processor(plain, now)

    def plain(self, fail: Fail) -> PlainStage | None:
        """The thread's one plain stage, or None when its unit is more than that."""
        step = self.step
        return None if step is None else PlainStage(step.work(), step.watch, step.failure, fail)


def step_unit(step: Step) -> Unit:
    """The unit that runs one step: timed from the reading it is given to the one it takes.

    A step that nests a pipeline runs that pipeline's stages inline and times
    their whole span.
    """
    record = step.watch.record
    if step.child is not None:
        inner = step.child.inline_unit()

        def nested(envelope: Envelope, start: int) -> int:
            end = inner(envelope, start)
            record(start, end)
            return end

        return nested
    return _flat_unit([step], step.watch.clock.monotonic_ns)


def _flat_unit(steps: list[Step], now: Callable[[], int]) -> Unit:
    """The unit of plain steps run in turn, in one loop (the serial runner's hot path).

    Each stage's block goes to its timer as two appended readings (no call
    of its own); every :data:`SETTLE_EVERY` items the timers fold what waits.
    """
    plan, settles = [], []
    for step in steps:
        add, settle = step.watch.raw_recording()
        plan.append((step.work(), add, step))
        settles.append(settle)
    left = steps[0].settle_left if steps else [SETTLE_EVERY]  # see Step.settle_left

    def run(envelope: Envelope, start: int) -> int:
        data = envelope.data
        left[0] -= 1  # counted first: an item a later stage fails on counts too
        if left[0] <= 0:
            left[0] = SETTLE_EVERY
            for settle in settles:
                settle()
        for stage, add, step in plan:
            try:
                data = stage(data)
            except ItemFailedError:
                raise
            except Exception as error:
                raise step.failure(data, error) from error
            # one call, the pair whole (never split by another thread or a signal);
            # the stage's end reading is the next one's start
            add((start, start := now()))
        envelope.data = data
        return start

    return run


def _flat_recorded_unit(steps: list[Step], now: Callable[[], int]) -> Unit:
    """:func:`_flat_unit` with debugging: each stage's node shows it runs, on which item.

    While a stage runs, its recorder is this thread's current one (see
    :mod:`framescope.running`, written in place), its phase is PROCESSING
    and its frame id the item's, so custom blocks nest under it.
    """
    plan, settles = [], []
    for step in steps:
        add, settle = step.watch.raw_recording()
        plan.append((step.work(), add, step, step.recorder))
        settles.append(settle)
    left = steps[0].settle_left if steps else [SETTLE_EVERY]  # see Step.settle_left
    processing, idle, running = NodePhase.PROCESSING, NodePhase.IDLE, RUNNING

    def run(envelope: Envelope, start: int) -> int:
        data, frame = envelope.data, envelope.frame_id
        left[0] -= 1  # counted first: an item a later stage fails on counts too
        if left[0] <= 0:
            left[0] = SETTLE_EVERY
            for settle in settles:
                settle()
        for stage, add, step, recorder in plan:
            recorder.frame_id = frame
            recorder.phase = processing
            outer, running.recorder = running.recorder, recorder
            try:
                data = stage(data)
                end = now()
            except ItemFailedError:
                raise
            except Exception as error:
                raise step.failure(data, error) from error
            finally:
                recorder.phase = idle
                running.recorder = outer
            add((start, end))
            start = end
        envelope.data = data
        return start

    return run


class StageTree:
    """The stages of one pipeline, in order, with nested pipelines' trees inside.

    Args:
        name: the pipeline's name (the first part of its profile keys).
        clock: the clock every stage timer reads.
        window: recent samples each stage timer keeps.
        debug: whether stage recorders record events.
    """

    def __init__(
        self, name: str, clock: Clock, *, window: int, debug: bool, block_names: int = BLOCK_NAMES
    ) -> None:
        self.name = check_name(name, "name")
        self.clock = clock
        self.window = check_positive_int(window, "window")
        self.debug = debug
        self.block_names = check_positive_int(block_names, "block_names")
        self.steps: list[Step] = []
        self.mode: str | None = None
        self.nested_in: StageTree | None = None
        self.life = Lifecycle(self.name)
        self._unnamed = 0

    def add(
        self,
        stage: Callable[[Any], Any],
        name: str | None,
        on_error: ErrorPolicy,
        queue_size: int | None,
        child: StageTree | None = None,
        *,
        replicas: int = 1,
        executor: Executor | None = None,
        ordered: bool = True,
        batch: int | None = None,
        batch_timeout_ns: int = 0,
    ) -> Step:
        """Append a stage (or the tree of a nested pipeline, ``child``) and return its step.

        Unnamed, a :class:`Stage` is called after its class (``Resize``, then
        ``Resize_2``); any other callable ``Stage_N``. ``replicas``,
        ``executor``, ``ordered`` and ``batch`` (``batch_timeout_ns`` in
        nanoseconds): see ``Pipeline.add``.
        """
        executor = ThreadExecutor() if executor is None else executor
        if not isinstance(ordered, bool):
            raise TypeError(f"ordered must be a bool, got {type(ordered).__name__}")
        if isinstance(stage, type) and issubclass(stage, Stage):
            raise TypeError(
                f"stage: got the class {stage.__name__}; pass an instance: {stage.__name__}()"
            )
        if queue_size is not None:
            check_positive_int(queue_size, "queue_size")
        name = self._stage_name(stage, name, child)
        if child is not None and (replicas > 1 or executor.remote):
            raise ValueError(
                f"replicas: stage {name!r} is a nested pipeline; give replicas to its stages"
            )
        if child is not None and batch is not None:
            raise ValueError(
                f"batch: stage {name!r} is a nested pipeline; batch one of its stages instead"
            )
        if executor.remote or replicas > 1:
            executor.check(stage, name)
        if child is not None:
            self._nest(child)
        watch = StopWatch(name, max_intervals=self.window, clock=self.clock)
        watch.keep_distribution()  # cumulative, for exporters' histograms
        recorder = EventRecorder(name, self.clock, enabled=self.debug, block_names=self.block_names)
        if isinstance(stage, Stage) and child is None:
            stage.__dict__["_framescope_events"] = recorder
            if replicas > 1:
                stage.__dict__["_framescope_replicated"] = True
        step = Step(name, stage, watch, on_error, queue_size, recorder, child)
        step.replicas, step.executor, step.ordered = replicas, executor, ordered
        if batch is not None:
            step.batches = BatchCounts(batch, batch_timeout_ns, name, self.window, self.clock)
        if step.replicated:
            self._add_replica_timers(step)
        self.steps.append(step)
        self.root().qualify()  # keys change only here: a stage added, or a pipeline nested
        return step

    def root(self) -> StageTree:
        """The outermost tree this one is nested in (itself when it is not nested)."""
        tree = self
        while tree.nested_in is not None:
            tree = tree.nested_in
        return tree

    def _stage_name(
        self, stage: Callable[[Any], Any], name: str | None, child: StageTree | None
    ) -> str:
        """The checked name of a stage being added: ``name``, or its default; not yet taken."""
        if name is None and child is not None:
            name = self._next_default_name()  # PyStream: add(sub.as_stage()) keys it Stage_N
        elif name is None:
            name = stage_display_name(stage)
            if name is None and isinstance(stage, Stage):
                name = self._free_name(type(stage).__name__)
            if name is None:
                name = self._next_default_name()
        else:
            name = check_name(name, "name")
        if name in self.names:
            raise ValueError(f"name: pipeline {self.name!r} already has a stage named {name!r}")
        return name

    def _nest(self, child: StageTree) -> None:
        """Make ``child`` a nested pipeline of this one, refusing cycles and second parents."""
        if child is self or self.contains(child) or child.contains(self):
            raise ValueError("stage: a pipeline cannot contain itself")
        if child.nested_in is not None:
            raise ValueError(f"stage: pipeline {child.name!r} is already nested elsewhere")
        child.nested_in = self

    def _add_replica_timers(self, step: Step) -> None:
        """Give each replica of a replicated step its own stopwatch and event recorder."""
        for index in range(step.replicas):
            label = replica_key(step.name, index)
            replica = StopWatch(label, max_intervals=self.window, clock=self.clock)
            replica.keep_distribution()
            step.replica_watches.append(replica)
            recorder = EventRecorder(
                label, self.clock, enabled=self.debug, block_names=self.block_names
            )
            step.replica_recorders.append(recorder)

    def tap(self, stage: str, callback: Callable[[Any], None]) -> None:
        """Call ``callback(result)`` with every result of the plain stage named ``stage``.

        ``stage`` is a stage's name or its profile key (``Main__Draw``); nested
        pipelines are searched too. Taps are compiled in when the pipeline starts.
        """
        if not callable(callback):
            raise TypeError(f"callback must be callable, got {type(callback).__name__}")
        plain = {key: step for key, step in self.keyed() if step.child is None}
        found = [step for key, step in plain.items() if stage in (key, step.name)]
        if not found:
            raise ValueError(f"stage: no stage named {stage!r}; stages are {sorted(plain)}")
        if len(found) > 1:
            raise ValueError(f"stage: {stage!r} names several stages; give its profile key")
        found[0].taps.append(callback)

    def _free_name(self, base: str) -> str:
        taken, candidate, number = set(self.names), base, 1
        while candidate in taken:
            number += 1
            candidate = f"{base}_{number}"
        return candidate

    def _next_default_name(self) -> str:
        taken = set(self.names)
        while True:
            self._unnamed += 1
            candidate = f"Stage_{self._unnamed}"
            if candidate not in taken:
                return candidate

    @property
    def names(self) -> list[str]:
        """Names of the stages, in order."""
        return [step.name for step in self.steps]

    def contains(self, other: StageTree) -> bool:
        """Whether ``other`` is nested somewhere inside this tree."""
        return any(
            step.child is other or (step.child is not None and step.child.contains(other))
            for step in self.steps
        )

    def walk(self) -> Iterator[Step]:
        """Every step of this tree and of nested ones, depth first."""
        for step in self.steps:
            yield step
            if step.child is not None:
                yield from step.child.walk()

    def keyed(self, prefix: str | None = None) -> Iterator[tuple[str, Step]]:
        """Every step, depth first, with its profile key under ``prefix`` (default: the name)."""
        prefix = self.name if prefix is None else prefix
        for step in self.steps:
            key = join_key(prefix, step.name)
            yield key, step
            if step.child is not None:
                yield from step.child.keyed(key)

    def watches(self) -> Iterator[tuple[str, StopWatch]]:
        """Every stage's StopWatch by profile key, and its replicas' as ``Key#0``, ``Key#1`` ...

        A replicated stage's own entry in a snapshot merges its replicas'; its
        own watch times it when the pipeline runs serially.
        """
        for key, step in self.keyed():
            yield key, step.watch
            for index, watch in enumerate(step.replica_watches):
                yield replica_key(key, index), watch

    def qualify(self) -> None:
        """Set every step's profile key (and its recorder's node id) under this tree's name.

        :meth:`add` calls it on the root after every change, so a key is
        computed once, where the structure changes.
        """
        for key, step in self.keyed():
            step.qualified = key
            step.recorder.node_id = key
            for index, recorder in enumerate(step.replica_recorders):
                recorder.node_id = replica_key(key, index)

    def working_keys(self, threaded: bool) -> list[str]:
        """Profile keys of the steps that do the work when the tree runs (``threaded`` or not).

        A threaded nested pipeline inside a threaded one runs its own stages in
        threads, so they are the working steps; otherwise the nested pipeline's
        step runs them inline and is the working step itself.
        """
        keys = []
        for step in self.steps:
            child = step.child
            if child is not None and threaded and child.mode == PARALLEL:
                keys.extend(child.working_keys(True))
            else:
                keys.append(step.qualified)
        return keys

    def inline_unit(self) -> Unit:
        """One unit that runs every stage in turn in the calling thread (serial, or nested).

        Each stage is timed from the previous one's end reading. With
        debugging on, each stage's node shows PROCESSING while it runs, and
        its custom events carry the item's frame id.
        """
        if all(step.child is None for step in self.steps):
            if self.debug:
                return _flat_recorded_unit(self.steps, self.clock.monotonic_ns)
            return _flat_unit(self.steps, self.clock.monotonic_ns)
        units = [step_unit(step) for step in self.steps]
        if not self.debug:

            def run(envelope: Envelope, start: int) -> int:
                for unit in units:
                    start = unit(envelope, start)
                return start

            return run
        pairs = [(unit, step.recorder) for unit, step in zip(units, self.steps, strict=True)]
        processing, idle = NodePhase.PROCESSING, NodePhase.IDLE

        def run_recorded(envelope: Envelope, start: int) -> int:
            for unit, recorder in pairs:
                recorder.frame_id = envelope.frame_id
                recorder.phase = processing
                outer = bind_recorder(recorder)
                try:
                    start = unit(envelope, start)
                finally:
                    recorder.phase = idle
                    bind_recorder(outer)
            return start

        return run_recorded

    def run_inline(self, data: Any) -> Any:
        """Run every stage on ``data`` in this thread and return the result (an inline unit)."""
        envelope = Envelope(data, 0)
        self.inline_unit()(envelope, self.clock.monotonic_ns())
        return envelope.data

    def units(self) -> list[UnitSpec]:
        """Compile into one unit per thread, in order, for a threaded run.

        A threaded nested pipeline contributes its own units, wrapped so that
        its span (first unit's start to last unit's end) is timed on its step;
        a serial one runs inline inside one unit.
        """
        specs: list[UnitSpec] = []
        for step in self.steps:
            child = step.child
            if child is not None and child.mode == PARALLEL:
                inner = child.units()
                for end in (inner[0], inner[-1]):
                    if end.step is not None and end.step.replicated:
                        raise ValueError(
                            f"replicas: {end.label!r} is the first or last stage of the "
                            f"threaded nested pipeline {child.name!r}; give replicas to a "
                            "stage inside it, or run it serial"
                        )
                    if end.step is not None and end.step.batches is not None:
                        raise ValueError(
                            f"batch: {end.label!r} is the first or last stage of the "
                            f"threaded nested pipeline {child.name!r}; batch a stage inside "
                            "it, or add the stage to the outer pipeline"
                        )
                key = id(step)
                first = inner[0]
                size = step.queue_size if step.queue_size is not None else first.queue_size
                inner[0] = UnitSpec(open_span(first.unit, key), size, first.label, first.recorder)
                last = inner[-1]
                inner[-1] = UnitSpec(
                    close_span(last.unit, key, step.watch),
                    last.queue_size,
                    last.label,
                    last.recorder,
                )
                specs.extend(inner)
            else:
                unit = step_unit(step) if child is not None else None
                plain = step if child is None else None
                specs.append(UnitSpec(unit, step.queue_size, step.qualified, step.recorder, plain))
        return specs

    def cleanup_stages(self, seen: set[int]) -> None:
        """Call ``cleanup()`` of every stage in the tree once, even if added twice.

        A nested pipeline cleaned up on its own before is skipped: its stages
        were cleaned up then.
        """
        self.life.advance(Phase.CLEANED_UP)
        for step in self.steps:
            if step.child is not None:
                if not step.child.life.cleaned_up:
                    step.child.cleanup_stages(seen)
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
