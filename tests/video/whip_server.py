"""A WHIP receiver on loopback for the video tests: aiortc behind a small HTTP server.

``WhipServer()`` listens on 127.0.0.1 (a free port, or the one given) at
``/whip``. A ``POST`` with ``Content-Type: application/sdp`` and the right
``Authorization: Bearer`` token (when it has one) gets ``201 Created``, a
``Location`` and aiortc's SDP answer; a wrong or missing token gets 401; a
``DELETE`` of a location given ends that session (200), of another 404.
With ``silent_ice``, its answer names a UDP port that never answers, as a
receiver whose ICE agent is gone would; with an ``ssl_context``, it speaks
HTTPS (``whips://``).
Every video frame aiortc decodes is counted, with its size, and the last few
are kept as BGR images (bounded), and the first, so a test can look at the
picture.

aiortc hands a frame on once a packet of the next one arrives (its jitter
buffer cannot tell a frame is whole before), so the last frame of a stream
is never decoded here: a stream of N frames shows N - 1.

aiortc runs in an asyncio loop on a thread of its own; the HTTP server on
another, handling one request at a time (so a request that never ends
blocks the rest, bounded by the socket's timeout). Its ICE agent offers only
127.0.0.1 (framescope's own choice of host addresses, set in its tasks alone:
aioice would gather every interface but loopback, and a test's media must
stay on this host). :meth:`close` ends the sessions and both threads.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import socket
import ssl
import threading
from collections import deque
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import numpy as np
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError

from framescope.live import webrtc

_KEEP_IMAGES = 8


class WhipServer:
    """A WHIP endpoint that receives WebRTC video with aiortc and records what it decodes."""

    def __init__(
        self,
        token: str | None = None,
        port: int = 0,
        *,
        silent_ice: bool = False,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.token = token
        self.scheme = "whip" if ssl_context is None else "whips"
        # silent_ice: the answer's candidate is a UDP port that never answers (ICE never ends).
        self._silent: socket.socket | None = None
        if silent_ice:
            self._silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            self._silent.bind(("127.0.0.1", 0))
        self.posts = 0  # offers answered (201)
        self.refused = 0  # requests refused for their token (401)
        self.deletes = 0  # sessions ended by a DELETE
        self.frames = 0  # video frames decoded
        self.sizes: set[tuple[int, int]] = set()
        self.images: deque[Any] = deque(maxlen=_KEEP_IMAGES)  # the last frames, BGR
        self.first_image: Any = None  # the first frame decoded, BGR
        self.states: list[str] = []  # connection states, in order
        self._lock = threading.Lock()
        self._peers: dict[str, RTCPeerConnection] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._sessions = 0
        self._loop = asyncio.new_event_loop()
        self._loop_thread = threading.Thread(
            target=self._loop.run_forever, name="whip-server-aiortc", daemon=True
        )
        self._loop_thread.start()
        self._http = HTTPServer(("127.0.0.1", port), _handler(self))
        if ssl_context is not None:  # HTTPS: whips://
            self._http.socket = ssl_context.wrap_socket(self._http.socket, server_side=True)
        self._http.timeout = 0.05
        self._stop = threading.Event()
        self._http_thread = threading.Thread(
            target=self._serve, name="whip-server-http", daemon=True
        )
        self._http_thread.start()

    @property
    def port(self) -> int:
        """The port it listens on."""
        port: int = self._http.server_address[1]
        return port

    def url(self, token: str | None = None) -> str:
        """Its ``whip://`` (``whips://``) URL, with ``token`` in the userinfo when given."""
        userinfo = f"{token}@" if token else ""
        return f"{self.scheme}://{userinfo}127.0.0.1:{self.port}/whip"

    def _serve(self) -> None:
        while not self._stop.is_set():  # bounded: each wait for a request lasts 50 ms at most
            self._http.handle_request()

    # -- on the HTTP thread ----------------------------------------------------------------

    def authorized(self, header: str | None) -> bool:
        """Whether a request's Authorization header carries the token (any, without one)."""
        if self.token is None:
            return True
        if header != f"Bearer {self.token}":
            with self._lock:
                self.refused += 1
            return False
        return True

    def answer(self, offer: str) -> tuple[str, str]:
        """aiortc's answer to ``offer``, and the session's location."""
        with self._lock:
            self._sessions += 1
            location = f"/whip/session/{self._sessions}"
        future = asyncio.run_coroutine_threadsafe(self._accept(offer, location), self._loop)
        answer = future.result(20)
        if self._silent is not None:
            port = self._silent.getsockname()[1]
            answer = re.sub(r"(a=candidate:\S+ 1 udp \d+ 127\.0\.0\.1) \d+", rf"\1 {port}", answer)
        with self._lock:
            self.posts += 1
        return answer, location

    def delete(self, location: str) -> bool:
        """End the session at ``location``; False when there is none."""
        with self._lock:
            peer = self._peers.pop(location, None)
        if peer is None:
            return False
        asyncio.run_coroutine_threadsafe(peer.close(), self._loop).result(10)
        with self._lock:
            self.deletes += 1
        return True

    # -- on the aiortc loop ----------------------------------------------------------------

    async def _accept(self, offer: str, location: str) -> str:
        webrtc._install_host_choice()  # ICE on 127.0.0.1 only, in this task alone
        webrtc._HOSTS.set(("127.0.0.1",))
        peer = RTCPeerConnection(RTCConfiguration(iceServers=[]))  # no STUN server reached
        self._peers[location] = peer

        @peer.on("track")
        def on_track(track: Any) -> None:
            if track.kind == "video":
                task = asyncio.ensure_future(self._receive(track))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)

        @peer.on("connectionstatechange")
        def on_state() -> None:
            with self._lock:
                self.states.append(peer.connectionState)

        await peer.setRemoteDescription(RTCSessionDescription(sdp=offer, type="offer"))
        await peer.setLocalDescription(await peer.createAnswer())
        return str(peer.localDescription.sdp)

    async def _receive(self, track: Any) -> None:
        while True:
            try:
                frame = await track.recv()
            except MediaStreamError:
                return
            image = frame.to_ndarray(format="bgr24")
            with self._lock:
                self.frames += 1
                self.sizes.add((frame.width, frame.height))
                self.images.append(image)
                if self.first_image is None:
                    self.first_image = image

    async def _close_peers(self) -> None:
        with self._lock:
            peers = list(self._peers.values())
            self._peers.clear()
        for peer in peers:
            await peer.close()
        # aiortc leaves a connection that never completed its ICE waiting: end it too.
        tasks = asyncio.all_tasks() - {asyncio.current_task()}
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    # -- the end -----------------------------------------------------------------------------

    def last_image(self) -> Any:
        """The last frame decoded (BGR), or None."""
        with self._lock:
            return self.images[-1] if self.images else None

    def close(self) -> None:
        """End every session and both threads."""
        if self._stop.is_set():
            return
        self._stop.set()
        self._http_thread.join(10)
        self._http.server_close()
        try:
            asyncio.run_coroutine_threadsafe(self._close_peers(), self._loop).result(10)
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._loop_thread.join(10)
            self._loop.close()
            if self._silent is not None:
                self._silent.close()

    def __enter__(self) -> WhipServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _handler(server: WhipServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        timeout = 10  # a client that sends half a request is cut off

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            if not server.authorized(self.headers.get("Authorization")):
                self._reply(401, b"unauthorized\n", {"WWW-Authenticate": "Bearer"})
                return
            if self.path != "/whip" or self.headers.get("Content-Type") != "application/sdp":
                self._reply(415 if self.path == "/whip" else 404, b"not a WHIP offer\n", {})
                return
            answer, location = server.answer(body.decode())
            headers = {"Content-Type": "application/sdp", "Location": location}
            self._reply(201, answer.encode(), headers)

        def do_DELETE(self) -> None:
            if not server.authorized(self.headers.get("Authorization")):
                self._reply(401, b"unauthorized\n", {})
                return
            found = server.delete(self.path)
            self._reply(200 if found else 404, b"", {})

        def _reply(self, status: int, body: bytes, headers: dict[str, str]) -> None:
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # the tests read the counts, not a log

    return Handler


@contextlib.contextmanager
def whip_server(
    token: str | None = None,
    port: int = 0,
    *,
    silent_ice: bool = False,
    ssl_context: ssl.SSLContext | None = None,
) -> Iterator[WhipServer]:
    """A :class:`WhipServer`, closed at the end of the block."""
    server = WhipServer(token, port, silent_ice=silent_ice, ssl_context=ssl_context)
    try:
        yield server
    finally:
        server.close()


def mean_colour(image: Any, rows: slice, columns: slice) -> list[float]:
    """The mean B, G, R of a region of ``image`` (a test compares it with what was sent)."""
    return [float(value) for value in np.asarray(image)[rows, columns].reshape(-1, 3).mean(axis=0)]
