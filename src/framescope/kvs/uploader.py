"""The PutMedia side of KVSSpyGlass: connections opened, rotated and retried; acks counted.

One :class:`Uploader` per streaming session sends each fragment to the
stream over one connection at a time. It opens a connection with fresh
credentials and a fresh data endpoint, rotates it (between fragments, so
nothing is lost) before it reaches ``max_connection_s`` or its credentials
expire, and after a failure reconnects with back-off (never more than 5
connections a second). A fragment's frames count as sent once the service
acknowledges it RECEIVED; a connection that ends before that loses the
fragments it had not acknowledged, counted with their frames. A connection
whose fragments wait ``ack_timeout`` without any acknowledgement is an
outage (:meth:`Uploader.check_acks`): it is dropped and replaced, and the
state stays ``ERROR`` until a fragment is acknowledged RECEIVED again. Fatal errors
(the stream is gone, access refused with fresh credentials) end the session
with the reason.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from typing import Any

from framescope._waits import backoff_delay
from framescope.kvs.acks import Ack, error_name, is_fatal
from framescope.kvs.credentials import KVSCredentialsHandler
from framescope.kvs.fragments import Fragment
from framescope.kvs.putmedia import PutMediaConnection
from framescope.video.spyglass import SpyGlassState

__all__ = ["Uploader"]

logger = logging.getLogger(__name__)

MIN_CONNECT_INTERVAL_S = 0.2  # the service allows 5 connections a second per stream


class Uploader:
    """Sends fragments to one stream; see the module docstring.

    Args:
        glass: names the stream (``stream_name``, ``stream_region``) and gives
            ``credentials_handler``, ``endpoint_url``, ``data_endpoint_url``
            and the connection settings.
        stopping: set when the session ends (waits give up).
    """

    def __init__(self, glass: Any, stopping: threading.Event) -> None:
        self._glass = glass
        self._stopping = stopping
        self._handler: KVSCredentialsHandler = glass.credentials_handler
        self._connection: PutMediaConnection | None = None
        self._last_attempt = 0.0
        self._failures = 0  # consecutive failed connections
        self._refused = 0  # consecutive connections refused for their credentials
        self.fatal: str | None = None
        self.acks: Counter[str] = Counter()
        self.errors: Counter[int] = Counter()
        self._logged_codes: set[int] = set()
        self._lock = threading.Lock()
        self._pending: dict[int, int] = {}  # the connection's fragments not yet RECEIVED
        self.counts = dict.fromkeys(
            (
                "fragments_sent",
                "fragments_received",
                "fragments_lost",
                "frames_sent",
                "frames_lost",
                "connections",
                "reconnects",
                "rotations",
                "connect_failures",
                "ack_timeouts",
            ),
            0,
        )
        self.producer_start = time.time()
        self._clock = glass._clock
        self._heard_ns = 0  # the last acknowledgement, or when fragments began to wait
        self.outage = False  # acknowledgements stopped; cleared by the next RECEIVED

    @property
    def connected(self) -> bool:
        """Whether a connection is open now."""
        return self._connection is not None

    @property
    def alive(self) -> bool:
        """False once a fatal error ended the session."""
        return self.fatal is None

    def kill(self) -> None:
        """Close the connection now (a stop that ran out of time)."""
        connection, self._connection = self._connection, None
        if connection is not None:
            connection.close()
            self._forget_pending()

    # -- fragments -------------------------------------------------------------------

    def send(self, header: bytes, fragment: Fragment) -> None:
        """Send one fragment (opening or rotating the connection first when needed)."""
        if self.fatal is not None:
            self._lose(fragment)
            return
        connection = self._usable_connection(header)
        if connection is None:
            self._lose(fragment)
            return
        with self._lock:  # before writing it: its ack may come at once
            if not self._pending:
                self._heard_ns = self._clock.monotonic_ns()
            self._pending[fragment.timecode] = fragment.frames
        try:
            connection.send(fragment.data)
        except OSError:
            self._drop(connection)
            return
        self._add("fragments_sent", 1)

    def finish(self, timeout: float) -> None:
        """End the upload: the last acks are awaited up to ``timeout`` s."""
        connection, self._connection = self._connection, None
        if connection is not None:
            connection.finish(timeout)
            self._forget_pending()

    def check_acks(self, limit_ns: int) -> None:
        """Drop the connection when its fragments have had no acknowledgement for ``limit_ns``.

        Called on the watch thread; the fragment sender sees the connection
        failed, counts what it held lost and reconnects with back-off.
        """
        now = self._clock.monotonic_ns()
        with self._lock:
            connection = self._connection
            silent = now - self._heard_ns
            if connection is None or not self._pending or silent < limit_ns:
                return
            waiting = len(self._pending)
            self._heard_ns = now
            self.counts["ack_timeouts"] += 1
            self.outage = True
        reason = (
            f"no acknowledgement from PutMedia for {silent / 1e9:g} s ({waiting} fragments waiting)"
        )
        glass = self._glass
        glass.last_error = reason
        if self.fatal is None and not self._stopping.is_set():
            glass.state = SpyGlassState.ERROR
        logger.warning("KVSSpyGlass %r: %s; reconnecting", glass.name, reason)
        connection.abandon(reason)

    def _add(self, key: str, number: int) -> None:
        with self._lock:  # the reader thread counts acks meanwhile
            self.counts[key] += number

    def _lose(self, fragment: Fragment) -> None:
        with self._lock:
            self.counts["fragments_lost"] += 1
            self.counts["frames_lost"] += fragment.frames

    def _forget_pending(self) -> None:
        """The connection ended: what it had not acknowledged is lost."""
        with self._lock:  # an ack read meanwhile counts a fragment sent, or this lost: not both
            pending, self._pending = self._pending, {}
            self.counts["fragments_lost"] += len(pending)
            self.counts["frames_lost"] += sum(pending.values())

    def _usable_connection(self, header: bytes) -> PutMediaConnection | None:
        connection = self._connection
        if connection is not None and connection.failure is not None:
            self._drop(connection)
            connection = None
        if connection is not None and (
            self._due_for_rotation(connection) or connection.header is not header
        ):
            self._connection = None
            connection.finish(timeout=1.0)  # its last acks come before the server ends
            self._forget_pending()
            self._add("rotations", 1)
            connection = None
        if connection is None and self.fatal is None:
            connection = self._connect(header)
        return connection

    def _due_for_rotation(self, connection: PutMediaConnection) -> bool:
        if connection.age >= self._glass.max_connection_s:
            return True
        left = connection.credentials.seconds_left()
        return left is not None and left <= self._glass.credentials_margin_s

    def _drop(self, connection: PutMediaConnection) -> None:
        """A connection failed: classify why, close it, and back off before the next."""
        self._connection = None
        connection.close()
        self._forget_pending()
        reason = connection.failure or "the connection failed"
        code = connection.error_code
        if code is not None and is_fatal(code):
            self._end(f"PutMedia answered {reason}")
        elif connection.status == 404:
            self._end(f"PutMedia answered {reason}: the stream does not exist")
        elif connection.status == 403:
            self._refused += 1
            if self._refused >= 2:  # refused again with fresh credentials
                self._end(f"PutMedia refused the credentials: {reason}")
        self._failures += 1
        self._glass.last_error = reason
        if self.fatal is None:
            logger.warning("KVSSpyGlass %r: %s; reconnecting", self._glass.name, reason)

    def _end(self, reason: str) -> None:
        if self.fatal is None:
            self.fatal = reason
            logger.error("KVSSpyGlass %r stops streaming: %s", self._glass.name, reason)

    def _connect(self, header: bytes) -> PutMediaConnection | None:
        glass = self._glass
        if self._failures:
            delay = backoff_delay(self._failures, glass.reconnect_initial, glass.reconnect_max)
            if self._stopping.wait(delay):
                return None
            self._add("reconnects", 1)
        wait = self._last_attempt + MIN_CONNECT_INTERVAL_S - time.monotonic()
        if wait > 0 and self._stopping.wait(wait):
            return None
        self._last_attempt = time.monotonic()
        try:
            connection = PutMediaConnection(
                self._endpoint(),
                stream_name=glass.stream_name,
                region=glass.stream_region,
                credentials=self._handler.credentials(),
                producer_start=self.producer_start,
                on_ack=self._on_ack,
                timeout=glass.timeout,
                name=glass.name,
            )
        except Exception as error:  # any failure here is a failed connection
            self._connect_failed(error)
            return None
        self._add("connections", 1)
        connection.header = header  # a new encoder's stream needs a new connection
        try:
            connection.send(header)
        except OSError:  # refused at once (403, 5xx ...): said why in its answer
            connection.responded.wait(glass.timeout)
            self._drop(connection)
            return None
        self._connection = connection
        self._failures = 0
        return connection

    def _connect_failed(self, error: Exception) -> None:
        self._add("connect_failures", 1)
        self._failures += 1
        name = type(error).__name__
        code = getattr(error, "response", {}).get("Error", {}).get("Code", "")
        reason = f"{name} {code}".strip()
        self._glass.last_error = f"cannot open the upload: {reason}"
        if code in ("ResourceNotFoundException", "NotAuthorizedException"):
            self._end(f"{code} from Kinesis Video Streams")
        if self._failures == 1:
            logger.warning("KVSSpyGlass %r: cannot open the upload (%s)", self._glass.name, reason)

    def _endpoint(self) -> str:
        glass = self._glass
        client = self._handler.boto3_session(glass.stream_region).client(
            "kinesisvideo", region_name=glass.stream_region, endpoint_url=glass.endpoint_url
        )
        answer = client.get_data_endpoint(StreamName=glass.stream_name, APIName="PUT_MEDIA")
        endpoint: str = glass.data_endpoint_url or answer["DataEndpoint"]
        return endpoint

    # -- acks (on the connection's reader thread) -------------------------------------

    def _on_ack(self, ack: Ack) -> None:
        code = ack.error_id if ack.event_type == "ERROR" else None
        back = False
        with self._lock:
            self._heard_ns = self._clock.monotonic_ns()
            self.acks[ack.event_type] += 1
            if ack.event_type == "RECEIVED" and self.outage:
                self.outage, back = False, True
            if ack.event_type == "RECEIVED" and ack.fragment_timecode is not None:
                frames = self._pending.pop(ack.fragment_timecode, None)
                if frames is not None:
                    self.counts["fragments_received"] += 1
                    self.counts["frames_sent"] += frames
                self._refused = 0
            if code is not None:
                self.errors[code] += 1
        if back and self.fatal is None and not self._stopping.is_set():
            self._glass.state = SpyGlassState.STREAMING
            logger.info("KVSSpyGlass %r: acknowledgements came back", self._glass.name)
        if code is not None and code not in self._logged_codes:  # once per code
            self._logged_codes.add(code)
            logger.warning(
                "KVSSpyGlass %r: PutMedia error %d %s (fragment %s)",
                self._glass.name,
                code,
                error_name(code),
                ack.fragment_timecode,
            )
