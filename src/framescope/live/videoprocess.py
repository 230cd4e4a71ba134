"""A live view's WebRTC side in a process of its own: the video off the stages' lock and cores.

A live view on the system clock serves WebRTC from a child process
(:mod:`framescope.live._videochild`, started by the first viewer's offer):
the encoders (:class:`~framescope.live.stream.VideoStream`) and every
viewer's connection (:class:`~framescope.live.webrtc.WebRTCVideo`) run
there, at a lower scheduling priority (:data:`VIDEO_NICE`), so the video
never holds the stages' interpreter lock and, on a machine the stages keep
busy, mostly runs on what they leave. In the view's process a thread a
watched preview (:mod:`framescope.live._videoframes`) takes the newest
frame of each watched camera at the preview's ``webrtc_fps`` (the stage's
thread only hands it a reference), copies it into one of two shared-memory
slots and names the slot to the child, which copies it out and frees the
slot.

The two talk over a socket pair, in pickled tuples (the child is this
package's own code, started by this process):

- view -> child: ``setup`` (first), ``preview`` (a preview's size and
  rate, before its first offer), ``frame``, ``offer`` (with the moment
  the view stops waiting: a later answer is refused), ``leave``, ``state``
  (asked for whenever the view reads its viewers), ``close``;
- child -> view: ``reply`` (to each request, by number), ``free`` (a
  slot), ``glass`` (a frame encoded: its capture-to-glass stamp is set
  here), ``state`` (every viewer and stream, before each reply and every
  half second), ``refused`` (it cannot run as set up, on the cores asked
  for, and ends: the reason goes to the waiting viewer and the log).

A child that ends unexpectedly (killed, crashed) takes its viewers with it:
the view counts it in ``process_failures`` (shown on the page, logged), and
the next offer starts another. The child ends by itself when the view's
process goes away (its socket closes), so none is ever left. An offer the
view gave up waiting for is let go as soon as the child answers it.
"""

from __future__ import annotations

import collections
import concurrent.futures
import contextlib
import itertools
import logging
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from framescope._optional import require_installed
from framescope.capture import Stamps
from framescope.live._videoframes import Forwarder, numbering
from framescope.live.preview import PreviewTap
from framescope.live.webrtc import (
    MAX_VIEWERS,
    WhepError,
    check_ice_servers,
    check_max_viewers,
    checked_offer,
)
from framescope.pipeline.model.viewers import ViewerSnapshot

__all__ = ["CHILD_MODULE", "VIDEO_NICE", "VideoProcess", "check_cpus"]

logger = logging.getLogger(__name__)

CHILD_MODULE = "framescope.live._videochild"
"""The module the child runs; the package never imports it."""

# The child's start: ``-P``-like (no working directory on its path), framescope where this
# process found it (unless already on the path: an installed copy keeps the path's order).
_BOOTSTRAP = (
    "import signal, sys; signal.signal(signal.SIGINT, signal.SIG_IGN); "
    "sys.path[:] = [p for p in sys.path if p not in ('', '.')]; "
    "sys.argv[2] in sys.path or sys.path.insert(0, sys.argv[2]); "
    f"from {CHILD_MODULE} import main; sys.exit(main(sys.argv[1:2]))"
)

VIDEO_NICE = 10
"""The video process's niceness once it has loaded aiortc.

Below the stages (a nice-0 thread of the view's weighs about ten times
its threads), not the lowest: a machine kept busy by other work in the
view's session would starve a process at 19 of what it needs to answer
a viewer at all (see :mod:`framescope._priority`)."""


def check_cpus(value: object, name: str = "webrtc_cpus") -> tuple[int, ...] | None:
    """``value`` as the sorted CPU cores a process may run on (None: no choice made).

    Raises:
        ValueError: not on Linux, no core, a core this machine does not have, or
            one this process may not use (a container's cpuset).
        TypeError: not an iterable of integers.
    """
    if value is None:
        return None
    if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
        raise TypeError(f"{name} must be a set of CPU core numbers or None, got {value!r}")
    cores = tuple(value)
    if any(isinstance(core, bool) or not isinstance(core, int) for core in cores):
        raise TypeError(f"{name} must hold CPU core numbers (integers), got {value!r}")
    if not hasattr(os, "sched_setaffinity"):
        raise ValueError(f"{name} needs Linux (os.sched_setaffinity)")
    count = os.cpu_count() or 1
    if not cores:
        raise ValueError(f"{name} must name at least one core (0 to {count - 1}), got {value!r}")
    if any(not 0 <= core < count for core in cores):
        raise ValueError(f"{name} must name cores from 0 to {count - 1}, got {value!r}")
    chosen = tuple(sorted(set(cores)))
    refused = _refused_cores(chosen)
    if refused is not None:
        raise ValueError(f"{name} {list(chosen)}: this process may not run there ({refused})")
    return chosen


def _refused_cores(cores: tuple[int, ...]) -> str | None:
    """Why the kernel would not keep a thread of this process to ``cores`` (a container's
    cpuset, say), tried on a thread of its own; None: it would."""
    refused: list[str] = []

    def trial() -> None:
        try:
            os.sched_setaffinity(0, cores)  # this thread's, which ends at once
        except OSError as error:
            refused.append(error.strerror or str(error))

    thread = threading.Thread(target=trial, name="framescope-cpus-trial")
    thread.start()
    thread.join()
    return refused[0] if refused else None


_GLASS_KEPT = 64  # frames whose capture-to-glass stamp waits for the child's word
_CLOSE_S = 5.0
_EXIT_S = 0.5  # a child that closed its socket is exiting: its status is waited for this long
_REAP_S = 30.0  # and then this long (on a busy machine its interpreter takes a while to end)
_START_S = 5.0  # what a first offer may wait on top of its own time: the child loads aiortc
_MARGIN_S = 0.5  # a child answering this close to the view's limit refuses instead
_FRESH_WAIT_S = 0.2  # how long a reader waits for the child's state before taking the last
_State = tuple[tuple[ViewerSnapshot, ...], dict[str, list[dict[str, Any]]], int, int]
_STATE_EMPTY: _State = ((), {}, 0, 0)


class VideoProcess:
    """The WebRTC side of a live view, served from a child process; what it serves, as data.

    It answers the view as :class:`~framescope.live.webrtc.WebRTCVideo`
    does (same arguments, methods and figures: ``served`` and ``refused``
    count over every child it started), and adds ``process_failures``:
    child processes that ended unexpectedly.

    Args:
        previews: the view's previews by name.
        host: the address the view listens on (ICE offers it alone, unless unspecified).
        max_viewers: viewers served at once; the next offer gets 503.
        ice_servers: STUN/TURN servers; none by default.
        name: the prefix of its threads' names.
        nice: the child's niceness (POSIX systems).
        cpus: the CPU cores the child runs on (Linux; None: this process's).
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
        cpus: object = None,
    ) -> None:
        self.max_viewers = check_max_viewers(max_viewers)
        self.cpus = check_cpus(cpus)
        """The CPU cores the child runs on (None: those of the view's process)."""
        self._ice = check_ice_servers(ice_servers)
        self._previews = previews
        self._host = host
        self._nice = nice
        self.name = name
        """The prefix of its threads' names."""
        self._lock = threading.Lock()
        self._link: _Link | None = None
        self._forwarders: dict[str, Forwarder] = {}
        self._numbers = numbering()
        self._closed = False
        self._ended_counts = (0, 0)  # served, refused by children that ended
        self.process_failures = 0
        """Video processes that ended unexpectedly (their viewers went with them)."""

    # -- what the view reads ----------------------------------------------------------------

    @property
    def served(self) -> int:
        """Viewers answered so far."""
        return self._counts()[0]

    @property
    def refused(self) -> int:
        """Offers refused because ``max_viewers`` were watching."""
        return self._counts()[1]

    def _counts(self) -> tuple[int, int]:
        with self._lock:
            link, (served, refused) = self._link, self._ended_counts
        if link is not None and not link.counted:
            served, refused = served + link.state[2], refused + link.state[3]
        return served, refused

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
        """The running child's state now (the last it sent, if it does not answer at once)."""
        link = self._link
        if link is None or not link.alive:
            return _STATE_EMPTY
        with contextlib.suppress(WhepError, TimeoutError):  # the last one, then
            link.request("state", wait=_FRESH_WAIT_S)
        return link.state

    # -- the HTTP side (any thread) ---------------------------------------------------------

    def offer(self, preview: str, camera: str | None, sdp: str, timeout: float) -> tuple[str, str]:
        """Answer a viewer's SDP offer: ``(viewer id, SDP answer)``; a :class:`WhepError` if not."""
        tap = self._checked(preview, camera, sdp)
        link = self._started_link()
        link.announce(tap)
        forwarder = self._forwarder(tap)
        wait = timeout + _START_S  # the child's own wait is the offer's, after its start
        deadline = time.monotonic() + wait - _MARGIN_S  # the same clock in every process
        try:
            viewer_id, answer = link.request(
                "offer", preview, camera, sdp, timeout, deadline, wait=wait
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
        return stopped

    def _checked(self, preview: str, camera: str | None, sdp: str) -> PreviewTap:
        tap, _ = checked_offer(self._previews, preview, camera, sdp, self.max_viewers)
        try:
            require_installed("aiortc", "webrtc", "WebRTC video")
        except ImportError as error:
            raise WhepError(501, str(error)) from error
        return tap

    def _started_link(self) -> _Link:
        with self._lock:
            if self._closed:
                raise WhepError(503, "the live view is closing")
            link = self._link
            if link is None or not link.alive:
                for forwarder in self._forwarders.values():  # the new child holds nothing
                    forwarder.set_wanted(set())
                    forwarder.slots.child_ended()
                setup = {
                    "host": self._host,
                    "max_viewers": self.max_viewers,
                    "ice_servers": self._ice,
                    "name": self.name,
                    "nice": self._nice,
                    "cpus": self.cpus,
                }
                try:
                    link = _Link(self.name, setup, self._message, self._ended)
                except Exception as error:  # no process, or one that ended at once
                    raise WhepError(503, f"cannot start the video process: {error}") from error
                self._link = link
            return link

    def _forwarder(self, tap: PreviewTap) -> Forwarder:
        with self._lock:
            if self._closed:  # close() has taken the forwarders it stops
                raise WhepError(503, "the live view is closing")
            forwarder = self._forwarders.get(tap.name)
            if forwarder is None:
                name = f"{self.name}-webrtc-{tap.name}"
                forwarder = Forwarder(tap, self._send_frame, name, self._numbers)
                self._forwarders[tap.name] = forwarder
                forwarder.start()
            return forwarder

    def _send_frame(self, message: tuple[Any, ...], stamps: Stamps | None) -> bool:
        link = self._link
        if link is None or not link.alive:
            return False
        return link.send_frame(message, stamps)

    # -- the child's word (its link's reader thread) ----------------------------------------

    def _message(self, link: _Link, message: tuple[Any, ...]) -> None:
        if link is not self._link:
            return  # a child that was replaced: its word is about slots it no longer holds
        kind = message[0]
        if kind == "free":
            forwarder = self._forwarders.get(message[1])
            if forwarder is not None:
                forwarder.slots.freed(message[2])
        elif kind == "state":
            for name, forwarder in list(self._forwarders.items()):
                forwarder.set_wanted({s["camera"] for s in message[1][1].get(name, ())})

    def _ended(self, link: _Link, expected: bool) -> None:
        """A child ended: its viewers are gone; counted unless the view closed it."""
        with self._lock:
            served, refused = self._ended_counts
            self._ended_counts = (served + link.state[2], refused + link.state[3])
            link.counted = True
            current = link is self._link
        if not expected:
            self.process_failures += 1
            status = link.process.poll()
            why = "its socket closed" if status is None else f"exit status {status}"
            logger.warning(
                "the live view's video process ended (%s): WebRTC viewers let go: %d; "
                "the next viewer starts another",
                link.refusal or why,
                len(link.state[0]),
            )
        if current:
            for forwarder in list(self._forwarders.values()):
                forwarder.set_wanted(set())
                forwarder.slots.child_ended()


class _Link:
    """One child process, the socket to it, and the thread that reads its word."""

    def __init__(
        self,
        name: str,
        setup: dict[str, Any],
        on_message: Callable[[_Link, tuple[Any, ...]], None],
        on_end: Callable[[_Link, bool], None],
    ) -> None:
        self.process, self._connection = _spawn()
        self._send_lock = threading.Lock()
        self._end_lock = threading.Lock()  # the reader closes the socket; close() shuts it
        try:
            self._send(("setup", setup))
        except OSError:  # it ended at once: nothing of it is left
            self._connection.close()
            self.process.kill()
            self.process.wait()
            raise
        self._requests: dict[int, concurrent.futures.Future[Any]] = {}
        self._abandoned: dict[int, str] = {}  # offers nobody waits for: preview
        self._numbers = itertools.count(1)
        self._announced: set[str] = set()
        self._glass: collections.OrderedDict[int, Stamps] = collections.OrderedDict()
        self._glass_lock = threading.Lock()
        self._on_message, self._on_end = on_message, on_end
        self.name = name
        self.state: _State = _STATE_EMPTY
        self.refusal: str | None = None  # why it ended at once (its cores), if it said
        self.alive = True
        self.counted = False  # its served and refused added to the view's
        self._closing = False
        self._stopped_reply: object = None
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
            with self._glass_lock:
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
            raise WhepError(503, f"the video process ended: {self.refusal or error}") from error
        except concurrent.futures.TimeoutError:
            if kind == "offer":  # answered later, it is let go at once
                self._abandoned[number] = args[0]
            raise TimeoutError(f"the video process did not answer within {wait:g} s") from None
        finally:
            self._requests.pop(number, None)

    def _read(self) -> None:
        try:
            while True:
                message = self._connection.recv()
                kind = message[0]
                if kind == "reply":
                    self._reply(*message[1:])
                elif kind == "glass":
                    with self._glass_lock:
                        stamps = self._glass.pop(message[1], None)
                    if stamps is not None:
                        stamps.mark_glass("webrtc")
                elif kind == "refused":  # it cannot serve as set up, and ends
                    self.refusal = str(message[1])
                else:
                    if kind == "state":
                        self.state = message[1]
                    self._on_message(self, message)
        except (EOFError, OSError):
            pass
        except Exception as error:  # a message it cannot read: the link is cut, and said so
            logger.warning("the video process sent what the view cannot read: %r", error)
        self._ended()

    def _ended(self) -> None:
        """The socket ended: requests fail, the view is told, the child is reaped."""
        self.alive = False
        with contextlib.suppress(subprocess.TimeoutExpired):  # its exit status, if it has one
            self.process.wait(_EXIT_S)
        with self._end_lock:
            self._connection.close()  # a send now fails at once (OSError), as to a dead child
        ended = "the video process ended" + (f": {self.refusal}" if self.refusal else "")
        for future in list(self._requests.values()):
            if not future.done():
                future.set_exception(WhepError(503, ended))
        self._on_end(self, self._closing)
        try:  # no zombie is left: on a busy machine its interpreter may take a while to end
            self.process.wait(_REAP_S)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def _reply(self, number: int, ok: bool, value: Any) -> None:
        preview = self._abandoned.pop(number, None)
        if preview is not None and ok:  # an offer the view gave up on: its viewer goes
            leave = ("leave", 0, preview, value[0])  # number 0: nobody waits for the reply
            threading.Thread(target=self._send_quietly, args=(leave,), daemon=True).start()
        future = self._requests.get(number)
        if future is None or future.done():
            return  # its asker gave up waiting
        if ok:
            future.set_result(value)
        else:
            status, message = value
            future.set_exception(WhepError(status, message))

    def _send_quietly(self, message: tuple[Any, ...]) -> None:
        with contextlib.suppress(OSError):
            self._send(message)

    def close(self, timeout: float) -> bool:
        """Ask the child to end its viewers and exit; killed if it has not by ``timeout``.

        False if it did not say it stopped everything, was killed, or its
        reader outlived ``timeout``.
        """
        self._closing = True
        confirmed = True  # an ended child had nothing left to stop
        if self.alive:  # asked from a thread of its own: a child that reads no more cannot
            asker = threading.Thread(target=self._ask_close, args=(timeout,), daemon=True,
                                     name=f"{self.name}-video-close")  # fmt: skip
            asker.start()
            asker.join(timeout)
            confirmed = self._stopped_reply is True
        killed = False
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            logger.warning("the video process did not end within %g s: killed", timeout)
            self.process.kill()
            self.process.wait()
            killed = True
        with self._end_lock:  # the reader sees the end now, if it has not
            if not self._connection.closed:
                with socket.socket(fileno=os.dup(self._connection.fileno())) as ours:
                    ours.shutdown(socket.SHUT_RDWR)
        self._reader.join(timeout)
        return confirmed and not killed and not self._reader.is_alive()

    def _ask_close(self, timeout: float) -> None:
        with contextlib.suppress(WhepError, TimeoutError):
            self._stopped_reply = self.request("close", timeout, wait=timeout)


def _spawn() -> tuple[subprocess.Popen[bytes], Connection]:
    """Start a child, and the view's end of the socket to it."""
    ours, theirs = socket.socketpair()
    here = str(Path(__file__).resolve().parents[2])
    try:
        process = subprocess.Popen(
            [sys.executable, "-c", _BOOTSTRAP, str(theirs.fileno()), here],
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
    return process, Connection(ours.detach())


def _child_environment() -> dict[str, str]:
    """This environment; BLAS kept to one thread (the child does no linear algebra)."""
    environment = dict(os.environ)
    for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        environment.setdefault(name, "1")
    return environment
