"""PutMedia acknowledgements: parsed from the response stream, classified, counted.

The service answers a PutMedia upload, on the same connection and while the
upload goes on, with JSON objects such as
``{"EventType":"PERSISTED","FragmentTimecode":1732012345678,"FragmentNumber":"9134..."}``.
They are not reliably separated by newlines, so :class:`AckParser` finds
each object by matching braces (outside strings).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

__all__ = [
    "ACK_EVENT_TYPES",
    "ERROR_NAMES",
    "FATAL_ERRORS",
    "Ack",
    "AckParser",
    "error_name",
    "is_fatal",
]

logger = logging.getLogger(__name__)

ACK_EVENT_TYPES = ("BUFFERING", "RECEIVED", "PERSISTED", "ERROR", "IDLE")

ERROR_NAMES: dict[int, str] = {
    4000: "STREAM_READ_ERROR",
    4001: "MAX_FRAGMENT_SIZE_REACHED",
    4002: "MAX_FRAGMENT_DURATION_REACHED",
    4003: "MAX_CONNECTION_DURATION_REACHED",
    4004: "FRAGMENT_TIMECODE_LESSER_THAN_PREVIOUS",
    4005: "MORE_THAN_ALLOWED_TRACKS_FOUND",
    4006: "INVALID_MKV_DATA",
    4007: "INVALID_PRODUCER_TIMESTAMP",
    4008: "STREAM_NOT_ACTIVE",
    4009: "FRAGMENT_METADATA_LIMIT_REACHED",
    4010: "TRACK_NUMBER_MISMATCH",
    4011: "FRAMES_MISSING_FOR_TRACK",
    4012: "INVALID_FRAGMENT_METADATA",
    4500: "KMS_KEY_ACCESS_DENIED",
    4501: "KMS_KEY_DISABLED",
    4502: "KMS_KEY_VALIDATION_ERROR",
    4503: "KMS_KEY_UNAVAILABLE",
    4504: "KMS_KEY_INVALID_USAGE",
    4505: "KMS_KEY_INVALID_STATE",
    4506: "KMS_KEY_NOT_FOUND",
    5000: "INTERNAL_ERROR",
    5001: "ARCHIVAL_ERROR",
}
"""PutMedia error codes (``ErrorId`` of an ``ERROR`` acknowledgement) and their names."""

FATAL_ERRORS = frozenset({4005, 4008, 4010, *range(4500, 4507)})
"""Codes a new connection cannot fix: the stream is gone, the key is unusable, or the
track layout is refused. The others are retried on a new connection, with back-off."""


def error_name(code: int) -> str:
    """The name of a PutMedia error code (``"error 4999"`` for one not known)."""
    return ERROR_NAMES.get(code, f"error {code}")


def is_fatal(code: int) -> bool:
    """Whether an error code ends streaming (see :data:`FATAL_ERRORS`)."""
    return code in FATAL_ERRORS


@dataclass(frozen=True, slots=True)
class Ack:
    """One acknowledgement: its event type, fragment timecode and number, error code."""

    event_type: str
    fragment_timecode: int | None = None
    fragment_number: str | None = None
    error_id: int | None = None

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Ack:
        """Read the service's JSON object (unknown keys are ignored)."""
        timecode = data.get("FragmentTimecode")
        error = data.get("ErrorId")
        number = data.get("FragmentNumber")
        return cls(
            event_type=str(data.get("EventType", "")).upper(),
            fragment_timecode=int(timecode) if timecode is not None else None,
            fragment_number=str(number) if number is not None else None,
            error_id=int(error) if error is not None else None,
        )


class AckParser:
    """Splits a byte stream into JSON objects by matching braces; :meth:`feed` returns acks.

    Bytes outside any object (newlines, spaces) are skipped; an object that
    is not valid JSON is counted in ``malformed`` and skipped. A stream that
    never closes its object is bounded by ``max_object`` bytes.
    """

    def __init__(self, max_object: int = 65536) -> None:
        self._buffer = bytearray()
        self._depth = 0
        self._in_string = False
        self._escaped = False
        self._max_object = max_object
        self.malformed = 0

    def feed(self, data: bytes) -> list[Ack]:
        """Parse ``data`` (any split of the stream) and return the acks completed in it."""
        acks: list[Ack] = []
        for byte in data:
            if self._depth == 0:
                if byte == 0x7B:  # "{"
                    self._buffer = bytearray(b"{")
                    self._depth = 1
                continue
            self._buffer.append(byte)
            if len(self._buffer) > self._max_object:
                self.malformed += 1
                self._reset()
                continue
            if self._in_string:
                if self._escaped:
                    self._escaped = False
                elif byte == 0x5C:  # backslash
                    self._escaped = True
                elif byte == 0x22:  # quote
                    self._in_string = False
                continue
            if byte == 0x22:
                self._in_string = True
            elif byte == 0x7B:
                self._depth += 1
            elif byte == 0x7D:  # "}"
                self._depth -= 1
                if self._depth == 0:
                    acks.extend(self._finish())
        return acks

    def _finish(self) -> list[Ack]:
        text = bytes(self._buffer)
        self._reset()
        try:
            data = json.loads(text)
            if not isinstance(data, dict) or "EventType" not in data:
                raise ValueError("not an acknowledgement")
            return [Ack.from_json(data)]
        except ValueError:
            self.malformed += 1
            logger.debug("KVS: an acknowledgement that is not JSON was skipped")
            return []

    def _reset(self) -> None:
        self._buffer = bytearray()
        self._depth = 0
        self._in_string = self._escaped = False
