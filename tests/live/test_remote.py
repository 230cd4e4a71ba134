"""A fleet's remote box: garbage it answers marks it (its poller goes on), its token is never shown."""

from __future__ import annotations

import json
import logging
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from framescope import Pipeline
from framescope.live import LiveView
from framescope.live.remote import RemoteBox, redact_url
from tests.polling import wait_for

from .views import view_json, view_showing

pytestmark = pytest.mark.integration

SECRET = "FleetTokenSecret0123"


class Box:
    """A real HTTP server on loopback standing for a box: it answers whatever the test sets."""

    def __init__(self) -> None:
        self.body = b"{}"
        self.status = 200
        self.authorizations: list[str] = []
        box = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                box.authorizations.append(self.headers.get("Authorization", ""))
                body = box.body
                self.send_response(box.status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(10)


@pytest.fixture
def box() -> Iterator[Box]:
    served = Box()
    yield served
    served.close()


def good_snapshot() -> bytes:
    pipeline = Pipeline(name="Far", debug=True).add(lambda x: x, "Detect").parallelize()
    for _ in pipeline.run(range(10)):
        pass
    body = json.dumps(pipeline.snapshot().to_dict()).encode()
    pipeline.cleanup()
    return body


def why(shown: dict[str, Any], prefix: str) -> str:
    reason: str = shown.get("unreachable_reasons", {}).get(prefix, "")
    return reason


def test_a_box_answering_garbage_is_marked_and_its_poller_goes_on(box: Box) -> None:
    good = good_snapshot()
    local = Pipeline(name="Here").add(lambda x: x, "Work")
    malformed = json.loads(good)
    malformed["traces"] = [-1]
    nan = json.loads(good)
    nan["stages"][0]["latency"]["count"] = float("nan")
    fleet = LiveView(local, f"http://127.0.0.1:{box.port}/", refresh=0.02).start()
    prefix = f"127_0_0_1_{box.port}"
    remote = fleet.remotes[0]
    try:
        box.body = good
        shown = view_showing(
            fleet, lambda v: f"{prefix}__Far__Detect" in {s["key"] for s in v["stages"]}
        )
        assert shown["unreachable"] == {} and shown["unreachable_reasons"] == {}
        for body, reason in [
            (b"{not json", "answers garbage: JSONDecodeError"),
            (json.dumps(malformed).encode(), "answers garbage: SnapshotFormatError: traces[0]: "),
            (json.dumps(nan).encode(), "stages[0].latency.count: expected a non-negative integer"),
            (b"[1, 2]", "data: expected an object, got list"),
            (b"[" * 100_000, "answers garbage: ValueError: JSON nested too deeply"),
        ]:
            box.body = body
            shown = view_showing(fleet, lambda v, reason=reason: reason in why(v, prefix))
            assert prefix in shown["unreachable"]  # shown as unreachable, with its reason
            assert shown["unreachable"][prefix] > 0  # since its last good snapshot
            assert remote.thread is not None and remote.thread.is_alive()
            # Its last good snapshot stays in the merged view, marked.
            assert f"{prefix}__Far__Detect" in {s["key"] for s in shown["stages"]}
        failures = remote.failures
        box.body = good  # it answers a snapshot again: the same poller picks it up
        shown = view_showing(fleet, lambda v: not v["unreachable"])
        assert shown["unreachable_reasons"] == {} and remote.reachable and remote.problem is None
        assert remote.failures >= failures >= 5
        assert remote.thread is not None and remote.thread.is_alive()
    finally:
        assert fleet.close(timeout=8)
    assert remote.thread is not None and not remote.thread.is_alive()


def test_a_box_token_is_in_no_log_line_repr_or_error(
    box: Box, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    silent_port = closed.getsockname()[1]
    closed.close()  # nothing listens there: the box does not answer
    box.body = b"{garbage"
    fleet = LiveView(
        f"http://127.0.0.1:{silent_port}/?token={SECRET}",
        f"http://127.0.0.1:{box.port}/?token={SECRET}&password={SECRET}x",
        refresh=0.02,
    ).start()
    try:
        wait_for(
            lambda: all(r.failures >= 2 and r.problem for r in fleet.remotes),
            15,
            "two failed polls each",
        )
        silent, answering = fleet.remotes
        assert silent.problem is not None and silent.problem.startswith("does not answer")
        assert answering.problem is not None and answering.problem.startswith("answers garbage")
        box.status, box.body = 401, b"unauthorised\n"
        failures = answering.failures
        wait_for(lambda: answering.failures >= failures + 2, 15, "two more failed polls")
        assert answering.problem is not None and "401" in answering.problem
        # The box still gets its token: in the Authorization header, not in the URL.
        assert f"Bearer {SECRET}" in box.authorizations
        messages = [record.getMessage() for record in caplog.records]
        assert any("does not answer" in m and f":{silent_port}/" in m for m in messages)
        assert any("answers garbage" in m for m in messages)
        shown = [
            *messages,
            *(record.getMessage() for record in caplog.records if record.exc_info),
            repr(silent),
            repr(answering),
            silent.url,
            answering.url,
            json.dumps(view_json(fleet)),
        ]
        for text in shown:
            assert SECRET not in text, text
        assert f"'http://127.0.0.1:{silent_port}/snapshot.json'" in repr(silent)
        assert "?password=***'" in repr(answering)
    finally:
        assert fleet.close(timeout=8)
    with pytest.raises(ValueError, match="must be a LiveView URL") as refused:
        RemoteBox(f"ftp://127.0.0.1/?token={SECRET}", 1.0)
    assert SECRET not in str(refused.value)


def test_redact_url_hides_every_secret_and_keeps_the_rest() -> None:
    assert (
        redact_url(f"https://user:{SECRET}@box:8321/snapshot.json?token={SECRET}&n=1&Key=k")
        == "https://user:***@box:8321/snapshot.json?token=***&n=1&Key=***"
    )
    assert redact_url("http://box:8321/") == "http://box:8321/"


def test_a_box_is_polled_on_the_views_clock(box: Box) -> None:
    from framescope.clock import FakeClock
    from tests.polling import holds_within

    box.body = good_snapshot()
    clock = FakeClock()
    local = Pipeline(name="Here").add(lambda x: x, "Work")
    fleet = LiveView(local, f"http://127.0.0.1:{box.port}/", refresh=60, clock=clock).start()
    remote = fleet.remotes[0]
    try:
        for polls in (1, 2, 3):  # at once, at start; then once each 60 s of the view's clock
            if polls > 1:
                clock.advance(60)
            # last_seen is the clock's wall time of the poll
            assert holds_within(lambda: remote.last_seen == clock.wall().timestamp())
            assert len(box.authorizations) == polls and remote.reachable
    finally:
        assert fleet.close(timeout=8)
