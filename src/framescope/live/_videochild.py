"""The child's side of a live view's video process (its :func:`main`, started by the view).

It serves a :class:`~framescope.live.webrtc.WebRTCVideo` over the frames
the view's forwarders put in shared-memory slots, answers the view's
offers, leaves, state requests and close, and says what its viewers and
streams are; see :mod:`framescope.live.videoprocess` for the whole and its
messages. It loads aiortc at the view's priority, then runs at the
niceness the view asks for (every thread it starts from then inherits it),
and ends when the view says close or its socket closes.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import importlib
import logging
import os
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

from framescope._shm import AttachedBlocks
from framescope.clock import SYSTEM_CLOCK
from framescope.live.preview import ImageChoice
from framescope.live.webrtc import WebRTCVideo, WhepError

__all__ = ["main"]

logger = logging.getLogger(__name__)

_STATE_S = 0.5  # the state goes to the view at least this often
_WORKERS = 4  # offers and leaves answered at once


@dataclass(slots=True)
class _Picture:
    """A frame in the child: its pixels (copied out of the slot), camera and number."""

    image: Any
    source: str | None
    number: int


class _RemoteTap:
    """The child's stand-in for a preview: its frames come from the view's forwarder."""

    image: ImageChoice = "image"
    cameras: tuple[str, ...] = ()  # the view checked the camera asked for

    def __init__(self, name: str, size: tuple[int, int] | None, webrtc_fps: float) -> None:
        self.name, self.size, self.webrtc_fps = name, size, webrtc_fps
        self._feeds: tuple[Callable[[Any, int], None], ...] = ()
        self._lock = threading.Lock()

    def add_feed(self, feed: Callable[[Any, int], None]) -> None:
        """Call ``feed(frame, out_ns)`` with every frame from now on."""
        with self._lock:
            self._feeds = (*self._feeds, feed)

    def remove_feed(self, feed: Callable[[Any, int], None]) -> None:
        """Stop calling ``feed``."""
        with self._lock:
            self._feeds = tuple(f for f in self._feeds if f != feed)

    def feed(self, picture: _Picture, out_ns: int) -> None:
        """A frame from the view: to every stream of this preview."""
        for feed in self._feeds:
            feed(picture, out_ns)


class _Child:
    """The child's side: a :class:`WebRTCVideo` over the view's frames, answering its requests."""

    def __init__(self, connection: Connection, setup: dict[str, Any]) -> None:
        self._connection = connection
        self._send_lock = threading.Lock()
        self._taps: dict[str, _RemoteTap] = {}
        self._video = WebRTCVideo(
            self._taps,
            host=setup["host"],
            max_viewers=setup["max_viewers"],
            ice_servers=setup["ice_servers"] or None,
            clock=SYSTEM_CLOCK,
            name=setup["name"],
            on_encoded=self._encoded,
        )
        self._blocks = AttachedBlocks()
        self._slot_blocks: dict[tuple[str, int], str] = {}
        self._workers = concurrent.futures.ThreadPoolExecutor(_WORKERS, "framescope-video-request")
        self._stop = threading.Event()

    def run(self) -> None:
        """Serve the view until it says close or goes away."""
        pusher = threading.Thread(target=self._push_loop, name="framescope-video-state")
        pusher.start()
        try:
            while (message := self._received()) is not None:
                if message[0] == "close":
                    self._close(message[1], message[2])
                    return
                try:
                    self._handle(message)
                except Exception as error:  # one bad message must not end every viewer
                    logger.warning("video process: cannot handle %r: %r", message[0], error)
            self._video.close()  # the view went away
        finally:
            self._stop.set()
            pusher.join()
            self._workers.shutdown(wait=True, cancel_futures=True)
            self._blocks.close()

    def _received(self) -> tuple[Any, ...] | None:
        try:
            message: tuple[Any, ...] = self._connection.recv()
        except (EOFError, OSError):
            return None
        return message

    def _handle(self, message: tuple[Any, ...]) -> None:
        kind = message[0]
        if kind == "frame":
            self._frame(message)
        elif kind == "preview":
            name, size, fps = message[1:]
            self._taps.setdefault(name, _RemoteTap(name, size, fps))
        elif kind == "offer":
            self._workers.submit(self._answer, message[1], self._offer, *message[2:])
        elif kind == "leave":
            self._workers.submit(self._answer, message[1], self._video.leave, *message[2:])
        elif kind == "state":
            self._push_state(then=("reply", message[1], True, None))

    def _frame(self, message: tuple[Any, ...]) -> None:
        """A frame in a slot: copied out, the slot freed, the copy to the preview's streams."""
        import numpy  # noqa: PLC0415 - loaded with PyAV

        _, preview, camera, block, index, shape, out_ns, number = message
        if self._slot_blocks.get((preview, index), block) != block:  # the view made it larger
            self._slot_blocks[(preview, index)] = block
            self._blocks.keep_only(set(self._slot_blocks.values()))
        self._slot_blocks[(preview, index)] = block
        try:
            image = numpy.ndarray(shape, numpy.uint8, buffer=self._blocks.view(block)).copy()
        finally:  # copied, or gone (the view closing): the slot is the view's again
            self._send(("free", preview, index))
        tap = self._taps.get(preview)
        if tap is not None:
            tap.feed(_Picture(image, camera, number), out_ns)

    def _offer(
        self, preview: str, camera: str | None, sdp: str, timeout: float, deadline: float
    ) -> tuple[str, str]:
        """An offer, answered only while the view still waits (``deadline``: its monotonic time)."""
        left = min(timeout, deadline - time.monotonic())
        if left <= 0:
            raise WhepError(503, "the video process could not answer in time")
        return self._video.offer(preview, camera, sdp, left)

    def _answer(self, number: int, call: Callable[..., Any], *args: Any) -> None:
        try:
            reply: tuple[Any, ...] = ("reply", number, True, call(*args))
        except WhepError as error:
            reply = ("reply", number, False, (error.status, str(error)))
        except Exception as error:
            reply = ("reply", number, False, (400, f"cannot answer the offer: {error}"))
        self._push_state(then=reply)

    def _close(self, number: int, timeout: float) -> None:
        stopped = self._video.close(timeout)
        self._push_state(then=("reply", number, True, stopped))

    def _encoded(self, picture: Any) -> None:
        if isinstance(picture, _Picture):
            self._send(("glass", picture.number))

    def _push_loop(self) -> None:
        while not self._stop.wait(_STATE_S):
            self._push_state()

    def _push_state(self, then: tuple[Any, ...] | None = None) -> None:
        """The state, taken and sent under the send lock (no older state can follow it), then
        ``then`` (a reply), sent whatever became of the state."""
        with self._send_lock:
            try:
                video = self._video
                state = (video.viewers(), video.streams(), video.served, video.refused)
                self._connection.send(("state", state))
            except OSError:
                return  # the view is gone
            except Exception as error:  # the reply still goes: its asker must not wait on
                logger.warning("video process: cannot say its state: %r", error)
            if then is not None:
                with contextlib.suppress(OSError):
                    self._connection.send(then)

    def _send(self, message: tuple[Any, ...]) -> None:
        with self._send_lock, contextlib.suppress(OSError):
            self._connection.send(message)


def _lower_priority(nice: int) -> None:
    """This process's (and its later threads') niceness raised to ``nice`` (POSIX)."""
    if hasattr(os, "nice"):
        with contextlib.suppress(OSError):
            os.nice(max(0, nice - os.nice(0)))


def _run_on(cpus: list[int] | tuple[int, ...] | None) -> str | None:
    """This process (and its later threads) kept to ``cpus``; what went wrong, if anything."""
    if cpus is None:
        return None
    try:
        os.sched_setaffinity(0, cpus)
    except (OSError, AttributeError) as error:
        return f"cannot run on cores {list(cpus)} (webrtc_cpus): {error}"
    return None


def _load_webrtc() -> None:
    """Import what the first offer needs (aiortc, PyAV, NumPy); a missing one says so later."""
    for module in ("numpy", "av", "aiortc"):
        with contextlib.suppress(ImportError):
            importlib.import_module(module)


def main(argv: list[str] | None = None) -> int:
    """The child: serve the view on the socket whose descriptor is the only argument."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1 or not args[0].isdigit():
        print("usage: python -m framescope.live._videochild FD (started by a live view)",
              file=sys.stderr)  # fmt: skip
        return 2
    try:
        os.fstat(int(args[0]))
    except OSError as error:
        print(f"framescope video process: descriptor {args[0]}: {error.strerror}", file=sys.stderr)
        return 2
    connection = Connection(int(args[0]))
    try:
        message = connection.recv()
    except Exception:  # the end, or not a live view's words: said below
        message = None
    if not (isinstance(message, tuple) and message and message[0] == "setup"):
        print(f"framescope video process: no live view on descriptor {args[0]}", file=sys.stderr)
        connection.close()
        return 2
    _load_webrtc()  # at the view's priority: the first viewer waits for it
    _lower_priority(message[1]["nice"])  # before any thread: each one inherits it
    refused = _run_on(message[1].get("cpus"))
    if refused is not None:  # said to the view (its viewers' answer and log) and here
        print(f"framescope video process: {refused}", file=sys.stderr)
        with contextlib.suppress(OSError):
            connection.send(("refused", refused))
        connection.close()
        return 2
    _Child(connection, message[1]).run()
    connection.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
