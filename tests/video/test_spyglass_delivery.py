"""SpyGlass delivery: frames right after the start, live counts, refused input, stream
times, the warm-up warning, and failures that say why."""

from __future__ import annotations

import logging
import random
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

av = pytest.importorskip("av")

from framescope.video import Frame, SpyGlass, SpyGlassState  # noqa: E402
from framescope.video.session import FrameProcess  # noqa: E402
from tests.polling import holds_within  # noqa: E402

from .helpers import Receiver, free_port  # noqa: E402

pytestmark = pytest.mark.integration


def decoded_times(path: Path) -> list[float]:
    """The presentation time of every frame in ``path``, decoded with PyAV."""
    with av.open(str(path)) as container:
        return [float(frame.time) for frame in container.decode(video=0)]


def decoded_sizes(path: Path) -> list[tuple[int, int]]:
    with av.open(str(path)) as container:
        return [(frame.width, frame.height) for frame in container.decode(video=0)]


# -- frames put at once after start_streaming() ---------------------------------------


def test_frames_put_right_after_the_start_all_reach_the_receiver() -> None:
    url = f"rtmp://127.0.0.1:{free_port()}/live/cam"
    receiver = Receiver(url, "flv", "listen=1")
    # 24 frames (0.4 s at 60 fps) ride out a loaded machine's scheduling, not an
    # encoder that starts loading only when the frames come (that lost about 1 s).
    spyglass = SpyGlass(url, 60, 320, 240, queue_size=24)
    spyglass.start_streaming()
    image = np.full((240, 320, 3), 90, np.uint8)
    for _ in range(90):  # at 60 fps, from the moment start_streaming returned
        assert spyglass.put(image)
        time.sleep(1 / 60)
    assert spyglass.stop_streaming()
    counts = spyglass.counters()
    assert counts["dropped"] == 0, counts
    assert counts["sent"] == 90
    assert receiver.result()["frames"] == 90


# -- counts["sent"] follows the session -----------------------------------------------


@pytest.mark.usefixtures("fast_thread_switching")
def test_sent_is_live_and_every_reading_adds_up(tmp_path: Path) -> None:
    out = tmp_path / "live.mkv"
    spyglass = SpyGlass(str(out), 30, 160, 120, queue_size=16)
    spyglass.start_streaming()
    image = np.zeros((120, 160, 3), np.uint8)
    stop = threading.Event()

    def frame_loop() -> None:
        while not stop.is_set():
            spyglass.put(image)
            time.sleep(0.005)

    loop = threading.Thread(target=frame_loop)
    loop.start()
    readings = []
    try:

        def sent_45() -> bool:
            readings.append(spyglass.counters())
            return bool(readings[-1]["sent"] >= 45)

        holds_within(sent_45, 30, every=0.001)
    finally:
        stop.set()
        loop.join()
    assert readings[-1]["sent"] >= 45  # sent while the session still runs
    # Waiting (one more between put()'s append and its trim), in hand, in the slots.
    bound = spyglass.queue_size + 1 + 1 + FrameProcess.SLOTS
    for counts in readings:
        assert counts["queued"] == counts["sent"] + counts["dropped"] + counts["in_flight"]
        assert 0 <= counts["in_flight"] <= bound, counts  # never a frame counted twice
    for key in ("queued", "sent", "dropped"):  # counts of what happened only rise
        assert [c[key] for c in readings] == sorted(c[key] for c in readings), key
    assert spyglass.stop_streaming()
    final = spyglass.counters()
    assert final["in_flight"] == 0
    assert final["sent"] + final["dropped"] == final["queued"]
    assert len(decoded_times(out)) == final["sent"]


# -- put() refuses what it cannot send ------------------------------------------------


@pytest.mark.parametrize(
    "image",
    [
        np.zeros((120, 160, 3), np.float64),
        np.zeros((120, 160, 3), np.float32),
        np.zeros((120, 160, 3), np.uint16),
        np.zeros((120, 160, 3), np.int64),
        np.zeros((120, 160, 3), object),
        [[[0, 0, 0]]],
        "frame",
    ],
    ids=["float64", "float32", "uint16", "int64", "object", "list", "str"],
)
def test_put_refuses_another_type_or_dtype(tmp_path: Path, image: Any) -> None:
    spyglass = SpyGlass(str(tmp_path / "x.mkv"), 30, 160, 120)
    with pytest.raises(TypeError, match=r"H x W x 3 uint8"):
        spyglass.put(image)
    with pytest.raises(TypeError, match=r"H x W x 3 uint8"):
        spyglass.put(Frame(image, 0, time=0.0))
    assert spyglass.counters()["put"] == 0


@pytest.mark.parametrize(
    "shape",
    [(0, 0, 3), (2, 64_000, 3), (64_000, 2, 3), (120, 160), (120, 160, 4), (120, 160, 1)],
)
def test_put_refuses_another_shape_or_size(tmp_path: Path, shape: tuple[int, ...]) -> None:
    spyglass = SpyGlass(str(tmp_path / "x.mkv"), 30, 160, 120)
    with pytest.raises(ValueError, match=r"each side 1 to 16384 pixels; got shape"):
        spyglass.put(np.zeros(shape, np.uint8))
    assert spyglass.counters()["put"] == 0


def test_put_refuses_a_bad_time(tmp_path: Path) -> None:
    spyglass = SpyGlass(str(tmp_path / "x.mkv"), 30, 160, 120)
    image = np.zeros((120, 160, 3), np.uint8)
    with pytest.raises(TypeError, match="time must be a real number"):
        spyglass.put(image, time="1.0")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="time"):
        spyglass.put(image, time=float("nan"))


def test_refused_and_odd_sized_frames_leave_the_file_whole(tmp_path: Path) -> None:
    out = tmp_path / "whole.mkv"
    spyglass = SpyGlass(str(out), 30, 160, 120, queue_size=256)
    spyglass.start_streaming()
    good = np.full((120, 160, 3), 120, np.uint8)
    bad = [
        np.zeros((120, 160, 3), np.float64),
        np.zeros((120, 160, 3), np.uint16),
        np.zeros((120, 160, 3), object),
        np.zeros((0, 0, 3), np.uint8),
        np.zeros((2, 64_000, 3), np.uint8),
    ]
    # Larger than the shared-memory slot (through the pipe), smaller, odd, a view.
    others = [
        np.full((480, 640, 3), 50, np.uint8),
        np.full((48, 64, 3), 200, np.uint8),
        np.full((121, 161, 3), 30, np.uint8),
        np.full((240, 320, 3), 70, np.uint8)[::2, ::2],
        np.full((2, 16_384, 3), 10, np.uint8),
    ]
    put = 0
    for round_ in range(6):
        for image in bad:
            with pytest.raises((TypeError, ValueError)):
                spyglass.put(image, time=put / 30)
        for image in [good, others[round_ % len(others)], good]:
            assert spyglass.put(image, time=put / 30)
            put += 1
    assert spyglass.stop_streaming()
    counts = spyglass.counters()
    assert counts["failures"] == 0 and counts["dropped"] == 0
    assert counts["sent"] == put == 18
    assert decoded_sizes(out) == [(160, 120)] * put  # every frame, scaled to the stream


# -- stream times -----------------------------------------------------------------------


def test_frames_with_times_play_at_their_speed_when_put_in_a_burst(tmp_path: Path) -> None:
    out = tmp_path / "burst.mkv"
    spyglass = SpyGlass(str(out), 30, 160, 120, queue_size=64)
    spyglass.start_streaming()
    for index in range(60):
        image = np.full((120, 160, 3), index * 4, np.uint8)
        assert spyglass.put(image, time=100 + index / 30)  # all at once
    assert spyglass.stop_streaming()
    times = decoded_times(out)
    assert len(times) == 60
    assert times[-1] - times[0] == pytest.approx(59 / 30, abs=0.002)  # a 2 s video
    gaps = np.diff(times)
    assert gaps == pytest.approx(np.full(59, 1 / 30), abs=0.002)


def test_frame_times_win_over_jittered_put_times(tmp_path: Path) -> None:
    out = tmp_path / "jitter.mkv"
    spyglass = SpyGlass(str(out), 30, 160, 120, queue_size=64)
    spyglass.start_streaming()
    jitter = random.Random(7)
    for index in range(45):
        image = np.full((120, 160, 3), index * 5, np.uint8)
        assert spyglass.put(Frame(image, index, time=index / 30))
        time.sleep(jitter.choice([0.0, 0.0, 0.002, 0.03, 0.06]))  # bursts and gaps
    assert spyglass.stop_streaming()
    gaps = np.diff(decoded_times(out))
    assert len(gaps) == 44
    assert gaps == pytest.approx(np.full(44, 1 / 30), abs=0.002)


# -- warm-up ------------------------------------------------------------------------------


def test_the_warm_up_is_announced_once(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    spyglass = SpyGlass(str(tmp_path / "warm.mkv"), warmup_frames=12)
    image = np.zeros((120, 160, 3), np.uint8)
    with caplog.at_level(logging.WARNING, logger="framescope.video.spyglass"):
        for _ in range(2):
            spyglass.start_streaming()
            assert not spyglass.put(image)
            spyglass.stop_streaming()
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1, warnings
    assert "12 frames" in warnings[0]
    assert "fps, width and height" in warnings[0]
    assert spyglass.counters()["warmup"] == 2


# -- failures -----------------------------------------------------------------------------


def test_a_receiver_that_is_not_there_is_an_error_with_its_reason() -> None:
    url = f"rtmp://127.0.0.1:{free_port()}/live/x"  # nothing listens there
    spyglass = SpyGlass(url, 30, 160, 120, reconnect_initial=0.05, reconnect_max=0.1)
    spyglass.start_streaming()
    assert spyglass.state is SpyGlassState.ERROR  # known when start_streaming returns
    assert spyglass.last_error is not None
    assert "Connection refused" in spyglass.last_error
    image = np.zeros((120, 160, 3), np.uint8)
    states = set()

    def failed_again() -> bool:
        spyglass.put(image)
        states.add(spyglass.state)
        return spyglass.counters()["failures"] >= 3

    assert holds_within(failed_again)
    assert states == {SpyGlassState.ERROR}  # it stays in ERROR while it fails
    assert spyglass.stop_streaming()
    counts = spyglass.counters()
    assert counts["sent"] == 0
    assert counts["dropped"] == counts["queued"] > 0
    assert spyglass.state is SpyGlassState.STOPPED


def test_an_encoder_that_dies_without_a_word_says_how_it_ended(tmp_path: Path) -> None:
    spyglass = SpyGlass(str(tmp_path / "k.mkv"), 30, 64, 64, reconnect_initial=0.05)
    spyglass.start_streaming()
    session = spyglass._session
    assert session is not None
    session._process.kill()  # type: ignore[attr-defined]
    image = np.zeros((64, 64, 3), np.uint8)
    assert holds_within(lambda: spyglass.put(image) and spyglass.counters()["failures"] >= 1)
    assert spyglass.last_error == "the encoder process was killed by signal 9"
    assert spyglass.stop_streaming()


def test_an_unknown_scheme_is_refused_at_construction() -> None:
    with pytest.raises(ValueError, match=r"^uri: unsupported scheme 'bogus'.*rtmp://.*https://"):
        SpyGlass("bogus://x")


def test_the_encoder_loads_during_the_warm_up_so_no_frame_after_it_is_lost(
    tmp_path: Path,
) -> None:
    out = tmp_path / "after_warm_up.mkv"
    # 12 frames (0.2 s) absorb the session's own start (the file opened, x264 set up),
    # not a process that starts loading PyAV only once the warm-up is over.
    spyglass = SpyGlass(str(out), warmup_frames=120, queue_size=12)
    spyglass.start_streaming()
    image = np.full((120, 160, 3), 40, np.uint8)
    taken = []
    for _ in range(180):  # 120 frames (2 s) of warm-up, then 60 to send, at 60 fps
        taken.append(spyglass.put(image))
        time.sleep(1 / 60)
    assert spyglass.stop_streaming()
    assert taken == [False] * 120 + [True] * 60
    counts = spyglass.counters()
    assert counts["warmup"] == 120 and counts["dropped"] == 0, counts
    assert len(decoded_times(out)) == counts["sent"] == 60
