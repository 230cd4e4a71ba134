"""A live view's WebRTC side in a process of its own: the video off the stages' lock and cores.

A live view on the system clock serves WebRTC from a child process
(``python -m framescope.live._videochild``, started by the first viewer's
offer): the encoders (:class:`~framescope.live.stream.VideoStream`) and every
viewer's connection (:class:`~framescope.live.webrtc.WebRTCVideo`) run
there, at a lower scheduling priority (:data:`VIDEO_NICE`), so the video
never holds the stages' interpreter lock and, on a machine the stages keep
busy, runs on what they leave. In the view's process a thread a watched
preview (:class:`_Forwarder`) takes the newest frame of each watched camera
at the preview's ``webrtc_fps`` (the stage's thread only hands it a
reference), copies it into one of two shared-memory slots and names the
slot to the child, which copies it out and frees the slot. A frame that
comes before the last one was taken replaces it, counted as skipped.

The two talk over a socket pair, in pickled tuples (the child is this
package's own code, started by this process):

- view -> child: ``setup`` (first), ``preview`` (a preview's size and
  rate, before its first offer), ``frame``, ``offer``, ``leave``, ``close``;
- child -> view: ``reply`` (to an offer, a leave or a close), ``free`` (a
  slot), ``glass`` (a frame encoded: its capture-to-glass stamp is set
  here), ``state`` (every viewer and stream: after each change it makes,
  and every half second).

A child that ends unexpectedly (killed, crashed) takes its viewers with it:
the view counts it in ``process_failures`` (shown on the page, logged), and
the next offer starts another. The child ends by itself when the view's
process goes away (its socket closes), so none is ever left.
"""

from __future__ import annotations

import collections
import concurrent.futures
import contextlib
import importlib.util
import itertools
import logging
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Mapping
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from framescope._shm import OwnedBlock
from framescope.capture import Stamps
from framescope.clock import SYSTEM_CLOCK, Clock, wait_on
from framescope.live.preview import PreviewTap, pick_image
from framescope.live.webrtc import (
    MAX_VIEWERS,
    WhepError,
    check_ice_servers,
    check_max_viewers,
    offered_codec,
)
from framescope.pipeline.model.viewers import ViewerSnapshot

__all__ = ["CHILD_MODULE", "VIDEO_NICE", "VideoProcess"]

logger = logging.getLogger(__name__)

CHILD_MODULE = "framescope.live._videochild"
"""The module the child runs (``python -m``); the package never imports it."""

VIDEO_NICE = 10
"""The video process's niceness once it has loaded aiortc.

Below the stages (a nice-0 thread of the view's weighs about ten times
its threads), not the lowest: a machine kept busy by other work in the
view's session would starve a process at 19 of what it needs to answer
a viewer at all (see :mod:`framescope._priority`)."""

_SLOTS = 2  # frames of a preview in flight to the child at once
_GLASS_KEPT = 64  # frames whose capture-to-glass stamp waits for the child's word
_CLOSE_S = 5.0
_EXIT_S = 0.5  # a child that closed its socket is exiting: its status is waited for this long
_REAP_S = 30.0  # and then this long (on a busy machine its interpreter takes a while to end)
_START_S = 5.0  # what a first offer may wait on top of its own time: the child loads aiortc
_FRESH_WAIT_S = 0.5  # how long a reader waits for a fresh one before taking the last
_State = tuple[tuple[ViewerSnapshot, ...], dict[str, list[dict[str, Any]]], int, int]
_STATE_EMPTY: _State = ((), {}, 0, 0)


class VideoProcess:
    """The WebRTC side of a live view, served from a child process; what it serves, as data.

    It answers the view as :class:`~framescope.live.webrtc.WebRTCVideo`
    does (same arguments, methods and figures), and adds
    ``process_failures``: child processes that ended unexpectedly.

    Args:
        previews: the view's previews by name.
        host: the address the view listens on (ICE offers it alone, unless unspecified).
        max_viewers: viewers served at once; the next offer gets 503.
        ice_servers: STUN/TURN servers; none by default.
        name: the prefix of its threads' names.
        nice: the child's niceness (Linux and other POSIX systems).
    """

    def __init__(
        self,
        previews: Mapping[str, PreviewTap],
        *,
        host: str,
        max_viewers: int = MAX_VIEWERS,
        ice_servers: object = None,
        name: str,
        nice: int = VIDEO_NICE,
    ) -> None:
        self.max_viewers = check_max_viewers(max_viewers)
        self._ice = check_ice_servers(ice_servers)
        self._previews = previews
        self._host = host
        self._nice = nice
        self.name = name
        """The prefix of its threads' names."""
        self._lock = threading.Lock()
        self._link: _Link | None = None
        self._forwarders: dict[str, _Forwarder] = {}
        self._closed = False
        self._state = _STATE_EMPTY
        self.process_failures = 0
        """Video processes that ended unexpectedly (their viewers went with them)."""

    # -- what the view reads ----------------------------------------------------------------

    @property
    def served(self) -> int:
        """Viewers answered so far (by the running child)."""
        return self._state[2]

    @property
    def refused(self) -> int:
        """Offers refused because ``max_viewers`` were watching (by the running child)."""
        return self._state[3]

    @property
    def pid(self) -> int | None:
        """The running child's process id (None: none runs)."""
        link = self._link
        return None if link is None or not link.alive else link.process.pid

    def viewers(self) -> tuple[ViewerSnapshot, ...]:
        """Every viewer now, as data (as the child last said, if it does not answer at once)."""
        return self._fresh_state()[0]

    def streams(self) -> dict[str, list[dict[str, Any]]]:
        """Each preview's encoders (as :meth:`viewers`), with the frames skipped here."""
        shown = {}
        for preview, streams in self._fresh_state()[1].items():
            forwarder = self._forwarders.get(preview)
            here = forwarder.skipped_of if forwarder is not None else lambda _: 0
            shown[preview] = [{**s, "skipped": s["skipped"] + here(s["camera"])} for s in streams]
        return shown

    def _fresh_state(self) -> _State:
        """The child's state now (the last it sent, if it does not answer within a moment)."""
        link = self._link
        if link is not None and link.alive:
            with contextlib.suppress(WhepError, TimeoutError):  # the last one, then
                link.request("state", wait=_FRESH_WAIT_S)
        return self._state

    # -- the HTTP side (any thread) ---------------------------------------------------------

    def offer(self, preview: str, camera: str | None, sdp: str, timeout: float) -> tuple[str, str]:
        """Answer a viewer's SDP offer: ``(viewer id, SDP answer)``; a :class:`WhepError` if not."""
        tap = self._checked(preview, camera, sdp)
        link = self._started_link()
        link.announce(tap)
        forwarder = self._forwarder(tap)
        try:
            # The child's own wait is the offer's; the view's allows for the child's start.
            viewer_id, answer = link.request(
                "offer", preview, camera, sdp, timeout, wait=timeout + _START_S
            )
        except TimeoutError:
            raise WhepError(503, f"no answer within {timeout:g} s") from None
        forwarder.want(camera)
        return viewer_id, answer

    def leave(self, preview: str, viewer_id: str) -> bool:
        """End viewer ``viewer_id`` of ``preview`` (its WHEP ``DELETE``); False if unknown."""
        link = self._link
        if link is None or not link.alive:
            return False
        try:
            return bool(link.request("leave", preview, viewer_id, wait=_CLOSE_S))
        except (WhepError, TimeoutError):
            return False

    def close(self, timeout: float = _CLOSE_S) -> bool:
        """End every viewer and the child, stop the forwarders; False if one outlived it."""
        with self._lock:
            self._closed = True
            link, forwarders = self._link, list(self._forwarders.values())
        stopped = link.close(timeout) if link is not None else True  # its viewers first
        for forwarder in forwarders:
            stopped = forwarder.stop(timeout) and stopped
        self._state = _STATE_EMPTY
        return stopped

    def _checked(self, preview: str, camera: str | None, sdp: str) -> PreviewTap:
        tap = self._previews.get(preview)
        if tap is None:
            raise WhepError(404, f"no preview called {preview!r}")
        if self.max_viewers == 0:
            raise WhepError(501, "WebRTC video is off for this view (max_viewers=0)")
        cameras = tap.cameras
        if camera is not None and cameras and camera not in cameras:
            known = ", ".join(cameras)
            raise WhepError(404, f"no camera {camera!r} in preview {preview!r} (cameras: {known})")
        offered_codec(sdp)  # 400 for an offer without a codec it can send
        if importlib.util.find_spec("aiortc") is None:
            raise WhepError(501, "WebRTC video needs aiortc: pip install 'framescope[webrtc]'")
        return tap

    def _started_link(self) -> _Link:
        with self._lock:
            if self._closed:
                raise WhepError(503, "the live view is closing")
            link = self._link
            if link is None or not link.alive:
                setup = {
                    "host": self._host,
                    "max_viewers": self.max_viewers,
                    "ice_servers": self._ice,
                    "name": self.name,
                    "nice": self._nice,
                }
                try:
                    link = _Link(self.name, setup, self._message, self._ended)
                except OSError as error:
                    raise WhepError(503, f"cannot start the video process: {error}") from error
                self._link = link
            return link

    def _forwarder(self, tap: PreviewTap) -> _Forwarder:
        with self._lock:
            if self._closed:  # close() has taken the forwarders it stops
                raise WhepError(503, "the live view is closing")
            forwarder = self._forwarders.get(tap.name)
            if forwarder is None:
                forwarder = _Forwarder(tap, self._send_frame, f"{self.name}-webrtc-{tap.name}")
                self._forwarders[tap.name] = forwarder
                forwarder.start()
            return forwarder

    def _send_frame(self, message: tuple[Any, ...], stamps: Stamps | None) -> bool:
        link = self._link
        if link is None or not link.alive:
            return False
        return link.send_frame(message, stamps)

    # -- the child's word (its link's reader thread) ----------------------------------------

    def _message(self, message: tuple[Any, ...]) -> None:
        kind = message[0]
        if kind == "free":
            forwarder = self._forwarders.get(message[1])
            if forwarder is not None:
                forwarder.slots.release(message[2])
        elif kind == "state":
            self._state = message[1]
            for name, forwarder in list(self._forwarders.items()):
                forwarder.set_wanted({s["camera"] for s in message[1][1].get(name, ())})

    def _ended(self, link: _Link, expected: bool) -> None:
        """The child ended: its viewers are gone; counted unless the view closed it."""
        if not expected:
            self.process_failures += 1
            status = link.process.poll()
            logger.warning(
                "the live view's video process ended (%s): its %d WebRTC viewers were "
                "let go; the next viewer starts another",
                "its socket closed" if status is None else f"exit status {status}",
                len(self._state[0]),
            )
        self._state = _STATE_EMPTY
        for forwarder in list(self._forwarders.values()):
            forwarder.set_wanted(set())
            forwarder.slots.reset()


class _Link:
    """One child process, the socket to it, and the thread that reads its word."""

    def __init__(
        self,
        name: str,
        setup: dict[str, Any],
        on_message: Callable[[tuple[Any, ...]], None],
        on_end: Callable[[_Link, bool], None],
    ) -> None:
        ours, theirs = socket.socketpair()
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-m", CHILD_MODULE, str(theirs.fileno())],
                pass_fds=(theirs.fileno(),),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                env=_child_environment(),
                # In the view's session (a terminal's Ctrl-C reaches it too, and it ignores
                # it: the view closes it in order): Linux shares the CPU between sessions
                # (autogroups) as equals, whatever their niceness, and this one's must count.
            )
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()
        self._connection = Connection(ours.detach())
        self._send_lock = threading.Lock()
        try:
            self._send(("setup", setup))
        except OSError:  # it ended at once: nothing of it is left
            self._connection.close()
            self.process.kill()
            self.process.wait()
            raise
        self._requests: dict[int, concurrent.futures.Future[Any]] = {}
        self._numbers = itertools.count(1)
        self._announced: set[str] = set()
        self._glass: collections.OrderedDict[int, Stamps] = collections.OrderedDict()
        self._on_message, self._on_end = on_message, on_end
        self.alive = True
        self._closing = False
        self._reader = threading.Thread(target=self._read, name=f"{name}-video-link", daemon=True)
        self._reader.start()

    def _send(self, message: tuple[Any, ...]) -> None:
        with self._send_lock:
            self._connection.send(message)

    def announce(self, tap: PreviewTap) -> None:
        """Tell the child of ``tap`` (its size and rate) before its first offer."""
        if tap.name not in self._announced:
            with contextlib.suppress(OSError):  # gone: the offer says so
                self._send(("preview", tap.name, tap.size, tap.webrtc_fps))
            self._announced.add(tap.name)

    def send_frame(self, message: tuple[Any, ...], stamps: Stamps | None) -> bool:
        """Hand a frame's slot to the child (its stamp kept for the child's word)."""
        if stamps is not None:
            with self._send_lock:
                self._glass[message[-1]] = stamps
                if len(self._glass) > _GLASS_KEPT:
                    self._glass.popitem(last=False)
        try:
            self._send(message)
        except OSError:
            return False
        return True

    def request(self, kind: str, *args: Any, wait: float) -> Any:
        """Ask the child: its reply within ``wait`` s, else TimeoutError (or its WhepError)."""
        future: concurrent.futures.Future[Any] = concurrent.futures.Future()
        number = next(self._numbers)
        self._requests[number] = future
        if not self.alive:  # ended before the request was filed: nobody will answer it
            self._requests.pop(number, None)
            raise WhepError(503, "the video process ended")
        try:
            self._send((kind, number, *args))
            return future.result(wait)
        except OSError as error:
            raise WhepError(503, f"the video process ended: {error}") from error
        except concurrent.futures.TimeoutError:
            raise TimeoutError(f"the video process did not answer within {wait:g} s") from None
        finally:
            self._requests.pop(number, None)

    def _read(self) -> None:
        try:
            while True:
                message = self._connection.recv()
                if message[0] == "reply":
                    self._reply(*message[1:])
                elif message[0] == "glass":
                    with self._send_lock:
                        stamps = self._glass.pop(message[1], None)
                    if stamps is not None:
                        stamps.mark_glass("webrtc")
                else:
                    self._on_message(message)
        except (EOFError, OSError):
            pass
        except Exception as error:  # a message it cannot read: the link is cut, and said so
            if not (self._closing or self._connection.closed):  # else: closed under the read
                logger.warning("the video process sent what the view cannot read: %r", error)
        self.alive = False
        with contextlib.suppress(subprocess.TimeoutExpired):  # its exit status, if it has one
            self.process.wait(_EXIT_S)
        self._connection.close()  # a send now fails at once (OSError), as to a dead child
        for future in list(self._requests.values()):
            if not future.done():
                future.set_exception(WhepError(503, "the video process ended"))
        self._on_end(self, self._closing)
        self._reap()

    def _reap(self) -> None:
        """Wait for the child that closed its socket (killed if it lingers): no zombie is left."""
        try:
            self.process.wait(_REAP_S)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def _reply(self, number: int, ok: bool, value: Any) -> None:
        future = self._requests.get(number)
        if future is None or future.done():
            return  # its asker gave up waiting
        if ok:
            future.set_result(value)
        else:
            status, message = value
            future.set_exception(WhepError(status, message))

    def close(self, timeout: float) -> bool:
        """Ask the child to end its viewers and exit; killed if it has not by ``timeout``."""
        self._closing = True
        if self.alive:
            with contextlib.suppress(WhepError, TimeoutError):
                self.request("close", timeout, wait=timeout)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            logger.warning("the video process did not end within %g s: killed", timeout)
            self.process.kill()
            self.process.wait()
        self._connection.close()
        self._reader.join(timeout)
        return not self._reader.is_alive()


def _child_environment() -> dict[str, str]:
    """This environment, with the folder framescope was loaded from first on the child's path."""
    here = str(Path(__file__).resolve().parents[2])
    environment = dict(os.environ)
    paths = [here, *filter(None, environment.get("PYTHONPATH", "").split(os.pathsep))]
    environment["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(paths))
    return environment


class _Slots:
    """A preview's shared-memory slots: each a block as large as the largest frame it held."""

    def __init__(self, count: int) -> None:
        self._blocks: list[OwnedBlock | None] = [None] * count
        self._free = collections.deque(range(count))
        self._cond = threading.Condition()
        self.closed = False

    def acquire(self) -> int | None:
        """A free slot, waiting while the child holds them all; None once closed."""
        with self._cond:
            while not self._free and not self.closed:
                self._cond.wait()
            return None if self.closed else self._free.popleft()

    def write(self, index: int, image: Any) -> str:
        """Copy ``image`` into slot ``index`` (a larger block if needed); the block's name."""
        import numpy  # noqa: PLC0415 - a frame is an array: NumPy is loaded

        with self._cond:
            block = self._blocks[index]
            if block is None or block.size < image.nbytes:
                if block is not None:
                    block.close()  # the child copied it out: unlinked, its mapping is its own
                block = self._blocks[index] = OwnedBlock(max(1, image.nbytes))
            target = numpy.ndarray(image.shape, numpy.uint8, buffer=block.view)
            numpy.copyto(target, image)
            return block.name

    def release(self, index: int) -> None:
        """The child took slot ``index``'s frame out."""
        with self._cond:
            if 0 <= index < len(self._blocks) and index not in self._free:
                self._free.append(index)
                self._cond.notify()

    def reset(self) -> None:
        """Every slot free again (the child that held them ended)."""
        with self._cond:
            self._free = collections.deque(range(len(self._blocks)))
            self._cond.notify_all()

    def close(self) -> None:
        """Unlink every block; a waiting :meth:`acquire` returns None."""
        with self._cond:
            self.closed = True
            self._cond.notify_all()
            for block in self._blocks:
                if block is not None:
                    block.close()


class _Forwarder:
    """One preview's frames to the child: the newest of each watched camera, at its rate.

    Args:
        tap: the preview.
        send: hands the child a frame's message (and its stamps); False if it cannot.
        name: its thread's name.
    """

    def __init__(
        self,
        tap: PreviewTap,
        send: Callable[[tuple[Any, ...], Stamps | None], bool],
        name: str,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.tap, self._send, self.name, self._clock = tap, send, name, clock
        self._frame_ns = round(1e9 / tap.webrtc_fps)
        self._cond = threading.Condition()
        self._pending: dict[str | None, tuple[Any, int]] = {}
        self._due: dict[str | None, int] = {}
        self._skipped: collections.Counter[str | None] = collections.Counter()
        self._wanted: frozenset[str | None] = frozenset()
        self._idle = False
        self._stopped = False
        self._numbers = itertools.count(1)
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self.slots = _Slots(_SLOTS)

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
            self.slots.release(index)
            raise
        stamps = getattr(frame, "stamps", None)
        message = ("frame", self.tap.name, camera, block, index, image.shape, out_ns,
                   next(self._numbers))  # fmt: skip
        if not self._send(message, stamps if isinstance(stamps, Stamps) else None):
            self.slots.release(index)
