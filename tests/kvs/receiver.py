"""A local PutMedia receiver that checks what Kinesis Video Streams checks.

PutMedia cannot be reached from the tests, so this stands in for it, on
127.0.0.1: it verifies the SigV4 signature of each connection against the
credentials it was given (and their expiry: 403 NotAuthorizedException), the
required headers and the chunked framing; it reads the Matroska stream
cluster by cluster, checks the H.264 track and its AVCC private data and that
timecodes increase, decodes every fragment on its own with PyAV (so one that
does not start on a key frame fails), and answers BUFFERING, RECEIVED and
PERSISTED per fragment, written without separators and split across chunks
(so the client must match braces). It can be told to send an ERROR ack, drop
the connection, answer 5xx, or stall; to read every fragment and never
acknowledge one (``never_ack``); or, while ``outage`` is set, to read and
neither acknowledge nor keep the fragments (a service whose back end is out).
"""

from __future__ import annotations

import datetime
import hashlib
import hmac
import io
import json
import socket
import socketserver
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import av

from framescope.kvs.fragments import CLUSTER_ID, SEGMENT_ID, read_element_header

TRACKS_ID, TRACK_ENTRY_ID, CODEC_ID_ID, CODEC_PRIVATE_ID = 0x1654AE6B, 0xAE, 0x86, 0x63A2
REQUIRED = (
    "x-amzn-stream-name",
    "x-amzn-fragment-timecode-type",
    "x-amzn-producer-start-timestamp",
    "x-amzn-fragment-acknowledgment-required",
)


@dataclass
class Key:
    """Credentials the receiver accepts: the secret, the token, and when they expire."""

    secret: str
    token: str | None = None
    expires_at: float | None = None  # wall time


@dataclass
class Received:
    """What one fragment was: its timecode, frames decoded, and the connection it came on."""

    timecode: int
    frames: int
    connection: int


@dataclass
class Plan:
    """What to do to the next connections (each entry used once)."""

    error_after: list[tuple[int, int]] = field(default_factory=list)  # (fragments, code)
    drop_after: list[int] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)
    stall: bool = False
    never_ack: bool = False  # read every fragment, acknowledge none
    outage: threading.Event = field(default_factory=threading.Event)  # while set: as never_ack


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode(), hashlib.sha256).digest()


def check_signature(
    headers: dict[str, str], keys: dict[str, Key], region: str, now: float
) -> str | None:
    """None when the request is signed right with a key we know; else what is wrong."""
    auth = headers.get("authorization", "")
    if not auth.startswith("AWS4-HMAC-SHA256 "):
        return "no SigV4 Authorization header"
    fields = dict(
        part.strip().split("=", 1) for part in auth[len("AWS4-HMAC-SHA256 ") :].split(",")
    )
    access_key, date, scope_region, service, terminal = fields["Credential"].split("/")
    if (scope_region, service, terminal) != (region, "kinesisvideo", "aws4_request"):
        return f"wrong credential scope {fields['Credential']}"
    key = keys.get(access_key)
    if key is None:
        return "unknown access key"
    if key.expires_at is not None and now >= key.expires_at:
        return "the security token included in the request is expired"
    if key.token is not None and headers.get("x-amz-security-token") != key.token:
        return "wrong or missing security token"
    amz_date = headers.get("x-amz-date", "")
    signed_at = datetime.datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(
        tzinfo=datetime.timezone.utc
    )
    if abs(signed_at.timestamp() - now) > 300 or amz_date[:8] != date:
        return "the signature is not fresh"
    names = fields["SignedHeaders"].split(";")
    if "host" not in names or "x-amz-date" not in names:
        return "host and x-amz-date must be signed"
    canonical_headers = "".join(f"{name}:{' '.join(headers[name].split())}\n" for name in names)
    canonical = "\n".join(
        [
            "POST",
            "/putMedia",
            "",
            canonical_headers,
            ";".join(names),
            hashlib.sha256(b"").hexdigest(),
        ]
    )
    scope = f"{date}/{region}/kinesisvideo/aws4_request"
    to_sign = "\n".join(
        ["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()]
    )
    signing = _hmac(
        _hmac(_hmac(_hmac(("AWS4" + key.secret).encode(), date), region), service), terminal
    )
    expected = hmac.new(signing, to_sign.encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, fields["Signature"]):
        return "the request signature does not match"
    return None


class KVSReceiver:
    """The receiver: ``url`` to PutMedia to; ``fragments``, ``problems`` and ``connections`` to check."""

    def __init__(self, keys: dict[str, Key], stream_name: str, region: str) -> None:
        self.keys, self.stream_name, self.region = keys, stream_name, region
        self.fragments: list[Received] = []  # persisted
        self.errored: list[Received] = []  # answered with an ERROR ack
        self.unanswered = 0  # fragments read and never acknowledged (never_ack, outage)
        self.problems: list[str] = []  # what a real service would refuse
        self.refused: list[str] = []  # 403s: why
        self.connections = 0
        self.headers: list[dict[str, str]] = []
        self.plan = Plan()
        self.lock = threading.Lock()
        self._last_timecode = -1
        self.stopping = threading.Event()
        receiver = self

        class Handler(socketserver.StreamRequestHandler):
            timeout = 10

            def handle(self) -> None:
                receiver._serve(self.connection, self.rfile)

        class Server(socketserver.ThreadingTCPServer):
            daemon_threads = False
            block_on_close = True
            allow_reuse_address = True

        self._server = Server(("127.0.0.1", 0), Handler)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="kvs-receiver"
        )
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def decoded_frames(self) -> int:
        return sum(fragment.frames for fragment in self.fragments)

    def close(self) -> None:
        self.stopping.set()
        self._server.shutdown()
        self._server.server_close()  # joins the connection threads
        self._thread.join(10)

    # -- one connection ---------------------------------------------------------------

    def _serve(self, sock: socket.socket, stream: Any) -> None:
        with self.lock:
            self.connections += 1
            number = self.connections
            status = self.plan.statuses.pop(0) if self.plan.statuses else 200
            drop_after = error_after = None
            if status == 200:  # the faults to come are for connections that stream
                drop_after = self.plan.drop_after.pop(0) if self.plan.drop_after else None
                error_after = self.plan.error_after.pop(0) if self.plan.error_after else None
            stall = self.plan.stall
        if stall:
            self.stopping.wait(30)
            return
        request = stream.readline(65537).decode("latin-1").split()
        headers: dict[str, str] = {}
        while True:
            line = stream.readline(65537).decode("latin-1").strip()
            if not line:
                break
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        self.headers.append(headers)
        if request[:2] != ["POST", "/putMedia"] or request[2:] != ["HTTP/1.1"]:
            self.problems.append(f"request line {request}")
        wrong = check_signature(headers, self.keys, self.region, time.time())
        if wrong is not None:
            self.refused.append(wrong)
            self._answer(sock, 403, {"__type": "NotAuthorizedException", "message": wrong})
            return
        missing = [name for name in REQUIRED if name not in headers]
        if missing or headers.get("x-amzn-stream-name") != self.stream_name:
            self.problems.append(f"headers missing {missing} or wrong stream")
            self._answer(sock, 400, {"__type": "InvalidArgumentException", "message": "headers"})
            return
        if headers.get("transfer-encoding", "").lower() != "chunked":
            self.problems.append("the body is not chunked")
        if status != 200:
            self._answer(sock, status, {"__type": "ServiceUnavailable", "message": "try later"})
            return
        expires = self.keys[
            headers["authorization"].split("Credential=")[1].split("/")[0]
        ].expires_at
        sock.sendall(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n"
        )
        self._read_body(
            sock,
            stream,
            number=number,
            drop_after=drop_after,
            error_after=error_after,
            expires=expires,
        )

    def _answer(self, sock: socket.socket, status: int, body: dict[str, str]) -> None:
        data = json.dumps(body).encode()
        sock.sendall(
            f"HTTP/1.1 {status} X\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(data)}\r\nConnection: close\r\n\r\n".encode()
            + data
        )

    def _ack(self, sock: socket.socket, *acks: dict[str, Any]) -> None:
        data = b"".join(json.dumps(ack, separators=(",", ":")).encode() for ack in acks)
        middle = len(data) // 2  # split across two chunks: only brace matching reads it
        for part in (data[:middle], data[middle:]):
            sock.sendall(b"%x\r\n" % len(part) + part + b"\r\n")

    def _read_body(
        self,
        sock: socket.socket,
        stream: Any,
        *,
        number: int,
        drop_after: int | None,
        error_after: tuple[int, int] | None,
        expires: float | None,
    ) -> None:
        pending, header, in_segment, count = bytearray(), bytearray(), False, 0
        header_done = False
        while not self.stopping.is_set():
            if expires is not None and time.time() >= expires:
                self.problems.append(f"connection {number} outlived its credentials")
                return
            size_line = stream.readline(1024)
            if not size_line:
                return  # the client went away
            size = int(size_line.strip() or b"0", 16)
            if size == 0:
                sock.sendall(b"0\r\n\r\n")  # the end of the upload: end our answer too
                return
            pending += stream.read(size)
            if stream.readline(3) != b"\r\n":
                self.problems.append("a chunk is not followed by CRLF")
                return
            while True:
                found = read_element_header(pending, 0)
                if found is None:
                    break
                element, size_of, length = found
                if not header_done:
                    if element == SEGMENT_ID and not in_segment:
                        in_segment = True
                        header += pending[:length]
                        del pending[:length]
                        continue
                    if element == CLUSTER_ID:
                        header_done = True
                        self._check_tracks(bytes(header))
                        continue
                    if size_of is None or len(pending) < length + size_of:
                        break
                    header += pending[: length + size_of]
                    del pending[: length + size_of]
                    continue
                if size_of is None or len(pending) < length + size_of:
                    break
                cluster = bytes(pending[: length + size_of])
                del pending[: length + size_of]
                if element != CLUSTER_ID:
                    continue
                count += 1
                go_on = self._answer_fragment(
                    sock,
                    bytes(header),
                    cluster,
                    number,
                    count,
                    drop_after=drop_after,
                    error_after=error_after,
                )
                if not go_on:
                    return

    def _answer_fragment(
        self,
        sock: socket.socket,
        header: bytes,
        cluster: bytes,
        number: int,
        count: int,
        *,
        drop_after: int | None,
        error_after: tuple[int, int] | None,
    ) -> bool:
        """Acknowledge fragment ``count`` as the service does; False when the connection ends."""
        if self.plan.never_ack or self.plan.outage.is_set():
            self.unanswered += 1  # read, neither acknowledged nor kept
            return True
        timecode = self._fragment(header, cluster, number)
        self._ack(sock, {"EventType": "BUFFERING", "FragmentTimecode": timecode})
        if error_after is not None and count == error_after[0]:
            self.errored.append(self.fragments.pop())  # refused: not persisted
            self._ack(
                sock,
                {
                    "EventType": "ERROR",
                    "FragmentTimecode": timecode,
                    "ErrorId": error_after[1],
                },
            )
            sock.sendall(b"0\r\n\r\n")
            return False
        self._ack(
            sock,
            {
                "EventType": "RECEIVED",
                "FragmentTimecode": timecode,
                "FragmentNumber": str(count),
            },
            {
                "EventType": "PERSISTED",
                "FragmentTimecode": timecode,
                "FragmentNumber": str(count),
            },
        )
        if drop_after is not None and count == drop_after:
            sock.shutdown(socket.SHUT_RDWR)
            return False
        return True

    def _check_tracks(self, header: bytes) -> None:
        at = _top_level(header, TRACKS_ID)
        if at is None:
            self.problems.append("no Tracks element before the first cluster")
            return
        codec = header.find(CODEC_ID_ID.to_bytes(1, "big") + b"\x8f" + b"V_MPEG4/ISO/AVC")
        if codec < 0:
            self.problems.append("track 1 is not V_MPEG4/ISO/AVC")
        # Walk Segment > Tracks > TrackEntry > CodecPrivate: a byte search for
        # an id also matches in the SeekHead, the random SegmentUID or DateUTC.
        private = _child(header, at, (TRACK_ENTRY_ID, CODEC_PRIVATE_ID))
        if private is None:
            self.problems.append("no codec private data")
            return
        if header[private] != 1:  # AVCDecoderConfigurationRecord version
            self.problems.append("codec private data is not AVCC")

    def _fragment(self, header: bytes, cluster: bytes, connection: int) -> int:
        found = read_element_header(cluster, 0)
        assert found is not None
        at, timecode, first_key = found[2], -1, None
        while at < len(cluster):
            element, size, length = read_element_header(cluster, at)  # type: ignore[misc]
            body = cluster[at + length : at + length + size]
            if element == 0xE7:
                timecode = int.from_bytes(body, "big")
            elif element == 0xA3 and first_key is None:
                track_length = 1 + (8 - body[0].bit_length())  # the track number, a vint
                first_key = bool(body[track_length + 2] & 0x80)  # after a 2-byte timecode
            at += length + size
        if first_key is not True:
            self.problems.append(f"fragment {timecode} does not start on a key frame")
        if timecode <= self._last_timecode:
            self.problems.append(f"fragment timecode {timecode} after {self._last_timecode}")
        self._last_timecode = timecode
        frames = 0
        try:
            with av.open(io.BytesIO(header + cluster)) as container:
                for frame in container.decode(video=0):
                    if frames == 0 and not frame.key_frame:
                        self.problems.append(f"fragment {timecode} decodes from a non-key frame")
                    frames += 1
        except av.FFmpegError as error:
            self.problems.append(f"fragment {timecode} does not decode: {error}")
        self.fragments.append(Received(timecode, frames, connection))
        return timecode


def _top_level(header: bytes, wanted: int) -> int | None:
    """Where the Segment's child ``wanted`` starts in a stream header (after the EBML header)."""
    ebml = read_element_header(header, 0)
    if ebml is None or ebml[1] is None:
        return None
    segment_at = ebml[2] + ebml[1]
    segment = read_element_header(header, segment_at)
    if segment is None:
        return None
    position = segment_at + segment[2]  # a live segment's size is unknown: walk to the end
    while position < len(header):
        child = read_element_header(header, position)
        if child is None or child[1] is None:
            return None
        if child[0] == wanted:
            return position
        position += child[2] + child[1]
    return None


def _child(data: bytes, at: int, path: tuple[int, ...]) -> int | None:
    """Where the payload of the element reached by ``path`` inside the one at ``at`` starts."""
    found = read_element_header(data, at)
    if found is None or found[1] is None:
        return None
    position, end = at + found[2], min(len(data), at + found[2] + found[1])
    while position < end:
        child = read_element_header(data, position)
        if child is None or child[1] is None:
            return None
        element, size, length = child
        if element == path[0]:
            return position + length if len(path) == 1 else _child(data, position, path[1:])
        position += length + size
    return None
