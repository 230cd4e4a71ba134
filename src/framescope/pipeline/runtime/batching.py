"""Batched stages: items from any source gathered into one call (``add(stage, batch=8)``).

A batched stage's thread (or each of its replicas' threads) forms a batch
from its input queue: it takes the first item, then more until the batch is
full or the oldest item in it has waited ``batch_timeout`` on the pipeline's
clock, or at once when the input ends (the part-full batch is flushed). The
stage is called once with the list of items and returns one result per item;
each item then goes on by itself, in the order it came, with the error
policy applied to each item of a batch that failed.

The time an item waits in its forming batch (from being taken off the queue
to the start of the call) is the batch wait, counted apart from its queue
wait. The stage's timer gets each item's share of its batch's call, so the
stage's rate, busy share and CPU split count items.

A serial pipeline runs each item through every stage before it takes the
next, so a batched stage there is called with a batch of one item (counted
as flushed batches of size 1).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from framescope.clock import Clock
from framescope.pipeline.errors import ErrorPolicy
from framescope.pipeline.model.batches import BatchSnapshot
from framescope.pipeline.model.counters import BATCH_REASONS
from framescope.pipeline.model.events import NO_QUEUE, NodePhase, pack_iteration
from framescope.pipeline.runtime.channel import CLOSED, END, TIMED_OUT
from framescope.pipeline.runtime.item import Envelope, Fail, ItemFailedError, failed_item
from framescope.pipeline.runtime.worker import Worker
from framescope.timepiece import StopWatch

__all__ = [
    "DEFAULT_BATCH_TIMEOUT",
    "BatchCounts",
    "BatchFormer",
    "BatchRun",
    "BatchWorker",
    "Formed",
    "one_item_batches",
    "split_results",
]

DEFAULT_BATCH_TIMEOUT = 0.04
"""Seconds the oldest item of a forming batch waits by default: about one frame at 25 fps."""


class BatchCounts:
    """A batched stage's live batch figures: sizes, reasons, items' batch waits.

    Written by whichever thread formed a batch, under its own lock (replicas
    form batches one at a time); read into a :class:`BatchSnapshot`.
    """

    def __init__(self, size: int, timeout_ns: int, name: str, window: int, clock: Clock) -> None:
        self.size = size
        self.timeout_ns = timeout_ns
        self.sizes = [0] * (size + 1)
        self.reasons = dict.fromkeys(BATCH_REASONS, 0)
        self.wait = StopWatch(f"{name} batch wait", max_intervals=window, clock=clock)
        self.wait.keep_distribution()
        self.made = 0
        self._lock = threading.Lock()

    def note(self, joined: Sequence[int], start: int, reason: str) -> int:
        """A batch of the items that joined at ``joined`` starts at ``start``; its batch id."""
        with self._lock:
            self.sizes[len(joined)] += 1
            self.reasons[reason] += 1
            record = self.wait.record
            for t_joined in joined:
                record(t_joined, start)
            batch_id = self.made
            self.made += 1
        return batch_id

    def read(self) -> BatchSnapshot:
        """The figures now, as plain data."""
        with self._lock:
            sizes = {size: count for size, count in enumerate(self.sizes) if count}
            reasons = dict(self.reasons)
            wait = self.wait.statistics()
        return BatchSnapshot(self.size, self.timeout_ns / 1e9, sizes, reasons, wait)


def _length(result: Any) -> int | None:
    """How many results ``result`` holds; None when it is not a sequence of them."""
    if isinstance(result, (str, bytes, bytearray, Mapping)) or not (
        hasattr(result, "__len__") and hasattr(result, "__getitem__")
    ):
        return None
    try:
        return len(result)
    except TypeError:  # a 0-d array or tensor: one value, no axis to split
        return None


def _described(result: Any) -> str:
    """What came back, for the error: its type (and shape, for an array or tensor)."""
    shape = getattr(result, "shape", None)
    name = type(result).__name__
    return name if shape is None else f"{name} of shape {tuple(shape)}"


def split_results(result: Any, count: int, stage: str) -> list[Any]:
    """The ``count`` results of a batch call, one per item; else why not (for every item).

    A list, a tuple, any sequence, or an array or tensor with a first axis
    of ``count`` (indexed item by item). A TypeError names what came back
    instead; a ValueError says how many results came for how many items.
    """
    size = _length(result)
    if size is None:
        raise TypeError(
            f"batched stage {stage!r} must return a list (or sequence) of {count} results, "
            f"one per item in order, got {_described(result)}"
        )
    if size != count:
        raise ValueError(
            f"batched stage {stage!r} was given {count} items and returned {size} results; "
            "it must return one result per item, in order"
        )
    if type(result) is list:
        return result
    return [result[index] for index in range(count)]


def one_item_batches(
    stage: Callable[[list[Any]], Any],
    name: str,
    counts: BatchCounts,
    now: Callable[[], int],
) -> Callable[[Any], Any]:
    """A batched stage as a serial run calls it: each item as a batch of one (flushed)."""
    note, split = counts.note, split_results

    def one_item(data: Any) -> Any:
        start = now()
        note((start,), start, "flush")
        return split(stage([data]), 1, name)[0]

    return one_item


@dataclass(frozen=True, slots=True)
class Formed:
    """One formed batch: its items in order, when each joined, why it left.

    ``tail`` is :data:`END` or :data:`CLOSED` when that came right after the
    batch (None otherwise); ``t_get`` and ``queued``: when the thread went to
    take the first item and how many waited then; ``start``: when forming
    ended (the call starts).
    """

    items: list[Envelope]
    joined: list[int]
    reason: str
    batch_id: int
    t_get: int
    queued: int
    start: int
    tail: Any = None


class BatchFormer:
    """Forms batches from a stage's queue, for its thread or its replicas' threads in turn.

    Args:
        take: ``take(deadline_ns)`` the next item, waiting until the deadline
            (None: no limit); :data:`END`, :data:`CLOSED` or :data:`TIMED_OUT`.
        size: the most items of a batch.
        counts: where each batch is counted.
        clock: the pipeline's clock (the timeout is measured on it).
        queued: how many items wait in the queue now.
    """

    def __init__(
        self,
        take: Callable[[int | None], Any],
        size: int,
        counts: BatchCounts,
        clock: Clock,
        queued: Callable[[], int],
    ) -> None:
        self._take = take
        self._size = size
        self._timeout_ns = counts.timeout_ns
        self._counts = counts
        self._now = clock.monotonic_ns
        self._queued = queued
        self._lock = threading.Lock()  # one thread forms a batch at a time

    def form(self) -> Formed:
        """The next batch (empty, with its tail, when the input ended or the queue closed)."""
        take, now, size = self._take, self._now, self._size
        with self._lock:
            t_get, queued = now(), self._queued()
            first = take(None)
            if first is END or first is CLOSED:
                return Formed([], [], "", -1, t_get, queued, t_get, first)
            items, joined = [first], [now()]
            deadline = joined[0] + self._timeout_ns
            reason, tail = "full", None
            while len(items) < size:
                item = take(deadline)
                if item is TIMED_OUT:
                    # Not yet due: the replicas' window is full (the head of the line is slow).
                    reason = "timeout" if now() >= deadline else "flush"
                    break
                if item is END or item is CLOSED:
                    reason, tail = "flush", item
                    break
                items.append(item)
                joined.append(now())
            start = now()
            batch_id = self._counts.note(joined, start, reason)
        return Formed(items, joined, reason, batch_id, t_get, queued, start, tail)


@dataclass(frozen=True, slots=True)
class BatchRun:
    """How one thread runs a batch: the call, its timer, taps and the failures' path.

    ``call(datas)`` returns the results (split, one per item) and the time
    the call took where it ran (None: here, timed from the reading before it).
    """

    call: Callable[[list[Any]], tuple[list[Any], int | None]]
    record: Callable[[int, int], None]
    wrap: Callable[[Any, Exception], ItemFailedError]
    fail: Fail
    taps: tuple[Callable[[Any], None], ...]
    now: Callable[[], int]

    def process(self, batch: list[Envelope], start: int) -> tuple[list[Envelope], int]:
        """Run ``batch``; the envelopes that go on (in order) and the reading it ended on.

        An item an earlier stage failed on passes through uncalled. When the
        call fails, each item of the batch fails under the stage's policy; an
        item that ends here (skip, stop) is left out of what goes on. Under
        ``stop`` the first item fails and stops the pipeline; the later ones
        came in after it: they go on unfailed and are discarded (counted)
        where the stop cuts them, as without batching.
        """
        live = [envelope for envelope in batch if envelope.error is None]
        if not live:
            return batch, start
        datas = [envelope.data for envelope in live]
        try:
            results, busy_ns = self.call(datas)
        except Exception as error:
            return self._fail_all(batch, live, error), self.now()
        end = self.now()
        self._record(start if busy_ns is None else max(start, end - busy_ns), end, len(live))
        ended = set()
        for envelope, result in zip(live, results, strict=True):
            data, envelope.data = envelope.data, result
            try:
                for tap in self.taps:
                    tap(result)
            except Exception as error:
                if self._failed(envelope, data, error) is None:
                    ended.add(id(envelope))
        if ended:
            return [e for e in batch if id(e) not in ended], end
        return batch, end

    def _fail_all(
        self, batch: list[Envelope], live: list[Envelope], error: Exception
    ) -> list[Envelope]:
        """The call raised ``error``: fail its items in order (one only under ``stop``)."""
        ended = set()
        for envelope in live:
            failure = (
                error if isinstance(error, ItemFailedError) else self.wrap(envelope.data, error)
            )
            if failed_item(envelope, failure, self.fail, self.now) is None:
                ended.add(id(envelope))
            if failure.policy is ErrorPolicy.STOP:
                break  # the pipeline stops at this item: the rest came in after it
        return [e for e in batch if id(e) not in ended]

    def _failed(self, envelope: Envelope, data: Any, error: Exception) -> int | None:
        failure = error if isinstance(error, ItemFailedError) else self.wrap(data, error)
        return failed_item(envelope, failure, self.fail, self.now)

    def _record(self, start: int, end: int, count: int) -> None:
        """Each item's share of the call: ``count`` intervals that tile ``start..end``."""
        span, record = end - start, self.record
        for index in range(count):
            record(start + span * index // count, start + span * (index + 1) // count)


class BatchWorker(Worker):
    """The thread of a batched stage (or of one of its replicas): forms, runs, sends on.

    Takes what :class:`Worker` takes, less ``process`` and ``plain``, plus
    ``former`` (shared by a stage's replicas) and ``run`` (this thread's).
    """

    def __init__(
        self,
        label: str,
        former: BatchFormer,
        run: BatchRun,
        *args: Any,
        **kwargs: Any,
    ) -> None:
        super().__init__(label, _no_process, *args, **kwargs)
        self._former = former
        self._run_batch = run

    def _loop(self, recording: bool) -> Envelope | None:
        """Form, run and send batches until the input ends (None) or the next queue closes."""
        form, run, recorder = self._former.form, self._run_batch.process, self.recorder
        line, sequence = self._stop_line, 0
        while True:
            recorder.phase = NodePhase.GETTING_INPUTS
            formed = form()
            if formed.tail is CLOSED:
                for envelope in formed.items:
                    self._lost(envelope)
                return None
            batch = []
            for envelope in formed.items:
                if envelope.frame_id > line[0]:
                    self._cut(envelope)
                else:
                    batch.append(envelope)
            if batch:
                recorder.phase = NodePhase.PROCESSING
                recorder.frame_id = batch[0].frame_id  # custom blocks of the call: its first
                try:
                    going, end = run(batch, formed.start)
                except BaseException:  # SystemExit ...: the thread ends, counted failed once
                    self._crashed(batch)
                    raise
                if len(going) != len(batch):
                    sequence = self._skip_ended(
                        batch, going, formed, end, sequence=sequence, recording=recording
                    )
                held = self._send_all(going, formed, end, sequence if recording else None)
                sequence += len(going)
                if held is not None:
                    return held
            if formed.tail is END:
                self._leave()
                self._end()
                return None

    def _crashed(self, batch: list[Envelope]) -> None:
        """A BaseException escaped the call: the runtime counts one item failed, the rest lost."""
        live = [envelope for envelope in batch if envelope.error is None]
        for envelope in live[1:]:
            self._lost(envelope)

    def _skip_ended(
        self,
        batch: list[Envelope],
        going: list[Envelope],
        formed: Formed,
        end: int,
        *,
        sequence: int,
        recording: bool,
    ) -> int:
        """Tell the sequencer of each item that ended in this stage (skip or stop).

        With debugging on, each one's iteration is recorded (it ended at
        ``end``, sent nowhere); returns the next iteration's number.
        """
        kept = {id(envelope) for envelope in going}
        for envelope in batch:
            if id(envelope) in kept:
                continue
            self._skip(envelope)
            if recording:
                self.recorder.extend_iterations(
                    pack_iteration(
                        sequence,
                        envelope.frame_id,
                        formed.t_get,
                        formed.queued,
                        formed.start,
                        end,
                        NO_QUEUE,
                        end,
                        0,
                        envelope.t_in,
                    )
                )
                sequence += 1
        return sequence

    def _send_all(
        self, going: list[Envelope], formed: Formed, end: int, sequence: int | None
    ) -> Envelope | None:
        """Send ``going`` on in order; the item that could not be sent (the rest counted lost).

        With ``sequence`` (debugging on) each item's iteration and its batch are recorded.
        """
        recorder, send, now = self.recorder, self._send, self._now
        recorder.phase = NodePhase.SENDING_OUTPUTS
        outbox_length = self._outbox_length
        t_get, t_got, t_send = formed.t_get, formed.start, end
        for position, envelope in enumerate(going):
            out_queued = outbox_length() if outbox_length is not None else NO_QUEUE
            sent = send(envelope)
            if sequence is not None:
                t_sent = now()
                recorder.extend_iterations(
                    pack_iteration(
                        sequence + position,
                        envelope.frame_id,
                        t_get,
                        formed.queued,
                        t_got,
                        t_send,
                        out_queued,
                        t_sent,
                        sent,
                        envelope.t_in,
                    )
                )
                self._mark(envelope, formed, end)
                t_get = t_got = t_send = t_sent
            if not sent:
                for later in going[position + 1 :]:
                    self._lost(later)
                return envelope
        return None

    def _mark(self, envelope: Envelope, formed: Formed, end: int) -> None:
        """Record which batch ``envelope`` ran in, for its frame trace."""
        try:
            joined = formed.joined[formed.items.index(envelope)]
        except ValueError:  # pragma: no cover - every envelope sent came from the batch
            return
        self.recorder.extend_batches(
            (envelope.frame_id, formed.batch_id, len(formed.items), joined, formed.start, end)
        )


def _no_process(envelope: Envelope, start: int) -> int | None:  # pragma: no cover - unused
    raise AssertionError("a batched stage's thread runs batches, not single items")
