"""A viewer's RTP loop against aiortc's own packets: the same bytes, counts and history."""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass
from typing import Any

import pytest

pytest.importorskip("aiortc", reason="the WebRTC viewers' loop runs in aiortc's sender")

from aiortc import RTCRtpSender
from aiortc.rtcrtpparameters import (
    RTCRtpCodecParameters,
    RTCRtpHeaderExtensionParameters,
    RTCRtpParameters,
)
from aiortc.rtp import RTP_HISTORY_SIZE, RtpPacket

from framescope.live import _rtpsend

MID = "urn:ietf:params:rtp-hdrext:sdes:mid"
ABS_SEND_TIME = "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time"
CODEC = RTCRtpCodecParameters(mimeType="video/H264", clockRate=90000, payloadType=102)


@dataclass
class Cut:
    """A frame as the stream hands it to the viewers: its RTP payloads and its pts."""

    payloads: tuple[bytes, ...]
    pts: int


class Transport:
    """Where the sender's packets go (aiortc's DTLS transport encrypts and sends them)."""

    state = "new"

    def __init__(self) -> None:
        self.sent: list[bytes] = []

    async def _send_rtp(self, data: bytes) -> None:
        self.sent.append(data)


def on_own_loop(work: Any) -> Any:
    """``work`` on a loop of its own; unlike ``asyncio.run``, the thread's loop left as it was
    (``asyncio.run`` sets it to None at its end, which later tests of this process would see).
    """
    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(work)
    finally:
        loop.close()


def sender_with(transport: Transport) -> Any:
    sender = RTCRtpSender("video", transport)  # type: ignore[arg-type]
    extensions = [
        RTCRtpHeaderExtensionParameters(id=1, uri=MID),
        RTCRtpHeaderExtensionParameters(id=2, uri=ABS_SEND_TIME),
    ]
    sender._RTCRtpSender__rtp_header_extensions_map.configure(
        RTCRtpParameters(headerExtensions=extensions)
    )
    sender._RTCRtpSender__mid = "0"
    return sender


def test_the_loop_sends_what_aiortc_would_and_keeps_its_counts() -> None:
    transport = Transport()
    frames: deque[Cut | None] = deque(
        [Cut((b"a" * 10, b"b" * 5), 3000), Cut((), 4500), Cut((b"c",), 6000), None]
    )

    async def next_frame() -> Cut | None:
        return frames.popleft()

    async def run() -> Any:
        sender = sender_with(transport)  # aiortc makes its senders on a running loop
        assert _rtpsend.install(sender, next_frame)
        await sender._run_rtp(CODEC)
        return sender

    sender = on_own_loop(run())
    extensions_map = sender._RTCRtpSender__rtp_header_extensions_map
    packets = [RtpPacket.parse(data, extensions_map) for data in transport.sent]
    assert [p.payload for p in packets] == [b"a" * 10, b"b" * 5, b"c"]  # the empty frame: none
    assert [p.marker for p in packets] == [0, 1, 1]  # the last packet of each frame
    assert {p.payload_type for p in packets} == {102} and {p.ssrc for p in packets} == {
        sender._ssrc
    }
    first = packets[0].sequence_number
    assert [p.sequence_number for p in packets] == [(first + i) & 0xFFFF for i in range(3)]
    assert packets[0].timestamp == packets[1].timestamp
    assert (packets[2].timestamp - packets[0].timestamp) & 0xFFFFFFFF == 3000
    assert all(p.extensions.mid == "0" and p.extensions.abs_send_time is not None for p in packets)
    # Byte for byte what aiortc's own serializer makes of the same packet.
    assert [p.serialize(extensions_map) for p in packets] == transport.sent
    # What its RTCP side reads for the sender reports.
    assert sender._RTCRtpSender__packet_count == 3
    assert sender._RTCRtpSender__octet_count == 16
    assert sender._RTCRtpSender__rtp_timestamp == packets[2].timestamp
    assert sender._RTCRtpSender__rtp_exited.is_set()
    # A NACK: the history makes the packet again and aiortc's retransmission sends it.
    history = sender._RTCRtpSender__rtp_history
    again = history.get(packets[1].sequence_number % RTP_HISTORY_SIZE)
    assert isinstance(again, RtpPacket) and again.payload == b"b" * 5 and again.marker == 1
    assert again.extensions.abs_send_time == packets[1].extensions.abs_send_time
    on_own_loop(sender._retransmit(packets[1].sequence_number))
    resent = RtpPacket.parse(transport.sent[-1], extensions_map)
    assert (resent.sequence_number, resent.payload) == (packets[1].sequence_number, b"b" * 5)


def test_a_sender_without_the_internals_it_reads_keeps_its_own_loop() -> None:
    class Elsewhere:
        _ssrc, _enabled = 1, True

        async def _run_rtp(self, codec: object) -> None:
            return None

    sender = Elsewhere()
    own = sender._run_rtp

    async def next_frame() -> None:
        return None

    assert not _rtpsend.install(sender, next_frame)
    assert sender._run_rtp == own


def test_a_sender_stopped_while_waiting_for_a_frame_ends_its_loop() -> None:
    transport = Transport()
    never: asyncio.Future[Any] | None = None

    async def next_frame() -> Any:
        nonlocal never
        never = asyncio.get_running_loop().create_future()
        return await never

    async def scenario() -> None:
        sender = sender_with(transport)
        assert _rtpsend.install(sender, next_frame)
        task = asyncio.ensure_future(sender._run_rtp(CODEC))
        while never is None:
            await asyncio.sleep(0)
        task.cancel()  # what aiortc's stop() does
        await asyncio.wait_for(sender._RTCRtpSender__rtp_exited.wait(), 5)
        assert task.done()

    on_own_loop(scenario())
    assert transport.sent == []


class Socket:
    """An ICE pair's datagram transport: what was sent, and where."""

    def __init__(self) -> None:
        self.sent: list[tuple[bytes, Any]] = []

    def sendto(self, data: bytes, address: Any) -> None:
        self.sent.append((data, address))


def connected(protocol_class: type) -> tuple[Any, Socket]:
    """A DTLS transport as aiortc's is once connected, over an ICE pair with ``protocol_class``."""
    from types import SimpleNamespace

    from aiortc.rtcdtlstransport import State

    socket = Socket()
    protocol = protocol_class(None)
    protocol.transport = socket
    pair = SimpleNamespace(protocol=protocol, remote_addr=("127.0.0.1", 5004))
    ice = SimpleNamespace(_connection=SimpleNamespace(_nominated={1: pair}))
    srtp = SimpleNamespace(protect=lambda data: b"SRTP" + data)
    dtls = Transport()
    dtls.__dict__.update(_state=State.CONNECTED, transport=ice, _tx_srtp=srtp)
    dtls._RTCDtlsTransport__tx_packets = 0  # type: ignore[attr-defined]
    dtls._RTCDtlsTransport__tx_bytes = 0  # type: ignore[attr-defined]
    return dtls, socket


def test_over_a_direct_pair_packets_go_encrypted_straight_to_its_socket() -> None:
    from aioice.ice import StunProtocol

    frames: deque[Cut | None] = deque([Cut((b"a" * 10, b"b" * 5), 3000), None])

    async def next_frame() -> Cut | None:
        return frames.popleft()

    async def run() -> tuple[Any, Any, Socket]:
        dtls, socket = connected(StunProtocol)
        sender = sender_with(dtls)
        assert _rtpsend.install(sender, next_frame)
        await sender._run_rtp(CODEC)
        return sender, dtls, socket

    sender, dtls, socket = on_own_loop(run())
    assert dtls.sent == []  # not through aiortc's per-packet path
    assert [address for _, address in socket.sent] == [("127.0.0.1", 5004)] * 2
    assert all(data.startswith(b"SRTP") for data, _ in socket.sent)
    extensions_map = sender._RTCRtpSender__rtp_header_extensions_map
    packets = [RtpPacket.parse(data[4:], extensions_map) for data, _ in socket.sent]
    assert [p.payload for p in packets] == [b"a" * 10, b"b" * 5]
    assert dtls._RTCDtlsTransport__tx_packets == 2
    assert dtls._RTCDtlsTransport__tx_bytes == sum(len(data) for data, _ in socket.sent)


def test_a_pair_whose_protocol_sends_its_own_way_goes_through_aiortc() -> None:
    from aioice.ice import StunProtocol

    class Relayed(StunProtocol):  # a protocol that wraps each datagram itself
        async def send_data(self, data: bytes, addr: tuple[str, int]) -> None:
            raise AssertionError("not here: through the DTLS transport")

    frames: deque[Cut | None] = deque([Cut((b"c",), 3000), None])

    async def next_frame() -> Cut | None:
        return frames.popleft()

    async def run() -> tuple[Any, Socket]:
        dtls, socket = connected(Relayed)
        sender = sender_with(dtls)
        assert _rtpsend.install(sender, next_frame)
        await sender._run_rtp(CODEC)
        return dtls, socket

    dtls, socket = on_own_loop(run())
    assert socket.sent == [] and len(dtls.sent) == 1  # aiortc's _send_rtp took it


def test_byte_for_byte_what_aiortcs_own_loop_sends(monkeypatch: pytest.MonkeyPatch) -> None:
    """The same frames through aiortc's sender loop and through this one, its randomness fixed."""
    import aiortc.clock
    import aiortc.rtcrtpsender
    import aiortc.utils
    from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

    from framescope.live.webrtc import _SharedPayloads

    monkeypatch.setattr(aiortc.rtcrtpsender, "random_sequence_number", lambda: 65534)  # wraps
    monkeypatch.setattr(aiortc.rtcrtpsender, "random32", lambda: 0xFFFFF000)  # wraps too
    monkeypatch.setattr(aiortc.utils, "random32", lambda: 0xFFFFF000)
    monkeypatch.setattr(aiortc.clock, "current_ntp_time", lambda: 0x1234_5678_9ABC_DEF0)

    def frames() -> deque[Cut | None]:
        return deque([Cut((b"a" * 10, b"b" * 5), 3000), Cut((b"c" * 7,), 6000),
                      Cut((b"d",) * 3, 9000), None])  # fmt: skip

    class Track(MediaStreamTrack):  # type: ignore[misc]
        kind = "video"

        def __init__(self, queued: deque[Cut | None]) -> None:
            super().__init__()
            self.queued = queued

        async def recv(self) -> Cut:
            frame = self.queued.popleft()
            if frame is None:
                raise MediaStreamError
            return frame

    async def through(ours: bool) -> list[bytes]:
        transport = Transport()
        sender = sender_with(transport)
        sender._ssrc = 0x0BADCAFE
        queued = frames()
        if ours:

            async def next_frame() -> Cut | None:
                return queued.popleft()

            assert _rtpsend.install(sender, next_frame)
        else:
            sender.replaceTrack(Track(queued))
            sender._RTCRtpSender__encoder = _SharedPayloads()  # what the view gives aiortc's loop
        await sender._run_rtp(CODEC)
        return transport.sent

    theirs, ours = on_own_loop(through(ours=False)), on_own_loop(through(ours=True))
    assert len(theirs) == 6 and ours == theirs
