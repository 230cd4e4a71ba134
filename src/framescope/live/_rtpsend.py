"""One viewer's RTP: a shared frame's payloads, made packets and sent, for each viewer.

aiortc's sender makes each RTP packet an object, with its header extensions
and two readings of the NTP clock, packet by packet, in Python, for each
viewer: at 720p30 that is most of what a viewer past the first costs. This
loop takes the frames the stream cut once (their payloads), and per viewer
does per frame what can be done once a frame (the extensions, the clock)
and per packet only the header, the encryption and the send, straight to
the ICE pair's socket (or through the sender's DTLS transport where that
cannot be done). It keeps what aiortc's RTCP side reads: the packet and
octet counts and the last RTP and NTP times (the sender reports), and the
packets sent (a NACK's retransmission), stored as tuples and made packets
only when one is asked for. :func:`install` puts it in place of the
sender's own loop where the installed aiortc has what it reads (checked for
each sender); elsewhere aiortc's loop runs.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import struct
from collections.abc import Awaitable, Callable
from typing import Any

__all__ = ["install"]

logger = logging.getLogger(__name__)

_PRIVATE = "_RTCRtpSender__"
_READ = ("rtp_started", "rtp_exited", "rtp_header_extensions_map", "rtp_history", "mid", "track")
_WRITTEN = ("ntp_timestamp", "rtp_timestamp", "octet_count", "packet_count")
_HEADER = struct.Struct("!BBHLL")  # version 2, flags, marker and type, sequence, time, SSRC
_EXTENSIONS = struct.Struct("!HH")
_VERSION, _HAS_EXTENSIONS, _MARKER = 0x80, 0x10, 0x80

NextFrame = Callable[[], Awaitable[Any]]
"""The viewer's next frame (with ``payloads`` and ``pts``), or None once it is done."""


def install(sender: Any, next_frame: NextFrame) -> bool:
    """Send ``sender``'s RTP with this module's loop, frames from ``next_frame``.

    False (and nothing changed) where the installed aiortc's sender lacks
    what the loop reads and writes.
    """
    names = (*_READ, *_WRITTEN)
    if not all(hasattr(sender, _PRIVATE + name) for name in names):
        return False
    if not (hasattr(sender, "_ssrc") and hasattr(sender, "_enabled")):
        return False
    try:
        from aiortc import clock  # noqa: PLC0415, F401 - optional, what the loop uses
        from aiortc.rtcrtpsender import random_sequence_number  # noqa: PLC0415, F401
        from aiortc.rtp import RTP_HISTORY_SIZE, HeaderExtensions, RtpPacket  # noqa: PLC0415, F401
        from aiortc.utils import random32  # noqa: PLC0415, F401
    except ImportError:
        return False
    sender._run_rtp = functools.partial(_run_rtp, sender, next_frame)
    return True


class _History(dict[int, Any]):
    """The packets sent, by sequence number modulo the history's size: made on demand."""

    def __init__(self, payload_type: int, ssrc: int, mid: str | None) -> None:
        super().__init__()
        self._payload_type, self._ssrc, self._mid = payload_type, ssrc, mid

    def get(self, key: int, default: Any = None) -> Any:
        """The packet stored at ``key`` as aiortc's ``RtpPacket`` (its retransmission reads)."""
        stored = dict.get(self, key)
        if stored is None:
            return default
        from aiortc.rtp import RtpPacket  # noqa: PLC0415 - loaded with aiortc

        sequence, timestamp, marker, payload, sent_at = stored
        packet = RtpPacket(
            payload_type=self._payload_type,
            marker=marker,
            sequence_number=sequence,
            timestamp=timestamp,
            ssrc=self._ssrc,
            payload=payload,
        )
        packet.extensions.mid = self._mid
        packet.extensions.abs_send_time = sent_at
        return packet


async def _run_rtp(sender: Any, next_frame: NextFrame, codec: Any) -> None:
    """What aiortc's ``RTCRtpSender._run_rtp`` does, a frame's work done once a frame."""
    from aiortc.mediastreams import MediaStreamError  # noqa: PLC0415 - loaded with aiortc
    from aiortc.rtcrtpsender import random_sequence_number  # noqa: PLC0415 - loaded with aiortc
    from aiortc.utils import random32  # noqa: PLC0415 - loaded with aiortc

    getattr(sender, _PRIVATE + "rtp_started").set()
    sequence, origin = random_sequence_number(), random32()
    history = _History(codec.payloadType, sender._ssrc, getattr(sender, _PRIVATE + "mid"))
    setattr(sender, _PRIVATE + "rtp_history", history)
    try:
        while True:
            frame = await next_frame()
            if frame is None:
                break
            # A frame cut into nothing (a VP8 packet of no bytes) has no packets to send.
            if sender._enabled and getattr(frame, "payloads", None):
                sequence = await _send_frame(sender, frame, (origin, sequence), codec, history)
    except (asyncio.CancelledError, ConnectionError, MediaStreamError):
        pass
    except Exception:  # aiortc's loop logs and ends too: its stop() waits for the end
        logger.exception("sending a WebRTC viewer's video failed")
    track = getattr(sender, _PRIVATE + "track")
    if track is not None:
        track.stop()
        setattr(sender, _PRIVATE + "track", None)
    getattr(sender, _PRIVATE + "rtp_exited").set()


def _straight_to_socket(dtls: Any) -> tuple[Callable[[bytes], bytes], Any, Any] | None:
    """The DTLS transport's encryption and its ICE pair's socket: (protect, sendto, address).

    None where a packet must go through aiortc's transports instead (a pair
    whose protocol wraps each datagram itself, or internals this aiortc or
    aioice does not have); ConnectionError where aiortc would raise it (not
    connected). A TURN relay's pair has aioice's own protocol over a
    transport that relays what it is given: that goes straight too.
    """
    try:
        from aioice.ice import StunProtocol  # noqa: PLC0415 - loaded with aiortc
        from aiortc.rtcdtlstransport import State  # noqa: PLC0415 - loaded with aiortc

        if dtls._state != State.CONNECTED:
            raise ConnectionError("Cannot send encrypted RTP, not connected")
        pair = dtls.transport._connection._nominated.get(1)
        if pair is None:
            raise ConnectionError("Cannot send data, not connected")
        protocol, protect = pair.protocol, dtls._tx_srtp.protect
        if type(protocol).send_data is not StunProtocol.send_data or protocol.transport is None:
            return None  # a protocol of its own: what it does with a datagram, it does
        if not all(hasattr(dtls, "_RTCDtlsTransport__" + n) for n in ("tx_bytes", "tx_packets")):
            return None  # its counts, which getStats reports, are kept where it keeps them
        return protect, protocol.transport.sendto, pair.remote_addr
    except (AttributeError, ImportError):
        return None


async def _send_frame(
    sender: Any, frame: Any, counters: tuple[int, int], codec: Any, history: _History
) -> int:
    """Every packet of ``frame``; the next sequence number."""
    from aiortc import clock  # noqa: PLC0415 - loaded with aiortc
    from aiortc.rtp import RTP_HISTORY_SIZE, HeaderExtensions  # noqa: PLC0415 - loaded with aiortc

    origin, sequence = counters
    timestamp = (origin + frame.pts) & 0xFFFFFFFF
    extensions = HeaderExtensions()
    sent_at = extensions.abs_send_time = (clock.current_ntp_time() >> 14) & 0x00FFFFFF
    extensions.mid = getattr(sender, _PRIVATE + "mid")
    profile, value = getattr(sender, _PRIVATE + "rtp_header_extensions_map").set(extensions)
    flags = _VERSION | (_HAS_EXTENSIONS if value else 0)
    tail = _EXTENSIONS.pack(profile, len(value) >> 2) + value if value else b""
    payloads, ssrc, kind = frame.payloads, sender._ssrc, codec.payloadType
    last, octets, sent = len(payloads) - 1, 0, 0
    straight = _straight_to_socket(sender.transport)
    for index, payload in enumerate(payloads):
        marker = index == last
        header = _HEADER.pack(flags, (_MARKER if marker else 0) | kind, sequence, timestamp, ssrc)
        history[sequence % RTP_HISTORY_SIZE] = (sequence, timestamp, int(marker), payload, sent_at)
        if straight is None:
            await sender.transport._send_rtp(header + tail + payload)
        else:
            protect, sendto, address = straight
            data = protect(header + tail + payload)
            sendto(data, address)
            sent += len(data)
        octets += len(payload)
        sequence = (sequence + 1) & 0xFFFF
    _count(sender, timestamp, octets, len(payloads))
    if straight is not None:  # what aiortc's DTLS transport counts of what it sends
        _add(sender.transport, "_RTCDtlsTransport__tx_bytes", sent)
        _add(sender.transport, "_RTCDtlsTransport__tx_packets", len(payloads))
    await asyncio.sleep(0)  # a frame's packets in a row: then the loop's other work
    return sequence


def _count(sender: Any, timestamp: int, octets: int, packets: int) -> None:
    """What the sender's reports say: the last times (a pair), the octets and packets sent."""
    from aiortc import clock  # noqa: PLC0415 - loaded with aiortc

    setattr(sender, _PRIVATE + "ntp_timestamp", clock.current_ntp_time())
    setattr(sender, _PRIVATE + "rtp_timestamp", timestamp)
    _add(sender, _PRIVATE + "octet_count", octets)
    _add(sender, _PRIVATE + "packet_count", packets)


def _add(owner: Any, name: str, amount: int) -> None:
    if hasattr(owner, name):
        setattr(owner, name, getattr(owner, name) + amount)
