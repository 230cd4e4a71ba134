"""The live view in the browser: one page, Server-Sent Events, JSON and MJPEG endpoints.

A :class:`LiveView` serves snapshots of its sources (pipelines, or other
LiveViews' URLs for a fleet). One publisher thread takes one snapshot per
``refresh`` (however many browsers watch) and renders it for the page; the
handlers only send what it made. It runs on framescope's bounded HTTP server
(a deadline for each request head, a cap on requests served at once, a
timeout per read or write), binds 127.0.0.1 by default, and needs a token
(compared in constant time, on every endpoint, before a request takes a
slot) when bound to any other address.
"""

from __future__ import annotations

import contextlib
import hmac
import html
import importlib.resources
import json
import logging
import secrets
import select
import ssl
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, urlsplit

from framescope._httpserver import (
    BoundedServing,
    GuardedRequestHandler,
    check_address,
    listening_on,
)
from framescope._periodic import run_every
from framescope._validation import check_positive_seconds
from framescope.clock import SYSTEM_CLOCK
from framescope.live.preview import ImageChoice, PreviewTap
from framescope.live.remote import RemoteBox
from framescope.live.view import input_drops, page_view
from framescope.pipeline.model.snapshot import PipelineSnapshot, merge_snapshots
from framescope.stats import StatsSnapshot

__all__ = ["LiveView"]

logger = logging.getLogger(__name__)

_LOOPBACK = ("127.0.0.1", "localhost", "::1")
_UNAUTHORISED = (
    b"HTTP/1.0 401 Unauthorized\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n"
    b"Cache-Control: no-store\r\nConnection: close\r\n\r\nunauthorised\n"
)
_GONE_POLL_S = 0.5  # how often a stream waiting for a frame looks whether its client left


class _Server(BoundedServing, HTTPServer):
    """The HTTP server, with bounded connection threads, timeouts and optional TLS."""

    view: LiveView

    def refusal(self, handler: BaseHTTPRequestHandler) -> bytes | None:
        """401 for a request without the token: it never takes a slot."""
        query = parse_qs(urlsplit(handler.path).query)
        return None if self.view.authorised(query, handler.headers) else _UNAUTHORISED


class LiveView:
    """A live page of one pipeline, several, or a fleet of boxes: ``url`` to open it.

    Example::

        with LiveView(pipeline) as view:     # or: view = pipeline.serve()
            print("open", view.url)
            ...

    Endpoints: ``/`` (the page, self-contained: no CDN), ``/events``
    (Server-Sent Events, one ``snapshot`` event per refresh), ``/view.json``
    (what the page draws), ``/snapshot.json`` (the full snapshot, which a
    fleet LiveView reads), ``/state.json`` (DepthAI's ``PipelineState``),
    ``/video/<name>.mjpg`` (a preview, see :meth:`preview`) and ``/healthz``.

    Args:
        sources: pipelines (anything with ``snapshot()``) and URLs of other
            LiveViews (``http://box:8080/?token=...``), shown as one view
            with node ids prefixed by box.
        host: the address to listen on. Anything but loopback needs a token.
        port: the port (0: any free one; see ``url``).
        token: the access token; None: none on loopback, a random one otherwise.
        refresh: seconds between snapshots.
        max_connections: requests (page loads, event and video streams)
            served at once; more get 503. A connection counts only once its
            request head is complete and carries the token.
        request_timeout: seconds a client may take per read or write.
        header_timeout: seconds a connection has in all to send its request
            head (and finish the TLS handshake); a slower one is cut.
        ssl_context: serve HTTPS with this ``ssl.SSLContext``.
    """

    def __init__(
        self,
        *sources: Any,
        host: str = "127.0.0.1",
        port: int = 0,
        token: str | None = None,
        refresh: float = 0.5,
        max_connections: int = 16,
        request_timeout: float = 10.0,
        header_timeout: float = 5.0,
        ssl_context: Any = None,
    ) -> None:
        if not sources:
            raise ValueError("sources: give at least one pipeline or LiveView URL")
        self.pipelines: list[Any] = []
        self.remotes: list[RemoteBox] = []
        for source in sources:
            if isinstance(source, str):
                self.remotes.append(RemoteBox(source, request_timeout))
            elif callable(getattr(source, "snapshot", None)):
                self.pipelines.append(source)
            else:
                raise TypeError(
                    f"sources must be pipelines (with snapshot()) or LiveView URLs, "
                    f"got {type(source).__name__}"
                )
        self.refresh = check_positive_seconds(refresh, "refresh")
        if token is not None and (not isinstance(token, str) or len(token) < 8):
            raise ValueError("token must be a string of at least 8 characters")
        if token is None and host not in _LOOPBACK:
            token = secrets.token_urlsafe(16)  # never open beyond loopback without one
        self.token = token
        self.previews: dict[str, PreviewTap] = {}
        address = check_address(host, port)
        with listening_on(*address):
            self._server = _Server(address, _Handler)
        self._server.view = self
        self._server.configure(
            name=f"framescope-live-{self._server.server_port}",
            max_connections=max_connections,
            request_timeout=request_timeout,
            header_timeout=header_timeout,
            ssl_context=ssl_context,
        )
        self.host, self.port = host, self._server.server_port
        self.scheme = "http" if ssl_context is None else "https"
        # version, page view JSON, and the snapshot it was made from
        self._published: tuple[int, bytes, PipelineSnapshot | None] = (0, b"{}", None)
        self._rendered: dict[str, tuple[int, bytes]] = {}  # full JSON renderings, by version
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._publisher = threading.Thread(
            target=self._publish_loop, name=f"framescope-live-{self.port}-publisher"
        )
        self.started = False

    # -- the public side ---------------------------------------------------------------

    @property
    def url(self) -> str:
        """The page's address (with the token, when one is needed)."""
        host = "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host
        base = f"{self.scheme}://{host}:{self.port}/"
        return base + (f"?token={self.token}" if self.token else "")

    def preview(
        self,
        name: str = "preview",
        stage: str | None = None,
        *,
        fps: float = 10.0,
        image: ImageChoice = None,
    ) -> PreviewTap:
        """Show frames of the pipeline on the page as ``/video/<name>.mjpg``.

        With ``stage`` (a stage's name, typically the one that draws), the
        view taps that stage's results in place: no stage is added, and the
        pipeline must not have started yet. Without it, the returned
        :class:`PreviewTap` is a stage for you to add where the preview should show.
        A result may be an image, a :class:`~framescope.video.Frame`, or a
        dict or tuple holding one; ``image`` (a key, an index or a function)
        picks it when there are several. When a result holds no image, the
        preview's box on the page says so.
        """
        if name in self.previews:
            raise ValueError(f"name: there is already a preview called {name!r}")
        tap = PreviewTap(name, fps=fps, image=image, source=stage)
        if stage is not None:
            self._tap(stage, tap)
        self.previews[name] = tap
        if self.started:
            tap.start()
        return tap

    def _tap(self, stage: str, tap: PreviewTap) -> None:
        reasons = []
        for pipeline in self.pipelines:
            try:
                pipeline.tap(stage, tap.__call__)
                return
            except (ValueError, AttributeError) as error:
                reasons.append(f"{getattr(pipeline, 'name', pipeline)!r}: {error}")
        why = "; ".join(reasons)
        raise ValueError(f"stage: no pipeline of this view can show {stage!r} ({why})")

    def start(self) -> LiveView:
        """Start serving (returns self)."""
        if self.started:
            return self
        self.started = True
        for number, remote in enumerate(self.remotes):
            remote.start(self.refresh, self._stop, f"framescope-live-{self.port}-remote{number}")
        self._publish()  # the first snapshot is there before the first browser
        self._publisher.start()
        for tap in self.previews.values():
            tap.start()
        self._server.start()
        return self

    def close(self, timeout: float = 2.0) -> bool:
        """Stop serving, end open connections and join every thread; False if one outlived it."""
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        for tap in self.previews.values():
            tap.stop()
        stopped = self._server.stop(timeout)
        threads = [self._publisher] + [r.thread for r in self.remotes if r.thread is not None]
        for thread in threads:
            if thread.is_alive():
                thread.join(timeout)
        return stopped and not any(thread.is_alive() for thread in threads)

    def __enter__(self) -> LiveView:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    # -- publishing --------------------------------------------------------------------

    def snapshot(self) -> PipelineSnapshot:
        """One snapshot of every source, merged (remote boxes' last answers included)."""
        return self._merged(*self._parts())

    def _parts(self) -> tuple[list[PipelineSnapshot], list[str]]:
        """Each source's snapshot (remote ones as last answered), and its prefix when merged."""
        local = [pipeline.snapshot() for pipeline in self.pipelines]
        answered = [r for r in self.remotes if r.snapshot is not None]
        prefixes = [f"local{i}" if len(local) > 1 else "local" for i in range(len(local))]
        prefixes += [r.prefix for r in answered]
        return local + [r.snapshot for r in answered if r.snapshot is not None], prefixes

    def _merged(self, parts: list[PipelineSnapshot], prefixes: list[str]) -> PipelineSnapshot:
        if not parts:
            raise RuntimeError("no source has answered yet")
        if len(parts) == 1 and not self.remotes:
            return parts[0]
        return merge_snapshots(*parts, prefixes=prefixes, name="fleet")

    def _publish(self) -> None:
        parts, prefixes = self._parts()
        try:
            snapshot = self._merged(parts, prefixes)
        except RuntimeError:  # a fleet none of whose boxes answered yet: the page says why
            snapshot = PipelineSnapshot(pipeline="fleet", latency=StatsSnapshot(window=1))
        drops: dict[str, int] = {}
        merged = not parts or snapshot is not parts[0]
        for part, prefix in zip(parts, prefixes, strict=True):
            drops.update(input_drops(part, prefix if merged else ""))
        gone = [r for r in self.remotes if not r.reachable]
        view = page_view(
            snapshot,
            unreachable={r.prefix: r.last_seen for r in gone},
            reasons={r.prefix: r.problem or "" for r in gone},
            drops=drops,
        )
        view["previews"] = {name: tap.status() for name, tap in self.previews.items()}
        body = json.dumps(view).encode()
        with self._cond:
            self._published = (self._published[0] + 1, body, snapshot)
            self._cond.notify_all()

    def _publish_loop(self) -> None:
        # One bad reading must not end the view: run_every logs it and goes on.
        run_every(
            SYSTEM_CLOCK, self._stop, self.refresh, self._publish, what="live view: a snapshot"
        )

    def published(
        self, after: int = 0, timeout: float | None = None
    ) -> tuple[int, bytes, PipelineSnapshot | None]:
        """The latest (version, page view JSON, snapshot), once newer than ``after``."""
        with self._cond:
            self._cond.wait_for(lambda: self._published[0] > after or self._stop.is_set(), timeout)
            return self._published

    def rendered(self, what: str) -> bytes:
        """The latest snapshot as JSON (``"snapshot"``) or as its state (``"state"``).

        Rendered when first asked for, once per published snapshot, however
        many clients ask: the publisher only makes what the page needs.
        """
        version, _, snapshot = self.published()
        with self._cond:
            cached = self._rendered.get(what)
            if cached is not None and cached[0] == version:
                return cached[1]
        if snapshot is None:
            body = b"{}"
        elif what == "state":
            body = snapshot.state.to_json().encode()
        else:
            body = json.dumps(snapshot.to_dict()).encode()
        with self._cond:
            self._rendered[what] = (version, body)
        return body

    @property
    def stopping(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._stop.is_set()

    def page(self) -> bytes:
        """The page, with the names of the previews filled in."""
        text = importlib.resources.files("framescope.live").joinpath("page.html").read_text()
        names = html.escape(json.dumps(sorted(self.previews)), quote=True)
        return text.replace("<body>", f'<body data-previews="{names}">', 1).encode()

    def authorised(self, query: dict[str, list[str]], headers: Any) -> bool:
        """Whether a request carries the token (in ``?token=`` or ``Authorization: Bearer``)."""
        if self.token is None:
            return True
        given = (query.get("token") or [""])[0]
        auth = headers.get("Authorization", "")
        if not given and auth.startswith("Bearer "):
            given = auth[len("Bearer ") :]
        return hmac.compare_digest(given.encode(), self.token.encode())


class _Handler(GuardedRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.0"

    def log_message(self, format: str, *args: Any) -> None:
        """Requests are not worth a log line each."""

    def do_GET(self) -> None:  # noqa: N802 - the name http.server calls
        view = self.server.view  # the token was checked before the request took a slot
        path = urlsplit(self.path).path
        if path == "/":
            self._send(200, view.page(), "text/html; charset=utf-8")
        elif path == "/healthz":
            self._send(200, b'{"status": "ok"}', "application/json")
        elif path == "/view.json":
            self._send(200, view.published()[1], "application/json")
        elif path in ("/snapshot.json", "/state.json"):
            self._send(200, view.rendered(path[1:-5]), "application/json")
        elif path == "/events":
            self._events(view)
        elif path.startswith("/video/") and path.endswith(".mjpg"):
            tap = view.previews.get(path[len("/video/") : -len(".mjpg")])
            if tap is None:
                self._send(404, b"no such preview\n", "text/plain")
            else:
                self._mjpeg(view, tap)
        else:
            self._send(404, b"not found\n", "text/plain")

    def _send(self, status: int, body: bytes, kind: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def _events(self, view: LiveView) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(b"retry: 2000\n\n")
        version = 0
        while not view.stopping:
            version, page, _ = view.published(after=version, timeout=view.refresh * 4)
            if view.stopping:
                return
            self.wfile.write(b"event: snapshot\ndata: " + page + b"\n\n")
            self.wfile.flush()

    def _mjpeg(self, view: LiveView, tap: PreviewTap) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        number = 0
        while not view.stopping:
            latest = tap.latest(after=number, timeout=_GONE_POLL_S)
            if latest is None:
                # The stream ends with its preview, and when its client left:
                # without a frame to write nothing else would tell.
                if tap.stopped or self._client_left():
                    return
                continue
            number, jpeg = latest
            self.wfile.write(
                b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: "
                + str(len(jpeg)).encode()
                + b"\r\n\r\n"
                + jpeg
                + b"\r\n"
            )
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
