"""Event clips: pre-roll from a key frame, post-roll, overlaps, splits, budget, faults, both modes."""

from __future__ import annotations

import contextlib
import datetime
import fractions
import itertools
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from framescope.clock import FakeClock
from framescope.pipeline import Pipeline, PipelineSnapshot
from tests.polling import wait_for

av = pytest.importorskip("av")
np = pytest.importorskip("numpy")

from framescope.video import Clips, VideoSource  # noqa: E402 - needs PyAV

FPS = 30
GOP_S = 2
BASE_CAPTURE = 1_700_000_000.0  # the capture time of the stream's first frame


def _encode_stream(path: Path, seconds: int, gop_s: float = GOP_S, size=(160, 120)) -> Path:
    """An H.264 MP4 with a key frame exactly every ``gop_s`` seconds (B-frames too)."""
    container = av.open(str(path), "w")
    stream = container.add_stream("libx264", rate=FPS)
    stream.width, stream.height = size
    stream.pix_fmt = "yuv420p"
    stream.options = {"g": str(round(gop_s * FPS)), "keyint_min": str(round(gop_s * FPS))}
    stream.options["sc_threshold"] = "0"
    stream.options["bf"] = "2"
    for index in range(seconds * FPS):
        image = np.zeros((size[1], size[0], 3), np.uint8)
        image[:, : (index * 3) % size[0]] = (index * 7) % 255
        frame = av.VideoFrame.from_ndarray(image, format="bgr24")
        frame.pts = index
        frame.time_base = fractions.Fraction(1, FPS)
        for packet in stream.encode(frame):
            container.mux(packet)
    for packet in stream.encode(None):
        container.mux(packet)
    container.close()
    return path


@pytest.fixture(scope="module")
def stream_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _encode_stream(tmp_path_factory.mktemp("clips") / "gop2.mp4", 30)


class Feeder:
    """Hands a file's packets to a recorder one frame interval of a fake clock apart."""

    def __init__(self, path: Path, clips: Clips, clock: FakeClock) -> None:
        self.container = av.open(str(path))
        self.stream = self.container.streams.video[0]
        self.clips, self.clock = clips, clock
        self.start_ns = clock.monotonic_ns()
        self.packets = [p for p in self.container.demux(self.stream) if p.size]
        self.fed = 0
        self.seen: list[tuple[bytes, float, bool]] = []  # data, capture time, key
        clips.open_stream(self.stream)

    def capture_time(self, packet: Any) -> float:
        return BASE_CAPTURE + float(packet.pts * self.stream.time_base)

    def until(self, seconds: float) -> None:
        """Feed packets until the clock reads ``seconds`` from the start."""
        while self.fed < len(self.packets):
            if self.clock.monotonic_ns() - self.start_ns >= round(seconds * 1e9):
                return
            packet = self.packets[self.fed]
            self.fed += 1
            capture = self.capture_time(packet)
            self.seen.append((bytes(packet), capture, bool(packet.is_keyframe)))
            self.clips.add_packet(packet, self.clock.monotonic_ns(), capture)
            self.clock.advance(1 / FPS)

    def close(self) -> None:
        self.container.close()


@pytest.fixture
def clock() -> FakeClock:
    """Its wall clock reads the stream's capture times as they come."""
    return FakeClock(wall=datetime.datetime.fromtimestamp(BASE_CAPTURE, datetime.timezone.utc))


@contextlib.contextmanager
def recorder(directory: Path, clock: FakeClock, **options: Any) -> Iterator[Clips]:
    clips = Clips(directory, clock=clock, **options)
    try:
        yield clips
    finally:
        assert clips.close(30)


def settled(clips: Clips, written: int) -> None:
    wait_for(
        lambda: (
            clips.clips_snapshot().clips_written + clips.clips_snapshot().dropped >= written
            and not clips.recording
        ),
        what=f"{written} clips written",
    )


def clip_packets(path: Path) -> list[tuple[bytes, bool, float]]:
    """Each packet of an MP4's video: data, key frame, pts in seconds."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        return [
            (bytes(p), bool(p.is_keyframe), float(p.pts * stream.time_base))
            for p in container.demux(stream)
            if p.size
        ]


def decoded_frames(path: Path) -> int:
    with av.open(str(path)) as container:
        return sum(1 for _ in container.decode(video=0))


def sidecar(directory: Path, clip_id: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((directory / f"{clip_id}.json").read_text())
    return data


def test_a_clip_starts_at_the_key_frame_before_pre_and_ends_after_post(
    stream_file: Path, tmp_path: Path, clock: FakeClock
) -> None:
    with recorder(tmp_path, clock, pre=3, post=2) as clips:
        feeder = Feeder(stream_file, clips, clock)
        feeder.until(10)
        clips.trigger("person", zone="door", score=0.9)
        feeder.until(16)
        settled(clips, 1)
        snapshot = clips.clips_snapshot()
    assert snapshot.clips_written == 1 and snapshot.dropped == 0
    (entry,) = snapshot.recent
    path = tmp_path / entry.file
    packets = clip_packets(path)
    assert packets[0][1], "the clip's first packet is a key frame"
    # Key frames every 2 s: the one at or before 10 - 3 = 7 s is at 6 s.
    assert entry.start_time == pytest.approx(BASE_CAPTURE + 6.0)
    assert entry.end_time >= BASE_CAPTURE + 12.0
    assert entry.end_time < BASE_CAPTURE + 12.0 + 0.2  # the first frame at or after the end
    assert decoded_frames(path) == len(packets) == entry.frames
    # The clip holds the source's packets, byte for byte, in order, from the key frame at 6 s.
    first = next(i for i, (_, t, _) in enumerate(feeder.seen) if t == BASE_CAPTURE + 6.0)
    assert [p[0] for p in packets] == [s[0] for s in feeder.seen[first : first + len(packets)]]
    data = sidecar(tmp_path, entry.clip_id)
    assert data["complete"] and data["ended"] == "post"
    assert data["reason"] == "person" and data["labels"] == {"zone": "door", "score": 0.9}
    assert data["start_time"] == entry.start_time and data["end_time"] == entry.end_time
    assert data["pre_roll_s"] == pytest.approx(4.0, abs=1.01 / FPS)  # on the arrival clock
    assert data["trigger_list"][0]["at_s"] == pytest.approx(4.0, abs=1.01 / FPS)
    assert data["frames"] == entry.frames and data["key_frames"] == 4
    assert data["mode"] == "packets" and data["codec"] == "h264"
    index = json.loads((tmp_path / "index.json").read_text())
    assert [clip["clip_id"] for clip in index["clips"]] == [entry.clip_id]
    feeder.close()


def test_overlapping_triggers_make_one_clip(
    stream_file: Path, tmp_path: Path, clock: FakeClock
) -> None:
    with recorder(tmp_path, clock, pre=1, post=2) as clips:
        feeder = Feeder(stream_file, clips, clock)
        feeder.until(5)
        clips.trigger("car")
        feeder.until(6)
        clips.trigger("car", plate="XYZ")
        feeder.until(7.5)
        clips.trigger("person")
        feeder.until(14)
        settled(clips, 1)
        snapshot = clips.clips_snapshot()
    assert snapshot.clips_written == 1 and snapshot.triggers == 3
    (entry,) = snapshot.recent
    assert entry.triggers == 3 and entry.reason == "car"
    assert entry.start_time == pytest.approx(BASE_CAPTURE + 4.0)  # key frame at or before 4 s
    assert entry.end_time >= BASE_CAPTURE + 9.5  # 2 s after the last trigger
    reasons = [t["reason"] for t in sidecar(tmp_path, entry.clip_id)["trigger_list"]]
    assert reasons == ["car", "car", "person"]
    feeder.close()


def test_max_length_splits_an_event_without_a_gap_or_a_duplicate(
    stream_file: Path, tmp_path: Path, clock: FakeClock
) -> None:
    with recorder(tmp_path, clock, pre=2, post=2, max_length=7) as clips:
        feeder = Feeder(stream_file, clips, clock)
        feeder.until(4)
        for second in range(4, 22):
            clips.trigger("loitering")
            feeder.until(second + 1)
        feeder.until(28)
        settled(clips, 3)
        entries = clips.clips()
    assert len(entries) >= 3
    assert entries[0].continues is None
    for before, after in itertools.pairwise(entries):
        assert after.continues == before.clip_id
    joined: list[bytes] = []
    for entry in entries:
        packets = clip_packets(tmp_path / entry.file)
        assert packets[0][1], f"{entry.clip_id} starts with a key frame"
        assert entry.duration_s <= 7.0 + 1e-6
        assert decoded_frames(tmp_path / entry.file) == len(packets)
        joined += [p[0] for p in packets]
    first = next(i for i, (_, t, _) in enumerate(feeder.seen) if t == entries[0].start_time)
    assert joined == [s[0] for s in feeder.seen[first : first + len(joined)]]  # no gap, no twice
    assert entries[-1].end_time >= BASE_CAPTURE + 23.0
    feeder.close()


def test_the_disk_budget_deletes_the_oldest_clips(
    stream_file: Path, tmp_path: Path, clock: FakeClock
) -> None:
    with recorder(tmp_path / "probe", clock, pre=1, post=1) as probe:
        feeder = Feeder(stream_file, probe, clock)
        feeder.until(3)
        probe.trigger("size probe")
        feeder.until(8)
        settled(probe, 1)
    feeder.close()
    one_clip = probe.clips_snapshot().bytes_on_disk
    budget = round(2.5 * one_clip)
    with recorder(tmp_path, clock, pre=1, post=1, max_bytes=budget) as clips:
        feeder = Feeder(stream_file, clips, clock)
        for start in (3, 9, 15, 21):
            feeder.until(start)
            clips.trigger("event")
            feeder.until(start + 4)
            settled(clips, (start - 3) // 6 + 1)
        snapshot = clips.clips_snapshot()
    assert snapshot.clips_written == 4
    assert snapshot.clips_deleted >= 1
    assert snapshot.bytes_on_disk <= budget
    kept = sorted(path.name for path in tmp_path.glob("*.mp4"))
    assert kept == sorted(entry.file for entry in snapshot.recent)
    written = sorted(entry.start_time for entry in snapshot.recent)
    assert written[-1] == pytest.approx(BASE_CAPTURE + 20.0)  # the newest kept, the oldest gone
    assert snapshot.clips_on_disk == len(kept) == 4 - snapshot.clips_deleted
    feeder.close()


def test_max_age_deletes_clips_older_than_it(
    stream_file: Path, tmp_path: Path, clock: FakeClock
) -> None:
    with recorder(tmp_path, clock, pre=1, post=1, max_age=30) as clips:
        feeder = Feeder(stream_file, clips, clock)
        feeder.until(3)
        clips.trigger("event")
        feeder.until(8)
        settled(clips, 1)
        assert clips.clips_snapshot().clips_on_disk == 1
        clock.advance(20)
        assert clips.clips_snapshot().clips_on_disk == 1
        clock.advance(15)  # past max_age, and past the next age check
        wait_for(lambda: clips.clips_snapshot().clips_deleted == 1, what="the old clip deleted")
    assert not list(tmp_path.glob("*.mp4"))
    feeder.close()


def _refuse_writes(directory: Path) -> bool:
    """Make ``directory`` refuse new files: read-only, or immutable for root."""
    directory.chmod(0o555)
    probe = directory / "probe"
    try:
        probe.write_bytes(b"")
    except OSError:
        return True
    probe.unlink()
    result = subprocess.run(["chattr", "+i", str(directory)], capture_output=True, check=False)
    return result.returncode == 0


def _allow_writes(directory: Path) -> None:
    subprocess.run(["chattr", "-i", str(directory)], capture_output=True, check=False)
    directory.chmod(0o755)


def test_a_disk_that_refuses_writes_drops_the_clip_and_counts_it(
    stream_file: Path, tmp_path: Path, clock: FakeClock
) -> None:
    directory = tmp_path / "clips"
    with recorder(directory, clock, pre=1, post=1) as clips:
        feeder = Feeder(stream_file, clips, clock)
        feeder.until(3)
        if not _refuse_writes(directory):
            _allow_writes(directory)
            pytest.skip("this machine cannot make a directory refuse root's writes")
        try:
            clips.trigger("person")
            feeder.until(8)  # the source goes on: every packet is taken
            settled(clips, 1)
            snapshot = clips.clips_snapshot()
        finally:
            _allow_writes(directory)
        assert snapshot.clips_dropped == {"disk": 1} and snapshot.clips_written == 0
        assert snapshot.last_error is not None and "clip not written" in snapshot.last_error
        assert feeder.fed >= 8 * FPS
        clips.trigger("person")  # the disk is back: the next clip is written
        feeder.until(14)
        settled(clips, 2)
        assert clips.clips_snapshot().clips_written == 1
    feeder.close()


def test_closing_mid_clip_finishes_it_with_what_came(
    stream_file: Path, tmp_path: Path, clock: FakeClock
) -> None:
    clips = Clips(tmp_path, pre=1, post=30, clock=clock)
    feeder = Feeder(stream_file, clips, clock)
    feeder.until(4)
    clips.trigger("person")
    feeder.until(7)
    assert clips.recording
    assert clips.close(30)
    (entry,) = clips.clips()
    assert sidecar(tmp_path, entry.clip_id)["ended"] == "closed"
    assert entry.end_time == pytest.approx(BASE_CAPTURE + 7 - 1 / FPS, abs=0.15)  # a B-frame run
    assert not list(tmp_path.glob("*.part"))
    clips.trigger("late")  # a stage racing the shutdown: ignored, said
    snapshot = clips.clips_snapshot()
    assert snapshot.triggers == 2 and snapshot.clips_written == 1
    assert snapshot.last_error == "a trigger ('late') came after close(): ignored"
    with pytest.raises(RuntimeError, match="closed"):
        clips.attach(VideoSource(stream_file))
    feeder.close()


def test_a_stream_quiet_past_the_end_ends_the_clip(
    stream_file: Path, tmp_path: Path, clock: FakeClock
) -> None:
    with recorder(tmp_path, clock, pre=1, post=1) as clips:
        feeder = Feeder(stream_file, clips, clock)
        feeder.until(4)
        clips.trigger("person")
        feeder.until(4.5)  # then the camera stops sending
        clock.advance(3)
        settled(clips, 1)
        (entry,) = clips.clips()
        assert entry.end_time <= BASE_CAPTURE + 4.5
    feeder.close()


@pytest.fixture(scope="module")
def noisy_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Ten seconds of noise: about 20 kB a frame, 4.5 MB in all (a key frame every 2 s)."""
    path = tmp_path_factory.mktemp("clips") / "noise.mp4"
    rng = np.random.default_rng(7)
    container = av.open(str(path), "w")
    stream = container.add_stream("libx264", rate=FPS)
    stream.width, stream.height, stream.pix_fmt = 160, 120, "yuv420p"
    stream.options = {"g": str(GOP_S * FPS), "keyint_min": str(GOP_S * FPS), "crf": "0"}
    for index in range(10 * FPS):
        image = rng.integers(0, 255, (120, 160, 3), np.uint8)
        frame = av.VideoFrame.from_ndarray(image, format="bgr24")
        frame.pts, frame.time_base = index, fractions.Fraction(1, FPS)
        for packet in stream.encode(frame):
            container.mux(packet)
    for packet in stream.encode(None):
        container.mux(packet)
    container.close()
    return path


def test_the_ring_is_bounded_in_bytes_and_a_short_pre_roll_is_said(
    noisy_file: Path, tmp_path: Path, clock: FakeClock
) -> None:
    memory = 6 << 20  # a 2 MiB ring: 3.5 s of this stream
    with recorder(tmp_path, clock, pre=8, post=1, max_memory=memory) as clips:
        feeder = Feeder(noisy_file, clips, clock)
        for second in range(1, 9):
            feeder.until(second)
            assert clips.clips_snapshot().ring_bytes <= memory // 3
        snapshot = clips.clips_snapshot()
        assert snapshot.ring_overflows >= 1 and snapshot.ring_seconds < 8
        assert snapshot.last_error is not None and "max_memory" in snapshot.last_error
        clips.trigger("short")
        for quarter in range(33, 41):  # a quarter second at a time: the writer keeps up
            feeder.until(quarter / 4)
            wait_for(lambda: not clips._events or not clips._events[0].pending)
        clock.advance(2)
        settled(clips, 1)
        (entry,) = clips.clips()
        data = sidecar(tmp_path, entry.clip_id)
        assert data["pre_roll_s"] < 8  # what it got, said
        assert clips.clips_snapshot().clips_dropped == {}
    feeder.close()


def test_a_pipeline_stage_records_its_frames_with_a_key_frame_every_second(
    tmp_path: Path, clock: FakeClock
) -> None:
    clips = Clips(tmp_path, pre=2, post=1, key_interval=1.0, clock=clock)
    pipeline = Pipeline(clock=clock)
    pipeline.add(clips)
    pipeline.serialize()
    pipeline.start()
    for index in range(8 * FPS):
        image = np.full((90, 161, 3), index % 255, np.uint8)  # an odd width too
        if index == 5 * FPS:
            clips.trigger("motion")
        pipeline.forward(image)
        clock.advance(1 / FPS)
        # The encoder has a frame interval of real time at 30 fps; here, as long as it takes.
        wait_for(lambda: clips._encoder is not None and not clips._encoder.busy)
    snapshot = pipeline.snapshot()
    pipeline.cleanup(drain=True)
    (recorded,) = snapshot.clips
    assert recorded.mode == "frames" and recorded.name == tmp_path.name
    (entry,) = clips.clips()
    packets = clip_packets(tmp_path / entry.file)
    keys = [t for _, key, t in packets if key]
    assert packets[0][1] and keys[0] == 0.0
    assert all(b - a <= 1.0 + 1e-6 for a, b in itertools.pairwise(keys)), keys
    assert decoded_frames(tmp_path / entry.file) == len(packets)
    assert 3 * FPS <= entry.frames <= 4 * FPS + 2  # from a key frame in (2 s, 3 s], to 6 s
    assert entry.duration_s == pytest.approx(len(packets) / FPS, abs=0.05)
    assert clips.clips_snapshot().frames_dropped == 0
    with av.open(str(tmp_path / entry.file)) as container:
        assert container.streams.video[0].codec_context.width == 160


def test_a_tapped_stage_is_recorded_and_shown(tmp_path: Path, clock: FakeClock) -> None:
    clips = Clips(tmp_path, pre=1, post=1, clock=clock)
    pipeline = Pipeline(clock=clock)
    pipeline.add(lambda image: image + 1, "Draw")
    pipeline.tap("Draw", clips)  # in Draw's thread: no stage of its own
    pipeline.serialize()
    pipeline.start()
    for index in range(3 * FPS):
        if index == FPS:
            clips.trigger("drawn")
        pipeline.forward(np.zeros((32, 48, 3), np.uint8))
        clock.advance(1 / FPS)
        wait_for(lambda: clips._encoder is not None and not clips._encoder.busy)
    (recorded,) = pipeline.snapshot().clips
    pipeline.cleanup(drain=True)
    assert recorded.mode == "frames" and recorded.triggers == 1
    assert [stage.stage for stage in pipeline.snapshot().stages] == ["Draw"]
    assert clips.close(30)
    (entry,) = clips.clips()
    assert decoded_frames(tmp_path / entry.file) == entry.frames >= 2 * FPS


def test_many_sources_record_the_chosen_camera_only(tmp_path: Path, clock: FakeClock) -> None:
    from framescope.video import Frame

    clips = Clips(tmp_path, camera="door", clock=clock)
    kept = clips(Frame(np.zeros((32, 32, 3), np.uint8), 0, source="door"))
    other = Frame(np.zeros((32, 32, 3), np.uint8), 0, source="yard")
    assert clips(other) is other
    assert clips._counts["other_sources"] == 1
    assert kept.source == "door"
    assert clips.close(30)


def test_attached_to_a_source_the_pipeline_snapshot_shows_it(
    stream_file: Path, tmp_path: Path
) -> None:
    source = VideoSource(stream_file)
    clips = Clips(tmp_path, pre=1, post=1).attach(source)
    assert source.clip_recorders == (clips,)
    seen = []

    def detect(frame: Any) -> Any:
        seen.append(frame.index)
        if frame.index == 5 * FPS:
            clips.trigger("person", frame=frame.index)
        return frame

    pipeline = Pipeline()
    pipeline.add(detect)
    pipeline.serialize()
    results = list(pipeline.run(source))
    snapshot = pipeline.snapshot()
    pipeline.cleanup()
    assert clips.close(30)
    assert len(results) == 30 * FPS
    (recorded,) = snapshot.clips
    assert recorded.mode == "packets" and recorded.triggers == 1
    back = PipelineSnapshot.from_dict(json.loads(snapshot.to_json()))
    assert back.clips == snapshot.clips
    (entry,) = clips.clips()
    assert decoded_frames(tmp_path / entry.file) == entry.frames > 0
    # The clip's packets are the file's own, unchanged.
    with av.open(str(stream_file)) as original:
        ours = {bytes(p) for p in original.demux(video=0) if p.size}
    assert all(data in ours for data, _, _ in clip_packets(tmp_path / entry.file))


_CRASHER = """
import glob, sys, time, av
from framescope.video import Clips


def written(folder):
    # the frames the part file holds already (its fragments up to the last key frame)
    for part in glob.glob(folder + "/*.mp4.part"):
        try:
            with av.open(part) as reading:
                return sum(1 for p in reading.demux(video=0) if p.size)
        except (av.FFmpegError, OSError):
            return 0
    return 0


clips = Clips(sys.argv[1], pre=1, post=50)
container = av.open(sys.argv[2]); stream = container.streams.video[0]
clips.open_stream(stream)
for index, packet in enumerate(container.demux(stream)):
    if not packet.size:
        continue
    clips.add_packet(packet, time.monotonic_ns(), float(index))
    if index == 30:
        clips.trigger("crash test")
    if index == 300:
        deadline = time.monotonic() + 120
        while written(sys.argv[1]) < 4 * 30 and time.monotonic() < deadline:
            time.sleep(0.05)  # polled: the writer's thread puts the fragments there
        print("recording", flush=True)
        time.sleep(600)
"""


@pytest.mark.integration
def test_a_process_killed_mid_clip_leaves_a_playable_file(
    stream_file: Path, tmp_path: Path
) -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", _CRASHER, str(tmp_path), str(stream_file)],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "recording"
        child.kill()
        child.wait(30)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(30)
        if child.stdout is not None:
            child.stdout.close()
    (part,) = tmp_path.glob("*.mp4.part")
    frames = decoded_frames(part)
    assert frames >= 4 * FPS  # every fragment up to the last key frame before the kill
    (data,) = [json.loads(p.read_text()) for p in tmp_path.glob("*-0001.json")]
    assert data["complete"] is False and data["reason"] == "crash test"
    # The next recorder on the directory finishes it into a clip of its index.
    clips = Clips(tmp_path)
    (entry,) = clips.clips()
    assert clips.close(30)
    assert not list(tmp_path.glob("*.part"))
    assert decoded_frames(tmp_path / entry.file) == entry.frames == frames
    data = json.loads((tmp_path / f"{entry.clip_id}.json").read_text())
    assert data["complete"] and data["ended"] == "interrupted"
    assert data["start_time"] == entry.start_time == 0.0  # its first packet's capture time
    assert entry.duration_s == pytest.approx(frames / FPS, abs=0.01)


def test_bad_arguments_are_refused_with_their_names(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="directory"):
        Clips(3)  # type: ignore[arg-type]
    (tmp_path / "file").write_text("x")
    with pytest.raises(ValueError, match="directory"):
        Clips(tmp_path / "file")
    with pytest.raises(ValueError, match="max_length"):
        Clips(tmp_path, pre=40, post=30, max_length=60)
    with pytest.raises(ValueError, match="max_bytes"):
        Clips(tmp_path, max_bytes=0)
    with pytest.raises(TypeError, match="max_memory"):
        Clips(tmp_path, max_memory=1.5)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="camera"):
        Clips(tmp_path, camera=3)  # type: ignore[arg-type]
    clips = Clips(tmp_path)
    with pytest.raises(TypeError, match="reason"):
        clips.trigger(None)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="reason"):
        clips.trigger("  ")
    with pytest.raises(TypeError, match="label 'box'"):
        clips.trigger("person", box=[1, 2])
    with pytest.raises(TypeError, match="VideoSource"):
        clips.attach([1, 2, 3])
    with pytest.raises(TypeError, match="image arrays"):
        clips("not a frame")
    clips(np.zeros((16, 16, 3), np.uint8))
    with pytest.raises(ValueError, match="not both"):
        clips.attach(VideoSource(__file__))
    assert clips.close(30)


def test_a_stage_faster_than_max_fps_has_the_others_left_out(
    tmp_path: Path, clock: FakeClock
) -> None:
    clips = Clips(tmp_path, pre=1, post=1, max_fps=30, clock=clock)
    for index in range(4 * 120):  # 120 frames a second, for 4 s
        if index == 2 * 120:
            clips.trigger("fast")
        clips(np.zeros((32, 32, 3), np.uint8))
        clock.advance(1 / 120)
        wait_for(lambda: clips._encoder is not None and not clips._encoder.busy)
    assert clips.close(30)
    (entry,) = clips.clips()
    seconds = entry.duration_s
    assert 2.0 <= seconds <= 3.1
    assert entry.frames == pytest.approx(30 * seconds, abs=2)  # a quarter of them
    left_out = clips.clips_snapshot().frames_dropped  # over the cap: counted
    assert 4 * 120 - 4 * 30 - 60 <= left_out <= 4 * 120 - 4 * 30  # 4 s: a burst, then 30 a second
    with pytest.raises(ValueError, match="max_fps"):
        Clips(tmp_path, max_fps=0)


def test_a_restarted_recorder_keeps_its_clips_in_the_index_and_the_budget(
    stream_file: Path, tmp_path: Path, clock: FakeClock
) -> None:
    with recorder(tmp_path, clock, pre=1, post=1) as clips:
        feeder = Feeder(stream_file, clips, clock)
        for start in (3, 9):
            feeder.until(start)
            clips.trigger("event")
            feeder.until(start + 4)
            settled(clips, (start - 3) // 6 + 1)
        first = clips.clips()
    feeder.close()
    assert len(first) == 2
    again = Clips(tmp_path, clock=clock)  # a restart: the same clips, indexed
    assert again.clips() == first
    assert again.clips_snapshot().bytes_on_disk > 0
    assert again.close(30)
    index = json.loads((tmp_path / "index.json").read_text())
    assert [clip["clip_id"] for clip in index["clips"]] == [entry.clip_id for entry in first]
    small = Clips(tmp_path, max_bytes=first[-1].bytes + 5_000, clock=clock)  # kept from the start
    assert [entry.clip_id for entry in small.clips()] == [first[-1].clip_id]
    assert small.clips_snapshot().clips_deleted == 1
    assert not (tmp_path / first[0].file).exists()
    assert small.close(30)


def test_one_recorder_a_directory(tmp_path: Path) -> None:
    clips = Clips(tmp_path)
    with pytest.raises(ValueError, match="used by another Clips recorder"):
        Clips(tmp_path)
    assert clips.close(30)
    assert Clips(tmp_path).close(30)  # free again once closed


def test_a_fault_of_the_writer_drops_the_clip_and_says_so(
    stream_file: Path, tmp_path: Path, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    from framescope.video import clipwriter

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("a bug")

    with recorder(tmp_path, clock, pre=1, post=1) as clips:
        feeder = Feeder(stream_file, clips, clock)
        feeder.until(3)
        monkeypatch.setattr(clipwriter, "ClipFile", broken)
        clips.trigger("person")
        feeder.until(8)
        settled(clips, 1)
        snapshot = clips.clips_snapshot()
        assert snapshot.clips_dropped == {"error": 1}
        assert snapshot.last_error == "clip not written (RuntimeError: a bug)"
        monkeypatch.undo()
        clips.trigger("person")  # the writer lives on
        feeder.until(14)
        settled(clips, 2)
        assert clips.clips_snapshot().clips_written == 1
    feeder.close()


def test_a_reopened_stream_never_mixes_into_a_clip(
    stream_file: Path, noisy_file: Path, tmp_path: Path, clock: FakeClock
) -> None:
    with recorder(tmp_path, clock, pre=1, post=3) as clips:
        feeder = Feeder(stream_file, clips, clock)
        feeder.until(3)
        clips.trigger("person")
        feeder.until(4.5)  # mid key-frame interval, the camera reconnects: another stream
        other = Feeder(noisy_file, clips, clock)
        other.packets = other.packets[15:]  # it starts between key frames
        other.until(3)
        settled(clips, 2)
        entries = clips.clips()
    for entry in entries:
        packets = clip_packets(tmp_path / entry.file)
        assert packets[0][1]
        assert decoded_frames(tmp_path / entry.file) == len(packets) == entry.frames
    first, second = entries
    assert sidecar(tmp_path, first.clip_id)["ended"] == "stream changed"
    assert second.continues == first.clip_id
    assert first.end_time <= BASE_CAPTURE + 4.5
    feeder.close()
    other.close()


def test_triggers_at_a_split_are_each_in_one_clip(
    stream_file: Path, tmp_path: Path, clock: FakeClock
) -> None:
    with recorder(tmp_path, clock, pre=1, post=2, max_length=5) as clips:
        feeder = Feeder(stream_file, clips, clock)
        feeder.until(3)
        for step in range(24):  # every quarter second for 6 s
            clips.trigger("tick", n=step)
            feeder.until(3.25 + step / 4)
        feeder.until(14)
        settled(clips, 2)
        entries = clips.clips()
    listed = [
        t["labels"]["n"] for e in entries for t in sidecar(tmp_path, e.clip_id)["trigger_list"]
    ]
    assert sorted(listed) == list(range(24))  # each once, none lost between two clips
    assert sum(entry.triggers for entry in entries) == 24
    feeder.close()


def test_a_looped_file_keeps_its_clip_in_time(
    stream_file: Path, tmp_path: Path, clock: FakeClock
) -> None:
    with recorder(tmp_path, clock, pre=1, post=4) as clips:
        feeder = Feeder(stream_file, clips, clock)
        feeder.packets = feeder.packets[: 6 * FPS] * 2  # 6 s, then from its start again
        feeder.until(4)
        clips.trigger("loop")
        feeder.until(11)
        settled(clips, 1)
        (entry,) = clips.clips()
    times = [t for _, _, t in clip_packets(tmp_path / entry.file)]
    span = max(times) - min(times) + 1 / FPS
    # From the key frame at 2 s to the first frame at 8 s of the clock: 6 s of video.
    assert span == pytest.approx(6.0 + 1 / FPS, abs=0.1)
    assert entry.duration_s == pytest.approx(span, abs=0.1)
    feeder.close()


def test_a_b_frame_stream_ends_with_every_frame_shown_before_the_last(
    stream_file: Path, tmp_path: Path, clock: FakeClock
) -> None:
    with recorder(tmp_path, clock, pre=1, post=2) as clips:
        feeder = Feeder(stream_file, clips, clock)
        feeder.until(5)
        clips.trigger("person")
        feeder.until(10)
        settled(clips, 1)
        (entry,) = clips.clips()
    shown = sorted(round(t * FPS) for _, _, t in clip_packets(tmp_path / entry.file))
    assert shown == list(range(shown[0], shown[0] + len(shown)))  # no frame missing at its end
    feeder.close()


def test_grey_and_bgra_images_are_recorded_and_a_bad_label_refused(
    tmp_path: Path, clock: FakeClock
) -> None:
    clips = Clips(tmp_path, pre=1, post=1, clock=clock)
    for index in range(3 * FPS):
        image = np.full((48, 64), index % 255, np.uint8)
        if index % 2:
            image = np.full((48, 64, 4), index % 255, np.uint8)
        if index == FPS:
            clips.trigger("grey")
        clips(image)
        clock.advance(1 / FPS)
        wait_for(lambda: clips._encoder is not None and not clips._encoder.busy)
    assert clips.close(30)
    (entry,) = clips.clips()
    assert decoded_frames(tmp_path / entry.file) == entry.frames >= 2 * FPS
    assert clips.clips_snapshot().frames_dropped == 0
    other = Clips(tmp_path / "other")
    with pytest.raises(ValueError, match="finite"):
        other.trigger("x", score=float("nan"))
    assert other.close(30)


def test_a_second_source_is_refused_and_max_bytes_keeps_the_newest_clip(
    stream_file: Path, tmp_path: Path, clock: FakeClock
) -> None:
    clips = Clips(tmp_path / "one").attach(VideoSource(stream_file))
    with pytest.raises(ValueError, match="one Clips per source"):
        clips.attach(VideoSource(stream_file))
    assert clips.close(30)
    with recorder(tmp_path / "small", clock, pre=1, post=1, max_bytes=1000) as small:
        feeder = Feeder(stream_file, small, clock)
        feeder.until(3)
        small.trigger("big")
        feeder.until(8)
        settled(small, 1)
        snapshot = small.clips_snapshot()
    assert snapshot.clips_on_disk == 1 and snapshot.clips_deleted == 0
    assert snapshot.last_error is not None and "max_bytes (1000)" in snapshot.last_error
    feeder.close()


def test_a_b_frame_clip_cut_short_by_close_shows_no_gap_at_its_end(
    stream_file: Path, tmp_path: Path, clock: FakeClock
) -> None:
    for cut in range(5 * FPS + 1, 5 * FPS + 4):  # wherever the stream stops in a B-frame run
        clips = Clips(tmp_path / str(cut), pre=1, post=30, clock=clock)
        feeder = Feeder(stream_file, clips, clock)
        feeder.until(3)
        clips.trigger("person")
        feeder.packets = feeder.packets[:cut]
        feeder.until(10)
        assert clips.close(30)
        (entry,) = clips.clips()
        shown = sorted(round(t * FPS) for _, _, t in clip_packets(tmp_path / str(cut) / entry.file))
        assert shown == list(range(shown[0], shown[0] + len(shown))), cut
        assert decoded_frames(tmp_path / str(cut) / entry.file) == entry.frames == len(shown)
        feeder.close()


_LEAVER = """
import sys, av
from framescope.video import Clips
clips = Clips(sys.argv[1], pre=1, post=50)
container = av.open(sys.argv[2]); stream = container.streams.video[0]
clips.open_stream(stream)
for index, packet in enumerate(container.demux(stream)):
    if packet.size:
        clips.add_packet(packet, 0, float(index))
    if index == 30:
        clips.trigger("exit")
    if index == 200:
        break
"""


@pytest.mark.integration
def test_a_recorder_never_closed_finishes_its_clip_when_the_interpreter_exits(
    stream_file: Path, tmp_path: Path
) -> None:
    subprocess.run(
        [sys.executable, "-c", _LEAVER, str(tmp_path), str(stream_file)],
        check=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    assert not list(tmp_path.glob("*.part"))
    reader = Clips(tmp_path)
    (entry,) = reader.clips()
    assert reader.close(30)
    data = sidecar(tmp_path, entry.clip_id)
    assert data["complete"] and data["ended"] == "closed" and data["reason"] == "exit"
    assert decoded_frames(tmp_path / entry.file) == entry.frames > 100
