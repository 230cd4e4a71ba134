"""The live view's WebRTC side in a process of its own: served from it, at a lower priority,
nothing left behind, a killed one counted and replaced, the frames' way to it paced and counted."""

from __future__ import annotations

import logging
import os
import re
import signal
import socket
import threading
from collections.abc import Iterator
from multiprocessing.connection import Connection
from typing import Any

import numpy as np
import pytest

pytest.importorskip("av", reason="the WebRTC video needs framescope[webrtc]")

from framescope import Pipeline
from framescope._shm import blocks_alive
from framescope.capture import Stamps
from framescope.clock import FakeClock
from framescope.live import LiveView
from framescope.live._videoframes import Forwarder, Slots, numbering
from framescope.live.preview import PreviewTap
from framescope.live.videoprocess import VIDEO_NICE, VideoProcess
from framescope.live.webrtc import WebRTCVideo
from framescope.video import Frame, SyntheticSource
from tests import polling

from .camera import Camera, camera_view, striped
from .views import view_json


def picture(index: int) -> np.ndarray:
    return striped(index, 96, 128, channel=1)  # green, as BGR


@pytest.fixture
def view() -> Iterator[LiveView]:
    pytest.importorskip("aiortc")
    with camera_view(picture, refresh=0.1, max_viewers=3) as (live, _):
        yield live


def video(live: LiveView) -> VideoProcess:
    side = live._webrtc
    assert isinstance(side, VideoProcess)
    return side


@pytest.mark.integration
def test_a_viewer_is_served_from_a_lower_priority_process_and_closing_ends_it() -> None:
    pytest.importorskip("aiortc")
    from .whep_client import WhepClient

    pipeline = Pipeline(name="Cam").add(picture, "Draw")
    live = LiveView(pipeline, refresh=0.1)
    live.preview("main", stage="Draw")
    side = video(live)
    assert side.pid is None  # nothing started before a viewer
    with live:
        camera = Camera(pipeline)
        try:
            with WhepClient(live.url + "whep/main").start() as player:
                polling.wait_for(lambda: player.frames >= 10, what="frames at the player")
                assert player.last[48, 20, 1] > 150  # green came as green
                pid = side.pid
                assert pid is not None and pid != os.getpid()
                assert os.getpriority(os.PRIO_PROCESS, pid) >= VIDEO_NICE
                here = [t.name for t in threading.enumerate()]
                assert not [n for n in here if "-encode-" in n or n.endswith("-webrtc")]
                assert polling.eventually(lambda: [v.frames_sent for v in live.snapshot().viewers])
                streams = side.streams()["main"]
                assert [s["codec"] for s in streams] == ["H264"] and streams[0]["encoded"] >= 10
        finally:
            camera.close()
        process = side._link.process  # type: ignore[union-attr]
    assert live.close()
    assert process.poll() is not None  # ended, and waited for
    assert not blocks_alive()  # every slot unlinked
    assert not [t.name for t in threading.enumerate() if t.name.startswith("framescope-live")]
    pipeline.cleanup()


@pytest.mark.integration
def test_a_killed_video_process_is_counted_shown_and_the_next_viewer_starts_another(
    view: LiveView,
) -> None:
    from .whep_client import WhepClient

    side = video(view)
    url = view.url + "whep/main"
    with WhepClient(url).start() as player:
        polling.wait_for(lambda: player.frames >= 3, what="frames at the first player")
        first = side.pid
        assert first is not None
        os.kill(first, signal.SIGKILL)
        polling.wait_for(lambda: side.process_failures == 1, what="the failure counted")
        assert not view.snapshot().viewers  # its viewers went with it
        assert polling.eventually(lambda: view_json(view)["webrtc"]["process_failures"] == 1)
    with WhepClient(url).start() as again:
        polling.wait_for(lambda: again.frames >= 3, what="frames from the next process")
        assert side.pid not in (None, first)
        assert [v.state for v in view.snapshot().viewers] in (["connecting"], ["connected"])
    assert side.process_failures == 1


@pytest.mark.integration
def test_the_child_ends_when_the_view_s_side_of_the_socket_closes(view: LiveView) -> None:
    from .whep_client import WhepClient

    side = video(view)
    with WhepClient(view.url + "whep/main").start() as player:
        polling.wait_for(lambda: player.frames >= 1, what="a frame")
        link = side._link
        assert link is not None
        # What the child sees when the view's process dies: the end of its socket.
        with socket.socket(fileno=os.dup(link._connection.fileno())) as ours:
            ours.shutdown(socket.SHUT_WR)
        polling.wait_for(lambda: link.process.poll() is not None, 60, "the child's end")
        assert link.process.returncode == 0  # it closed its viewers and exited by itself
        # Not closed by the view: counted.
        polling.wait_for(lambda: side.process_failures == 1, what="the ending counted")
        assert not link.alive


@pytest.mark.integration
def test_frames_the_video_process_encoded_are_on_the_glass() -> None:
    pytest.importorskip("aiortc")
    from .whep_client import WhepClient

    pipeline = Pipeline(name="Cams").add(lambda frame: frame, "Draw").parallelize()
    live = LiveView(pipeline, refresh=0.1)
    live.preview("main", stage="Draw", fps=0.01)  # the MJPEG side shows (and stamps) nothing
    frames: list[Frame] = []
    stop = threading.Event()

    def run() -> None:
        source = SyntheticSource(64, 48, frames=100_000, fps=30, realtime=True)
        for frame in pipeline.run({"cam": source}):
            frames.append(frame)
            if stop.is_set():
                break

    with live:
        runner = threading.Thread(target=run, name="run")
        runner.start()
        try:
            with WhepClient(live.url + "whep/main").start() as player:
                polling.wait_for(lambda: player.frames >= 10, what="frames at the player")

                def sent() -> list[Stamps]:
                    return [s for f in frames if (s := f.stamps) and s.glass_by == "webrtc"]

                polling.wait_for(lambda: len(sent()) >= 5, what="frames on the glass")
                for stamps in sent():
                    assert stamps.out_ns is not None and stamps.glass_ns is not None
                    assert stamps.out_ns <= stamps.glass_ns
        finally:
            stop.set()
            runner.join(30)
    assert live.close()
    pipeline.cleanup()


def test_with_a_fake_clock_the_view_serves_webrtc_from_its_own_threads() -> None:
    pipeline = Pipeline(name="Cam").add(picture, "Draw")
    clock = FakeClock()
    for view, kind in (
        (LiveView(pipeline, clock=clock), WebRTCVideo),
        (LiveView(pipeline, webrtc_process=False), WebRTCVideo),
        (LiveView(pipeline), VideoProcess),
    ):
        assert type(view._webrtc) is kind
        assert view.close()
    with pytest.raises(ValueError, match=r"webrtc_process=True needs the system clock"):
        LiveView(pipeline, clock=clock, webrtc_process=True)
    with pytest.raises(TypeError, match=r"webrtc_process must be True, False or None, got 1"):
        LiveView(pipeline, webrtc_process=1)  # type: ignore[arg-type]
    pipeline.cleanup()


def test_the_video_process_s_cores_are_checked() -> None:
    pipeline = Pipeline(name="Cam").add(picture, "Draw")
    count = os.cpu_count() or 1
    for wrong, error, words in (
        ("0", TypeError, "webrtc_cpus must be a set of CPU core numbers or None, got '0'"),
        (1, TypeError, "webrtc_cpus must be a set of CPU core numbers or None, got 1"),
        ([True], TypeError, "webrtc_cpus must hold CPU core numbers"),
        ([0.5], TypeError, "webrtc_cpus must hold CPU core numbers"),
        (set(), ValueError, f"webrtc_cpus must name at least one core (0 to {count - 1})"),
        ([count], ValueError, f"webrtc_cpus must name cores from 0 to {count - 1}"),
        ([-1], ValueError, "webrtc_cpus must name cores"),
    ):
        with pytest.raises(error, match=re.escape(words)):
            LiveView(pipeline, webrtc_cpus=wrong)
    with pytest.raises(ValueError, match=r"webrtc_cpus needs the video process"):
        LiveView(pipeline, clock=FakeClock(), webrtc_cpus={0})
    view = LiveView(pipeline, webrtc_cpus=[0, 0])
    assert video(view).cpus == (0,)
    assert view.close()
    pipeline.cleanup()


def test_cores_this_process_may_not_use_are_refused_when_the_view_is_made(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    tried: list[tuple[str, int, Any]] = []

    def cpuset_refuses(pid: int, cores: Any) -> None:  # what a container's cpuset answers
        tried.append((threading.current_thread().name, pid, cores))
        raise OSError(22, "Invalid argument")

    monkeypatch.setattr(os, "sched_setaffinity", cpuset_refuses)
    pipeline = Pipeline(name="Cam").add(picture, "Draw")
    with pytest.raises(ValueError, match=r"webrtc_cpus \[0\]: this process may not run there "
                       r"\(Invalid argument\)"):  # fmt: skip
        LiveView(pipeline, webrtc_cpus={0})
    assert tried == [("framescope-cpus-trial", 0, (0,))]  # a thread of its own, not this one
    pipeline.cleanup()


@pytest.mark.integration
def test_the_video_process_runs_on_the_cores_asked_for() -> None:
    pytest.importorskip("aiortc")
    from .whep_client import WhepClient

    core = max(os.sched_getaffinity(0))  # the last: not where a process starts by default
    with (
        camera_view(picture, refresh=0.1, webrtc_cpus={core}) as (live, _),
        WhepClient(live.url + "whep/main").start() as player,
    ):
        polling.wait_for(lambda: player.frames >= 3, what="frames at the player")
        pid = video(live).pid
        assert pid is not None
        threads = os.listdir(f"/proc/{pid}/task")
        assert len(threads) > 1  # its encoder and connections too
        assert {t: os.sched_getaffinity(int(t)) for t in threads} == {t: {core} for t in threads}


@pytest.mark.integration
def test_a_child_that_cannot_run_on_its_cores_refuses_the_viewer_and_says_why(
    view: LiveView, caplog: pytest.LogCaptureFixture
) -> None:
    from .test_whep import VP8_OFFER, post

    side = video(view)
    missing = (os.cpu_count() or 1) + 7
    side.cpus = (missing,)  # past the view's own check, as a machine's cpuset can refuse one
    caplog.set_level(logging.WARNING, logger="framescope.live.videoprocess")
    status, body, _ = post(view.url + "whep/main", VP8_OFFER)
    assert status == 503
    assert f"cannot run on cores [{missing}] (webrtc_cpus)" in body.decode()
    polling.wait_for(lambda: side.process_failures == 1, what="the ending counted")
    assert f"cannot run on cores [{missing}]" in caplog.text  # the warning says why


def test_a_child_that_cannot_run_on_its_cores_says_so_and_ends(
    capsys: pytest.CaptureFixture[str],
) -> None:
    pytest.importorskip("aiortc")
    from framescope.live._videochild import main

    missing = (os.cpu_count() or 1) + 7
    cores = os.sched_getaffinity(0)
    ours, theirs = socket.socketpair()
    with ours, theirs:
        setup = {"nice": os.getpriority(os.PRIO_PROCESS, 0), "cpus": [missing]}
        Connection(os.dup(ours.fileno())).send(("setup", setup))
        assert main([str(os.dup(theirs.fileno()))]) == 2
        said = Connection(os.dup(ours.fileno())).recv()
    assert said[0] == "refused"
    assert said[1].startswith(f"cannot run on cores [{missing}] (webrtc_cpus): [Errno 22]")
    assert f"cannot run on cores [{missing}] (webrtc_cpus)" in capsys.readouterr().err
    assert os.sched_getaffinity(0) == cores  # refused: this thread's cores as they were


class Sent:
    """What a forwarder hands the child: the frames' messages, each slot freed at once."""

    def __init__(self) -> None:
        self.messages: list[tuple[Any, ...]] = []
        self.forwarder: Forwarder | None = None

    def __call__(self, message: tuple[Any, ...], stamps: Stamps | None) -> bool:
        self.messages.append(message)
        assert self.forwarder is not None
        self.forwarder.slots.freed(message[4])
        return True


def forwarder_of(
    clock: FakeClock, fps: float = 10.0, name: str = "main", numbers: Any = None
) -> tuple[PreviewTap, Forwarder, Sent]:
    tap = PreviewTap(name, clock=clock, webrtc_fps=fps)
    sent = Sent()
    forwarder = Forwarder(tap, sent, "test-forwarder", numbers or numbering(), clock)
    sent.forwarder = forwarder
    forwarder.start()
    return tap, forwarder, sent


def test_the_forwarder_takes_the_newest_frame_of_each_watched_camera_at_its_rate() -> None:
    clock = FakeClock()
    tap, forwarder, sent = forwarder_of(clock, fps=10.0)
    try:
        image = np.zeros((8, 8, 3), np.uint8)
        tap(Frame(image, 0, source="a"))
        assert not sent.messages  # nobody watches yet: nothing taken, nothing counted
        forwarder.want("a")
        for index in range(1, 6):  # five frames of "a", one of "b" (not watched), at once
            tap(Frame(image + index, index, source="a"))
        tap(Frame(image, 9, source="b"))
        polling.wait_for(lambda: sent.messages, what="the first frame handed on")
        for index in range(6, 13):
            tap(Frame(image + index, index, source="a"))
        # The first frame, and one early (a camera's jitter); the rest is replaced by the newest.
        polling.wait_for(lambda: len(sent.messages) == 2, what="one early frame let through")
        assert not polling.holds_within(lambda: len(sent.messages) > 2, limit=0.2)
        tap(Frame(image + 13, 13, source="a"))  # waits for its turn
        assert not polling.holds_within(lambda: len(sent.messages) > 2, limit=0.2)
        clock.advance(0.1)  # its turn
        polling.wait_for(lambda: len(sent.messages) == 3, what="the next frame at its rate")
        assert sent.messages[-1][6] == 1_000_000_000  # it left the stage then: the out time
        cameras = {m[2] for m in sent.messages}
        assert cameras == {"a"}
        assert forwarder.skipped_of("a") + len(sent.messages) == 13  # every frame of "a"
        assert forwarder.skipped_of("b") == 0
        forwarder.set_wanted(set())
        tap(Frame(image, 99, source="a"))
        clock.advance(1.0)
        assert not polling.holds_within(lambda: len(sent.messages) > 3, limit=0.2)
    finally:
        assert forwarder.stop(5)


def test_the_child_run_by_hand_says_how_it_is_started(capsys: pytest.CaptureFixture[str]) -> None:
    from framescope.live._videochild import main

    assert main(["not-a-descriptor"]) == 2
    assert "started by a live view" in capsys.readouterr().err
    assert main(["987654"]) == 2
    assert "descriptor 987654: Bad file descriptor" in capsys.readouterr().err
    ours, theirs = socket.socketpair()
    with ours, theirs:
        ours.sendall(b"\x00\x00\x00\x03abc")  # framed, but nobody's setup
        descriptor = os.dup(theirs.fileno())  # the child's own, which it closes
        assert main([str(descriptor)]) == 2
    assert f"no live view on descriptor {descriptor}" in capsys.readouterr().err


def test_the_frames_of_every_preview_are_numbered_in_one_series() -> None:
    clock = FakeClock()
    numbers = numbering()  # the child names an encoded frame by its number alone
    forwarders = [forwarder_of(clock, name=name, numbers=numbers) for name in ("a", "b")]
    try:
        for tap, forwarder, _ in forwarders:
            forwarder.want(None)
            tap(np.zeros((8, 8, 3), np.uint8))
        for _, _, sent in forwarders:
            polling.wait_for(lambda sent=sent: sent.messages, what="a frame of each preview")
        assert sorted(m[-1] for _, _, sent in forwarders for m in sent.messages) == [1, 2]
    finally:
        for _, forwarder, _ in forwarders:
            assert forwarder.stop(5)


def test_a_slot_is_the_child_s_from_its_message_to_its_free_or_its_end() -> None:
    slots = Slots(2)
    image = np.zeros((4, 4, 3), np.uint8)
    first, second = slots.acquire(), slots.acquire()
    assert (first, second) == (0, 1)
    assert slots.write(0, image) is not None
    slots.sending(0)
    slots.freed(1)  # word of a slot the child does not hold (a child since replaced): ignored
    slots.sending(1)
    slots.freed(0)
    assert slots.acquire() == 0
    slots.child_ended()  # slot 1 was the child's: free again; slot 0 is in hand, it stays so
    assert slots.acquire() == 1
    slots.give_back(0)
    slots.close()
    assert slots.acquire() is None
    assert slots.write(0, np.zeros((64, 64, 3), np.uint8)) is None  # no block made once closed
    assert not blocks_alive()
