"""Deliver metric data off the frame loop: a bounded buffer, batches, retries with back-off.

The frame loop only appends a datum to a buffer (:meth:`MetricDelivery.submit`
never waits on the network). One delivery loop, on its own named thread or on
an executor you give, sends the buffer in batches. A failed batch that may
succeed later (network down, throttling, missing or expired credentials, a
server error) goes back to the front of the buffer and is retried after an
exponential back-off; a batch the service refuses as invalid is dropped and
counted as rejected. When the endpoint stays down the buffer fills up and the
oldest datum is dropped for each new one (counted); when the endpoint comes
back, what is buffered is sent in order.

The back-off is a delay of the program's own making, so it is waited on the
``clock`` (a :class:`~framescope.clock.FakeClock` drives it in tests);
:meth:`MetricDelivery.flush` and :meth:`MetricDelivery.close` bound real I/O
and wait in real time.
"""

from __future__ import annotations

import concurrent.futures
import logging
import threading
from collections import deque
from collections.abc import Callable, Sequence
from enum import Enum
from types import TracebackType
from typing import Any

from framescope._validation import (
    check_positive_int,
    check_positive_seconds,
    check_seconds_or_none,
)
from framescope._waits import Deadline, backoff_delay
from framescope.clock import SYSTEM_CLOCK, Clock, wait_on

__all__ = ["DeliveryCounters", "FailureKind", "MetricDelivery"]

logger = logging.getLogger(__name__)

_IDLE_POLL_S = 0.5  # an idle loop looks this often (real s) whether the program is exiting


class FailureKind(Enum):
    """What to do with a batch whose delivery raised."""

    RETRY = "retry"
    """A transient fault: keep the batch and try again after a back-off."""
    REJECT = "reject"
    """The service refused the data itself: drop the batch, count it."""


DeliveryCounters = dict[str, int]


class MetricDelivery:
    """A bounded buffer of data and the loop that sends it in batches.

    Args:
        send_batch: sends one batch (a list of data); raises on failure.
        classify: tells whether an exception from ``send_batch`` is worth a retry.
        name: names the thread and the log lines.
        max_buffer: the most data kept while the endpoint is unreachable; beyond
            it the oldest datum is dropped (counted in ``dropped``).
        batch_size: the most data sent in one call.
        retry_initial: first back-off in seconds; it doubles per failure (with
            jitter) up to ``retry_max``, and resets after a success.
        retry_max: the longest back-off in seconds.
        executor: run the delivery loop on this executor (it occupies one of
            its workers until :meth:`close`) instead of a thread of its own.
        clock: the clock the back-off is timed and waited on.
        log: where its warnings go (default: this module's logger).
    """

    def __init__(
        self,
        send_batch: Callable[[list[Any]], None],
        classify: Callable[[BaseException], FailureKind],
        *,
        name: str = "framescope-delivery",
        max_buffer: int = 10_000,
        batch_size: int = 20,
        retry_initial: float = 1.0,
        retry_max: float = 60.0,
        executor: concurrent.futures.Executor | None = None,
        clock: Clock | None = None,
        log: logging.Logger | None = None,
    ) -> None:
        self.log = logger if log is None else log
        if executor is not None and not isinstance(executor, concurrent.futures.Executor):
            raise TypeError(
                f"executor must be a concurrent.futures.Executor or None, "
                f"got {type(executor).__name__}"
            )
        self._send_batch = send_batch
        self._classify = classify
        self.name = name
        self.max_buffer = check_positive_int(max_buffer, "max_buffer")
        self.batch_size = check_positive_int(batch_size, "batch_size")
        self.retry_initial = check_positive_seconds(retry_initial, "retry_initial")
        self.retry_max = max(check_positive_seconds(retry_max, "retry_max"), self.retry_initial)
        self.executor = executor
        self.clock = SYSTEM_CLOCK if clock is None else clock
        self._buffer: deque[Any] = deque()
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._idle = threading.Condition(self._lock)
        self._in_flight = 0
        self._closing = False
        self._retry_at = 0  # monotonic ns of the clock
        self._failures = 0  # failed attempts in a row
        self._failing = False
        self._thread: threading.Thread | None = None
        self._future: concurrent.futures.Future[None] | None = None
        self._counts = dict.fromkeys(
            ("submitted", "sent", "dropped", "rejected", "failed_attempts", "batches"), 0
        )
        self.last_error: str | None = None

    # -- the frame loop's side --------------------------------------------------

    def submit(self, datum: Any) -> None:
        """Queue one datum; never waits on the network. Drops the oldest when full."""
        self.submit_many((datum,))

    def submit_many(self, data: Sequence[Any]) -> None:
        """Queue several data at once, under one lock (see :meth:`submit`)."""
        with self._lock:
            if self._closing:
                self._counts["dropped"] += len(data)
                self.log.warning("%s: closed, dropped %d data", self.name, len(data))
                return
            self._buffer.extend(data)
            self._counts["submitted"] += len(data)
            self._trim_locked()
            self._ensure_started_locked()
            self._wake.notify()

    def _trim_locked(self) -> None:
        overflow = len(self._buffer) - self.max_buffer
        if overflow > 0:
            for _ in range(overflow):
                self._buffer.popleft()
            if self._counts["dropped"] == 0:
                self.log.warning(
                    "%s: buffer full (%d); dropping the oldest data until the endpoint is back",
                    self.name,
                    self.max_buffer,
                )
            self._counts["dropped"] += overflow

    def _ensure_started_locked(self) -> None:
        if self._thread is not None or self._future is not None:
            return
        if self.executor is not None:
            try:
                self._future = self.executor.submit(self._run)
                return
            except RuntimeError as error:  # the executor was shut down
                self.log.warning("%s: executor unusable (%s); using a thread", self.name, error)
        # Not a daemon: it runs no user code; it ends at close(), or by itself
        # once the main thread has finished (so a forgotten close() cannot hang exit).
        self._thread = threading.Thread(target=self._run, name=self.name)
        self._thread.start()

    # -- reading it -------------------------------------------------------------

    def counters(self) -> DeliveryCounters:
        """What happened to the data so far.

        ``submitted`` queued, ``sent`` accepted by the endpoint, ``dropped``
        discarded because the buffer was full (or submitted after close),
        ``rejected`` refused by the endpoint as invalid, ``failed_attempts``
        batches that failed and were kept for a retry, ``batches`` calls that
        succeeded, ``pending`` waiting now (in the buffer or being sent).
        """
        with self._lock:
            counts = dict(self._counts)
            counts["pending"] = len(self._buffer) + self._in_flight
        return counts

    @property
    def failing(self) -> bool:
        """True while the last attempt failed and data wait for a retry."""
        return self._failing

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until everything queued so far was sent (or rejected).

        Returns False when ``timeout`` seconds passed first (e.g. the endpoint is down).
        """
        left = Deadline(timeout).left
        with self._lock:
            while self._buffer or self._in_flight:
                if self._closing:
                    return False
                remaining = left()
                if remaining is not None and remaining <= 0:
                    return False
                self._idle.wait(remaining)
        return True

    def close(self, timeout: float | None = 5.0) -> bool:
        """Send what is buffered (for up to ``timeout`` seconds in all), then stop the loop.

        Data still unsent when the time is up are dropped and counted. Returns
        True when everything was delivered. Safe to call more than once.
        """
        timeout = check_seconds_or_none(timeout, "timeout")
        left = Deadline(timeout).left

        delivered = self.flush(timeout)
        with self._lock:
            self._closing = True
            leftover = len(self._buffer)
            if leftover:
                self._counts["dropped"] += leftover
                self._buffer.clear()
                self.log.warning("%s: closed with %d data unsent (dropped)", self.name, leftover)
            self._wake.notify_all()
            thread, future = self._thread, self._future
        # One deadline for the whole close: a call hung on the endpoint is left
        # to its own read timeout (its batch is then dropped and counted).
        if thread is not None:
            thread.join(left())
        if future is not None:
            try:
                future.result(left())
            except concurrent.futures.TimeoutError:
                self.log.warning("%s: delivery loop did not stop within %s s", self.name, timeout)
        return delivered and not leftover

    def __enter__(self) -> MetricDelivery:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    # -- the delivery loop ------------------------------------------------------

    def _next_batch(self) -> list[Any] | None:
        """Wait for data (and for the back-off to pass); None when closing."""
        with self._lock:
            while True:
                if self._closing:
                    return None
                if not threading.main_thread().is_alive():
                    return None  # the program has ended without close(): do not hold its exit
                if self._buffer:
                    wait_ns = self._retry_at - self.clock.monotonic_ns()
                    if wait_ns <= 0:
                        break
                    wait_on(self.clock, self._wake, min(wait_ns / 1e9, _IDLE_POLL_S))
                else:
                    self._idle.notify_all()
                    self._wake.wait(_IDLE_POLL_S)
            size = min(self.batch_size, len(self._buffer))
            batch = [self._buffer.popleft() for _ in range(size)]
            self._in_flight = size
            return batch

    def _run(self) -> None:
        while True:
            batch = self._next_batch()
            if batch is None:
                with self._lock:
                    self._idle.notify_all()
                return
            try:
                self._send_batch(batch)
            except Exception as error:  # classified below: nothing escapes the loop
                self._failed(batch, error)
            else:
                self._succeeded(batch)

    def _succeeded(self, batch: list[Any]) -> None:
        with self._lock:
            self._in_flight = 0
            self._counts["sent"] += len(batch)
            self._counts["batches"] += 1
            self._failures = 0
            self._retry_at = 0
            recovered = self._failing
            self._failing = False
            if not self._buffer:
                self._idle.notify_all()
        if recovered:
            self.log.info("%s: delivery recovered; sending the buffered data", self.name)

    def _failed(self, batch: list[Any], error: Exception) -> None:
        kind = self._classify(error)
        description = f"{type(error).__name__}: {error}"
        delay, first_failure, closing = 0.0, False, False
        with self._lock:
            self._in_flight = 0
            self.last_error = description
            if kind is FailureKind.REJECT:
                self._counts["rejected"] += len(batch)
                if not self._buffer:
                    self._idle.notify_all()
            elif self._closing:
                # close() already gave up on what was buffered; this batch goes the same way.
                closing = True
                self._counts["dropped"] += len(batch)
                self._idle.notify_all()
            else:
                self._counts["failed_attempts"] += 1
                self._buffer.extendleft(reversed(batch))
                self._trim_locked()
                self._failures += 1
                delay = backoff_delay(self._failures, self.retry_initial, self.retry_max)
                self._retry_at = self.clock.monotonic_ns() + round(delay * 1e9)
                first_failure = not self._failing
                self._failing = True
        if kind is FailureKind.REJECT:
            self.log.error("%s: %d data rejected: %s", self.name, len(batch), description)
        elif closing:
            self.log.warning("%s: closed; dropped %d unsent data", self.name, len(batch))
        elif first_failure:
            self.log.warning(
                "%s: delivery failed (%s); retrying with back-off, data are buffered",
                self.name,
                description,
            )
        else:
            self.log.debug("%s: retry failed (%s); next in %.2f s", self.name, description, delay)
