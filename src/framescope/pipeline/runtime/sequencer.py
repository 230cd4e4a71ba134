"""Replicas of one stage: several threads take items from its queue; results leave in order.

Each replica thread takes the next item from the stage's input queue through
the :class:`Sequencer`, which numbers it. When a replica is done, the
sequencer holds the result until every earlier one has gone out, then hands
it on (one thread at a time hands results on, so the next queue sees them in
input order). A replica takes no item more than ``window`` ahead of the
oldest one not yet handed on: a slow item at the head of the line holds the
others back (back-pressure, counted in ``head_waits``), and the re-order
buffer never holds more than ``window`` items. ``ordered=False`` hands each
result on as it is done.

The end of the input is passed on once, after every replica has seen it and
every result before it has gone out.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from framescope.clock import Clock
from framescope.pipeline.runtime.channel import CLOSED, END, TIMED_OUT, Channel
from framescope.pipeline.runtime.item import Envelope, Fail, ItemFailedError, Process, failed_item

__all__ = ["Sequencer", "remote_processor"]


class Sequencer:
    """Shares one stage's input queue among its replicas and re-orders their results.

    Args:
        inbox: the stage's input queue.
        send: hands a result on (the next queue's ``put``, or delivery); False
            when the pipeline stopped taking items.
        end: passes the end of the input on (called once, after the last replica).
        count: the number of replicas.
        window: most items taken and not yet handed on (``ordered`` only).
        ordered: keep the input order (else results go out as they are done).
    """

    def __init__(
        self,
        inbox: Channel,
        send: Callable[[Envelope], bool],
        end: Callable[[], object],
        *,
        count: int,
        window: int,
        ordered: bool,
    ) -> None:
        self._get = inbox.get
        self._get_before = inbox.get_before
        self._send = send
        self._end = end
        self._live = count
        self.window = window
        self.ordered = ordered
        self._take_lock = threading.Lock()  # one replica at a time takes (and numbers) an item
        self._lock = threading.Lock()
        self._room = threading.Condition(self._lock)
        self._pending: dict[int, Envelope | None] = {}  # done, waiting for earlier ones
        self._taken = 0
        self._next = 0  # the sequence number to hand on next
        self._flushing = False  # a replica is handing results on
        self._ended = False
        self._closed = False
        self.discarded = 0  # results it held when the pipeline stopped
        self.head_waits = 0  # takes that waited for the head of the line

    def __len__(self) -> int:
        """Results held, waiting for an earlier one."""
        return len(self._pending)

    def get(self) -> Any:
        """The next item for a replica (numbered), :data:`END` or :data:`CLOSED`."""
        with self._take_lock:
            if self._ended:
                return END
            if self.ordered and self._taken - self._next >= self.window:
                with self._room:
                    self.head_waits += 1
                    while self._taken - self._next >= self.window and not self._closed:
                        self._room.wait()
                    if self._closed:
                        return CLOSED
            item = self._get()
            if item is END:
                self._ended = True
            elif item is not CLOSED:
                item.sequence = self._taken
                self._taken += 1
            return item

    def get_before(self, deadline_ns: int | None, clock: Clock) -> Any:
        """:meth:`get` for a replica forming a batch: waits until ``deadline_ns`` at most.

        Returns :data:`~framescope.pipeline.runtime.channel.TIMED_OUT` when the
        deadline passed, and also at once when a deadline is set and the
        window is full (the batch leaves with what it has: waiting for the head
        of the line would hold its items past their timeout).
        """
        with self._take_lock:
            if self._ended:
                return END
            if self.ordered and self._taken - self._next >= self.window:
                if deadline_ns is not None:
                    return TIMED_OUT
                with self._room:
                    self.head_waits += 1
                    while self._taken - self._next >= self.window and not self._closed:
                        self._room.wait()
                    if self._closed:
                        return CLOSED
            item = self._get_before(deadline_ns, clock)
            if item is END:
                self._ended = True
            elif item is not CLOSED and item is not TIMED_OUT:
                item.sequence = self._taken
                self._taken += 1
            return item

    def put(self, envelope: Envelope) -> bool:
        """A replica is done with ``envelope``; False when the pipeline stopped (it is lost)."""
        if not self.ordered:
            return False if self._closed else self._send(envelope)
        return self._deposit(envelope.sequence, envelope)

    def skip(self, envelope: Envelope) -> None:
        """``envelope`` ended in this stage (its failure was skipped): nothing goes on for it."""
        if self.ordered:
            self._deposit(envelope.sequence, None)

    def _deposit(self, sequence: int, envelope: Envelope | None) -> bool:
        with self._lock:
            if self._closed:
                return envelope is None
            self._pending[sequence] = envelope
            if self._flushing:
                return True  # the replica handing results on takes this one too
            self._flushing = True
        send, pending = self._send, self._pending
        while True:
            with self._lock:
                if self._closed or self._next not in pending:
                    self._flushing = False
                    return True
                item = pending.pop(self._next)
                self._next += 1
                self._room.notify()
            if item is not None and not send(item):
                self._abandon(item)
                return True

    def _abandon(self, unsent: Envelope) -> None:
        """The next queue closed: count what could not be handed on, take nothing more."""
        with self._lock:
            self._flushing = False
            self._discard_pending(extra=unsent)

    def _discard_pending(self, extra: Envelope | None = None) -> None:
        held = list(self._pending.values())
        if extra is not None:
            held.append(extra)
        self.discarded += sum(1 for item in held if item is not None and item.error is None)
        self._pending.clear()
        self._closed = True
        self._room.notify_all()

    def replica_ended(self) -> None:
        """A replica saw the end of the input; the last one passes it on."""
        with self._lock:
            self._live -= 1
            last = self._live == 0
        if last:
            self._end()

    def close(self) -> None:
        """The pipeline stops: discard held results (counted) and free waiting replicas."""
        with self._lock:
            if not self._closed:
                self._discard_pending()


def remote_processor(
    call: Callable[[Any], tuple[Any, int]],
    *,
    taps: tuple[Callable[[Any], None], ...],
    record: Callable[[int, int], None],
    wrap: Callable[[Any, Exception], ItemFailedError],
    fail: Fail,
    now: Callable[[], int],
) -> Process:
    """The per-item protocol for a replica that runs elsewhere (a process, an actor).

    ``call(data)`` returns the result and the time the stage took where it
    ran; that time is recorded, ending when the result came back, so the
    stage's statistics hold processing time, not transport.
    """

    def process(envelope: Envelope, start: int) -> int | None:
        if envelope.error is None:
            data = envelope.data
            try:
                result, busy_ns = call(data)
                for tap in taps:
                    tap(result)
            except ItemFailedError as failure:
                return failed_item(envelope, failure, fail, now)
            except Exception as error:
                return failed_item(envelope, wrap(data, error), fail, now)
            end = now()
            record(max(start, end - busy_ns), end)
            envelope.data = result
            return end
        return start

    return process
