"""HTTP serving that stays bounded: the base of framescope's endpoints (``/metrics``).

A server on an edge box must survive whatever connects to it. Compared with
the standard library's threading servers this one

- holds at most ``max_connections`` handler threads; a connection past that
  is answered ``503`` at once (plain HTTP) or closed (TLS), and counted;
- gives each connection ``request_timeout`` seconds per read or write, so an
  idle or stalled client frees its thread;
- speaks TLS when given an ``ssl.SSLContext`` (the handshake runs on the
  connection's own thread, under the same timeout);
- accepts on a named thread that also ends once the main thread has
  finished, and :meth:`BoundedServing.stop` joins every thread it started
  within one deadline.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import socketserver
import ssl
import threading
import time
from typing import Any

from framescope._validation import check_positive_int, check_positive_seconds

__all__ = ["BoundedServing"]

logger = logging.getLogger(__name__)

_BUSY = b"HTTP/1.0 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
_ACCEPT_POLL_S = 0.05


class BoundedServing(socketserver.TCPServer):
    """A ``socketserver`` TCP server base: bounded threads, timeouts, TLS.

    Put it first among the bases (``class S(BoundedServing, HTTPServer)``) and
    call :meth:`configure` before :meth:`start`.
    """

    request_queue_size = 64  # connections the kernel holds until they are accepted
    max_connections = 32
    request_timeout = 10.0
    ssl_context: ssl.SSLContext | None = None

    def configure(
        self,
        *,
        name: str,
        max_connections: int = 32,
        request_timeout: float = 10.0,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        """Set the bounds; ``name`` names the threads (``name``, ``name-conn``).

        A bad bound is refused with the listening socket closed again.
        """
        try:
            self.max_connections = check_positive_int(max_connections, "max_connections")
            self.request_timeout = check_positive_seconds(request_timeout, "request_timeout")
            if ssl_context is not None and not isinstance(ssl_context, ssl.SSLContext):
                raise TypeError(
                    f"ssl_context must be an ssl.SSLContext, got {type(ssl_context).__name__}"
                )
        except (TypeError, ValueError):
            self.server_close()
            raise
        self.ssl_context = ssl_context
        self.thread_name = name
        self.refused = 0  # connections answered 503 because every slot was taken
        self.failed = 0  # connections that ended in an error (timeouts, bad TLS, ...)
        self._slots = threading.BoundedSemaphore(self.max_connections)
        self._handlers: dict[threading.Thread, socket.socket] = {}
        self._handlers_lock = threading.Lock()
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

    def handler_threads(self) -> int:
        """How many connections are being served now."""
        with self._handlers_lock:
            return len(self._handlers)

    # -- socketserver hooks ---------------------------------------------------------

    def process_request(self, request: Any, client_address: Any) -> None:
        """Serve the connection on its own thread, or refuse it when every slot is taken."""
        if not self._slots.acquire(blocking=False):
            self.refused += 1
            if self.ssl_context is None:
                with contextlib.suppress(OSError):
                    request.settimeout(1.0)
                    request.sendall(_BUSY)
            self.shutdown_request(request)
            return
        thread = threading.Thread(
            target=self._serve_connection,
            args=(request, client_address),
            name=f"{self.thread_name}-conn",
            daemon=True,  # bounded by request_timeout; never holds up the exit
        )
        with self._handlers_lock:
            self._handlers[thread] = request
        thread.start()

    def _serve_connection(self, request: socket.socket, client_address: Any) -> None:
        connection: socket.socket = request
        try:
            request.settimeout(self.request_timeout)
            if self.ssl_context is not None:
                connection = self.ssl_context.wrap_socket(request, server_side=True)
            self.finish_request(connection, client_address)
        except (OSError, ssl.SSLError) as error:
            self.failed += 1
            logger.debug("%s: connection %s ended: %s", self.thread_name, client_address, error)
        except Exception:
            self.failed += 1
            logger.exception("%s: serving %s failed", self.thread_name, client_address)
        finally:
            self.shutdown_request(connection)
            self._slots.release()
            with self._handlers_lock:
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
        deadline = None if timeout is None else time.monotonic() + timeout

        def left() -> float | None:
            return None if deadline is None else max(0.0, deadline - time.monotonic())

        self._stopping.set()
        if self._acceptor.is_alive():
            self._acceptor.join(left())
        self.server_close()
        with self._handlers_lock:
            handlers = list(self._handlers.items())
        for _, connection in handlers:  # wakes a handler blocked on a slow or idle client
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
        for handler, _ in handlers:
            handler.join(left())
        return not self._acceptor.is_alive() and not any(h.is_alive() for h, _ in handlers)
