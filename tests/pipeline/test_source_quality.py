"""A source's rate floor (``degraded``) and its last hour (``quality``), on a FakeClock.

The watcher is driven by hand here: a :class:`SourceFeeds` whose threads
are not started, a source's thread played by the test (inside ``next()``
for so long, then a frame), and ``check()`` called at each of the
watcher's rounds, so every figure is exact.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from framescope.clock import FakeClock
from framescope.pipeline import Pipeline, PipelineSnapshot, SourceState, SourceTransition
from framescope.pipeline.model.sources import QUALITY_WINDOW_S, SourceQuality
from framescope.pipeline.runtime.quality import QualityLedger, Totals
from framescope.pipeline.runtime.sources import SourceFeeds, SourceHealth

from .test_health import snapshot_of


class Camera:
    """Plays one source's thread and the watcher's rounds on a FakeClock."""

    def __init__(self, clock: FakeClock, min_fps: float | None = 5.0, **options: float) -> None:
        self.clock = clock
        self.changes: list[SourceTransition] = []
        self.feeds = SourceFeeds(
            "Cams",
            {"cam": []},
            clock,
            stall_after=options.get("stall_after", 30.0),
            warmup=options.get("warmup", 0.0),
            min_fps=min_fps,
            on_source_state=self.changes.append,
        )
        self.health: SourceHealth = self.feeds.healths["cam"]
        self.step = self.feeds.check_every
        self.next_round = clock.monotonic_ns()

    def _pass(self, seconds: float) -> None:
        """Let ``seconds`` pass, with a watcher round at each of its slots."""
        end = self.clock.monotonic_ns() + round(seconds * 1e9)
        while self.next_round + round(self.step * 1e9) <= end:
            self.next_round += round(self.step * 1e9)
            self.clock.advance((self.next_round - self.clock.monotonic_ns()) / 1e9)
            self.feeds.check()
        self.clock.advance((end - self.clock.monotonic_ns()) / 1e9)

    def frames(self, count: int, inside_next: float, putting: float = 0.0) -> None:
        """``count`` frames, each ``inside_next`` s in ``next()``, then ``putting`` s to hand over."""
        health = self.health
        for _ in range(count):
            health.waiting_since = self.clock.monotonic_ns()
            self._pass(inside_next)
            now = self.clock.monotonic_ns()
            health.got_frame(now)
            if health.state in (SourceState.STARTING, SourceState.STALLED):
                self.feeds.move(health, SourceState.RUNNING, now)
            if putting:
                health.putting_since = now
                self._pass(putting)
                health.put_wait_ns += self.clock.monotonic_ns() - now
                health.putting_since = None

    def silence(self, seconds: float) -> None:
        """Inside ``next()`` for ``seconds`` without a frame."""
        self.health.waiting_since = self.clock.monotonic_ns()
        self._pass(seconds)

    @property
    def state(self) -> SourceState:
        return self.health.state


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def test_a_source_slower_than_min_fps_is_degraded_and_running_again_when_it_recovers(
    clock: FakeClock,
) -> None:
    cam = Camera(clock, min_fps=5.0)
    cam.frames(20, inside_next=0.1)  # 10 fps
    assert cam.state is SourceState.RUNNING
    slow_from = clock.monotonic_ns()
    cam.frames(12, inside_next=0.5)  # 2 fps: 6 s, more than the 5 s window
    assert cam.state is SourceState.DEGRADED
    change = next(c for c in cam.changes if c.new is SourceState.DEGRADED)
    assert change.reason is not None
    rate = float(change.reason.split(" fps")[0])
    assert change.reason == f"{rate:g} fps over the last 5 s of its own time, below min_fps 5"
    # The window (5 s) holds fast frames and slow ones: after t s at 2 fps its
    # rate is (2t + 10(5 - t)) / 5, below 5 from t = 3.125 s; judged at a round.
    slow_for = (change.at_ns - slow_from) / 1e9
    assert 3.125 <= slow_for <= 3.125 + cam.step
    # (the frames are counted whole, at the rounds: one frame in 5 s either way)
    assert rate == pytest.approx((2 * slow_for + 10 * (5 - slow_for)) / 5, abs=0.2)
    cam.frames(60, inside_next=0.1)
    assert cam.state is SourceState.RUNNING
    states = [c.new for c in cam.changes]
    assert states == [SourceState.RUNNING, SourceState.DEGRADED, SourceState.RUNNING]


def test_a_source_held_back_by_the_pipeline_is_never_degraded(clock: FakeClock) -> None:
    cam = Camera(clock, min_fps=5.0)
    # 30 fps of its own, but the pipeline takes a frame every 0.6 s: 1.6 frames a second come.
    cam.frames(20, inside_next=1 / 30, putting=0.6)
    delivered = cam.health.fps(clock.monotonic_ns())
    assert delivered is not None and delivered < 5.0
    assert SourceState.DEGRADED not in [c.new for c in cam.changes]
    assert SourceState.BLOCKED in [c.new for c in cam.changes]
    own = cam.health.own_rate(clock.monotonic_ns())
    assert own == pytest.approx(30.0, rel=0.05)


def test_without_min_fps_nothing_is_degraded(clock: FakeClock) -> None:
    cam = Camera(clock, min_fps=None)
    cam.frames(30, inside_next=1.0)  # 1 fps for 30 s
    assert [c.new for c in cam.changes] == [SourceState.RUNNING]


def test_the_warmup_holds_the_rate_floor_too(clock: FakeClock) -> None:
    cam = Camera(clock, min_fps=5.0, warmup=8.0)
    cam.frames(7, inside_next=1.0)  # 7 s at 1 fps: inside the warm-up
    assert cam.state is SourceState.RUNNING
    cam.frames(2, inside_next=1.0)
    assert cam.state is SourceState.DEGRADED


def test_the_last_hour_shares_are_the_time_spent_in_each_state(clock: FakeClock) -> None:
    cam = Camera(clock, min_fps=None, stall_after=5.0)
    start = clock.monotonic_ns()
    cam.frames(300, inside_next=0.1)  # 30 s running
    cam.silence(20.0)  # stalled after 5 s (at the first round past it)
    cam.frames(100, inside_next=0.1)  # 10 s running again
    snapshot = cam.feeds.read()["cam"]
    quality = snapshot.quality
    assert quality is not None
    assert quality.window == pytest.approx(60.0)
    stalled_at = next(c.at_ns for c in cam.changes if c.new is SourceState.STALLED)
    running_again = next(
        c.at_ns for c in cam.changes if c.new is SourceState.RUNNING and c.at_ns > stalled_at
    )
    assert stalled_at - start == round(35e9)  # 30 s, then 5 s inside next()
    stalled_s = (running_again - stalled_at) / 1e9
    assert quality.shares == pytest.approx(
        {"starting": 0.1 / 60, "running": (60 - 0.1 - stalled_s) / 60, "stalled": stalled_s / 60}
    )
    assert quality.up == pytest.approx((60 - 0.1 - stalled_s) / 60)
    assert quality.frames == 400
    assert quality.fps == pytest.approx(400 / (60 - 0.1 - stalled_s))  # frames a second while up
    assert quality.nominal_fps is None and quality.rate_ratio is None


def test_the_last_hour_forgets_what_is_older_and_stays_bounded(clock: FakeClock) -> None:
    ledger = QualityLedger(0)
    frames = dropped = 0
    step = 250_000_000  # a watcher round
    for at in range(step, 3 * 3600 * 10**9 + 1, step):  # three hours, stalled through the first
        frames += 8  # 32 fps
        dropped += at % 10**9 == 0  # one a second
        state = SourceState.STALLED if at <= 3600 * 10**9 else SourceState.RUNNING
        ledger.account(at, state, Totals(frames, dropped=dropped))
        assert len(ledger._buckets) <= 61
    quality = ledger.read(nominal_fps=32.0)
    assert quality.window == QUALITY_WINDOW_S
    assert quality.shares == {"running": 1.0}
    # What a round brings is counted in the bucket of the round's end: the
    # round that ended on the window's first instant is in (one round early).
    assert quality.frames == 3600 * 32 + 8 and quality.dropped == 3600 + 1
    assert quality.fps == pytest.approx(32.0, rel=1e-3)
    assert quality.rate_ratio == pytest.approx(1.0, rel=1e-3)


def test_time_is_split_at_the_minute_edges(clock: FakeClock) -> None:
    ledger = QualityLedger(0)
    ledger.account(round(30e9), SourceState.RUNNING, Totals(900))
    ledger.account(round(150e9), SourceState.STALLED, Totals(900, reconnects=2))
    ledger.account(round(3630e9), SourceState.RUNNING, Totals(900 + 3480 * 30, reconnects=2))
    # the first minute is forgotten: the window is the last 59.5 minutes' buckets
    quality = ledger.read(nominal_fps=25.0)
    assert quality.window == pytest.approx(3570.0)
    stalled = 150 - 60  # 90 s of the stall lie after the first minute
    assert quality.shares == pytest.approx(
        {"stalled": stalled / 3570, "running": (3570 - stalled) / 3570}
    )
    assert quality.reconnects == 2  # seen at 150 s, in the bucket of 120-180 s
    assert quality.fps == pytest.approx(30.0)  # 3480 s running at 30 fps, in the window
    assert quality.rate_ratio == pytest.approx(30.0 / 25.0)


class Paced:
    """A source with a nominal rate whose frames come ``period`` apart on the clock."""

    def __init__(self, clock: FakeClock, fps: float, period: float, count: int) -> None:
        self.clock, self.fps, self.period, self.count = clock, fps, period, count

    def __iter__(self) -> Iterator[int]:
        for index in range(self.count):
            self.clock.advance(self.period)
            yield index


def test_a_run_reports_the_quality_of_each_source_and_it_survives_json(clock: FakeClock) -> None:
    pipeline = Pipeline(name="Cams", clock=clock)
    pipeline.add(lambda item: item, "Pass")
    try:
        run = pipeline.run({"cam": Paced(clock, fps=25.0, period=0.05, count=40)})
        assert len(list(run)) == 40
        snapshot = pipeline.snapshot()
    finally:
        pipeline.cleanup()
    quality = snapshot.sources["cam"].quality
    assert quality is not None
    assert quality.frames == 40 and quality.nominal_fps == 25.0
    assert quality.window == pytest.approx(2.0)  # its time stopped when it ended
    # running from its first frame (0.05 s) to its end (2 s): 40 frames in 1.95 s
    assert quality.shares == pytest.approx({"starting": 0.025, "running": 0.975})
    assert quality.rate_ratio == pytest.approx(40 / 1.95 / 25.0)
    clock.advance(30.0)  # long after the end, the figures are those of the time it ran
    assert pipeline.snapshot().sources["cam"].quality == quality
    assert set(quality.shares) <= {"starting", "running", "ended"}
    back = PipelineSnapshot.from_dict(json.loads(json.dumps(snapshot.to_dict())))
    assert back.sources["cam"].quality == quality
    assert "of nominal" in str(snapshot) and "0.82x" in str(snapshot)


def test_min_fps_is_checked() -> None:
    pipeline = Pipeline()
    pipeline.add(lambda item: item)
    try:
        with pytest.raises(ValueError, match="min_fps"):
            pipeline.run({"cam": range(3)}, min_fps=0)
        with pytest.raises(TypeError, match="min_fps"):
            pipeline.run({"cam": range(3)}, min_fps="fast")  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="min_fps apply to many sources"):
            pipeline.run(range(3), min_fps=5.0)
    finally:
        pipeline.cleanup()


def test_a_quality_with_a_share_out_of_range_is_refused() -> None:
    from framescope.pipeline import SnapshotFormatError
    from framescope.pipeline.model.sources import SourceSnapshot

    good = SourceSnapshot(
        "cam", SourceState.RUNNING, 1.0, quality=SourceQuality(10.0, {"running": 1.0}, 30)
    )
    data = snapshot_of(good).to_dict()
    assert PipelineSnapshot.from_dict(data).sources["cam"] == good
    data["sources"][0]["quality"]["shares"]["running"] = 1.5
    with pytest.raises(SnapshotFormatError, match=r"sources\[0\]\.quality\.shares\.running"):
        PipelineSnapshot.from_dict(data)


def test_a_source_back_from_a_stall_is_not_judged_on_its_silence(clock: FakeClock) -> None:
    cam = Camera(clock, min_fps=10.0, stall_after=2.0)
    cam.frames(180, inside_next=1 / 30)  # 6 s at 30 fps
    cam.silence(8.0)  # stalled from 2 s on
    cam.frames(300, inside_next=1 / 30)  # 10 s at 30 fps again
    states = [c.new for c in cam.changes]
    assert states == [SourceState.RUNNING, SourceState.STALLED, SourceState.RUNNING]


def test_many_short_waits_to_hand_frames_over_make_a_source_blocked(clock: FakeClock) -> None:
    cam = Camera(clock, min_fps=20.0)
    # 30 fps of its own; each hand-over waits 80 ms (shorter than a watcher round),
    # 70% of its time: the pipeline holds it back, it is not a slow camera.
    cam.frames(60, inside_next=1 / 30, putting=0.08)
    assert cam.state is SourceState.BLOCKED
    cam.frames(60, inside_next=1 / 30)  # the pipeline takes its frames at once again
    assert cam.state is SourceState.RUNNING
    states = [c.new for c in cam.changes]
    assert states == [SourceState.RUNNING, SourceState.BLOCKED, SourceState.RUNNING]
