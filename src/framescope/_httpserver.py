"""HTTP serving that stays bounded: the base of framescope's endpoints (``/metrics``, live view).

A server on an edge box must survive whatever connects to it. Compared with
the standard library's threading servers this one

- gives each connection ``header_timeout`` seconds in all to send its request
  head (and finish the TLS handshake): a client that sends a byte now and
  then is cut at that deadline (plain HTTP: answered ``408``), not when a
  read finally times out;
- holds at most ``max_pending`` connections still sending their head; when a
  new one comes and that many wait, the oldest of them is cut (answered
  ``503``), so slow clients cannot keep a fast one out;
- serves at most ``max_connections`` requests at once. A connection takes
  one of those slots only once its head is complete and accepted (the
  server's :meth:`BoundedServing.refusal` hook, e.g. a token check, said
  nothing against it); past that it is answered ``503`` and counted;
- gives each read or write ``request_timeout`` seconds, so an idle or
  stalled client frees its thread;
- speaks TLS when given an ``ssl.SSLContext`` (the handshake runs on the
  connection's own thread, under the head's deadline);
- accepts on a named thread that also ends once the main thread has
  finished, and :meth:`BoundedServing.stop` joins every thread it started
  within one deadline.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import socket
import socketserver
import ssl
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from typing import Any

from framescope._validation import check_positive_int, check_positive_seconds
from framescope._waits import Deadline

__all__ = ["BoundedServing", "GuardedRequestHandler", "check_address", "listening_on"]

logger = logging.getLogger(__name__)

_BUSY = b"HTTP/1.0 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
_TOO_SLOW = b"HTTP/1.0 408 Request Timeout\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
_ACCEPT_POLL_S = 0.05


class _Connection:
    """One accepted connection: its socket (the TLS one once wrapped) and where it stands."""

    __slots__ = ("deadline", "socket", "state")

    def __init__(self, sock: socket.socket, deadline: float) -> None:
        self.socket = sock
        self.deadline = deadline  # for the request head (time.monotonic())
        self.state = "head"  # "head" -> "admitting" -> "served", or "cut"


def _shut(sock: socket.socket) -> None:
    """Shut a connection down from another thread than its own.

    The plain socket's shutdown also for TLS: ``SSLSocket.shutdown`` would
    drop the TLS state under the thread still reading it.
    """
    with contextlib.suppress(OSError):
        socket.socket.shutdown(sock, socket.SHUT_RDWR)


def check_address(host: object, port: object) -> tuple[str, int]:
    """``(host, port)`` if they can be listened on: a non-empty host name, a port 0..65535."""
    if not isinstance(host, str):
        raise TypeError(f"host must be a str (an address to listen on), got {type(host).__name__}")
    if not host or "\x00" in host:
        raise ValueError(f"host must be an address to listen on, got {host!r}")
    if isinstance(port, bool) or not isinstance(port, int):
        raise TypeError(f"port must be an int, got {type(port).__name__}")
    if not 0 <= port <= 65535:
        raise ValueError(f"port must be from 0 (any free port) to 65535, got {port}")
    return host, port


@contextlib.contextmanager
def listening_on(host: str, port: int) -> Iterator[None]:
    """Around making a server: a host that is no address of this machine is a ValueError.

    (A port in use stays an OSError: the address is right, the moment is not.)
    """
    try:
        yield
    except socket.gaierror as error:
        raise ValueError(f"host {host!r} is not an address to listen on: {error}") from None
    except OSError as error:
        if error.errno == errno.EADDRNOTAVAIL:
            raise ValueError(f"host {host!r} is not an address of this machine: {error}") from None
        raise


class BoundedServing(socketserver.TCPServer):
    """A ``socketserver`` TCP server base: bounded threads, deadlines, TLS.

    Put it first among the bases (``class S(BoundedServing, HTTPServer)``),
    give it a handler derived from :class:`GuardedRequestHandler`, and call
    :meth:`configure` before :meth:`start`.
    """

    request_queue_size = 64  # connections the kernel holds until they are accepted
    max_connections = 32
    max_pending = 32
    request_timeout = 10.0
    header_timeout = 5.0
    ssl_context: ssl.SSLContext | None = None

    def configure(
        self,
        *,
        name: str,
        max_connections: int = 32,
        request_timeout: float = 10.0,
        header_timeout: float = 5.0,
        max_pending: int | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        """Set the bounds; ``name`` names the threads (``name``, ``name-conn``).

        ``max_pending`` (connections still sending their head) defaults to
        ``max_connections``. A bad bound is refused with the listening socket
        closed again.
        """
        try:
            self.max_connections = check_positive_int(max_connections, "max_connections")
            self.request_timeout = check_positive_seconds(request_timeout, "request_timeout")
            self.header_timeout = check_positive_seconds(header_timeout, "header_timeout")
            self.max_pending = (
                self.max_connections
                if max_pending is None
                else check_positive_int(max_pending, "max_pending")
            )
            if ssl_context is not None and not isinstance(ssl_context, ssl.SSLContext):
                raise TypeError(
                    f"ssl_context must be an ssl.SSLContext, got {type(ssl_context).__name__}"
                )
        except (TypeError, ValueError):
            self.server_close()
            raise
        self.ssl_context = ssl_context
        self.thread_name = name
        self.refused = 0  # answered 503: every slot taken, or cut to make room for a newer one
        self.timed_out = 0  # cut because the request head was not complete by its deadline
        self.failed = 0  # connections that ended in an error (timeouts, bad TLS, ...)
        self._slots = threading.BoundedSemaphore(self.max_connections)
        self._handlers: dict[threading.Thread, _Connection] = {}
        self._pending: dict[_Connection, None] = {}  # still sending their head, oldest first
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._acceptor = threading.Thread(target=self._accept_loop, name=name)

    def start(self) -> None:
        """Start accepting on the named thread."""
        self._acceptor.start()

    def _accept_loop(self) -> None:
        self.timeout = _ACCEPT_POLL_S  # handle_request() waits at most this long
        main = threading.main_thread()
        while not self._stopping.is_set() and main.is_alive():
            self.handle_request()
            self._cut_late()

    def handler_threads(self) -> int:
        """How many connections have a thread now (sending their head, or being served)."""
        with self._lock:
            return len(self._handlers)

    def refusal(self, handler: BaseHTTPRequestHandler) -> bytes | None:
        """The whole answer that refuses a request whose head is complete; None: serve it.

        Called before the request takes a slot; servers override it (a token check).
        """
        return None

    # -- the request head -----------------------------------------------------------

    def _cut(self, connection: _Connection, answer: bytes) -> None:
        """End a connection still sending its head (with the lock held)."""
        connection.state = "cut"
        self._pending.pop(connection, None)
        sock = connection.socket
        if self.ssl_context is None:
            with contextlib.suppress(OSError):
                sock.send(answer, socket.MSG_DONTWAIT)
        _shut(sock)  # wakes its thread, blocked on a read

    def _cut_late(self) -> None:
        now = time.monotonic()
        with self._lock:
            for connection in [c for c in self._pending if c.deadline <= now]:
                self._cut(connection, _TOO_SLOW)
                self.timed_out += 1

    def admit(self, handler: BaseHTTPRequestHandler) -> bool:
        """Called once ``handler``'s request head is complete: give it a slot, or refuse it."""
        with self._lock:
            connection = self._handlers.get(threading.current_thread())
            if connection is None or connection.state != "head":
                return False  # cut at its deadline just now
            connection.state = "admitting"
            self._pending.pop(connection, None)
        answer = self.refusal(handler)
        if answer is None and not self._slots.acquire(blocking=False):
            answer = _BUSY
            with self._lock:
                self.refused += 1
        if answer is not None:
            with contextlib.suppress(OSError):
                handler.wfile.write(answer)
            return False
        connection.state = "served"
        return True

    # -- socketserver hooks ---------------------------------------------------------

    def process_request(self, request: Any, client_address: Any) -> None:
        """Give the connection a thread to send its head on, making room when needed."""
        with self._lock:
            # Cut connections keep their thread until it sees the end: a hard bound.
            if len(self._handlers) >= self.max_connections + 2 * self.max_pending:
                self.refused += 1
                self._refuse(request)
                return
            if len(self._pending) >= self.max_pending:  # the oldest makes room
                self._cut(next(iter(self._pending)), _BUSY)
                self.refused += 1
            connection = _Connection(request, time.monotonic() + self.header_timeout)
            thread = threading.Thread(
                target=self._serve_connection,
                args=(connection, client_address),
                name=f"{self.thread_name}-conn",
                daemon=True,  # bounded by the timeouts; never holds up the exit
            )
            self._handlers[thread] = connection
            self._pending[connection] = None
        thread.start()

    def _refuse(self, request: socket.socket) -> None:
        if self.ssl_context is None:
            with contextlib.suppress(OSError):
                request.send(_BUSY, socket.MSG_DONTWAIT)
        self.shutdown_request(request)

    def _serve_connection(self, connection: _Connection, client_address: Any) -> None:
        sock: socket.socket = connection.socket
        try:
            sock.settimeout(self.request_timeout)
            if self.ssl_context is not None:
                sock = self.ssl_context.wrap_socket(
                    sock, server_side=True, do_handshake_on_connect=False
                )
                with self._lock:
                    connection.socket = sock  # what a cut or stop() shuts down from now on
                    if connection.state == "cut":
                        return
                sock.do_handshake()
            self.finish_request(sock, client_address)
        except (OSError, ssl.SSLError) as error:
            self.failed += 1
            logger.debug("%s: connection %s ended: %s", self.thread_name, client_address, error)
        except Exception:
            self.failed += 1
            logger.exception("%s: serving %s failed", self.thread_name, client_address)
        finally:
            self.shutdown_request(sock)
            with self._lock:
                if connection.state == "served":
                    self._slots.release()
                self._pending.pop(connection, None)
                self._handlers.pop(threading.current_thread(), None)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Errors are counted and logged at debug level, not printed to stderr."""
        self.failed += 1
        logger.debug("%s: error serving %s", self.thread_name, client_address, exc_info=True)

    # -- stopping -------------------------------------------------------------------

    def stop(self, timeout: float | None = 2.0) -> bool:
        """Stop accepting, end open connections, join every thread within ``timeout`` s in all.

        Returns False when a thread was still running at the deadline.
        """
        left = Deadline(timeout).left

        self._stopping.set()
        if self._acceptor.is_alive():
            self._acceptor.join(left())
        self.server_close()
        with self._lock:
            handlers = list(self._handlers.items())
        for _, connection in handlers:  # wakes a handler blocked on a slow or idle client
            _shut(connection.socket)
        for handler, _ in handlers:
            handler.join(left())
        return not self._acceptor.is_alive() and not any(h.is_alive() for h, _ in handlers)


class GuardedRequestHandler(BaseHTTPRequestHandler):
    """A request handler that asks its :class:`BoundedServing` server for a slot.

    Once the request head is parsed, the server checks it (see
    :meth:`BoundedServing.refusal`) and counts it against ``max_connections``;
    a request refused there is answered by the server and not handled.
    """

    def parse_request(self) -> bool:
        """Parse the head as usual, then be admitted by the server."""
        if not super().parse_request():
            return False
        server = self.server
        return not isinstance(server, BoundedServing) or server.admit(self)
