"""The live view's HTTP side: which endpoint answers what, and streams that end with their client.

It runs on framescope's bounded HTTP server (a deadline for each request
head, a cap on requests served at once, a timeout per read or write). The
token is checked (:class:`~framescope.live._auth.TokenRule`) before a
request takes a slot; requests are not logged, so no token reaches a log.
"""

from __future__ import annotations

import contextlib
import os
import select
import ssl
import threading
from collections.abc import Iterator, Mapping
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from framescope._httpserver import BoundedServing, GuardedRequestHandler, listening_on
from framescope.live._auth import UNAUTHORISED, TokenRule
from framescope.live._clips import (
    MP4_TYPE,
    UnsatisfiableRangeError,
    byte_range,
    clip_path,
    file_chunks,
    requested_clip,
)
from framescope.live._publish import EVENTS_TYPE, Publisher
from framescope.live.preview import MJPEG_TYPE, PreviewTap, mjpeg_parts
from framescope.live.view import page_html
from framescope.live.webrtc import WebRTCService, WhepError

__all__ = ["LiveServer", "open_server"]

_GONE_POLL_S = 0.5  # how often a stream waiting for a frame looks whether its client left
_JSON = "application/json"
_SDP = "application/sdp"
_MAX_OFFER = 64 * 1024  # bytes of an SDP offer (a browser's is 5-10 KB)
_ANSWER_S = 10.0  # seconds a WHEP offer may take to answer (ICE gathering of host addresses)


class LiveServer(BoundedServing, HTTPServer):
    """The HTTP server of one LiveView: its token rule, publisher and previews."""

    access: TokenRule
    publisher: Publisher
    previews: Mapping[str, PreviewTap]
    webrtc: WebRTCService
    closing: threading.Event  # set when the view closes: every stream ends

    def refusal(self, handler: BaseHTTPRequestHandler) -> bytes | None:
        """401 for a request without the token: it never takes a slot."""
        return None if self.access.allows(handler.path, handler.headers) else UNAUTHORISED


def open_server(
    address: tuple[str, int],
    access: TokenRule,
    *,
    publisher: Publisher,
    previews: Mapping[str, PreviewTap],
    webrtc: WebRTCService,
    closing: threading.Event,
) -> LiveServer:
    """Bind ``address`` (an OSError names it when that fails); ``configure`` it, then start it."""
    with listening_on(*address):
        server = LiveServer(address, _Handler)
    server.access, server.publisher, server.previews = access, publisher, previews
    server.webrtc = webrtc
    server.closing = closing
    return server


def _whep_preview(path: str) -> str | None:
    """The preview a WHEP endpoint's path names (``/whep/<preview>``), else None."""
    segments = path.strip("/").split("/")
    if len(segments) == 2 and segments[0] == "whep" and segments[1]:
        return segments[1]
    return None


class _Handler(GuardedRequestHandler):
    server: LiveServer
    protocol_version = "HTTP/1.0"

    def log_message(self, format: str, *args: Any) -> None:
        """Requests are not logged: not worth a line each, and their URLs may carry the token."""

    def do_GET(self) -> None:  # noqa: N802 - the name http.server calls
        server = self.server  # the token was checked before the request took a slot
        publisher = server.publisher
        path = urlsplit(self.path).path
        if path == "/":
            page = page_html(server.previews, webrtc=server.webrtc.max_viewers > 0)
            self._send(200, page, "text/html; charset=utf-8")
        elif path == "/healthz":
            health = publisher.health()
            self._send(health.http_status, health.to_json(), _JSON)
        elif path == "/view.json":
            self._send(200, publisher.published()[1], _JSON)
        elif path in ("/snapshot.json", "/state.json"):
            self._send(200, publisher.rendered(path[1:-5]), _JSON)
        elif path == "/events":
            self._stream(EVENTS_TYPE, publisher.events())
        elif path.startswith("/video/") and path.endswith(".mjpg"):
            tap = server.previews.get(path[len("/video/") : -len(".mjpg")])
            if tap is None:
                self._send(404, b"no such preview\n", "text/plain")
            else:
                self._stream(MJPEG_TYPE, mjpeg_parts(tap, server.closing, _GONE_POLL_S))
        elif path.startswith("/clips/"):
            self._clip(path)
        else:
            self._send(404, b"not found\n", "text/plain")

    def _clip(self, path: str) -> None:
        """A clip's MP4 file (or one range of it): only one the published snapshot lists."""
        named = requested_clip(path)
        found = None if named is None else clip_path(self.server.publisher.clips(), *named)
        if found is None:
            self._send(404, b"no such clip\n", "text/plain")
            return
        try:
            file = found.open("rb")
        except OSError:  # deleted (max_bytes, max_age) since the snapshot listed it
            self._send(404, b"the clip is gone\n", "text/plain")
            return
        with file:
            size = os.fstat(file.fileno()).st_size
            try:
                part = byte_range(self.headers.get("Range"), size)
            except UnsatisfiableRangeError as error:
                self.send_response(416)
                self.send_header("Content-Range", str(error))
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(200 if part is None else 206)
            self.send_header("Content-Type", MP4_TYPE)
            self.send_header("Accept-Ranges", "bytes")
            self.send_header("Content-Length", str(size if part is None else part.length))
            if part is not None:
                self.send_header("Content-Range", part.content_range)
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            start, length = (0, size) if part is None else (part.start, part.length)
            for chunk in file_chunks(file, start, length, self.server.closing):
                self.wfile.write(chunk)

    # -- WHEP: /whep/<preview> takes an offer; /whep/<preview>/<viewer> is a session ----------

    def do_POST(self) -> None:  # noqa: N802 - the name http.server calls
        """A WHEP offer: ``201 Created``, the SDP answer and the session's ``Location``."""
        parts = urlsplit(self.path)
        preview = _whep_preview(parts.path)
        if preview is None:
            self._send(404, b"not found\n", "text/plain")
            return
        if self.headers.get("Content-Type", "").split(";")[0].strip().lower() != _SDP:
            self._send(415, b"the offer must be application/sdp\n", "text/plain")
            return
        length = self.headers.get("Content-Length", "")
        if not (length.isascii() and length.isdigit()):
            self._send(411, b"an offer needs its Content-Length\n", "text/plain")
            return
        if not 0 < int(length) <= _MAX_OFFER:
            self._send(413, f"an offer of 1 to {_MAX_OFFER} bytes\n".encode(), "text/plain")
            return
        offer = self.rfile.read(int(length)).decode("utf-8", "replace")
        camera = (parse_qs(parts.query).get("camera") or [""])[0] or None
        try:
            viewer, answer = self.server.webrtc.offer(preview, camera, offer, _ANSWER_S)
        except WhepError as error:
            self._send(error.status, f"{error}\n".encode(), "text/plain", retry=error.status == 503)
            return
        self._send(201, answer.encode(), _SDP, location=f"/whep/{preview}/{viewer}")

    def do_DELETE(self) -> None:  # noqa: N802 - the name http.server calls
        """The end of a WHEP session."""
        segments = urlsplit(self.path).path.strip("/").split("/")
        known = len(segments) == 3 and segments[0] == "whep"
        if known and self.server.webrtc.leave(segments[1], segments[2]):
            self._send(200, b"", "text/plain")
            return
        self._send(404, b"no such session\n", "text/plain")

    def do_PATCH(self) -> None:  # noqa: N802 - the name http.server calls
        """Trickle ICE is not offered: the answer holds every candidate (405, as WHEP says)."""
        self._send(
            405, b"trickle ICE is not supported: the answer has every candidate\n", "text/plain"
        )

    def do_OPTIONS(self) -> None:  # noqa: N802 - the name http.server calls
        """What the WHEP endpoint accepts."""
        self.send_response(204)
        self.send_header("Accept-Post", _SDP)
        self.send_header("Allow", "GET, POST, DELETE, OPTIONS")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _send(
        self, status: int, body: bytes, kind: str, *, location: str = "", retry: bool = False
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        if location:
            self.send_header("Location", location)
        if retry:
            self.send_header("Retry-After", "5")
        self.end_headers()
        self.wfile.write(body)

    def _stream(self, kind: str, parts: Iterator[bytes | None]) -> None:
        """Send ``parts`` as they come; None: nothing new, so look whether the client left."""
        self.send_response(200)
        self.send_header("Content-Type", kind)
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        for part in parts:
            if part is None:
                if self._client_left():
                    return
                continue
            self.wfile.write(part)
            self.wfile.flush()

    def _client_left(self) -> bool:
        """Whether the client closed its end (a stream's client sends nothing after its head)."""
        connection = self.connection
        try:
            readable, _, _ = select.select([connection], [], [], 0)
        except (OSError, ValueError):  # closed already
            return True
        if not readable:
            return False
        timeout = connection.gettimeout()
        try:
            connection.settimeout(0.0)
            return not connection.recv(4096)  # b"": the end; anything else is dropped
        except (BlockingIOError, ssl.SSLWantReadError):
            return False  # part of a TLS record
        except OSError:  # reset
            return True
        finally:
            with contextlib.suppress(OSError):
                connection.settimeout(timeout)
