"""The live view's endpoints, without a browser: page, SSE, JSON, MJPEG, tokens, limits, fleet."""

from __future__ import annotations

import io
import json
import socket
import threading
import urllib.error
import urllib.request
from typing import Any

import numpy as np
import pytest

from framescope import Pipeline
from framescope.clock import FakeClock
from framescope.live import LiveView
from framescope.pipeline.model.state import PipelineState
from tests.polling import eventually, holds_within, wait_for
from tests.slow_clients import SlowClients, answer_of

from ..pipeline.helpers import Gate
from .views import view_showing, with_query

pytestmark = pytest.mark.integration


def get(url: str, timeout: float = 5) -> bytes:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        body: bytes = response.read()
        return body


def status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            code: int = response.status
            return code
    except urllib.error.HTTPError as error:
        return error.code


def keyed(shown: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The stages a view shows, by key."""
    return {stage["key"]: stage for stage in shown["stages"]}


def running(name: str = "Cam") -> Pipeline:
    pipeline = Pipeline(name=name, debug=True).add(lambda x: x, "Detect")
    pipeline.add(lambda x: x, "Draw").parallelize(queue_size=4)
    for _ in pipeline.run(range(20)):
        pass
    return pipeline


def test_a_snapshot_that_fails_is_logged_and_publishing_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    pipeline = running()

    class Flaky:
        calls = 0

        def snapshot(self) -> Any:
            self.calls += 1
            if self.calls in (2, 3):
                raise RuntimeError("reading failed")
            return pipeline.snapshot()

    source = Flaky()
    with LiveView(source, refresh=0.02) as view:
        assert holds_within(lambda: view.published(after=0, timeout=1)[0] >= 3)
    assert source.calls >= 5  # the two failed rounds did not end the publishing
    assert caplog.text.count("live view: a snapshot failed") == 2
    assert "reading failed" in caplog.text
    pipeline.cleanup()


def test_the_page_and_json_endpoints() -> None:
    pipeline = running()
    with LiveView(pipeline, refresh=0.05) as view:
        assert view.url.startswith("http://127.0.0.1:") and "token" not in view.url
        page = get(view.url).decode()
        assert page.startswith("<!doctype html>") and "EventSource" in page
        assert (
            "http" not in page.split("<script>")[1].split("</script>")[0].replace("location", "")
            or "cdn" not in page.lower()
        )  # self-contained: nothing fetched from elsewhere
        assert json.loads(get(with_query(view, "healthz"))) == {
            "status": "ok",
            "problems": [],
            "sources": {},
        }
        shown = json.loads(get(with_query(view, "view.json")))
        assert [s["key"] for s in shown["stages"]] == ["Cam__Detect", "Cam__Draw"]
        assert shown["counters"]["completed"] == 20 and shown["verdict"]
        for stage in shown["stages"]:
            assert set(stage) >= {"state", "input", "fps", "p50_ms", "p90_ms", "queued", "capacity"}
        full = json.loads(get(with_query(view, "snapshot.json")))
        assert full["pipeline"] == "Cam" and len(full["stages"]) == 2
        state = PipelineState.from_json(get(with_query(view, "state.json")).decode())
        assert set(state.node_states) == {"Cam__Detect", "Cam__Draw"}
        assert status(with_query(view, "nothing")) == 404
    pipeline.cleanup()


def test_events_arrive_as_server_sent_events_and_change() -> None:
    pipeline = Pipeline(name="Cam", debug=True).add(lambda x: x, "Detect").parallelize()
    with LiveView(pipeline, refresh=0.05) as view:
        stream = urllib.request.urlopen(with_query(view, "events"), timeout=5)
        assert stream.headers["Content-Type"] == "text/event-stream"
        assert stream.readline() == b"retry: 2000\n" and stream.readline() == b"\n"
        counts = []
        for _ in range(3):
            assert stream.readline() == b"event: snapshot\n"
            data = stream.readline()
            assert data.startswith(b"data: ") and stream.readline() == b"\n"
            counts.append(json.loads(data[6:])["counters"]["forwarded"])
            pipeline.forward(len(counts))
        stream.close()
    assert counts[0] < counts[-1]  # the numbers change over time
    pipeline.cleanup()


def test_the_preview_streams_jpegs_of_the_frames() -> None:
    pytest.importorskip("av")
    from PIL import Image

    pipeline = Pipeline(name="Cam")
    view = LiveView(pipeline, refresh=0.05)
    pipeline.add(lambda f: f, "Annotate").add(view.preview("annotated", fps=20))
    pipeline.parallelize(queue_size=4)
    with view:
        for _ in range(10):
            pipeline.forward(np.full((120, 160, 3), 200, np.uint8))
        stream = urllib.request.urlopen(with_query(view, "video/annotated.mjpg"), timeout=5)
        assert stream.headers["Content-Type"] == "multipart/x-mixed-replace; boundary=frame"
        assert stream.readline() == b"--frame\r\n"
        assert stream.readline() == b"Content-Type: image/jpeg\r\n"
        length = int(stream.readline().split(b":")[1])
        assert stream.readline() == b"\r\n"
        image = Image.open(io.BytesIO(stream.read(length)))
        assert image.size == (160, 120) and image.format == "JPEG"
        stream.close()
        assert status(with_query(view, "video/other.mjpg")) == 404
    pipeline.cleanup()


def test_beyond_loopback_every_endpoint_needs_the_token() -> None:
    pipeline = running()
    with LiveView(pipeline, host="0.0.0.0", refresh=0.05) as view:
        assert view.token and f"?token={view.token}" in view.url
        assert view.token not in repr(view) and "?token=***" in repr(view)
        base = f"http://127.0.0.1:{view.port}/"
        for path in (
            "",
            "healthz",
            "events",
            "view.json",
            "snapshot.json",
            "state.json",
            "video/x.mjpg",
        ):
            assert status(base + path) == 401
            assert status(base + path + "?token=wrong-token") == 401
        assert status(with_query(view, "healthz")) == 200
        request = urllib.request.Request(
            base + "healthz", headers={"Authorization": f"Bearer {view.token}"}
        )
        with urllib.request.urlopen(request, timeout=5) as response:
            assert response.status == 200
    pipeline.cleanup()


def until_ok(url: str, limit: float = 10.0) -> None:
    wait_for(lambda: status(url) == 200, limit, "the slots freed")


def test_too_many_clients_get_503_and_idle_ones_are_let_go() -> None:
    pipeline = running()
    with LiveView(pipeline, max_connections=2, request_timeout=5, refresh=0.05) as view:
        # Two event streams hold both slots: a third request is answered 503.
        streams = [urllib.request.urlopen(with_query(view, "events"), timeout=5) for _ in range(2)]
        assert status(with_query(view, "healthz")) == 503
        for stream in streams:
            stream.close()
        until_ok(with_query(view, "healthz"))
        # Connections that send nothing take no slot; past two of them the oldest
        # makes room (503), and the rest are let go at the read timeout.
        idle = [socket.create_connection(("127.0.0.1", view.port)) for _ in range(6)]
        assert answer_of(idle[0]).startswith(b"HTTP/1.0 503")
        for connection in idle[1:]:
            answer_of(connection)
        until_ok(with_query(view, "healthz"))
    pipeline.cleanup()


def test_slow_clients_never_keep_one_with_the_token_out() -> None:
    pipeline = running()
    view = LiveView(
        pipeline,
        host="0.0.0.0",
        max_connections=4,
        request_timeout=30,
        header_timeout=2,
        refresh=0.05,
    ).start()
    slow = SlowClients(view.port, 12, "/healthz")
    try:
        assert holds_within(lambda: view._server.handler_threads() == 4)  # 4 still on their head
        for _ in range(5):
            assert status(with_query(view, "healthz")) == 200
        timed_out = slow.all_cut(header_timeout=2)
        assert timed_out >= 1 and view._server.timed_out == timed_out
    finally:
        slow.close()
        view.close()
        pipeline.cleanup()


def test_streams_whose_clients_left_free_their_slots_without_a_new_frame() -> None:
    pipeline = Pipeline(name="Cam")
    view = LiveView(pipeline, refresh=0.05, max_connections=16)
    pipeline.add(lambda f: f, "Annotate").add(view.preview("still"))  # gets no frame
    with view:
        fill_then_leave(view, "video/still.mjpg", "multipart/x-mixed-replace")
    pipeline.cleanup()


def fill_then_leave(view: LiveView, path: str, content_type: str) -> None:
    """Take every slot with a stream of ``path``, close them all: the slots come free."""
    streams = [
        urllib.request.urlopen(with_query(view, path), timeout=5)
        for _ in range(view._server.max_connections)
    ]
    assert all(s.headers["Content-Type"].startswith(content_type) for s in streams)
    assert status(with_query(view, "healthz")) == 503  # every slot is a stream's
    for stream in streams:
        stream.close()
    until_ok(with_query(view, "healthz"))
    assert holds_within(lambda: view._server.handler_threads() == 0)


def test_event_streams_whose_clients_left_free_their_slots() -> None:
    # An event stream writes at least every four refreshes (a new page view, or the
    # same one again): a client that left is found by that write, not held for ever.
    pipeline = Pipeline(name="Cam").add(lambda f: f, "Annotate")
    view = LiveView(pipeline, refresh=0.05, max_connections=16)
    with view:
        fill_then_leave(view, "events", "text/event-stream")
    pipeline.cleanup()


def test_a_stream_ends_when_its_preview_stops() -> None:
    pipeline = Pipeline(name="Cam")
    view = LiveView(pipeline, refresh=0.05)
    pipeline.add(lambda f: f, "Annotate").add(view.preview("still"))
    with view:
        stream = urllib.request.urlopen(with_query(view, "video/still.mjpg"), timeout=5)
        assert holds_within(lambda: view._server.handler_threads() == 1)
        pipeline.cleanup()  # stops the preview's encoder: no JPEG will come
        assert stream.read() == b""  # the end, not a stream held open for ever
        assert holds_within(lambda: view._server.handler_threads() == 0)


def serve_again(pipeline: Pipeline, port: int) -> LiveView:
    """Serve on ``port`` again (the old socket may take a moment to let it go)."""
    view: LiveView = eventually(
        lambda: LiveView(pipeline, port=port, refresh=0.05).start(), 10, every=0.1, errors=True
    )
    return view


def test_a_fleet_view_merges_boxes_and_marks_one_that_goes_away() -> None:
    box1, box2 = running("Left"), running("Right")
    remote1 = LiveView(box1, refresh=0.05).start()
    remote2 = LiveView(box2, refresh=0.05).start()
    fleet = LiveView(remote1.url, remote2.url, refresh=0.05).start()
    try:
        shown = view_showing(fleet, lambda v: len(v["stages"]) >= 4, 10)  # polled one by one
        keys = {s["key"] for s in shown["stages"]}
        assert f"127_0_0_1_{remote1.port}__Left__Detect" in keys
        assert f"127_0_0_1_{remote2.port}__Right__Draw" in keys
        assert shown["unreachable"] == {}
        remote2.close()
        shown = view_showing(fleet, lambda v: v["unreachable"], 10)
        ((gone, last_seen),) = shown["unreachable"].items()
        assert gone == f"127_0_0_1_{remote2.port}" and last_seen > 0
        assert any(k.endswith("__Right__Draw") for k in (s["key"] for s in shown["stages"]))
        remote2 = serve_again(box2, remote2.port)  # the box answers again
        shown = view_showing(fleet, lambda v: not v["unreachable"], 10)
        assert shown["unreachable"] == {}
    finally:
        fleet.close()
        remote1.close()
        remote2.close()
        box1.cleanup()
        box2.cleanup()


def test_a_box_that_never_answers_holds_up_neither_the_page_nor_the_others() -> None:
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(4)  # takes the connection, never answers
    box = running("Live")
    remote = LiveView(box, refresh=0.05).start()
    fleet = LiveView(
        f"http://127.0.0.1:{silent.getsockname()[1]}/", remote.url, refresh=0.05
    ).start()
    try:
        shown = view_showing(fleet, lambda v: v["stages"], 10)
        assert {s["key"] for s in shown["stages"]} >= {f"127_0_0_1_{remote.port}__Live__Detect"}
        # Still publishing every 0.05 s while the silent box's poll hangs (up to 5 s).
        now = fleet.published()[0]
        assert fleet.published(after=now + 3, timeout=2)[0] >= now + 4
        assert list(shown["unreachable"]) == [f"127_0_0_1_{silent.getsockname()[1]}"]
    finally:
        assert fleet.close(timeout=8)  # the silent box's poller gives up within its timeout
        remote.close()
        box.cleanup()
        silent.close()


def test_a_box_that_closes_mid_answer_is_marked_and_polled_again() -> None:

    from framescope.live.remote import RemoteBox

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(4)
    answered = threading.Event()

    def answer_short() -> None:  # promises 100 bytes, sends 1, hangs up
        for _ in range(2):
            connection, _ = server.accept()
            with connection:
                connection.recv(4096)
                connection.sendall(b"HTTP/1.0 200 OK\r\nContent-Length: 100\r\n\r\n{")
        answered.set()

    thread = threading.Thread(target=answer_short)
    thread.start()
    remote = RemoteBox(f"http://127.0.0.1:{server.getsockname()[1]}/snapshot.json", 2.0)
    stop = threading.Event()
    try:
        remote.poll(stop)  # an IncompleteRead: counted, not raised into the poller's thread
        remote.poll(stop)
        assert answered.wait(10)
        assert not remote.reachable and remote.failures == 2
    finally:
        thread.join(10)
        server.close()


def test_drops_at_the_input_show_on_the_first_stage() -> None:
    gate = Gate()
    pipeline = Pipeline(name="Cam", debug=True).add(gate).add(lambda x: x, "Draw")
    pipeline.parallelize(queue_size=1, overflow="drop_newest")
    with LiveView(pipeline, refresh=0.05) as view:
        for item in range(6):
            pipeline.forward(item)
        assert gate.entered.wait(10)
        for item in range(6):
            pipeline.forward(item)
        lost = pipeline.counters()["rejected"] + pipeline.counters()["dropped"]
        assert lost > 0
        shown = view_showing(view, lambda v: keyed(v)["Cam__Gate"]["dropped"] == lost, 10)
        stages = keyed(shown)
        assert stages["Cam__Gate"]["dropped"] == lost
        assert stages["Cam__Draw"]["dropped"] == 0
        gate.release.set()
    pipeline.cleanup()


def test_a_stage_behind_a_gated_one_shows_its_input_blocked() -> None:
    gate = Gate()
    pipeline = Pipeline(name="Cam", debug=True).add(lambda x: x, "Decode").add(gate)
    pipeline.parallelize(queue_size=1)
    with LiveView(pipeline, refresh=0.05) as view:
        for item in range(3):
            pipeline.forward(item)
        assert gate.entered.wait(10)
        shown = view_showing(view, lambda v: keyed(v)["Cam__Gate"]["input"] == "BLOCKED", 10)
        stages = keyed(shown)
        assert stages["Cam__Gate"]["state"] == "PROCESSING"
        assert stages["Cam__Gate"]["input"] == "BLOCKED"  # Decode waits to hand item 2 over
        assert stages["Cam__Gate"]["queued"] == 1
        gate.release.set()
    pipeline.cleanup()


def test_a_preview_of_a_stage_taps_it_without_adding_a_stage() -> None:
    pytest.importorskip("av")
    from PIL import Image

    pipeline = Pipeline(name="Cam").add(lambda f: f[:, ::2], "Annotate")
    view = LiveView(pipeline, refresh=0.05)
    tap = view.preview("annotated", "Annotate", fps=20)
    assert pipeline.stage_names == ["Annotate"]
    with pytest.raises(ValueError, match="there is already a preview called 'annotated'"):
        view.preview("annotated", "Annotate")
    with pytest.raises(ValueError, match=r"stage: no pipeline of this view can show 'Nope'"):
        view.preview("other", "Nope")
    pipeline.parallelize(queue_size=4)
    with view:
        for _ in range(10):
            pipeline.forward(np.full((120, 160, 3), 90, np.uint8))
        latest = tap.latest(timeout=5)
        assert latest is not None
        image = Image.open(io.BytesIO(latest[1]))
        assert image.size == (80, 120)  # the stage's result, not its input
    assert tap.frames_seen == 10
    pipeline.cleanup()


def test_bad_arguments() -> None:
    pipeline = Pipeline().add(lambda x: x, "A")
    with pytest.raises(ValueError, match="sources"):
        LiveView()
    with pytest.raises(TypeError, match="sources"):
        LiveView(42)
    with pytest.raises(ValueError, match="remote must be a LiveView URL"):
        LiveView("ftp://box/")
    with pytest.raises(ValueError, match="token must be at least 8 characters"):
        LiveView(pipeline, token="short")
    with pytest.raises(TypeError, match="token must be a str or None, got int"):
        LiveView(pipeline, token=12345678)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="clock must be a framescope Clock"):
        LiveView(pipeline, clock=object())  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="refresh"):
        LiveView(pipeline, refresh=0)
    with pytest.raises(ValueError, match="header_timeout"):
        LiveView(pipeline, header_timeout=0)


def test_an_event_for_twenty_stages_stays_small() -> None:
    pipeline = Pipeline(name="Cam", debug=True)
    for index in range(20):
        pipeline.add(lambda x: x, f"Stage{index:02d}")
    pipeline.parallelize(queue_size=4)
    for _ in pipeline.run(range(200)):
        pass
    with LiveView(pipeline, refresh=0.05) as view:
        event = get(with_query(view, "view.json"))
    assert len(event) < 50_000
    assert len(json.loads(event)["stages"]) == 20
    pipeline.cleanup()


def test_snapshots_are_published_and_streamed_on_the_views_clock() -> None:
    clock = FakeClock()
    pipeline = Pipeline(name="Cam").add(lambda x: x, "Detect").parallelize()
    with LiveView(pipeline, refresh=60, clock=clock) as view:
        assert view.published()[0] == 1  # the first one, at start
        stream = urllib.request.urlopen(with_query(view, "events"), timeout=5)
        assert stream.readline() == b"retry: 2000\n" and stream.readline() == b"\n"
        counts = []
        for version in (2, 3):  # one snapshot each 60 s of the view's clock
            assert stream.readline() == b"event: snapshot\n"
            counts.append(json.loads(stream.readline()[6:])["counters"]["forwarded"])
            assert stream.readline() == b"\n"
            pipeline.forward(version)
            clock.advance(60)
            assert holds_within(lambda version=version: view.published()[0] == version)
        assert view.published()[0] == 3
        stream.close()
    assert counts == [0, 1]
    pipeline.cleanup()


def test_every_wait_of_the_view_and_its_previews_is_on_its_clock() -> None:
    clock = FakeClock(autojump=True)  # an unwoken wait moves the clock to its end at once
    pipeline = Pipeline(name="Cam").add(lambda x: x, "Draw")
    view = LiveView(pipeline, clock=clock)
    try:
        start = clock.monotonic_ns()
        assert view.published(after=0, timeout=30)[0] == 0  # nothing published: not started
        assert clock.monotonic_ns() - start == 30_000_000_000
        tap = view.preview("annotated", "Draw")
        assert tap.latest(timeout=45) is None  # no frame came within 45 s of the clock
        assert clock.monotonic_ns() - start == 75_000_000_000
    finally:
        view.close()
        pipeline.cleanup()
