"""A WHEP player for the tests: aiortc on its own asyncio thread, pulling one preview.

It does what any WHEP player does (``POST`` an offer of ``application/sdp``,
play the answer, ``DELETE`` the session's ``Location`` to leave) and keeps
the frames it decoded, so a test can look at what a viewer received.
"""

from __future__ import annotations

import asyncio
import threading
import urllib.error
import urllib.request
from typing import Any

from aiortc import RTCConfiguration, RTCPeerConnection, RTCRtpReceiver, RTCSessionDescription

from framescope.live import webrtc


class WhepClient:
    """One viewer of ``url`` (a ``/whep/<name>`` endpoint); ``headers`` go with each request."""

    def __init__(
        self, url: str, headers: dict[str, str] | None = None, codec: str | None = None
    ) -> None:
        self.url = url
        self.codec = codec  # offer only this codec (e.g. "VP8"); None: aiortc's own list
        self.headers = dict(headers or {})
        self.location: str | None = None
        self.answer = ""
        self.frames = 0
        self.last: Any = None  # the last frame decoded, as a BGR array
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="whep-client")
        self._thread.start()
        self._pc: RTCPeerConnection | None = None
        self._reader: asyncio.Future[None] | None = None

    def start(self, timeout: float = 20.0) -> WhepClient:
        """Offer, and play the answer (raises urllib's HTTPError when refused)."""
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(timeout)
        return self

    async def _start(self) -> None:
        webrtc._install_host_choice()
        webrtc._HOSTS.set(("127.0.0.1",))  # the player runs on loopback too
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self._pc = pc
        transceiver = pc.addTransceiver("video", direction="recvonly")
        if self.codec is not None:
            wanted = (f"video/{self.codec.lower()}", "video/rtx")
            codecs = RTCRtpReceiver.getCapabilities("video").codecs
            transceiver.setCodecPreferences([c for c in codecs if c.mimeType.lower() in wanted])
        pc.on("track", self._read)
        await pc.setLocalDescription(await pc.createOffer())
        offer = pc.localDescription.sdp.encode()
        answer, location = await asyncio.get_running_loop().run_in_executor(None, self._post, offer)
        self.answer, self.location = answer, location
        await pc.setRemoteDescription(RTCSessionDescription(answer, "answer"))

    def _post(self, offer: bytes) -> tuple[str, str]:
        headers = {"Content-Type": "application/sdp", **self.headers}
        request = urllib.request.Request(self.url, data=offer, headers=headers, method="POST")
        with urllib.request.urlopen(request, timeout=15) as response:
            assert response.status == 201
            return response.read().decode(), response.headers["Location"]

    def _read(self, track: Any) -> None:
        async def read() -> None:
            while True:
                try:
                    frame = await track.recv()
                except Exception:
                    return
                self.frames += 1
                self.last = frame.to_ndarray(format="bgr24")

        self._reader = asyncio.ensure_future(read())

    def leave(self) -> int:
        """``DELETE`` the session: the status the view answered."""
        assert self.location is not None
        base = self.url.split("/whep/")[0]
        request = urllib.request.Request(
            base + self.location, headers=self.headers, method="DELETE"
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return int(response.status)
        except urllib.error.HTTPError as error:
            with error:
                return error.code

    def close(self) -> None:
        """Close the connection and the thread."""

        async def close() -> None:
            if self._pc is not None:
                await self._pc.close()
            if self._reader is not None:
                self._reader.cancel()

        asyncio.run_coroutine_threadsafe(close(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    def __enter__(self) -> WhepClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
