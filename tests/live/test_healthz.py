"""/healthz of the live view and of the Prometheus server, over real HTTP on 127.0.0.1."""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from typing import Any

import pytest

from framescope import Pipeline
from framescope.clock import FakeClock
from framescope.live import LiveView
from framescope.pipeline.model.sources import SourceState
from tests.polling import eventually, wait_for

from ..pipeline.test_many_sources import Gate as SilentSource
from .views import with_query

pytestmark = pytest.mark.integration


def answer(url: str) -> tuple[int, dict[str, Any]]:
    """(status, JSON body) of a GET, a 503 included."""
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        with error:
            return error.code, json.loads(error.read())


def test_healthz_answers_503_naming_a_stalled_camera_then_200_once_it_is_back(
    clock: FakeClock,
) -> None:
    prometheus = pytest.importorskip("framescope.exporters.prometheus")
    silent = SilentSource(before=2, after=3)
    pipeline = Pipeline(name="Cams", clock=clock).add(lambda item: item, "Pass").parallelize()
    run = pipeline.run({"cam": silent, "other": range(3)}, stall_after=2.0)
    results: list[Any] = []
    reader = threading.Thread(target=lambda: results.extend(run), name="framescope-test:reader")
    exporter = prometheus.PrometheusExporter().add_pipeline(pipeline)
    view = LiveView(pipeline, refresh=0.05)
    try:
        reader.start()
        view.start()
        metrics = exporter.serve()
        urls = (with_query(view, "healthz"), metrics.url.replace("/metrics", "/healthz"))
        assert silent.waiting.wait(10)
        for url in urls:
            assert answer(url)[0] == 200
        feeds = pipeline._runtime.sources
        assert feeds is not None
        clock.advance(2.0 + feeds.check_every)
        wait_for(lambda: pipeline.snapshot().sources["cam"].state is SourceState.STALLED)
        for url in urls:
            _, body = eventually(lambda url=url: (a := answer(url))[0] == 503 and a)
            assert body["status"] == "unhealthy"
            assert [(p["kind"], p["name"], p["state"]) for p in body["problems"]] == [
                ("source", "cam", "stalled")
            ]
            assert body["problems"][0]["last_frame_age"] == pytest.approx(2.0 + feeds.check_every)
            assert body["sources"]["cam"] == "stalled"
        silent.release.set()
        reader.join(30)
        for url in urls:
            _, body = eventually(lambda url=url: (a := answer(url))[0] == 200 and a)
            assert body == {
                "status": "ok",
                "problems": [],
                "sources": {"cam": "ended", "other": "ended"},
            }
        with urllib.request.urlopen(metrics.url, timeout=5) as scraped:
            assert b"framescope_source_state" in scraped.read()  # /metrics as before
    finally:
        silent.release.set()
        view.close()
        exporter.close()
        pipeline.cleanup()
    assert len(results) == 8


def test_healthz_beyond_loopback_needs_the_token_like_every_endpoint() -> None:
    pipeline = Pipeline(name="Cam").add(lambda x: x, "Pass")
    with LiveView(pipeline, host="0.0.0.0", refresh=0.05) as view:
        base = f"http://127.0.0.1:{view.port}/healthz"
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(base, timeout=5)
        assert refused.value.code == 401
        refused.value.close()
        assert answer(with_query(view, "healthz")) == (
            200,
            {"status": "ok", "problems": [], "sources": {}},
        )
    pipeline.cleanup()


def test_a_slow_stage_blocks_every_camera_and_healthz_stays_200(clock: FakeClock) -> None:
    prometheus = pytest.importorskip("framescope.exporters.prometheus")
    step = threading.Semaphore(0)

    def slow(item: Any) -> Any:  # one item each time the test lets one through
        step.acquire(timeout=30)
        return item

    pipeline = Pipeline(name="Cams", clock=clock).add(slow, "Infer").parallelize(queue_size=2)
    run = pipeline.run({name: range(60) for name in "abc"}, stall_after=1.0)
    reader = threading.Thread(target=lambda: list(run), name="framescope-test:reader")
    exporter = prometheus.PrometheusExporter().add_pipeline(pipeline)
    seen: dict[str, set[str]] = {name: set() for name in "abc"}
    try:
        reader.start()
        wait_for(lambda: pipeline._runtime.sources is not None)
        feeds = pipeline._runtime.sources
        assert feeds is not None
        url = exporter.serve().url.replace("/metrics", "/healthz")
        for done in range(1, 41):  # 10 s of the clock, ten times stall_after
            rounds = feeds.rounds
            clock.advance(feeds.check_every)
            step.release()
            wait_for(lambda done=done: pipeline.snapshot().count("completed") >= done)
            wait_for(lambda rounds=rounds: feeds.rounds > rounds, what="a watcher round")
            status, body = answer(url)
            assert (status, body["problems"]) == (200, [])
            for name, state in body["sources"].items():
                seen[name].add(state)
        assert all("blocked" in states and "stalled" not in states for states in seen.values())
    finally:
        for _ in range(200):
            step.release()
        reader.join(30)
        exporter.close()
        pipeline.cleanup()


def test_a_stalled_stage_is_503_unless_its_bound_is_raised(clock: FakeClock) -> None:
    prometheus = pytest.importorskip("framescope.exporters.prometheus")
    from ..pipeline.helpers import Gate

    gate = Gate()
    pipeline = Pipeline(name="Cam", debug=True, clock=clock).add(lambda x: x, "Decode").add(gate)
    pipeline.parallelize()
    exporter = prometheus.PrometheusExporter().add_pipeline(pipeline)
    views = [LiveView(pipeline, refresh=0.05), LiveView(pipeline, refresh=0.05, stall_after=10)]
    try:
        pipeline.forward(1)
        assert gate.entered.wait(10)
        clock.advance(6.0)  # nothing out for 6 s, one item inside
        urls = [with_query(view.start(), "healthz") for view in views]
        urls += [
            exporter.serve().url.replace("/metrics", "/healthz"),
            exporter.serve(stall_after=10).url.replace("/metrics", "/healthz"),
        ]
        strict, lenient = [urls[0], urls[2]], [urls[1], urls[3]]
        for url in strict:
            _, body = eventually(lambda url=url: (a := answer(url))[0] == 503 and a)
            assert body["problems"] == [
                {
                    "pipeline": "Cam",
                    "kind": "stage",
                    "name": "Cam__Gate",
                    "state": "stalled",
                    "reason": "no item completed for 6.0 s; Cam__Gate is still processing its item",
                    "since": None,
                    "last_frame_age": None,
                }
            ]
        for url in lenient:
            assert answer(url) == (200, {"status": "ok", "problems": [], "sources": {}})
        assert json.loads(views[1].published()[1])["verdict"] != "stalled"  # the page agrees
        with pytest.raises(ValueError, match="stall_after"):
            LiveView(pipeline, stall_after=0)
    finally:
        gate.release.set()
        for view in views:
            view.close()
        exporter.close()
        pipeline.cleanup()
