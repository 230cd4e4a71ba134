"""The per-node event recorder: stage code and the runtime record events here.

Each node (stage) owns one :class:`EventRecorder`. Recording an event reads the
monotonic clock and appends one tuple to a list that only the node's thread
writes: no lock, no formatting, no object beyond the tuple. The aggregator
drains the lists in batches (see ``debug/aggregation.py``).
"""

from __future__ import annotations

import functools
import logging
from array import array
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from framescope._buffers import take_prefix
from framescope.clock import Clock
from framescope.pipeline.model.events import (
    BATCH_FIELDS,
    BLOCK_NAMES,
    ITERATION_FIELDS,
    OTHER_BLOCK,
    EventInterval,
    EventStatus,
    EventType,
    NodePhase,
    RawEvent,
    pack_batch_mark,
)

__all__ = ["EventRecorder"]

_F = TypeVar("_F", bound=Callable[..., Any])

logger = logging.getLogger(__name__)


class EventRecorder:
    """The per-node event dispatcher: stage code and the runtime record events here.

    A stage author adds CUSTOM events around a block of work::

        class Detector(Stage):
            def __call__(self, frame):
                with self.events.block("nms"):
                    boxes = nms(raw)

    or with :meth:`measure` as a decorator, or with explicit :meth:`start` /
    :meth:`end`. When debugging is off the recorder is disabled and every
    call returns at once.

    A node keeps at most ``block_names`` distinct block names apart (a name
    per item, such as ``f"track-{id}"``, would otherwise grow memory without
    bound): later new names are timed together as :data:`OTHER_BLOCK`,
    counted in ``folded_blocks``, with one warning.

    Only the node's own thread should record; the aggregator drains from
    another thread without a lock (see :meth:`drain`).
    """

    __slots__ = (
        "_append",
        "_batches",
        "_block_names",
        "_buffer",
        "_iterations",
        "_max_block_names",
        "_now",
        "_open",
        "_sequences",
        "enabled",
        "extend_iterations",
        "folded_blocks",
        "frame_id",
        "node_id",
        "phase",
    )

    def __init__(
        self,
        node_id: str,
        clock: Clock,
        *,
        enabled: bool = True,
        block_names: int = BLOCK_NAMES,
    ) -> None:
        self.node_id = node_id
        self.enabled = enabled
        self._max_block_names = block_names
        self._block_names: set[str] = set()
        self.folded_blocks = 0  # CUSTOM events past the name bound, recorded as OTHER_BLOCK
        self.frame_id: int | None = None
        self._now = clock.monotonic_ns
        self._buffer: list[RawEvent] = []
        self._append = self._buffer.append
        self._sequences: dict[tuple[int, str], int] = {}
        self._open: dict[tuple[int, str], list[int]] = {}
        # Flat int64 values, ITERATION_FIELDS per iteration, appended as one
        # packed run (pack_iteration): no Python object is kept per value, so
        # the aggregator frees nothing per record and can fold with NumPy.
        self._iterations: array[int] = array("q")
        self.extend_iterations = self._iterations.frombytes
        self._batches: array[int] = array("q")  # BATCH_FIELDS per item of a batched stage
        self.phase = NodePhase.IDLE

    def record(
        self,
        kind: EventType,
        interval: EventInterval,
        source: str,
        *,
        status: EventStatus = EventStatus.SUCCESS,
        queue_size: int | None = None,
    ) -> None:
        """Record one event now (the runtime's and custom events go through here)."""
        if not self.enabled:
            return
        if kind is EventType.CUSTOM and source not in self._block_names:
            source = self._block_name(source, counted=interval is not EventInterval.END)
        key = (kind, source)
        if interval is EventInterval.END:
            opened = self._open.get(key)
            sequence = opened.pop() if opened else self._next_sequence(key)
            if opened is not None and not opened:
                del self._open[key]
        else:
            sequence = self._next_sequence(key)
            if interval is EventInterval.START:
                self._open.setdefault(key, []).append(sequence)
        self._append(
            (kind, interval, status, queue_size, source, self._now(), sequence, self.frame_id)
        )

    def _block_name(self, name: str, *, counted: bool) -> str:
        """``name`` while there is room for a new block name, else :data:`OTHER_BLOCK`.

        ``counted``: this event begins a block (so a folded block counts once).
        """
        if len(self._block_names) < self._max_block_names or name == OTHER_BLOCK:
            self._block_names.add(name)
            return name
        if not self.folded_blocks and counted:
            logger.warning(
                "node %r: more than %d distinct block names; new ones (first %r) are "
                "timed together as %r (a name per item grows memory without bound)",
                self.node_id,
                self._max_block_names,
                name,
                OTHER_BLOCK,
            )
        self.folded_blocks += counted
        return OTHER_BLOCK

    def _next_sequence(self, key: tuple[int, str]) -> int:
        sequence = self._sequences.get(key, 0)
        self._sequences[key] = sequence + 1
        return sequence

    def start(self, name: str) -> None:
        """Start a CUSTOM timed block called ``name``."""
        self.record(EventType.CUSTOM, EventInterval.START, name)

    def end(self, name: str, *, status: EventStatus = EventStatus.SUCCESS) -> None:
        """End the innermost open CUSTOM block called ``name``."""
        self.record(EventType.CUSTOM, EventInterval.END, name, status=status)

    @contextmanager
    def block(self, name: str) -> Iterator[None]:
        """Time the ``with`` block as CUSTOM ``name`` (CANCELLED status if it raises)."""
        self.start(name)
        try:
            yield
        except BaseException:
            self.end(name, status=EventStatus.CANCELLED)
            raise
        self.end(name)

    def measure(self, name: str) -> Callable[[_F], _F]:
        """Decorator form of :meth:`block`."""

        def decorate(func: _F) -> _F:
            @functools.wraps(func)
            def timed(*args: Any, **kwargs: Any) -> Any:
                with self.block(name):
                    return func(*args, **kwargs)

            return timed  # type: ignore[return-value]

        return decorate

    def backlog(self) -> int:
        """How many iterations and events wait for the aggregator."""
        return (
            len(self._iterations) // ITERATION_FIELDS
            + len(self._buffer)
            + len(self._batches) // BATCH_FIELDS
        )

    def drain_iterations(self) -> array[int]:
        """Take the flat values of every iteration so far (see :func:`iteration_records`).

        One ``frombytes`` of a packed iteration is atomic, so the length is always
        a whole number of iterations; the lock-free scheme is :meth:`drain`'s.
        """
        return take_prefix(self._iterations)

    def extend_batches(self, mark: tuple[int, int, int, int, int, int]) -> None:
        """Record that an item ran in a batch: ``mark`` is ``(frame id, batch id, size,
        joined, call start, call end)``, ``joined`` when it joined the forming batch
        (a batched stage's thread records one per item it sends)."""
        self._batches.frombytes(pack_batch_mark(*mark))

    def drain_batches(self) -> array[int]:
        """Take the flat values of every batch mark so far (BATCH_FIELDS each)."""
        return take_prefix(self._batches)

    def drain(self) -> list[RawEvent]:
        """Take every event recorded so far (called by the aggregator's thread).

        Slicing then deleting the same prefix keeps events appended meanwhile.
        """
        return take_prefix(self._buffer)

    def __repr__(self) -> str:
        return f"EventRecorder({self.node_id!r}, enabled={self.enabled})"
