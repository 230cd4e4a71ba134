"""The health verdict behind /healthz and the heartbeat: every source state, stalls, blocks."""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest

from framescope.clock import FakeClock
from framescope.pipeline import Pipeline
from framescope.pipeline.model.snapshot import PipelineSnapshot
from framescope.pipeline.model.sources import SourceQuality, SourceSnapshot, SourceState
from framescope.pipeline.views.health import RECONNECT_LIMIT_S, Health, Problem, judge_health
from framescope.stats import StatsSnapshot
from tests.polling import wait_for

from .helpers import Gate
from .test_many_sources import Gate as SilentSource


def snapshot_of(*sources: SourceSnapshot, **fields: Any) -> PipelineSnapshot:
    return PipelineSnapshot(
        pipeline="Cams",
        latency=StatsSnapshot(window=1),
        sources={source.name: source for source in sources},
        **fields,
    )


HEALTHY_STATES = ("starting", "running", "blocked", "ended")


@pytest.mark.parametrize("state", list(SourceState))
def test_every_source_state_is_judged(state: SourceState) -> None:
    source = SourceSnapshot("cam", state, since=2.0, reason="why", last_frame_age=7.5)
    health = judge_health(snapshot_of(source, SourceSnapshot("ok", SourceState.RUNNING, 1.0)))
    assert health.sources == {"cam": state.value, "ok": "running"}
    if state.value in HEALTHY_STATES or state is SourceState.RECONNECTING:  # 2 s < the bound
        assert health.healthy and health.http_status == 200 and health.problems == ()
        assert health.line() == "ok"
        return
    assert not health.healthy and health.http_status == 503 and health.status == "unhealthy"
    assert health.problems == (
        Problem("Cams", "source", "cam", state.value, "why", since=2.0, last_frame_age=7.5),
    )
    assert health.line() == f"unhealthy: source cam {state.value} (why)"


def test_a_stalled_source_without_a_reason_says_how_long_no_frame_came() -> None:
    source = SourceSnapshot("cam", SourceState.STALLED, since=1.0, last_frame_age=6.25)
    (problem,) = judge_health(snapshot_of(source)).problems
    assert problem.reason == "no frame for 6.2 s"


def test_reconnecting_with_no_frame_beyond_the_bound_is_unhealthy() -> None:
    limit = RECONNECT_LIMIT_S
    within = SourceSnapshot("a", SourceState.RECONNECTING, since=2.0, last_frame_age=limit)
    # Back in reconnecting 2 s ago, after a stall: its last frame is what counts.
    beyond = SourceSnapshot("b", SourceState.RECONNECTING, since=2.0, last_frame_age=limit + 0.5)
    never = SourceSnapshot("c", SourceState.RECONNECTING, since=limit + 1)  # no frame yet
    health = judge_health(snapshot_of(within, beyond, never))
    assert [(p.name, p.state, p.reason) for p in health.problems] == [
        ("b", "reconnecting", "no frame for 30.5 s, more than 30 s"),
        ("c", "reconnecting", "no frame for 31.0 s, more than 30 s"),
    ]
    assert judge_health(snapshot_of(beyond, never), reconnect_limit=60).healthy


def test_a_blocked_only_pipeline_is_healthy() -> None:
    blocked = [SourceSnapshot(name, SourceState.BLOCKED, since=600.0) for name in "abc"]
    health = judge_health(snapshot_of(*blocked))
    assert health.healthy and health.sources == dict.fromkeys("abc", "blocked")


def test_the_source_error_of_a_one_source_run_is_a_failed_source() -> None:
    health = judge_health(snapshot_of(source_error="OSError: camera unplugged"))
    assert health.problems == (
        Problem("Cams", "source", "Cams", "failed", "OSError: camera unplugged"),
    )


def test_a_camera_s_password_and_token_never_reach_the_answer() -> None:
    reason = (
        "ValueError: uri: 'rtsp://admin:hunter22@10.0.0.7:554/live?token=abc123&x=1' "
        "Connection refused"
    )
    failed = SourceSnapshot("cam", SourceState.FAILED, 1.0, reason=reason)
    health = judge_health(snapshot_of(failed, source_error=f"OSError: {reason}"))
    for problem in health.problems:
        assert "hunter22" not in problem.reason and "abc123" not in problem.reason
        assert "'rtsp://admin:***@10.0.0.7:554/live?token=***&x=1' Connection refused" in (
            problem.reason
        )


def test_the_body_is_json_naming_each_problem() -> None:
    stalled = SourceSnapshot("cam2", SourceState.STALLED, since=1.0, reason="no frame for 6.0 s")
    body = json.loads(judge_health(snapshot_of(stalled)).to_json())
    assert body == {
        "status": "unhealthy",
        "problems": [
            {
                "pipeline": "Cams",
                "kind": "source",
                "name": "cam2",
                "state": "stalled",
                "reason": "no frame for 6.0 s",
                "since": 1.0,
                "last_frame_age": None,
            }
        ],
        "sources": {"cam2": "stalled"},
    }
    assert json.loads(Health().to_json()) == {"status": "ok", "problems": [], "sources": {}}


def test_several_pipelines_and_unreachable_boxes_are_judged_together() -> None:
    one = snapshot_of(SourceSnapshot("a", SourceState.FAILED, 1.0, reason="OSError: gone"))
    two = PipelineSnapshot(pipeline="Other", latency=StatsSnapshot(window=1))
    health = judge_health([one, two], unreachable={"box1_8321": "does not answer: refused"})
    assert [(p.pipeline, p.kind, p.name, p.state) for p in health.problems] == [
        ("Cams", "source", "a", "failed"),
        ("fleet", "box", "box1_8321", "unreachable"),
    ]
    with pytest.raises(TypeError, match="snapshots must be PipelineSnapshots, got int"):
        judge_health([1])  # type: ignore[list-item]


def test_a_stalled_stage_is_the_diagnosis_s_stalled_verdict() -> None:
    clock = FakeClock()
    gate = Gate()
    pipeline = Pipeline(debug=True, clock=clock).add(lambda x: x, "Decode").add(gate)
    pipeline.parallelize(queue_size=4)
    try:
        for item in range(3):
            pipeline.forward(item)
        assert gate.entered.wait(10)
        clock.advance(4.9)
        assert judge_health(pipeline.snapshot()).healthy  # under stall_after (5 s)
        clock.advance(1.1)
        assert pipeline.diagnose().verdict == "stalled"
        health = judge_health(pipeline.snapshot())
        assert health.problems == (
            Problem(
                "MainPipeline",
                "stage",
                "MainPipeline__Gate",
                "stalled",
                "no item completed for 6.0 s; MainPipeline__Gate is still processing its item",
            ),
        )
        assert judge_health(pipeline.snapshot(), stall_after=10).healthy
    finally:
        gate.release.set()
        pipeline.cleanup()


def test_a_silent_camera_makes_it_unhealthy_then_healthy_again(clock: FakeClock) -> None:
    silent = SilentSource(before=2, after=3)
    pipeline = Pipeline(name="Cams", clock=clock).add(lambda item: item, "Pass").parallelize()
    run = pipeline.run({"cam": silent, "other": range(3)}, stall_after=2.0)
    results: list[Any] = []
    reader = threading.Thread(target=lambda: results.extend(run), name="framescope-test:reader")
    try:
        reader.start()
        assert silent.waiting.wait(10)
        wait_for(lambda: len(results) == 5, what="the frames before the silence")
        assert judge_health(pipeline.snapshot()).healthy
        feeds = pipeline._runtime.sources
        assert feeds is not None
        clock.advance(2.0 + feeds.check_every)
        wait_for(lambda: pipeline.snapshot().sources["cam"].state is SourceState.STALLED)
        health = judge_health(pipeline.snapshot())
        assert [(p.kind, p.name, p.state) for p in health.problems] == [
            ("source", "cam", "stalled")
        ]
        silent.release.set()
        reader.join(30)
    finally:
        silent.release.set()
        pipeline.cleanup()
    assert len(results) == 8
    assert judge_health(pipeline.snapshot()).healthy  # both ended


def test_the_page_greys_exactly_the_sources_the_verdict_names() -> None:
    from framescope.live.view import page_view

    hour = SourceQuality(
        1800.0,
        {"running": 0.9, "blocked": 0.05, "stalled": 0.05},
        48_600,
        fps=27.0,
        nominal_fps=30.0,
    )
    sources = [
        SourceSnapshot(
            "a", SourceState.RUNNING, 3.0, frames=90, fps=29.97, last_frame_age=0.01, quality=hour
        ),
        SourceSnapshot("b", SourceState.BLOCKED, 9.0, frames=40, fps=5.0, last_frame_age=0.2),
        SourceSnapshot("c", SourceState.STALLED, 1.0, frames=7, last_frame_age=6.256),
        SourceSnapshot("d", SourceState.FAILED, 1.0, reason="OSError: unplugged"),
        SourceSnapshot("e", SourceState.RECONNECTING, 45.0, reconnects=3, last_frame_age=45.5),
        SourceSnapshot("f", SourceState.ENDED, 2.0, frames=300, last_frame_age=2.0),
        SourceSnapshot("g", SourceState.DEGRADED, 8.0, reason="4 fps", last_frame_age=0.25),
    ]
    view = page_view(snapshot_of(*sources))
    shown = {s["name"]: s for s in view["sources"]}
    assert list(shown) == list("abcdefg")
    assert {name for name, s in shown.items() if s["down"]} == {"c", "d", "e"}
    assert shown["a"] == {
        "name": "a",
        "state": "running",
        "since": 3.0,
        "reason": None,
        "fps": 29.97,
        "frames": 90,
        "dropped": 0,
        "reconnects": 0,
        "last_frame_age": 0.01,
        "down": False,
        "up": 0.95,
        "hour": 1800.0,
        "of_nominal": 0.9,
        "latency": None,  # nothing timed
    }
    assert shown["b"]["up"] is None and shown["b"]["of_nominal"] is None
    assert shown["c"]["last_frame_age"] == 6.26 and shown["e"]["reconnects"] == 3
    assert view["health"] == {
        "status": "unhealthy",
        "problems": [
            "source c stalled (no frame for 6.3 s)",
            "source d failed (OSError: unplugged)",
            "source e reconnecting (no frame for 45.5 s, more than 30 s)",
            "source g degraded (4 fps)",
        ],
    }
