"""Many live cameras into one pipeline: their health against real RTSP servers on loopback.

The cameras are Debian's GStreamer RTSP server (tests/video/rtsp_server.py)
read by real ``VideoSource`` s, beside ``SyntheticSource`` s paced in real
time. What the states must say, as these tests hold it:

- a camera whose stream drops leaves ``running`` at once for
  ``reconnecting`` (the source says so), and is ``stalled`` once no frame
  came for ``stall_after`` seconds while the pipeline would take one,
  whether or not it is still reconnecting: so within ``stall_after`` plus a
  watcher round of its last frame; it is ``running`` again on its next frame
  (a camera whose media stops while connected is ``stalled`` the same way,
  and stays so while its source reopens the stream);
- a slow stage makes every source ``blocked``, never ``stalled``;
- a server that takes the connection and says nothing is ``stalled``, and
  the run still ends when asked, leaving no thread.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import pytest

pytest.importorskip("av")

from framescope.pipeline import Pipeline, SourceState, SourceTransition
from framescope.pipeline.views.health import judge_health
from framescope.video import Frame, SyntheticSource, VideoSource
from tests.polling import wait_for
from tests.video.helpers import RtspCamera, SilentServer, gstreamer_rtsp_missing

_MISSING = gstreamer_rtsp_missing()
pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(_MISSING is not None, reason=_MISSING or ""),
]

STALL_AFTER = 1.5
BOUND = STALL_AFTER + 1.0  # the stated bound: stalled within stall_after + 1 s
SYNTHETIC = ("syn1", "syn2", "syn3", "syn4")
LIVE = frozenset({SourceState.RUNNING, SourceState.BLOCKED})
# Another RTSP camera's server is a process of its own: on a busy machine it may be
# starved past stall_after (a true stall, seen as such); it never reconnects, fails or ends.
SERVED = LIVE | {SourceState.STALLED}


def unaffected(name: str) -> frozenset[SourceState]:
    """The states a camera other than the one a test acts on may enter meanwhile."""
    return SERVED if name.startswith("rtsp") else LIVE


@pytest.fixture
def cameras() -> Iterator[list[RtspCamera]]:
    servers: list[RtspCamera] = []
    try:
        servers += [RtspCamera(), RtspCamera()]
        yield servers
    finally:
        for server in servers:
            server.stop()


def camera(url: str, **options: Any) -> VideoSource:
    """A VideoSource on ``url`` that reconnects quickly (the back-off is short)."""
    settings: dict[str, Any] = {
        "reconnect_initial": 0.2,
        "reconnect_max": 0.5,
        "timeout": 5.0,
        "stall_timeout": 3.0,
    }
    settings.update(options)
    return VideoSource(url, **settings)


def synthetic() -> dict[str, Iterable[Any]]:
    """Four endless synthetic cameras at 30 fps, paced in real time."""
    return {name: SyntheticSource(64, 48, fps=30, realtime=True) for name in SYNTHETIC}


class Run:
    """``pipeline.run(sources)`` read on a thread, keeping each frame's index per source.

    Every state change is kept with the real time it came (``time.monotonic``).
    """

    def __init__(
        self,
        sources: dict[str, Iterable[Any]],
        stage: Callable[[Frame], Frame] = lambda frame: frame,
        **options: Any,
    ) -> None:
        self.pipeline = Pipeline(name="Cams").add(stage, "Detect").parallelize()
        self.names = list(sources)
        self.frames: dict[str, list[int]] = {name: [] for name in sources}
        self.strays: list[Any] = []
        self.changes: list[tuple[float, SourceTransition]] = []
        self.error: BaseException | None = None
        self.ask_to_end = threading.Event()
        self.started = time.monotonic()
        self.ending: float | None = None
        self._run = self.pipeline.run(sources, on_source_state=self._changed, **options)
        self.thread = threading.Thread(target=self._read, name="test-reader")
        self.thread.start()

    def _changed(self, change: SourceTransition) -> None:
        self.changes.append((time.monotonic(), change))

    def _read(self) -> None:
        try:
            for frame in self._run:
                if isinstance(frame, Frame) and frame.source in self.frames:
                    self.frames[frame.source].append(frame.index)
                else:
                    self.strays.append(frame)
                if self.ask_to_end.is_set():
                    break
        except BaseException as error:
            self.error = error
        finally:
            self._run.close()

    def count(self, name: str) -> int:
        return len(self.frames[name])

    def state(self, name: str) -> SourceState:
        return self.pipeline.snapshot().sources[name].state

    def states(self) -> dict[str, SourceState]:
        return {name: s.state for name, s in self.pipeline.snapshot().sources.items()}

    def entered(self, name: str, since: float = 0.0) -> list[SourceState]:
        """The states ``name`` entered while it ran, in order (those after ``since``, real time).

        Breaking out closes each ``VideoSource`` (it ends): what came after is left out.
        """
        until = self.ending or float("inf")
        return [c.new for at, c in list(self.changes) if c.source == name and since <= at < until]

    def first(self, name: str, state: SourceState, since: float) -> float | None:
        """When ``name`` first entered ``state`` after ``since`` (None: not yet)."""
        for at, change in list(self.changes):
            if change.source == name and change.new is state and at >= since:
                return at
        return None

    def silence(self, name: str, since: float) -> float:
        """Seconds from ``name``'s last frame to its first stall after ``since``.

        On the pipeline's clock; read while it is still stalled (no frame since).
        """
        change = next(
            c
            for at, c in list(self.changes)
            if c.source == name and c.new is SourceState.STALLED and at >= since
        )
        feeds = self.pipeline._runtime.sources
        assert feeds is not None
        last = feeds.healths[name].last_frame_ns
        assert last is not None and last < change.at_ns
        return (change.at_ns - last) / 1e9

    def end(self, limit: float = 20.0) -> float:
        """Ask the reader to break out, clean up; the seconds that took."""
        asked = self.ending = time.monotonic()
        self.ask_to_end.set()
        self.thread.join(limit)
        assert not self.thread.is_alive(), f"the run did not end within {limit} s"
        self.pipeline.cleanup()
        took = time.monotonic() - asked
        assert self.error is None, repr(self.error)
        assert self.strays == []
        return took

    def close(self) -> None:
        """Make sure it is over (after a failed assertion too)."""
        self.ask_to_end.set()
        self.thread.join(30)
        self.pipeline.cleanup()


def framescope_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("framescope:")]


def in_order(indexes: list[int]) -> bool:
    return indexes == list(range(len(indexes)))


def test_six_cameras_run_each_with_its_name_and_its_order(cameras: list[RtspCamera]) -> None:
    sources = {**synthetic(), "rtsp1": camera(cameras[0].url), "rtsp2": camera(cameras[1].url)}
    run = Run(sources, stall_after=STALL_AFTER, warmup=10.0)  # connecting is not judged
    try:
        wait_for(lambda: min(map(run.count, sources)) >= 30, 30, "30 frames from every camera")
        wait_for(
            lambda: run.states() == dict.fromkeys(sources, SourceState.RUNNING),
            30,
            "every camera running",
        )
        snapshot = run.pipeline.snapshot()
        assert "rtsp1" not in {p.name for p in judge_health(snapshot).problems}
        run.end()
    finally:
        run.close()
    for name in sources:
        assert in_order(run.frames[name]), name  # every frame of each, in its order
        reading = snapshot.sources[name]
        assert reading.frames >= 30 and reading.fps is not None and reading.fps > 0
        assert run.entered(name)[0] is SourceState.RUNNING
    assert framescope_threads() == []


def test_a_killed_camera_is_stalled_within_the_bound_the_others_go_on_and_it_comes_back(
    cameras: list[RtspCamera],
) -> None:
    sources = {**synthetic(), "rtsp1": camera(cameras[0].url), "rtsp2": camera(cameras[1].url)}
    run = Run(sources, stall_after=STALL_AFTER, warmup=0.0)
    others = [name for name in sources if name != "rtsp1"]
    try:
        wait_for(lambda: min(map(run.count, sources)) >= 10, 30, "frames from every camera")
        wait_for(lambda: run.state("rtsp1") is SourceState.RUNNING, 30, "rtsp1 running")
        port = cameras[0].port
        before = {name: run.count(name) for name in others}
        killed = time.monotonic()
        cameras[0].kill()
        wait_for(lambda: run.first("rtsp1", SourceState.STALLED, killed), 30, "rtsp1 stalled")
        stalled = run.first("rtsp1", SourceState.STALLED, killed)
        assert stalled is not None
        # What /healthz and the heartbeat answer: unhealthy, naming the dead camera.
        verdict = judge_health(run.pipeline.snapshot())
        assert not verdict.healthy and "rtsp1" in {p.name for p in verdict.problems}
        silence = run.silence("rtsp1", killed)
        left_at, left = next(
            (at, c) for at, c in list(run.changes) if c.source == "rtsp1" and at >= killed
        )
        # The others were not touched: frames still come from each, and none is unwell.
        wait_for(
            lambda: all(run.count(n) >= before[n] + 10 for n in others), 30, "the others' frames"
        )
        wait_for(lambda: all(run.state(n) in LIVE for n in others), 30, "the others live")
        # The camera comes back on its port: the source reconnects to it and runs again.
        back = time.monotonic()
        cameras[0] = RtspCamera(port=port)
        wait_for(lambda: run.first("rtsp1", SourceState.RUNNING, back), 30, "rtsp1 running again")
        count = run.count("rtsp1")
        wait_for(lambda: run.count("rtsp1") >= count + 10, 30, "frames after the return")
        snapshot = run.pipeline.snapshot()
        run.end()
    finally:
        run.close()
    delay = stalled - killed
    print(
        f"rtsp1: {left.old} -> {left.new} {left_at - killed:.2f} s after the kill,"
        f" stalled after {delay:.2f} s ({silence:.2f} s after its last frame)"
    )
    assert delay <= BOUND
    assert STALL_AFTER <= silence <= BOUND
    assert left.old is SourceState.RUNNING and left.new in {
        SourceState.RECONNECTING,
        SourceState.STALLED,
    }
    assert snapshot.sources["rtsp1"].reconnects >= 1
    assert snapshot.sources["rtsp1"].state is SourceState.RUNNING
    after_kill = run.entered("rtsp1", killed)
    assert after_kill[-1] is SourceState.RUNNING
    assert set(after_kill) <= {SourceState.RECONNECTING, SourceState.STALLED, *LIVE}
    for name in others:
        assert set(run.entered(name, killed)) <= unaffected(name), name
    for name in sources:
        assert in_order(run.frames[name]), name


def test_a_camera_whose_media_stops_is_stalled_then_reopened(cameras: list[RtspCamera]) -> None:
    # The connection stays up and nothing comes: stalled at stall_after, well before the
    # source's own stall_timeout (3 s) has it reopen the stream, which then flows again.
    # FFmpeg may hand over one last frame when a read times out: running for that frame,
    # then stalled again; never reconnecting (past stall_after it is stalled).
    sources = {"rtsp1": camera(cameras[0].url), "rtsp2": camera(cameras[1].url)}
    run = Run(sources, stall_after=STALL_AFTER)
    try:
        wait_for(lambda: min(map(run.count, sources)) >= 10, 30, "frames from both cameras")
        wait_for(lambda: run.state("rtsp1") is SourceState.RUNNING, 30, "rtsp1 running")
        cameras[0].command("freeze")
        frozen = time.monotonic()
        wait_for(lambda: run.first("rtsp1", SourceState.STALLED, frozen), 30, "rtsp1 stalled")
        stalled = run.first("rtsp1", SourceState.STALLED, frozen)
        assert stalled is not None
        silence = run.silence("rtsp1", frozen)  # before the source reopens (3 s)
        count = run.count("rtsp1")
        reopened = sources["rtsp1"]
        assert isinstance(reopened, VideoSource)
        wait_for(lambda: reopened.reconnects >= 1, 30, "the stream reopened")
        wait_for(lambda: run.count("rtsp1") >= count + 10, 30, "frames after reopening")
        wait_for(lambda: run.state("rtsp1") is SourceState.RUNNING, 30, "rtsp1 running again")
        assert reopened.stalls >= 1
        run.end()
    finally:
        run.close()
    delay = stalled - frozen
    print(
        f"rtsp1: stalled {delay:.2f} s after its media stopped, {silence:.2f} s after its last frame"
    )
    # The bound runs from its last frame: packets on their way when the server froze may
    # still make frames after it (the stream's own latency, longer on a busy machine).
    assert STALL_AFTER <= silence <= BOUND
    entered = run.entered("rtsp1", frozen)
    assert entered[0] is SourceState.STALLED and entered[-1] is SourceState.RUNNING
    assert set(entered) <= {SourceState.STALLED, *LIVE}  # never reconnecting: it was stalled
    assert set(run.entered("rtsp2", frozen)) <= unaffected("rtsp2")
    assert in_order(run.frames["rtsp1"]) and in_order(run.frames["rtsp2"])


def test_a_slow_stage_blocks_every_camera_and_stalls_none(cameras: list[RtspCamera]) -> None:
    slow = threading.Event()
    pause = threading.Event()  # never set: the stage's work is a wait

    def detect(frame: Frame) -> Frame:
        if slow.is_set():
            pause.wait(0.3)  # ten frame periods per frame
        return frame

    warmup = 4.0  # covers connecting to the cameras
    sources = {**synthetic(), "rtsp1": camera(cameras[0].url), "rtsp2": camera(cameras[1].url)}
    run = Run(sources, detect, stall_after=STALL_AFTER, warmup=warmup)
    try:
        wait_for(
            lambda: run.states() == dict.fromkeys(sources, SourceState.RUNNING),
            30,
            "every camera running",
        )
        # The stage turns slow once the warm-up is over: from then on a stall would count.
        wait_for(lambda: time.monotonic() >= run.started + warmup, 30, "the end of the warm-up")
        slowed = time.monotonic()
        slow.set()
        wait_for(
            lambda: all(run.first(n, SourceState.BLOCKED, slowed) for n in sources),
            30,
            "every camera blocked",
        )
        # Held well past stall_after: a camera held back by the pipeline is never stalled.
        wait_for(
            lambda: time.monotonic() >= slowed + 3 * STALL_AFTER, 30, "three times stall_after"
        )
        held = run.states()
        slow.clear()
        fast = time.monotonic()
        wait_for(
            lambda: run.states() == dict.fromkeys(sources, SourceState.RUNNING),
            30,
            "every camera running again",
        )
        run.end()
    finally:
        slow.clear()
        run.close()
    assert set(held.values()) <= LIVE and SourceState.BLOCKED in held.values()
    for name in sources:
        assert SourceState.STALLED not in run.entered(name), (name, run.entered(name))
        assert run.entered(name, fast)[-1] is SourceState.RUNNING
        assert in_order(run.frames[name]), name


def test_a_server_that_never_sends_is_stalled_and_the_run_still_ends() -> None:
    server = SilentServer()
    silent = camera(server.url, timeout=2.0, stall_timeout=2.0)
    try:
        run = Run(
            {"silent": silent, "syn1": SyntheticSource(64, 48, fps=30, realtime=True)},
            stall_after=STALL_AFTER,
        )
        try:
            wait_for(lambda: run.first("silent", SourceState.STALLED, 0.0), 30, "silent stalled")
            stalled = run.first("silent", SourceState.STALLED, 0.0)
            assert stalled is not None
            # Each opening times out (2 s) and it tries again on a new connection, saying it
            # is reconnecting all the while (watched many times over): still stalled.
            wait_for(lambda: server.accepted >= 3 and silent.reconnects >= 2, 30, "two retries")
            assert run.state("silent") is SourceState.STALLED
            assert run.state("syn1") in LIVE and run.count("syn1") > 0
            took = run.end()
        finally:
            run.close()
    finally:
        silent.close()
        server.stop()
    delay = stalled - run.started
    print(f"silent: stalled {delay:.2f} s after the start; the run ended in {took:.2f} s")
    assert delay <= BOUND
    assert run.frames["silent"] == []
    assert run.entered("silent") == [SourceState.STALLED]
    # Ended when asked: within the source's own open timeout (2 s) and a margin.
    assert took <= 2.0 + 5.0
    assert framescope_threads() == []
