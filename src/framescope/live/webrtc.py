"""WebRTC video of a live view's previews: the WHEP sessions, one per viewer, and what they saw.

A player ``POST``s an SDP offer to ``/whep/<preview>`` (the IETF WHEP
draft: ``application/sdp`` in, ``201 Created`` with the answer and a
``Location`` out, ``DELETE`` of that location to leave); aiortc (pure Python
over PyAV) answers it on the view's own asyncio thread. Each preview (each
camera of it) is encoded once per codec, whatever the number of viewers
(:class:`~framescope.live.stream.VideoStream`); a viewer gets the packets
through a short queue of its own: one that cannot keep up drops frames (and
then waits for a key frame) for itself only, counted, and never holds up
the pipeline or the other viewers.

Safe by default: ICE gathers host candidates only, on the address the view
listens on (loopback for a loopback view), and asks no STUN or TURN server
unless ``ice_servers`` names one; the number of viewers is bounded; the WHEP
endpoint follows the view's token rule like every other.

Measured: the live page sends back, over a data channel of the same
connection, when the browser presented each frame (its RTP timestamp and
``requestVideoFrameCallback``'s ``expectedDisplayTime``) and answers the
view's pings, which relate its clock to this machine's (the offset from the
round trip with the least delay; half that round trip is the uncertainty).
Each presented frame's stage-to-screen latency goes into its viewer's
:class:`~framescope.pipeline.model.viewers.ViewerSnapshot`.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import contextvars
import dataclasses
import functools
import ipaddress
import json
import logging
import math
import secrets
import threading
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol, TypeVar

from framescope._optional import require
from framescope.clock import Clock
from framescope.live import _rtpsend
from framescope.live.stream import PLACEHOLDER, EncodedFrame, FrameTap, VideoStream, mark_sent
from framescope.pipeline.model.viewers import ViewerSnapshot
from framescope.stats import RollingStats

__all__ = [
    "MAX_VIEWERS",
    "WebRTCService",
    "WebRTCVideo",
    "WhepError",
    "candidate_hosts",
    "check_ice_servers",
    "check_max_viewers",
    "checked_offer",
    "offered_codec",
    "without_mdns_candidates",
]

logger = logging.getLogger(__name__)

_Tap = TypeVar("_Tap", bound=FrameTap)

MAX_VIEWERS = 10
"""WebRTC viewers a live view serves at once unless told otherwise (more get 503)."""

_QUEUE_FRAMES = 8  # a viewer's own backlog; beyond it the viewer drops until a key frame
_LOOP_BACKLOG = 30  # frames of a stream waiting for the asyncio thread; beyond it, skipped
_CONNECT_LIMIT_S = 20.0  # a viewer whose connection is not up by then is let go
_PING_S = 1.0
_SYNCS = 10  # round trips remembered: the offset is the one with the least delay
_PENDING_ROWS = 512  # presented-frame reports kept until the first round trip
_ROWS_PER_MESSAGE = 256
_LATENCY_WINDOW = 512
_HOSTS: contextvars.ContextVar[tuple[str, ...] | None] = contextvars.ContextVar(
    "framescope_ice_hosts", default=None
)


class WhepError(Exception):
    """A WHEP request that cannot be served: the HTTP ``status`` and why."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def candidate_hosts(host: str) -> tuple[str, ...] | None:
    """The addresses ICE offers for a view listening on ``host`` (None: every host address)."""
    if host in ("127.0.0.1", "localhost"):
        return ("127.0.0.1",)
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return None  # a host name: the machine's addresses
    return None if address.is_unspecified else (str(address),)


def offered_codec(sdp: str) -> str:
    """The codec to send for an offer: H.264 (packetization-mode 1) where offered, else VP8."""
    lines = sdp.splitlines()
    payloads = {
        line.split()[0].split(":")[1]: line.split()[1].split("/")[0].upper()
        for line in lines
        if line.startswith("a=rtpmap:") and len(line.split()) > 1
    }
    for line in lines:
        mode_1 = line.startswith("a=fmtp:") and "packetization-mode=1" in line
        if mode_1 and payloads.get(line.split()[0].split(":")[1]) == "H264":
            return "H264"
    if "VP8" in payloads.values():
        return "VP8"
    raise WhepError(400, "the offer has no video in H.264 (packetization-mode=1) or VP8")


def checked_offer(
    previews: Mapping[str, _Tap], preview: str, camera: str | None, sdp: str, max_viewers: int
) -> tuple[_Tap, str]:
    """The preview an offer asks for and the codec to send it in; a :class:`WhepError` if none.

    404 for a preview or camera the view does not have, 501 with
    ``max_viewers`` 0, 400 for an offer without a codec it can send.
    """
    tap = previews.get(preview)
    if tap is None:
        raise WhepError(404, f"no preview called {preview!r}")
    if max_viewers == 0:
        raise WhepError(501, "WebRTC video is off for this view (max_viewers=0)")
    cameras = tap.cameras
    if camera is not None and cameras and camera not in cameras:
        known = ", ".join(cameras)
        raise WhepError(404, f"no camera {camera!r} in preview {preview!r} (cameras: {known})")
    return tap, offered_codec(sdp)


def without_mdns_candidates(sdp: str) -> str:
    """``sdp`` without its ``.local`` (mDNS) candidates.

    Resolving them would open a UDP socket on 0.0.0.0:5353 and ask the whole
    network; a view that offers only its own address does without: the
    browser's checks reach it, and ICE learns the browser's address from them.
    """
    newline = "\r\n" if "\r\n" in sdp else "\n"
    lines = sdp.split(newline)
    kept = [line for line in lines if not (line.startswith("a=candidate:") and ".local " in line)]
    return newline.join(kept)


def _install_host_choice() -> None:
    """Let ICE gathering in framescope's own tasks offer only the view's address.

    aioice gathers on every interface but loopback; the view's tasks set
    :data:`_HOSTS` (a context variable), everyone else's gathering is
    untouched. Installed again if something put aioice's own function back.
    """
    ice = require("aioice.ice", "webrtc", "WebRTC video")
    everywhere = ice.get_host_addresses
    if getattr(everywhere, "framescope_hosts", False):
        return

    def host_addresses(use_ipv4: bool, use_ipv6: bool) -> list[str]:
        chosen = _HOSTS.get()
        return list(chosen) if chosen is not None else everywhere(use_ipv4, use_ipv6)

    host_addresses.framescope_hosts = True  # type: ignore[attr-defined]
    ice.get_host_addresses = host_addresses  # type: ignore[attr-defined]


def check_max_viewers(max_viewers: object) -> int:
    """``max_viewers`` checked: an int >= 0 (0: no WebRTC)."""
    if isinstance(max_viewers, bool) or not isinstance(max_viewers, int):
        raise TypeError(f"max_viewers must be an int, got {type(max_viewers).__name__}")
    if max_viewers < 0:
        raise ValueError(f"max_viewers must be >= 0 (0: no WebRTC), got {max_viewers}")
    return max_viewers


def check_ice_servers(servers: object) -> list[dict[str, Any]]:
    """``ice_servers`` checked: URLs (``stun:``, ``turn:``), or dicts with ``urls`` (and login)."""
    if servers is None:
        return []
    if isinstance(servers, (str, bytes)) or not isinstance(servers, Sequence):
        raise TypeError("ice_servers must be a list of URLs or dicts, got " + repr(servers))
    checked: list[dict[str, Any]] = []
    for server in servers:
        entry = {"urls": server} if isinstance(server, str) else server
        if not isinstance(entry, Mapping) or not isinstance(entry.get("urls"), (str, list)):
            raise TypeError(
                f"ice_servers: each must be a URL or a dict with 'urls', got {server!r}"
            )
        urls = [entry["urls"]] if isinstance(entry["urls"], str) else entry["urls"]
        if not urls or not all(str(u).startswith(("stun:", "turn:", "turns:")) for u in urls):
            raise ValueError(
                f"ice_servers: URLs must start with stun:, turn: or turns:, got {urls}"
            )
        extra = set(entry) - {"urls", "username", "credential"}
        if extra:
            raise ValueError(f"ice_servers: unknown keys {sorted(extra)} in {server!r}")
        checked.append(dict(entry))
    return checked


class WebRTCService(Protocol):
    """What a live view asks of its WebRTC side, in this process or in a process of its own."""

    max_viewers: int
    name: str
    process_failures: int

    @property
    def served(self) -> int:
        """Viewers answered so far."""

    @property
    def refused(self) -> int:
        """Offers refused because ``max_viewers`` were watching."""

    def offer(self, preview: str, camera: str | None, sdp: str, timeout: float) -> tuple[str, str]:
        """Answer a viewer's SDP offer: ``(viewer id, SDP answer)``; a :class:`WhepError` if not."""

    def leave(self, preview: str, viewer_id: str) -> bool:
        """End a viewer (its WHEP ``DELETE``); False if unknown."""

    def viewers(self) -> tuple[ViewerSnapshot, ...]:
        """Every viewer now, as data."""

    def streams(self) -> dict[str, list[dict[str, Any]]]:
        """Each preview's encoders, as data."""

    def close(self, timeout: float = 5.0) -> bool:
        """End every viewer and encoder; False if something outlives ``timeout``."""


class WebRTCVideo:
    """The WebRTC side of a live view: its viewers, their streams, and the asyncio thread.

    Args:
        previews: the view's previews by name.
        host: the address the view listens on (ICE offers it alone, unless unspecified).
        max_viewers: viewers served at once; the next offer gets 503.
        ice_servers: STUN/TURN servers (URLs, or dicts with ``urls``,
            ``username``, ``credential``); none by default.
        clock: the clock of the streams (the view's).
        name: the prefix of its threads' names.
        on_encoded: called with each stage frame once encoded (default: its
            capture-to-glass stamp).
    """

    def __init__(
        self,
        previews: Mapping[str, FrameTap],
        *,
        host: str,
        max_viewers: int = MAX_VIEWERS,
        ice_servers: object = None,
        clock: Clock,
        name: str,
        on_encoded: Callable[[Any], None] = mark_sent,
    ) -> None:
        self.max_viewers = check_max_viewers(max_viewers)
        self._ice = check_ice_servers(ice_servers)
        self._on_encoded = on_encoded
        self._previews = previews
        self._hosts = candidate_hosts(host)
        self._clock = clock
        self.name = name
        """The prefix of its threads' names."""
        self._lock = threading.Lock()
        self._viewers: dict[str, _Viewer] = {}
        self._streams: dict[tuple[str, str | None, str], VideoStream] = {}
        self._stopping: set[VideoStream] = set()  # streams whose encoder is being stopped
        self._backlog: dict[VideoStream, int] = {}  # frames handed to the loop, not fanned out
        self._behind: set[VideoStream] = set()  # streams that skipped frames for the loop
        self._pictures: dict[VideoStream, int] = {}  # each stream's next VP8 picture id
        self._admitted = 0  # viewers being answered or served
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._closed = False
        self._fast_send = True  # framescope._rtpsend's loop (False: aiortc's own, compared)
        self.served = 0
        """Viewers answered so far."""
        self.refused = 0
        """Offers refused because ``max_viewers`` were watching."""
        self.process_failures = 0
        """Always 0: this side runs in the view's process (see ``videoprocess``)."""

    # -- the HTTP side (any thread) ------------------------------------------------------

    def offer(self, preview: str, camera: str | None, sdp: str, timeout: float) -> tuple[str, str]:
        """Answer a viewer's SDP offer: ``(viewer id, SDP answer)``; a :class:`WhepError` if not."""
        tap, codec = checked_offer(self._previews, preview, camera, sdp, self.max_viewers)
        with self._lock:
            if self._closed:
                raise WhepError(503, "the live view is closing")
            if self._admitted >= self.max_viewers:
                self.refused += 1
                raise WhepError(503, f"{self.max_viewers} viewers are watching already")
            self._admitted += 1
        try:
            loop = self._started_loop()
        except ImportError as error:
            self._release()
            raise WhepError(501, str(error)) from error
        except WhepError:
            self._release()
            raise
        future = asyncio.run_coroutine_threadsafe(self._answer(tap, camera, codec, sdp), loop)
        # From here the answer owns the slot: it is released when the answer fails or is
        # cancelled, and by the viewer's drop once it was served (see _settled).
        abandoned = threading.Event()
        future.add_done_callback(lambda done: self._settled(done, abandoned, loop))
        try:
            viewer = future.result(timeout)
        except concurrent.futures.TimeoutError:
            abandoned.set()
            if not future.cancel():  # it ended meanwhile: settle it as abandoned
                self._settled(future, abandoned, loop)
            raise WhepError(503, f"no answer within {timeout:g} s") from None
        except WhepError:
            raise
        except Exception as error:
            raise WhepError(400, f"cannot answer the offer: {error}") from error
        return viewer.id, viewer.answer

    def _settled(
        self, done: concurrent.futures.Future[_Viewer], abandoned: threading.Event, loop: Any
    ) -> None:
        """An answer ended: a failed one gives its slot back; one nobody waits for is let go."""
        if done.cancelled() or done.exception() is not None:
            self._release()
        elif abandoned.is_set():
            with contextlib.suppress(RuntimeError):  # the loop closed: close() ends it
                asyncio.run_coroutine_threadsafe(self._drop(done.result()), loop)

    def leave(self, preview: str, viewer_id: str) -> bool:
        """End viewer ``viewer_id`` of ``preview`` (its WHEP ``DELETE``); False if unknown."""
        with self._lock:
            viewer = self._viewers.get(viewer_id)
            loop = self._loop
        if viewer is None or viewer.preview != preview or loop is None:
            return False
        try:
            asyncio.run_coroutine_threadsafe(self._drop(viewer), loop).result(5.0)
        except Exception as error:  # it is gone from the list all the same
            logger.warning("WebRTC viewer %s: closing its connection: %r", viewer_id, error)
        return True

    def viewers(self) -> tuple[ViewerSnapshot, ...]:
        """Every viewer now, as data."""
        with self._lock:
            viewers = list(self._viewers.values())
        now = self._clock.monotonic_ns()
        return tuple(viewer.snapshot(now) for viewer in viewers)

    def streams(self) -> dict[str, list[dict[str, Any]]]:
        """Each preview's encoders: camera, codec, frames encoded, skipped, failures."""
        with self._lock:
            streams = list(self._streams.values())
        shown: dict[str, list[dict[str, Any]]] = {}
        for stream in streams:
            shown.setdefault(stream.tap.name, []).append(
                {
                    "camera": stream.camera,
                    "codec": stream.codec,
                    "encoded": stream.frames_encoded,
                    "skipped": stream.frames_skipped,
                    "placeholder": stream.showing_placeholder,
                    "placeholder_frames": stream.placeholder_frames,
                    "failures": stream.failures,
                }
            )
        return shown

    def close(self, timeout: float = 5.0) -> bool:
        """End every viewer, stop the encoders and the asyncio thread; False if one outlives it."""
        with self._lock:
            self._closed = True
            loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return True
        if not loop.is_closed():
            try:
                asyncio.run_coroutine_threadsafe(self._close_all(), loop).result(timeout)
            except Exception as error:  # still stop the loop: nothing may be left running
                logger.warning("closing the WebRTC viewers: %r", error)
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout)
            if not thread.is_alive():
                loop.close()
        with self._lock:
            streams = list(self._streams.values()) + list(self._stopping)
        stopped = all(stream.stop(timeout) for stream in streams)
        return stopped and not thread.is_alive()

    def _release(self) -> None:
        with self._lock:
            self._admitted -= 1

    def _started_loop(self) -> asyncio.AbstractEventLoop:
        _install_host_choice()
        with self._lock:
            if self._closed:
                raise WhepError(503, "the live view is closing")
            if self._loop is None:
                require("aiortc", "webrtc", "WebRTC video")
                loop = asyncio.new_event_loop()
                thread = threading.Thread(
                    target=loop.run_forever, name=f"{self.name}-webrtc", daemon=True
                )
                thread.start()
                self._loop, self._thread = loop, thread
            return self._loop

    # -- the asyncio thread ----------------------------------------------------------------

    async def _answer(self, tap: FrameTap, camera: str | None, codec: str, sdp: str) -> _Viewer:
        aiortc = require("aiortc", "webrtc", "WebRTC video")
        _HOSTS.set(self._hosts)
        servers = [aiortc.RTCIceServer(**server) for server in self._ice]
        connection = aiortc.RTCPeerConnection(aiortc.RTCConfiguration(iceServers=servers))
        viewer = _Viewer(secrets.token_urlsafe(12), tap.name, camera, codec, self._clock)
        viewer.connection = connection
        transceiver = connection.addTransceiver(_track_class()(viewer), direction="sendonly")
        wanted = (f"video/{codec.lower()}", "video/rtx")
        capabilities = aiortc.RTCRtpSender.getCapabilities("video").codecs
        transceiver.setCodecPreferences([c for c in capabilities if c.mimeType.lower() in wanted])
        viewer.sender = transceiver.sender
        # A key frame asked for by the player (PLI, FIR) comes from the shared encoder.
        transceiver.sender._send_keyframe = viewer.keyframe_wanted
        if _payload_cutters() is not None:  # and the payloads are cut once, for all senders
            transceiver.sender._RTCRtpSender__encoder = _SharedPayloads()
            if self._fast_send:  # and made packets by a loop that does per frame what it can
                _rtpsend.install(transceiver.sender, viewer.next_packet)
        connection.on("datachannel", viewer.on_channel)
        try:
            offer = sdp if self._hosts is None else without_mdns_candidates(sdp)
            await connection.setRemoteDescription(aiortc.RTCSessionDescription(offer, "offer"))
            await connection.setLocalDescription(await connection.createAnswer())
            viewer.answer = connection.localDescription.sdp
            self._subscribe(viewer, tap, camera, codec)
        except BaseException:
            await connection.close()
            raise
        # Only a viewer that was served is let go when its connection ends.
        connection.on("connectionstatechange", lambda: self._state_changed(viewer))
        asyncio.get_running_loop().call_later(_CONNECT_LIMIT_S, self._connect_limit, viewer)
        return viewer

    def _subscribe(self, viewer: _Viewer, tap: FrameTap, camera: str | None, codec: str) -> None:
        key = (tap.name, camera, codec)
        deliver = functools.partial(self._deliver, asyncio.get_running_loop())
        with self._lock:
            if self._closed:
                raise WhepError(503, "the live view is closing")
            stream = self._streams.get(key)
            if stream is None:
                stream = VideoStream(
                    tap,
                    camera,
                    codec,
                    deliver=deliver,
                    clock=self._clock,
                    max_fps=tap.webrtc_fps,
                    on_encoded=self._on_encoded,
                )
                self._streams[key] = stream
                stream.start(f"{self.name}-encode-{tap.name}-{codec}")
            viewer.stream = stream
            self._viewers[viewer.id] = viewer
            self.served += 1
        stream.request_keyframe()

    def _deliver(
        self, loop: asyncio.AbstractEventLoop, stream: VideoStream, frame: EncodedFrame
    ) -> None:
        """On an encoder's thread: hand ``frame`` to the viewers of ``stream`` on the loop.

        A loop that falls :data:`_LOOP_BACKLOG` frames behind (a starved
        machine) gets no more of them: the stream skips them, and its
        viewers wait for the next key frame, which is asked for.
        """
        frame = self._cut(stream, frame)
        with self._lock:
            behind = self._backlog.get(stream, 0)
            if behind >= _LOOP_BACKLOG:
                stream.frames_skipped += 1
                stream.request_keyframe()
                self._behind.add(stream)
                return
            self._backlog[stream] = behind + 1
            after_gap = stream in self._behind  # the first frame after skipped ones
            self._behind.discard(stream)
        with contextlib.suppress(RuntimeError):  # the loop closed: the view is closing
            loop.call_soon_threadsafe(self._fan_out, stream, frame, after_gap)

    def _cut(self, stream: VideoStream, frame: EncodedFrame) -> EncodedFrame:
        """``frame`` with its RTP payloads, cut once here for every viewer's sender."""
        cutters = _payload_cutters()
        if cutters is None:
            return frame  # each sender cuts the packet itself
        picture = self._pictures.get(stream, 0)
        self._pictures[stream] = (picture + 1) % (1 << 15)  # VP8's picture id, per frame
        payloads = cutters[stream.codec](bytes(frame.packet), picture)
        return dataclasses.replace(frame, payloads=tuple(payloads))

    def _fan_out(self, stream: VideoStream, frame: EncodedFrame, after_gap: bool) -> None:
        with self._lock:
            self._backlog[stream] -= 1
            if not self._backlog[stream]:
                del self._backlog[stream]
            viewers = [v for v in self._viewers.values() if v.stream is stream]
        for viewer in viewers:
            if after_gap:
                viewer.lost_frames()
            viewer.offer(frame)

    def _state_changed(self, viewer: _Viewer) -> None:
        connection = viewer.connection
        viewer.state = connection.connectionState
        if viewer.state in ("failed", "closed"):
            _background(self._drop(viewer))

    def _connect_limit(self, viewer: _Viewer) -> None:
        if viewer.state != "connected" and not viewer.closed:
            logger.info("WebRTC viewer %s did not connect within %g s", viewer.id, _CONNECT_LIMIT_S)
            _background(self._drop(viewer))

    async def _drop(self, viewer: _Viewer) -> None:
        """Let a served viewer go: its slot back, its connection closed, its stream if idle."""
        with self._lock:
            if self._viewers.pop(viewer.id, None) is None:
                return  # let go already (each viewer's slot is given back once)
            self._admitted -= 1
            stream = viewer.stream
            idle = stream is not None and all(
                v.stream is not stream for v in self._viewers.values()
            )
            if idle and stream is not None:
                self._streams.pop((stream.tap.name, stream.camera, stream.codec), None)
                self._stopping.add(stream)
        viewer.close()
        try:
            await viewer.connection.close()
        except Exception as error:  # the stream is stopped all the same
            logger.warning("WebRTC viewer %s: closing its connection: %r", viewer.id, error)
        finally:
            if idle and stream is not None:
                await asyncio.get_running_loop().run_in_executor(None, stream.stop)
                with self._lock:
                    self._stopping.discard(stream)

    async def _close_all(self) -> None:
        with self._lock:
            viewers = list(self._viewers.values())
        for viewer in viewers:
            try:
                await self._drop(viewer)
            except Exception as error:  # the next viewers are let go all the same
                logger.warning("WebRTC viewer %s: %r", viewer.id, error)
        loop = asyncio.get_running_loop()
        await loop.shutdown_default_executor()
        tasks = [t for t in asyncio.all_tasks(loop) if t is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


@functools.cache
def _payload_cutters() -> dict[str, Callable[[bytes, int], list[bytes]]] | None:
    """aiortc's own cutting of an H.264 or VP8 packet into RTP payloads (None: not found).

    A sender handed a packet cuts it itself, for each viewer anew: cut once
    by the stream's delivery and handed to every sender (:class:`_SharedPayloads`).
    """
    try:
        from aiortc.codecs.h264 import H264Encoder  # noqa: PLC0415 - optional
        from aiortc.codecs.vpx import Vp8Encoder  # noqa: PLC0415 - optional
    except ImportError:
        return None
    if not all(
        callable(getattr(cls, name, None))
        for cls, name in ((H264Encoder, "_packetize"), (H264Encoder, "_split_bitstream"),
                          (Vp8Encoder, "_packetize"))
    ):  # fmt: skip
        return None
    return {
        "H264": lambda data, _: H264Encoder._packetize(H264Encoder._split_bitstream(data)),
        "VP8": Vp8Encoder._packetize,
    }


class _SharedPayloads:
    """What a viewer's sender packs with: the frame's payloads, cut once for every viewer."""

    def pack(self, frame: EncodedFrame) -> tuple[list[bytes], int]:
        """The payloads and RTP time of ``frame`` (the sender adds its own origin)."""
        return list(frame.payloads), frame.pts


@functools.cache
def _track_class() -> type:
    """The track a viewer's connection sends: the stream's packets, through the viewer's queue."""
    aiortc = require("aiortc", "webrtc", "WebRTC video")
    from aiortc.mediastreams import MediaStreamError  # noqa: PLC0415 - optional, loaded on first use

    class ViewerTrack(aiortc.MediaStreamTrack):  # type: ignore[misc, name-defined]
        kind = "video"

        def __init__(self, viewer: _Viewer) -> None:
            super().__init__()
            self._viewer = viewer

        async def recv(self) -> Any:
            packet = await self._viewer.next_packet()
            if packet is None:
                self.stop()
                raise MediaStreamError
            return packet

    return ViewerTrack


class _Viewer:
    """One WHEP session: its connection, its queue of frames, and what it reported."""

    def __init__(self, viewer_id: str, preview: str, camera: str | None, codec: str, clock: Clock):
        self.id, self.preview, self.camera, self.codec = viewer_id, preview, camera, codec
        self._clock = clock
        self.started_ns = clock.monotonic_ns()
        self.connection: Any = None
        self.sender: Any = None
        self.stream: VideoStream | None = None
        self.answer = ""
        self.state = "new"
        self.closed = False
        self.channel: Any = None
        self._queue: deque[EncodedFrame] = deque()
        self._wake = asyncio.Event()
        self._need_key = True
        self._last_pts: int | None = None
        self._origin: int | None = None
        self._origin_seen: int | None = None
        self._placeholder: bool | None = None
        self.frames_sent = self.frames_dropped = self.placeholder_frames = self.bytes_sent = 0
        self.presented = self.unmatched = self.bad_messages = 0
        self._lock = threading.Lock()  # latency and round trips: read by the publisher's thread
        self._latency = RollingStats(_LATENCY_WINDOW, divisor=1e9)
        self._latency.keep_distribution()
        self._pings: dict[int, tuple[int, float]] = {}
        self._ping_number = 0
        self._syncs: deque[tuple[int, int, float]] = deque(maxlen=_SYNCS)
        self._waiting_rows: list[tuple[int, float]] = []

    # -- frames out ------------------------------------------------------------------------

    def offer(self, frame: EncodedFrame) -> None:
        """A frame of its stream: queued, or dropped (counted) when it cannot keep up."""
        if self.closed:
            return
        if self._need_key and not frame.keyframe:
            self.frames_dropped += 1
            return
        if len(self._queue) >= _QUEUE_FRAMES:
            self.frames_dropped += len(self._queue) + 1
            self._queue.clear()
            self._need_key = True
            self.keyframe_wanted()
            return
        self._need_key = False
        self._queue.append(frame)
        self._wake.set()
        if frame.placeholder != self._placeholder:
            self._placeholder = frame.placeholder
            self._tell_placeholder()

    async def next_packet(self) -> Any:
        """The next frame's packet for the connection (None once it closed)."""
        while not self._queue:
            if self.closed:
                return None
            self._wake.clear()
            await self._wake.wait()
        frame = self._queue.popleft()
        self._learn_origin()
        self._last_pts = frame.pts
        self.frames_sent += 1
        self.bytes_sent += frame.size
        self.placeholder_frames += frame.placeholder
        return frame if frame.payloads else frame.packet  # cut already, or for the sender

    def _learn_origin(self) -> None:
        """The sender's random RTP origin: its last timestamp less the last pts handed to it.

        Taken when it agrees twice in a row (a frame the sender skipped
        would give a wrong one once).
        """
        last = getattr(self.sender, "_RTCRtpSender__rtp_timestamp", _MISSING)
        if last is _MISSING:
            _warn_once(
                "the installed aiortc's sender keeps no RTP timestamp framescope can "
                "read: stage-to-screen latency is not measured (every report unmatched)"
            )
            return
        if not isinstance(last, int) or not last or self._last_pts is None:
            return
        origin = (last - self._last_pts) & 0xFFFFFFFF
        if origin == self._origin_seen:
            self._origin = origin
        self._origin_seen = origin

    def lost_frames(self) -> None:
        """Frames of its stream were skipped: what it has cannot be decoded past a key frame."""
        self._need_key = True

    def keyframe_wanted(self) -> None:
        """Ask the shared encoder for a key frame (joined, dropped, or the player asked)."""
        if self.stream is not None:
            self.stream.request_keyframe()

    def close(self) -> None:
        """No more frames: the track ends."""
        self.closed = True
        self._queue.clear()
        self._wake.set()

    # -- the data channel --------------------------------------------------------------------

    def on_channel(self, channel: Any) -> None:
        """The page's data channel: pings go out, pongs and presentation reports come in.

        Only the first channel is taken; another one is closed at once.
        """
        if self.channel is not None:
            channel.close()
            return
        self.channel = channel
        channel.on("message", self.on_message)
        _background(self._ping_loop(channel))
        self._tell_placeholder()

    async def _ping_loop(self, channel: Any) -> None:
        while not self.closed and channel.readyState in ("connecting", "open"):
            if channel.readyState == "open":
                self._ping_number += 1
                number = self._ping_number
                self._pings[number] = (self._clock.monotonic_ns(), self._clock.wall().timestamp())
                if len(self._pings) > _SYNCS:
                    del self._pings[min(self._pings)]
                channel.send(json.dumps({"ping": number}))
            await asyncio.sleep(_PING_S)

    def _tell_placeholder(self) -> None:
        channel, stream = self.channel, self.stream
        if channel is None or stream is None or channel.readyState != "open":
            return
        since = stream.last_frame_wall
        showing = bool(self._placeholder)
        channel.send(
            json.dumps(
                {"placeholder": showing, "since": None if since is None else since.timestamp()}
            )
        )

    def on_message(self, message: Any) -> None:
        """A message from the page: a pong, or frames it presented.

        Anything else, or anything malformed, is counted in ``bad_messages``
        and ignored: a page never ends its own connection by what it sends.
        """
        try:
            data = (
                json.loads(message) if isinstance(message, str) and len(message) < 65536 else None
            )
            if not isinstance(data, dict):
                raise ValueError("not a JSON object")
            if "pong" in data:
                self._pong(data.get("pong"), data.get("now"), data.get("wall"))
            rows = data.get("presented")
            if isinstance(rows, list):
                self._presented(rows[:_ROWS_PER_MESSAGE])
        except Exception:  # untrusted input: whatever it is, the connection goes on
            self.bad_messages += 1

    def _pong(self, number: Any, now: Any, wall: Any) -> None:
        sent = self._pings.pop(number, None) if isinstance(number, int) else None
        if sent is None or not _finite(now) or not _finite(wall):
            return
        back_ns = self._clock.monotonic_ns()
        rtt = back_ns - sent[0]
        offset_ns = (sent[0] + back_ns) // 2 - round(float(now) * 1e6)
        wall_offset = sent[1] + rtt / 2e9 - float(wall) / 1e3
        with self._lock:
            self._syncs.append((rtt, offset_ns, wall_offset))
        if self._waiting_rows:
            rows, self._waiting_rows = self._waiting_rows, []
            self._time(rows)

    def _presented(self, rows: list[Any]) -> None:
        checked = [
            (int(row[0]), float(row[1]))
            for row in rows
            if isinstance(row, list)
            and len(row) == 2
            and isinstance(row[0], int)
            and 0 <= row[0] < 2**32
            and _finite(row[1])
        ]
        if not self._syncs or self._origin is None:
            room = _PENDING_ROWS - len(self._waiting_rows)
            self._waiting_rows.extend(checked[:room])
            self.unmatched += max(0, len(checked) - room)
            return
        self._time(checked)

    def _time(self, rows: list[tuple[int, float]]) -> None:
        """Each presented frame's stage-to-screen latency (placeholders are not timed)."""
        stream, origin = self.stream, self._origin
        offset_ns = min(self._syncs)[1]
        latencies: list[int] = []
        for rtp, shown_ms in rows:
            out_ns = None
            if stream is not None and origin is not None:
                out_ns = stream.sent_at((rtp - origin) & 0xFFFFFFFF)
            if out_ns is None:
                self.unmatched += 1
            elif out_ns != PLACEHOLDER:
                latencies.append(round(shown_ms * 1e6) + offset_ns - out_ns)
        self.presented += len(rows)
        with self._lock:
            self._latency.extend(latencies)

    def snapshot(self, now_ns: int) -> ViewerSnapshot:
        """What it got and saw, as data."""
        with self._lock:
            latency = self._latency.snapshot()
            best = min(self._syncs) if self._syncs else None
        return ViewerSnapshot(
            viewer=self.id,
            preview=self.preview,
            camera=self.camera,
            codec=self.codec,
            state=self.state,
            connected_s=(now_ns - self.started_ns) / 1e9,
            frames_sent=self.frames_sent,
            frames_dropped=self.frames_dropped,
            placeholder_frames=self.placeholder_frames,
            bytes_sent=self.bytes_sent,
            presented=self.presented,
            unmatched=self.unmatched,
            stage_to_screen=latency,
            clock_offset=None if best is None else best[2],
            clock_uncertainty=None if best is None else best[0] / 2e9,
            bad_messages=self.bad_messages,
        )


_TASKS: set[asyncio.Future[Any]] = set()  # tasks running in the background (kept from the GC)


def _background(work: Any) -> None:
    """Run the coroutine ``work`` on the running loop, holding a reference until it is done."""
    task = asyncio.ensure_future(work)
    _TASKS.add(task)
    task.add_done_callback(_TASKS.discard)


def _finite(value: Any) -> bool:
    """A number a page may send (a time in ms): finite, and within about 30,000 years."""
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return False
    return math.isfinite(value) and abs(value) < 1e15


_MISSING = object()
_WARNED: set[str] = set()


def _warn_once(message: str) -> None:
    if message not in _WARNED:
        _WARNED.add(message)
        logger.warning(message)
