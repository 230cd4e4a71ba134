"""Clients that trickle a request head, for the tests of the HTTP servers' deadlines."""

from __future__ import annotations

import contextlib
import select
import socket
import threading
import time


class SlowClients:
    """Connections that each send a request head one byte every ``every`` s, never ending it.

    Records, per connection, what the server answered and how long after it
    was opened the server closed it.
    """

    def __init__(self, port: int, count: int, path: str, every: float = 0.2) -> None:
        self.head = f"GET {path} HTTP/1.0\r\nX-Slow: ".encode()
        self.opened = time.monotonic()
        self.connections = [socket.create_connection(("127.0.0.1", port)) for _ in range(count)]
        self.answers = [b""] * count
        self.closed_after: dict[int, float] = {}
        self._sent = [0] * count
        self._every = every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._drip, name="slow-clients")
        self._thread.start()

    def _drip(self) -> None:
        while not self._stop.is_set() and len(self.closed_after) < len(self.connections):
            for number, connection in enumerate(self.connections):
                if number not in self.closed_after:
                    self._one(number, connection)
            self._stop.wait(self._every)

    def _one(self, number: int, connection: socket.socket) -> None:
        try:
            if select.select([connection], [], [], 0)[0]:
                chunk = connection.recv(4096)
                self.answers[number] += chunk
                if chunk:
                    return
            else:
                sent = self._sent[number]
                connection.send(self.head[sent : sent + 1] or b"a")
                self._sent[number] += 1
                return
        except OSError:
            pass
        self.closed_after[number] = time.monotonic() - self.opened

    def all_closed(self, limit: float) -> bool:
        self._thread.join(limit)
        return not self._thread.is_alive()

    def all_cut(self, header_timeout: float) -> int:
        """Check that the server cut every one: to make room (503) or at the head's deadline
        (408, not before ``header_timeout`` s). Returns how many were cut at the deadline."""
        assert self.all_closed(limit=header_timeout + 10)
        for number, answer in enumerate(self.answers):
            assert answer.startswith((b"HTTP/1.0 503", b"HTTP/1.0 408")), answer
            if answer.startswith(b"HTTP/1.0 408"):
                assert self.closed_after[number] >= header_timeout
        return sum(answer.startswith(b"HTTP/1.0 408") for answer in self.answers)

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        for connection in self.connections:
            connection.close()


def answer_of(connection: socket.socket, limit: float = 10.0) -> bytes:
    """All the server sends on ``connection`` until it closes it (``limit`` s at most); then
    the connection is closed here too."""
    connection.settimeout(limit)
    answer = b""
    with contextlib.suppress(OSError):
        while chunk := connection.recv(4096):
            answer += chunk
    connection.close()
    return answer
