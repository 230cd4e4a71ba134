"""The threads of a threaded run: one per unit, or one per replica of a replicated stage.

:func:`start_threads` builds the channels between units, the workers (and
for a replicated stage its :class:`~framescope.pipeline.runtime.sequencer.Sequencer`
and remote replicas) and starts them; :func:`node_links` tells the
aggregator where each node sits.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from framescope.clock import Clock
from framescope.pipeline.debug.aggregation import NodeLink
from framescope.pipeline.debug.recorder import EventRecorder
from framescope.pipeline.replicas.base import Replica
from framescope.pipeline.runtime.batching import BatchFormer, BatchRun, BatchWorker, split_results
from framescope.pipeline.runtime.channel import END, Channel
from framescope.pipeline.runtime.cpu import CpuAccounting
from framescope.pipeline.runtime.item import Envelope, Fail, PlainStage, stage_processor
from framescope.pipeline.runtime.sequencer import Sequencer, remote_processor
from framescope.pipeline.runtime.tree import StageTree, Step, UnitSpec
from framescope.pipeline.runtime.worker import Worker, is_sending

__all__ = ["StageThreads", "add_batch_workers", "node_links", "start_threads", "track_cpu"]

logger = logging.getLogger(__name__)


@dataclass
class StageThreads:
    """The threads of one unit: its input queue, its workers, and for replicas their parts."""

    label: str
    inbox: Channel
    outbox: Channel | None
    workers: list[Worker]
    step: Step | None = None
    sequencer: Sequencer | None = None
    remote: list[Replica] = field(default_factory=list)

    def halt(self) -> None:
        """Stop moving items: free waiting replicas and end remote workers now."""
        if self.sequencer is not None:
            self.sequencer.close()
        for replica in self.remote:
            replica.halt()

    def close(self, timeout: float | None) -> None:
        """End the remote replicas' workers (processes, actors)."""
        for replica in self.remote:
            try:
                replica.close(timeout)
            except Exception:
                logger.exception("replica of %r did not close cleanly", self.label)

    @property
    def restarts(self) -> int:
        """How many times a remote replica's worker was restarted after it died."""
        return sum(replica.restarts for replica in self.remote)

    @property
    def recycles(self) -> int:
        """How many times a remote replica's worker was replaced at its item or memory bound."""
        return sum(replica.recycles for replica in self.remote)


def start_threads(
    specs: list[UnitSpec],
    default_queue: int,
    *,
    fail: Fail,
    deliver: Callable[[Envelope], bool],
    finish: Callable[[], object],
    crash: Callable[[BaseException], object],
    clock: Clock,
    stop_line: list[int] | None = None,
    on_exit: Callable[[], object] | None = None,
) -> list[StageThreads]:
    """Build and start the threads of ``specs``, in order, joined by bounded channels.

    ``stop_line``, ``on_exit``: see :class:`~framescope.pipeline.runtime.worker.Worker`.
    """
    channels = [Channel(_queue_size(spec, default_queue)) for spec in specs]
    now = clock.monotonic_ns
    groups: list[StageThreads] = []
    try:
        for index, spec in enumerate(specs):
            outbox = channels[index + 1] if index + 1 < len(channels) else None
            send = deliver if outbox is None else outbox.put
            end = finish if outbox is None else partial(outbox.put, END, None)
            group = StageThreads(spec.label, channels[index], outbox, [], spec.step)
            groups.append(group)
            make = partial(
                Worker,
                crash=crash,
                stop_line=stop_line,
                on_exit=on_exit,
                outbox_length=None if outbox is None else outbox.length_function(),
                clock=clock,
            )
            step = spec.step
            if step is not None and step.batches is not None:
                batched = partial(add_batch_workers, send=send, end=end, fail=fail, clock=clock)
                batched(group, step, make=partial(BatchWorker, **make.keywords))
                continue
            if step is None or not step.replicated:
                process, plain = spec.processor(fail, now), spec.plain(fail)
                group.workers.append(
                    make(
                        spec.label,
                        process,
                        group.inbox,
                        send,
                        end=end,
                        recorder=spec.recorder,
                        plain=plain,
                    )
                )
                continue
            _add_replicas(group, step, send=send, end=end, fail=fail, clock=clock, make=make)
    except BaseException:
        for group in groups:
            group.halt()
            group.close(1.0)
        raise
    for group in groups:
        for worker in group.workers:
            worker.thread.start()
    return groups


def _queue_size(spec: UnitSpec, default_queue: int) -> int:
    """A stage's queue size: its own or the pipeline's, and at least a batched stage's batch."""
    size = spec.queue_size or default_queue
    step = spec.step
    return size if step is None else max(size, step.batch)


def _add_replicas(
    group: StageThreads,
    step: Step,
    *,
    send: Callable[[Envelope], bool],
    end: Callable[[], object],
    fail: Fail,
    clock: Clock,
    make: Callable[..., Worker],
) -> None:
    count, now = step.replicas, clock.monotonic_ns
    sequencer, remote = _sequenced(group, step, send, end, clock, window=count)
    taps = tuple(step.taps)
    for index in range(count):
        watch, recorder = step.replica_watches[index], step.replica_recorders[index]
        if remote:
            process = remote_processor(
                remote[index].call,
                taps=taps,
                record=watch.record,
                wrap=step.failure,
                fail=fail,
                now=now,
            )
            plain = None
        else:
            plain = PlainStage(step.work(), watch, step.failure, fail)
            process = stage_processor(plain, now)
        group.workers.append(
            make(
                recorder.node_id,
                process,
                group.inbox,
                sequencer.put,
                end=sequencer.replica_ended,
                recorder=recorder,
                get=sequencer.get,
                skip=sequencer.skip,
                plain=plain,
            )
        )


def _sequenced(
    group: StageThreads,
    step: Step,
    send: Callable[[Envelope], bool],
    end: Callable[[], object],
    clock: Clock,
    *,
    window: int,
) -> tuple[Sequencer, list[Replica]]:
    """A replicated stage's sequencer (taking ``window`` items beyond its queue) and remotes."""
    count = step.replicas
    sequencer = Sequencer(
        group.inbox,
        send,
        end,
        count=count,
        window=window + group.inbox.maxsize,
        ordered=step.ordered,
    )
    group.sequencer = sequencer
    executor = step.executor
    remote = executor.replicas(step.stage, count, step.qualified, clock) if executor.remote else []
    group.remote = remote
    return sequencer, remote


def add_batch_workers(
    group: StageThreads,
    step: Step,
    *,
    send: Callable[[Envelope], bool],
    end: Callable[[], object],
    fail: Fail,
    clock: Clock,
    make: Callable[..., BatchWorker],
) -> None:
    """The thread of a batched stage, or one per replica sharing one batch former.

    ``make`` builds a :class:`BatchWorker` with the settings every thread shares.

    Each batch goes to one replica as one call; the replicas' sequencer
    (window: every replica's batch and the queue) hands items on in order.
    """
    counts, now = step.batches, clock.monotonic_ns
    assert counts is not None
    taps, label = tuple(step.taps), step.qualified
    local = _local_batch_call(step.stage, label)
    if not step.replicated:
        former = BatchFormer(
            partial(group.inbox.get_before, clock=clock),
            counts.size,
            counts,
            clock,
            group.inbox.length_function(),
        )
        run = BatchRun(local, step.watch.record, step.failure, fail, taps, now)
        group.workers.append(
            make(
                label,
                former,
                run,
                group.inbox,
                send,
                end=end,
                recorder=step.recorder,
            )
        )
        return
    _add_batch_replicas(group, step, send=send, end=end, fail=fail, clock=clock, make=make)


def _add_batch_replicas(
    group: StageThreads,
    step: Step,
    *,
    send: Callable[[Envelope], bool],
    end: Callable[[], object],
    fail: Fail,
    clock: Clock,
    make: Callable[..., BatchWorker],
) -> None:
    """A batched stage's replicas: one batch former for them all, a thread each."""
    counts, now = step.batches, clock.monotonic_ns
    assert counts is not None
    taps, label = tuple(step.taps), step.qualified
    local = _local_batch_call(step.stage, label)
    count = step.replicas
    sequencer, remote = _sequenced(group, step, send, end, clock, window=count * counts.size)
    former = BatchFormer(
        partial(sequencer.get_before, clock=clock),
        counts.size,
        counts,
        clock,
        group.inbox.length_function(),
    )
    for index in range(count):
        recorder = step.replica_recorders[index]
        call = _remote_batch_call(remote[index].call, label) if remote else local
        run = BatchRun(call, step.replica_watches[index].record, step.failure, fail, taps, now)
        group.workers.append(
            make(
                recorder.node_id,
                former,
                run,
                group.inbox,
                sequencer.put,
                end=sequencer.replica_ended,
                recorder=recorder,
                skip=sequencer.skip,
            )
        )


def _local_batch_call(
    stage: Callable[[Any], Any], label: str
) -> Callable[[list[Any]], tuple[list[Any], int | None]]:
    def call(datas: list[Any]) -> tuple[list[Any], int | None]:
        return split_results(stage(datas), len(datas), label), None

    return call


def _remote_batch_call(
    remote: Callable[[Any], tuple[Any, int]], label: str
) -> Callable[[list[Any]], tuple[list[Any], int | None]]:
    def call(datas: list[Any]) -> tuple[list[Any], int | None]:
        result, busy_ns = remote(datas)
        return split_results(result, len(datas), label), busy_ns

    return call


def node_links(
    tree: StageTree, groups: list[StageThreads], is_feeding: Callable[[], bool]
) -> list[NodeLink]:
    """How each node (step, and each replica) sits in the running pipeline, for the aggregator."""
    by_label = {group.label: index for index, group in enumerate(groups)}
    links = []
    for step in tree.walk():
        index = by_label.get(step.qualified)
        if index is None:
            links.append(NodeLink(step.qualified, step.recorder, fallback=step.statistics))
            continue
        group = groups[index]
        if index == 0:
            upstream = is_feeding
        else:
            upstream = _any_sending([worker.recorder for worker in groups[index - 1].workers])
        link = partial(
            NodeLink,
            inbox_length=group.inbox.__len__,
            capacity=group.inbox.maxsize,
            upstream_sending=upstream,
            out_capacity=None if group.outbox is None else group.outbox.maxsize,
        )
        links.append(link(step.qualified, step.recorder, fallback=step.statistics))
        if group.sequencer is not None:  # the replicas do the stage's work, one node each
            for worker, watch in zip(group.workers, step.replica_watches, strict=True):
                links.append(link(worker.label, worker.recorder, fallback=watch.statistics))
    return links


def _any_sending(recorders: list[EventRecorder]) -> Callable[[], bool]:
    checks = [is_sending(recorder) for recorder in recorders]
    if len(checks) == 1:
        return checks[0]

    def any_sending() -> bool:
        return any(check() for check in checks)

    return any_sending


def track_cpu(tree: StageTree, groups: list[StageThreads], accounting: CpuAccounting) -> None:
    """Have ``accounting`` follow each unit's thread, each replica's thread or worker process.

    A thread's time goes to the unit's stage; a replica's to its own key
    (``Key#i``), its worker process's where it has one. Replicas elsewhere
    (Ray actors) are not followed: their split is unknown.
    """
    steps = {step.qualified: step for step in tree.walk()}
    for group in groups:
        step = steps.get(group.label)
        if group.sequencer is None or step is None:
            watch = step.watch if step is not None else None
            busy = watch.total_seconds if watch is not None else _no_busy
            accounting.track_thread(group.label, group.workers[0].thread, busy)
            continue
        for index, worker in enumerate(group.workers):
            busy = step.replica_watches[index].total_seconds
            if not group.remote:
                accounting.track_thread(worker.label, worker.thread, busy)
                continue
            replica = group.remote[index]
            if hasattr(replica, "pid"):
                accounting.track_process(worker.label, partial(getattr, replica, "pid"), busy)


def _no_busy() -> float:
    return 0.0
