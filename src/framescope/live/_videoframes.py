"""The frames' way from a live view's previews to its video process (``videoprocess``).

A :class:`Forwarder` a watched preview takes the tap's frames (a reference,
on the stage's thread), keeps the newest of each watched camera, and on its
own thread hands one a camera at most ``webrtc_fps`` a second (one early, as
a camera's jitter asks) to the child: the image copied into one of the
preview's :class:`Slots` (shared memory, each block as large as the largest
frame it held), the slot named in a ``frame`` message. A frame that a newer
one replaces before it is taken is counted as skipped. A slot is the
child's from the moment its message is sent until the child says ``free``
(or ended): the forwarder waits for one while the child holds them all.
"""

from __future__ import annotations

import collections
import itertools
import logging
import threading
from collections.abc import Callable, Iterator
from typing import Any

from framescope._shm import OwnedBlock
from framescope.capture import Stamps
from framescope.clock import SYSTEM_CLOCK, Clock, wait_on
from framescope.live.preview import PreviewTap, pick_image

__all__ = ["SLOTS", "Forwarder", "Slots"]

logger = logging.getLogger(__name__)

SLOTS = 2
"""Frames of a preview in flight to the video process at once."""


class Slots:
    """A preview's shared-memory slots, and which of them the child holds.

    Args:
        count: slots.
    """

    def __init__(self, count: int = SLOTS) -> None:
        self._blocks: list[OwnedBlock | None] = [None] * count
        self._free = collections.deque(range(count))
        self._sent: set[int] = set()  # the child's until it frees them (or ends)
        self._cond = threading.Condition()
        self.closed = False

    def acquire(self) -> int | None:
        """A free slot, waiting while the child holds them all; None once closed."""
        with self._cond:
            while not self._free and not self.closed:
                self._cond.wait()
            return None if self.closed else self._free.popleft()

    def write(self, index: int, image: Any) -> str | None:
        """Copy ``image`` into slot ``index`` (a larger block if needed); the block's name.

        None once closed (no block is made then, none is left behind).
        """
        import numpy  # noqa: PLC0415 - a frame is an array: NumPy is loaded

        with self._cond:
            if self.closed:
                return None
            block = self._blocks[index]
            if block is None or block.size < image.nbytes:
                if block is not None:
                    block.close()  # the child copied it out: unlinked, its mapping is its own
                block = self._blocks[index] = OwnedBlock(max(1, image.nbytes))
            numpy.copyto(numpy.ndarray(image.shape, numpy.uint8, buffer=block.view), image)
            return block.name

    def sending(self, index: int) -> None:
        """Slot ``index`` goes to the child now (said before its message: ``free`` may follow)."""
        with self._cond:
            self._sent.add(index)

    def freed(self, index: int) -> None:
        """The child took slot ``index``'s frame out (a slot it does not hold is ignored)."""
        with self._cond:
            if index in self._sent:
                self._sent.discard(index)
                self._free.append(index)
                self._cond.notify()

    def give_back(self, index: int) -> None:
        """Slot ``index`` never reached the child (its message could not be sent)."""
        with self._cond:
            self._sent.discard(index)
            if index not in self._free:
                self._free.append(index)
                self._cond.notify()

    def child_ended(self) -> None:
        """The child that held slots ended: those are free again."""
        with self._cond:
            self._free.extend(self._sent)
            self._sent.clear()
            self._cond.notify_all()

    def close(self) -> None:
        """Unlink every block; a waiting :meth:`acquire` returns None."""
        with self._cond:
            self.closed = True
            self._cond.notify_all()
            for block in self._blocks:
                if block is not None:
                    block.close()


class Forwarder:
    """One preview's frames to the child: the newest of each watched camera, at its rate.

    Args:
        tap: the preview.
        send: hands the child a frame's message (and its stamps); False if it cannot.
        name: its thread's name.
        numbers: the frames' numbers (one series for every preview of a view: the
            child's word of an encoded frame names it by number alone).
        clock: the clock of its pace (the system's; a fake one in tests).
    """

    def __init__(
        self,
        tap: PreviewTap,
        send: Callable[[tuple[Any, ...], Stamps | None], bool],
        name: str,
        numbers: Iterator[int],
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.tap, self._send, self.name, self._clock = tap, send, name, clock
        self._numbers = numbers
        self._frame_ns = round(1e9 / tap.webrtc_fps)
        self._cond = threading.Condition()
        self._pending: dict[str | None, tuple[Any, int]] = {}
        self._due: dict[str | None, int] = {}
        self._skipped: collections.Counter[str | None] = collections.Counter()
        self._wanted: frozenset[str | None] = frozenset()
        self._idle = False
        self._stopped = False
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self.slots = Slots()

    def start(self) -> None:
        """Start its thread, and take the tap's frames from now on."""
        self._thread.start()
        self.tap.add_feed(self._feed)

    def stop(self, timeout: float) -> bool:
        """Stop taking frames; False if its thread outlived ``timeout``."""
        self.tap.remove_feed(self._feed)
        with self._cond:
            self._stopped = True
            self._cond.notify_all()
        self.slots.close()
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def want(self, camera: str | None) -> None:
        """Frames of ``camera`` (None: of every camera) are watched from now."""
        with self._cond:
            self._wanted = self._wanted | {camera}

    def set_wanted(self, cameras: set[str | None]) -> None:
        """Exactly ``cameras`` are watched (the child's streams)."""
        with self._cond:
            self._wanted = frozenset(cameras)
            for camera in [c for c in self._pending if not self._watched(c)]:
                del self._pending[camera]

    def skipped_of(self, camera: str | None) -> int:
        """Frames of ``camera`` (None: of all) a newer one replaced before they were taken."""
        with self._cond:
            return sum(self._skipped.values()) if camera is None else self._skipped[camera]

    def _watched(self, camera: str | None) -> bool:
        return None in self._wanted or camera in self._wanted

    def _feed(self, frame: Any, out_ns: int) -> None:
        """On the stage's thread: keep a reference to the newest frame, wake the thread if idle."""
        source = getattr(frame, "source", None)
        camera = source if source.__class__ is str else None
        if not self._wanted or not self._watched(camera):
            return
        with self._cond:
            if camera in self._pending:
                self._skipped[camera] += 1
            self._pending[camera] = (frame, out_ns)
            if self._idle:
                self._idle = False
                self._cond.notify()

    def _loop(self) -> None:
        while (taken := self._next()) is not None:
            camera, frame, out_ns = taken
            try:
                self._forward(camera, frame, out_ns)
            except Exception as error:  # one bad frame must not end the video
                logger.warning("preview %r: cannot hand a frame to the video process: %r",
                               self.tap.name, error)  # fmt: skip

    def _next(self) -> tuple[str | None, Any, int] | None:
        """The next frame due (at most ``webrtc_fps`` a camera, one early); None once stopped."""
        clock = self._clock
        with self._cond:
            while not self._stopped:
                now, soonest = clock.monotonic_ns(), None
                for camera in list(self._pending):
                    due = self._due.get(camera, now)
                    if now >= due - self._frame_ns:
                        frame, out_ns = self._pending.pop(camera)
                        self._due[camera] = max(due, now) + self._frame_ns
                        return camera, frame, out_ns
                    earliest = due - self._frame_ns
                    soonest = earliest if soonest is None else min(soonest, earliest)
                self._idle = soonest is None
                wait_on(clock, self._cond, None if soonest is None else (soonest - now) / 1e9)
                self._idle = False
        return None

    def _forward(self, camera: str | None, frame: Any, out_ns: int) -> None:
        try:
            image, _ = pick_image(frame, self.tap.image)
        except Exception:  # a user's image= function: the tap's status says why
            image = None
        if image is None:
            return
        index = self.slots.acquire()
        if index is None:
            return
        try:
            block = self.slots.write(index, image)
        except BaseException:
            self.slots.give_back(index)
            raise
        if block is None:  # closed meanwhile
            return
        stamps = getattr(frame, "stamps", None)
        message = ("frame", self.tap.name, camera, block, index, image.shape, out_ns,
                   next(self._numbers))  # fmt: skip
        self.slots.sending(index)
        if not self._send(message, stamps if isinstance(stamps, Stamps) else None):
            self.slots.give_back(index)


def numbering() -> Iterator[int]:
    """A series of frame numbers for one view's forwarders (``next`` is atomic in CPython)."""
    return itertools.count(1)
