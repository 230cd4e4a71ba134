"""A fleet's remote box: another LiveView polled for its snapshot, and URLs shown without tokens.

A :class:`RemoteBox` asks one box for ``/snapshot.json`` on a thread of its
own. Nothing the box sends ends that thread: a box that does not answer, or
answers something that is not a snapshot, is marked with the reason (the
page shows it as unreachable) and polled again. Its token travels in the
``Authorization`` header, never in a URL that an error or a log line could
show; :func:`redact_url` hides the secrets of any URL that is shown.
"""

from __future__ import annotations

import json
import logging
import threading
import urllib.request
from http.client import HTTPException
from urllib.parse import parse_qsl, urlencode, urlsplit

from framescope.clock import SYSTEM_CLOCK, TimeSource
from framescope.live._auth import HIDDEN, SECRET_PARAMETERS, redact_url
from framescope.live._pace import Beat
from framescope.pipeline.model.snapshot import PipelineSnapshot

__all__ = ["MAX_ANSWER_BYTES", "SECRET_PARAMETERS", "RemoteBox", "redact_url"]

logger = logging.getLogger(__name__)

MAX_ANSWER_BYTES = 64 * 1024 * 1024
"""The largest snapshot a box may answer; a longer answer is refused unread."""


class RemoteBox:
    """Another LiveView, polled for its full snapshot by a thread of its own.

    A box that does not answer holds up only its own poller (for at most the
    request timeout, 5 s at most), never the page's publisher or other boxes.

    Args:
        url: the box's LiveView URL (its ``?token=`` is sent as a header).
        timeout: seconds a poll may take (5 s at most).
        clock: the clock of the polls' pace and of ``last_seen``.

    Attributes:
        url: where its snapshot is asked for, its secrets hidden (the token goes in a header).
        prefix: its name in the merged view (``box1_8321``).
        snapshot: its last good snapshot (None before the first).
        reachable: whether its last answer was a snapshot.
        problem: why not (``does not answer: ...``, ``answers garbage: ...``); None when it was.
        last_seen: wall time (epoch seconds) of its last good snapshot.
        failures: polls that brought no snapshot, all time.
    """

    def __init__(self, url: str, timeout: float, *, clock: TimeSource | None = None) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(
                "sources: a remote must be a LiveView URL (http://host:port/), "
                f"got {redact_url(url)!r}"
            )
        query = parse_qsl(parts.query, keep_blank_values=True)
        tokens = [value for name, value in query if name == "token"]
        self._token = tokens[0] if tokens else None
        rest = urlencode([(name, value) for name, value in query if name != "token"])
        self._url = f"{parts.scheme}://{parts.netloc}/snapshot.json" + (f"?{rest}" if rest else "")
        self.url = redact_url(self._url)
        self._secrets = [value for value in (self._token, parts.password) if value]
        self._secrets += [v for n, v in query if n.lower() in SECRET_PARAMETERS and v]
        self.prefix = parts.hostname.replace(".", "_") + (f"_{parts.port}" if parts.port else "")
        self.timeout = min(timeout, 5.0)
        self._clock = SYSTEM_CLOCK if clock is None else clock
        self.snapshot: PipelineSnapshot | None = None
        self.reachable = False
        self.problem: str | None = "not asked yet"
        self.last_seen: float | None = None
        self.failures = 0
        self.thread: threading.Thread | None = None

    def __repr__(self) -> str:
        state = "reachable" if self.reachable else f"unreachable ({self.problem})"
        return f"RemoteBox({self.url!r}, {state})"

    def start(self, every: float, stop: threading.Event, name: str) -> None:
        """Poll at once, then every ``every`` seconds of the clock, until ``stop`` is set."""
        beat = Beat(self._clock, every, stop)

        def run() -> None:
            while True:
                try:
                    self.poll(stop)
                except Exception as error:  # a fault of ours must not end the polling either
                    self._failed(f"cannot be read: {self._scrubbed(error)}")
                if not beat.wait():
                    return

        self.thread = threading.Thread(target=run, name=name, daemon=True)
        self.thread.start()

    def poll(self, stop: threading.Event) -> None:
        """Ask the box once for its snapshot; whatever goes wrong marks it, nothing is raised."""
        if stop.is_set():
            return
        request = urllib.request.Request(self._url)
        if self._token is not None:
            request.add_header("Authorization", f"Bearer {self._token}")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:  # http(s)
                body = response.read(MAX_ANSWER_BYTES + 1)
        except (OSError, HTTPException, ValueError) as error:
            # HTTPException: a box that closes mid-answer (IncompleteRead) is not an OSError
            self._failed(f"does not answer: {self._scrubbed(error)}")
            return
        try:
            snapshot = self._parse(body)
        except Exception as error:  # whatever a box sends, it is marked, never raised
            self._failed(f"answers garbage: {self._scrubbed(error)}")
            return
        if not self.reachable and self.failures:
            logger.info("live view: %s answers again", self.url)
        self.snapshot, self.reachable, self.problem = snapshot, True, None
        self.last_seen = self._clock.wall().timestamp()

    @staticmethod
    def _parse(body: bytes) -> PipelineSnapshot:
        if len(body) > MAX_ANSWER_BYTES:
            raise ValueError(f"an answer over {MAX_ANSWER_BYTES} bytes")
        try:
            data = json.loads(body)
        except RecursionError:
            raise ValueError("JSON nested too deeply to be a snapshot") from None
        return PipelineSnapshot.from_dict(data)

    def _failed(self, problem: str) -> None:
        kind = problem.split(":", 1)[0]
        if self.reachable or self.problem is None or not self.problem.startswith(kind):
            logger.warning("live view: %s %s", self.url, problem)
        self.reachable, self.problem = False, problem
        self.failures += 1

    def _scrubbed(self, error: BaseException) -> str:
        """The error as text, with this box's secrets hidden (a message may quote the URL)."""
        text = f"{type(error).__name__}: {error}"
        for secret in self._secrets:
            text = text.replace(secret, HIDDEN)
        return text if len(text) <= 300 else text[:297] + "..."
