"""SpyGlass: warm-up, restreaming to real receivers, faults, restarts, and as a stage."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("av")

from framescope import Pipeline
from framescope.clock import FakeClock
from framescope.video import (
    USE_LAST_VALUE,
    Frame,
    SpyGlass,
    SpyGlassState,
    SyntheticSource,
    VideoSource,
)
from tests.polling import holds_within

from .helpers import Receiver, free_port, write_clip

pytestmark = pytest.mark.integration


def test_warm_up_measures_rate_and_size_then_streams(tmp_path: Path) -> None:
    clock = FakeClock()
    out = tmp_path / "warm.mkv"
    spyglass = SpyGlass(str(out), warmup_frames=10, queue_size=64, clock=clock)
    spyglass.start_streaming()
    assert spyglass.state is SpyGlassState.START_WARMUP
    image = np.full((240, 320, 3), 60, np.uint8)
    taken = []
    for _ in range(40):
        taken.append(spyglass.put(image))
        clock.advance(0.04)  # 25 fps
    assert taken[:10] == [False] * 10 and all(taken[10:])  # the warm-up frames are not sent
    assert spyglass.fps == pytest.approx(25)
    assert (spyglass.width, spyglass.height) == (320, 240)
    assert spyglass.stop_streaming()
    counts = spyglass.counters()
    assert counts["warmup"] == 10 and counts["queued"] == 30
    assert counts["sent"] == 30 and counts["dropped"] == 0
    assert counts["put"] == counts["warmup"] + counts["queued"]
    frames = list(VideoSource(out))
    assert len(frames) == 30
    assert frames[-1].time == pytest.approx(29 * 0.04, abs=0.002)  # real-time stamps


def test_no_warm_up_when_rate_and_size_are_given(tmp_path: Path) -> None:
    spyglass = SpyGlass(str(tmp_path / "direct.mp4"), 30, 160, 120, queue_size=64)
    spyglass.start_streaming()
    assert spyglass.state is SpyGlassState.STREAMING
    assert spyglass.put(np.zeros((120, 160, 3), np.uint8))  # the first frame goes out
    assert spyglass.stop_streaming()
    assert spyglass.counters()["sent"] == 1 and spyglass.counters()["warmup"] == 0


def test_counters_is_the_one_reading_of_the_frames_and_rises_with_them(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    spyglass = SpyGlass(str(tmp_path / "counted.mp4"), 30, 160, 120, queue_size=64)
    assert not hasattr(spyglass, "counts")  # Backpack had no such name: counters() only
    keys = {"put", "warmup", "stopped", "queued", "sent", "dropped", "in_flight"}
    assert spyglass.counters() == dict.fromkeys({*keys, "failures", "reconnects"}, 0)
    with caplog.at_level("WARNING", logger="framescope.video.spyglass"):
        for _ in range(3):  # while stopped: counted, not sent, said once
            assert not spyglass.put(np.zeros((120, 160, 3), np.uint8))
    assert [r.message for r in caplog.records if "not streaming" in r.message] != []
    assert len([r for r in caplog.records if "not streaming" in r.message]) == 1
    spyglass.start_streaming()
    spyglass.put(np.zeros((120, 160, 3), np.uint8))
    assert spyglass.stop_streaming()
    counts = spyglass.counters()
    assert (counts["put"], counts["stopped"], counts["queued"]) == (4, 3, 1)
    assert (counts["sent"], counts["in_flight"]) == (1, 0)
    assert counts["put"] == counts["warmup"] + counts["stopped"] + counts["queued"]
    counts["sent"] = 99  # a copy: the reading is the caller's
    assert spyglass.counters()["sent"] == 1


def test_frames_of_another_size_are_scaled(tmp_path: Path) -> None:
    out = tmp_path / "scaled.mkv"
    spyglass = SpyGlass(str(out), 30, 160, 120, queue_size=64)
    spyglass.start_streaming()
    for frame in SyntheticSource(320, 240, 30, frames=12):
        spyglass.put(frame)
    assert spyglass.stop_streaming()
    assert {(f.width, f.height) for f in VideoSource(out)} == {(160, 120)}


def test_round_trip_every_frame_arrives_at_the_rtmp_receiver(tmp_path: Path) -> None:
    clip = write_clip(tmp_path / "input.mp4", frames=90, size=(320, 240))
    url = f"rtmp://127.0.0.1:{free_port()}/live/cam"
    receiver = Receiver(url, "flv", "listen=1")
    spyglass = SpyGlass(url, 30, 320, 240, queue_size=256, name="Restream")
    pipeline = Pipeline().add(lambda f: f, "Decode").add(lambda f: f, "Detect")
    pipeline.add(spyglass).parallelize(queue_size=8)
    spyglass.start_streaming()
    passed = list(pipeline.run(VideoSource(clip)))
    assert [frame.index for frame in passed] == list(range(90))  # the stage passes them on
    pipeline.cleanup()  # stops the SpyGlass: what is queued is sent first
    assert spyglass.state is SpyGlassState.STOPPED
    counts = spyglass.counters()
    assert counts["sent"] == 90 and counts["dropped"] == 0
    report = receiver.result()
    assert report["frames"] == 90
    assert report["size"] == [320, 240]


def test_a_receiver_that_goes_away_and_comes_back() -> None:
    port = free_port()
    url = f"rtmp://127.0.0.1:{port}/live/cam"
    receiver = Receiver(url, "flv", "listen=1")
    spyglass = SpyGlass(url, 30, 160, 120, reconnect_initial=0.2, reconnect_max=0.5)
    spyglass.start_streaming()
    image = np.zeros((120, 160, 3), np.uint8)
    slowest = 0.0

    def put_for(seconds: float) -> None:
        nonlocal slowest
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            started = time.monotonic()
            spyglass.put(image)
            slowest = max(slowest, time.monotonic() - started)
            time.sleep(1 / 30)

    put_for(1.5)
    assert holds_within(lambda: spyglass.state is SpyGlassState.STREAMING)
    receiver.kill()
    put_for(1.5)
    assert holds_within(lambda: spyglass.counters()["failures"] >= 1)
    assert spyglass.last_error is not None
    again = Receiver(url, "flv", "listen=1")
    put_for(0.5)
    assert holds_within(lambda: spyglass.counters()["reconnects"] >= 1, 20)
    put_for(1.5)
    assert spyglass.stop_streaming()
    assert again.result()["frames"] > 0  # streaming resumed to the new receiver
    counts = spyglass.counters()
    assert counts["put"] == counts["queued"]
    assert counts["sent"] + counts["dropped"] == counts["queued"]  # every frame accounted for
    assert slowest < 0.5, slowest  # the loop never waited on the network


def test_a_receiver_that_never_reads_cannot_hold_the_loop() -> None:
    listener = socket.socket()  # accepts connections, never reads a byte
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    url = f"tcp://127.0.0.1:{listener.getsockname()[1]}"
    spyglass = SpyGlass(url, 30, 1280, 720, queue_size=4)
    spyglass.start_streaming()
    noisy = np.random.default_rng(1).integers(0, 255, (720, 1280, 3), dtype=np.uint8)
    slowest = 0.0
    for _ in range(2000):  # until the socket's buffers are full and the queue overflows
        started = time.monotonic()
        assert spyglass.put(noisy)
        slowest = max(slowest, time.monotonic() - started)
        time.sleep(0.005)
        if spyglass.counters()["dropped"] > 0:
            break
    assert slowest < 0.5, slowest
    assert spyglass.counters()["dropped"] > 0  # the bounded queue overflowed, counted
    started = time.monotonic()
    spyglass.stop_streaming(timeout=1.0)  # the encoder is stuck on the socket: ended
    assert time.monotonic() - started < 10
    counts = spyglass.counters()
    assert counts["sent"] + counts["dropped"] == counts["queued"]
    listener.close()


def test_stop_and_start_three_times_to_the_same_url() -> None:
    url = f"rtmp://127.0.0.1:{free_port()}/live/cam"
    spyglass = SpyGlass(url, 30, 160, 120, queue_size=64)
    for _ in range(3):
        receiver = Receiver(url, "flv", "listen=1")
        spyglass.start_streaming(fps=USE_LAST_VALUE)
        for frame in SyntheticSource(160, 120, 30, frames=20):
            spyglass.put(frame)
        assert spyglass.stop_streaming()
        assert receiver.result()["frames"] == 20
    assert spyglass.counters()["sent"] == 60


def test_bad_settings_fail_at_start_not_in_the_encoder(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="scheme"):
        SpyGlass("srt://127.0.0.1:9000")
    with pytest.raises(ValueError, match="codec"):
        SpyGlass(str(tmp_path / "x.mp4"), codec="no-such-codec")
    spyglass = SpyGlass(str(tmp_path / "x.mp4"))
    with pytest.raises(ValueError, match="height must be even"):
        spyglass.start_streaming(fps=30, width=160, height=121)
    with pytest.raises(ValueError, match="fps"):
        spyglass.start_streaming(fps=-1)
    assert spyglass.state is SpyGlassState.STOPPED
    assert not spyglass.put(np.zeros((8, 8, 3), np.uint8))  # stopped: not taken
    with pytest.raises(TypeError, match="numpy image"):
        spyglass.put("frame")


def test_no_thread_or_process_is_left_behind(tmp_path: Path) -> None:
    spyglass = SpyGlass(str(tmp_path / "t.mkv"), 30, 64, 64)
    spyglass.start_streaming()
    spyglass.put(np.zeros((64, 64, 3), np.uint8))
    assert holds_within(lambda: spyglass._session is not None)
    session = spyglass._session
    assert spyglass.stop_streaming()
    assert session is not None
    assert session._process.poll() is not None  # the encoder process has exited
    names = [t.name for t in threading.enumerate()]
    assert not [name for name in names if "spyglass" in name.lower()]


def test_a_frame_that_is_not_bgr_is_refused_by_name(tmp_path: Path) -> None:
    spyglass = SpyGlass(str(tmp_path / "rgb.mp4"), 30, 160, 120)
    image = np.zeros((120, 160, 3), np.uint8)
    with pytest.raises(ValueError, match=r"frame: a Frame in 'rgb24'"):
        spyglass.put(Frame(image, 0, pixel_format="rgb24"))
    assert spyglass.counters()["put"] == 0  # refused before it was counted
