"""One PutMedia upload: a long-lived, SigV4-signed, chunked HTTP/1.1 POST, acks read as it goes.

The service reads the Matroska body as it arrives and answers on the same
connection while the upload continues, so this speaks HTTP over a plain
socket: the request head, then one chunk per write; a reader thread takes
the response head and the acknowledgements (de-chunked, then split by
:class:`~framescope.kvs.acks.AckParser`).
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import threading
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from framescope._optional import require
from framescope.kvs.acks import Ack, AckParser, error_name
from framescope.kvs.credentials import Credentials

__all__ = ["PutMediaConnection", "signed_headers"]


def signed_headers(
    url: str,
    *,
    stream_name: str,
    region: str,
    credentials: Credentials,
    producer_start: float,
) -> dict[str, str]:
    """The headers of a PutMedia request to ``url``, signed (SigV4, service ``kinesisvideo``).

    The payload is hashed as the empty string, as the KVS producers do: the
    body is a stream whose end is not known when the request is signed.
    """
    auth: Any = require("botocore.auth", "kvs", "KVSSpyGlass")
    requests: Any = require("botocore.awsrequest", "kvs", "KVSSpyGlass")
    boto_credentials: Any = require("botocore.credentials", "kvs", "KVSSpyGlass")
    parts = urlsplit(url)
    headers = {
        "Host": parts.netloc,
        "x-amzn-stream-name": stream_name,
        "x-amzn-fragment-timecode-type": "ABSOLUTE",
        "x-amzn-producer-start-timestamp": f"{producer_start:.3f}",
        "x-amzn-fragment-acknowledgment-required": "1",
    }
    request = requests.AWSRequest(method="POST", url=url, data=b"", headers=headers)
    signer = boto_credentials.Credentials(
        credentials.access_key, credentials.secret_key, credentials.token
    )
    auth.SigV4Auth(signer, "kinesisvideo", region).add_auth(request)
    return {key: str(value) for key, value in request.headers.items()}


class PutMediaConnection:
    """An open PutMedia upload to ``endpoint`` (``https://host`` or ``http://host:port``).

    ``send(data)`` writes one chunk (OSError when the connection is gone);
    ``failure`` says why it can no longer be used (an HTTP status, an ERROR
    ack, the server closing it); ``finish()`` ends the body and waits for the
    last acks. ``on_ack`` is called on the reader thread with each ack.
    """

    def __init__(
        self,
        endpoint: str,
        *,
        stream_name: str,
        region: str,
        credentials: Credentials,
        producer_start: float,
        on_ack: Callable[[Ack], None],
        timeout: float = 10.0,
        name: str = "KVS",
    ) -> None:
        parts = urlsplit(endpoint.rstrip("/"))
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"endpoint must be an http(s) URL, got {endpoint!r}")
        url = f"{parts.scheme}://{parts.netloc}/putMedia"
        self.credentials = credentials
        self.header: bytes | None = None  # the stream header it began with
        self.opened_at = time.monotonic()
        self.status: int | None = None
        self.failure: str | None = None
        self.error_code: int | None = None
        self._on_ack = on_ack
        self._lock = threading.Lock()
        port = parts.port or (443 if parts.scheme == "https" else 80)
        sock = socket.create_connection((parts.hostname, port), timeout=timeout)
        if parts.scheme == "https":
            sock = ssl.create_default_context().wrap_socket(sock, server_hostname=parts.hostname)
        self._sock = sock
        headers = signed_headers(
            url,
            stream_name=stream_name,
            region=region,
            credentials=credentials,
            producer_start=producer_start,
        )
        head = "POST /putMedia HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        head += "Transfer-Encoding: chunked\r\nConnection: keep-alive\r\n\r\n"
        try:
            sock.sendall(head.encode("latin-1"))
        except OSError:
            sock.close()
            raise
        self.responded = threading.Event()  # the response head arrived
        self.ended = threading.Event()  # the response ended (or the socket did)
        self._reader = threading.Thread(
            target=self._read, name=f"framescope-kvs-{name}-acks", daemon=True
        )
        self._reader.start()

    @property
    def age(self) -> float:
        """Seconds since it was opened."""
        return time.monotonic() - self.opened_at

    def send(self, data: bytes) -> None:
        """Write ``data`` as one chunk of the body."""
        if self.failure is not None:
            raise OSError(self.failure)
        with self._lock:
            self._sock.sendall(b"%x\r\n" % len(data) + data + b"\r\n")

    def finish(self, timeout: float) -> bool:
        """End the body, wait up to ``timeout`` s for the server to end its answer, close."""
        try:
            with self._lock:
                self._sock.sendall(b"0\r\n\r\n")
            ended = self.ended.wait(timeout)
        except OSError:
            ended = False
        self.close()
        return ended

    def abandon(self, reason: str) -> None:
        """Mark it failed for ``reason`` and cut the socket (its user then closes it).

        Safe from another thread than the one sending: a write blocked on it
        fails at once.
        """
        self._fail(reason)
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        """Close the socket now and end the reader."""
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_RDWR)
        with contextlib.suppress(OSError):
            self._sock.close()
        if self._reader is not threading.current_thread():
            self._reader.join(5)

    # -- the reader thread -----------------------------------------------------------

    def _fail(self, reason: str) -> None:
        if self.failure is None:
            self.failure = reason

    def _read(self) -> None:
        stream = self._sock.makefile("rb")
        try:
            status_line = stream.readline(65537).decode("latin-1").split()
            if len(status_line) < 2 or not status_line[1].isdigit():
                self._fail("the server closed the connection without an answer")
                return
            self.status = int(status_line[1])
            headers = _read_headers(stream)
            self.responded.set()
            chunked = headers.get("transfer-encoding", "").lower() == "chunked"
            body = _dechunked(stream) if chunked else iter(lambda: stream.read1(65536), b"")
            if self.status != 200:
                text = b"".join(_bounded(body, 65536)).decode("utf-8", "replace")
                self._fail(f"HTTP {self.status}: {_message(text)}")
                return
            parser = AckParser()
            for data in body:
                for ack in parser.feed(data):
                    if ack.event_type == "ERROR" and ack.error_id is not None:
                        self.error_code = ack.error_id
                        self._fail(f"{error_name(ack.error_id)} ({ack.error_id})")
                    self._on_ack(ack)
            self._fail("the server ended the upload")
        except (OSError, ValueError) as error:
            self._fail(f"the connection failed: {type(error).__name__}")
        finally:
            with contextlib.suppress(OSError):
                stream.close()
            self.responded.set()
            self.ended.set()


def _read_headers(stream: Any) -> dict[str, str]:
    headers: dict[str, str] = {}
    for _ in range(100):
        line = stream.readline(65537).decode("latin-1").strip()
        if not line:
            break
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return headers


def _dechunked(stream: Any) -> Any:
    while True:
        size_line = stream.readline(1024)
        if not size_line:
            return
        size = int(size_line.split(b";")[0].strip() or b"0", 16)
        if size == 0:
            return
        data = stream.read(size)
        stream.readline(3)
        if not data:
            return
        yield data


def _bounded(chunks: Any, limit: int) -> Any:
    total = 0
    for chunk in chunks:
        total += len(chunk)
        yield chunk
        if total >= limit:
            return


def _message(text: str) -> str:
    """The service's error message from a JSON error body (or the text, shortened)."""
    import json  # noqa: PLC0415 - only on errors

    try:
        data = json.loads(text)
        if isinstance(data, dict):
            kind = data.get("__type") or data.get("Code") or ""
            message = data.get("message") or data.get("Message") or ""
            return f"{kind} {message}".strip() or text[:200]
    except ValueError:
        pass
    return text[:200]
