"""What event clips cost: CPU per 720p30 camera, and the frame loop's throughput while recording.

Run: python benchmarks/clips.py [--rounds 5] [--seconds 20]

1. CPU per camera, as a share of one core (CPU seconds the recorder spends per
   second of video), for a 720p30 H.264 stream (about 3 Mbit/s, a key frame
   every 2 s): packet mode (``clips.attach(source)``: the camera's packets)
   and frame mode (``pipeline.add(clips)``: the recorder encodes the frames),
   each idle (the ring only) and recording all the time (a trigger every 5 s).
   The stream is fed as fast as the recorder takes it, on a fake clock that
   moves a frame interval per frame; the same loop without a recorder is the
   floor subtracted. Target for packet mode: under 2% of a core.
2. The frame loop's throughput while recording against not: a threaded
   pipeline decoding the file flat out (``VideoSource``) into a stage of NumPy
   work, with a packet-mode recorder attached and recording all the time,
   against the same pipeline without one; and with a frame-mode recorder
   tapping the stage (``pipeline.tap("Detect", clips)``). Target: at least
   0.98x.

Rounds interleave the variants (this machine is noisy); medians are printed.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import av
import numpy as np

from framescope.clock import FakeClock
from framescope.pipeline import Pipeline
from framescope.video import Clips, VideoSource

FPS = 30


def make_stream(directory: Path, seconds: int) -> Path:
    path = directory / "camera.mp4"
    subprocess.run(
        [
            "ffmpeg", "-v", "error", "-y", "-f", "lavfi",
            "-i", f"testsrc2=size=1280x720:rate={FPS}", "-t", str(seconds),
            "-c:v", "libx264", "-preset", "veryfast", "-b:v", "3M", "-g", str(2 * FPS),
            "-keyint_min", str(2 * FPS), "-sc_threshold", "0", "-pix_fmt", "yuv420p", str(path),
        ],
        check=True,
    )  # fmt: skip
    return path


class Stream:
    """The file's packets and a few decoded pictures, in memory."""

    def __init__(self, path: Path) -> None:
        self.container = av.open(str(path))
        self.video = self.container.streams.video[0]
        self.packets = [p for p in self.container.demux(self.video) if p.size]
        with av.open(str(path)) as again:
            self.pictures = [
                frame.to_ndarray(format="bgr24")
                for _, frame in zip(range(FPS), again.decode(video=0), strict=False)
            ]

    @property
    def seconds(self) -> float:
        return len(self.packets) / FPS


def packet_cost(stream: Stream, directory: Path, recorder: bool, recording: bool) -> float:
    """CPU seconds of a pass over the packets (with the recorder's threads, to its end)."""
    clock = FakeClock()
    clips = Clips(directory, pre=5, post=5, clock=clock) if recorder else None
    if clips is not None:
        clips.open_stream(stream.video)
    every = 5 * FPS
    start = time.process_time()
    for index, packet in enumerate(stream.packets):
        if clips is not None:
            clips.add_packet(packet, clock.monotonic_ns(), index / FPS)
            if recording and index % every == 0:
                clips.trigger("benchmark")
        clock.advance(1 / FPS)
    if clips is not None:
        assert clips.close(60)
    return time.process_time() - start


def frame_cost(
    stream: Stream, directory: Path, recorder: bool, recording: bool
) -> tuple[float, int]:
    """CPU seconds of a pass of frames through a frame-mode recorder; frames it dropped."""
    clock = FakeClock()
    clips = Clips(directory, pre=5, post=5, clock=clock) if recorder else None
    every = 5 * FPS
    pictures = stream.pictures
    start = time.process_time()
    for index in range(len(stream.packets)):
        picture = pictures[index % len(pictures)]
        if clips is not None:
            clips(picture)
            if recording and index % every == 0:
                clips.trigger("benchmark")
            encoder = clips._encoder
            while encoder is not None and encoder.busy:  # a camera's pace: no frame dropped
                time.sleep(0.0005)
        clock.advance(1 / FPS)
    dropped = 0
    if clips is not None:
        assert clips.close(60)
        dropped = clips.clips_snapshot().frames_dropped
    return time.process_time() - start, dropped


def cpu_per_camera(stream: Stream, rounds: int, directory: Path) -> None:
    results: dict[str, list[float]] = {}
    dropped = 0
    for round_index in range(rounds):
        floor = packet_cost(stream, directory / f"p{round_index}f", False, False)
        for name, recording in (("packets idle", False), ("packets recording", True)):
            spent = packet_cost(stream, directory / f"p{round_index}{name[-4:]}", True, recording)
            results.setdefault(name, []).append((spent - floor) / stream.seconds)
        frames_floor, _ = frame_cost(stream, directory / f"f{round_index}f", False, False)
        for name, recording in (("frames idle", False), ("frames recording", True)):
            spent, lost = frame_cost(
                stream, directory / f"f{round_index}{name[-4:]}", True, recording
            )
            dropped += lost
            results.setdefault(name, []).append((spent - frames_floor) / stream.seconds)
    print(f"CPU per 720p30 camera, share of one core ({rounds} rounds, median [min, max]):")
    for name, values in results.items():
        print(
            f"  {name:<18} {statistics.median(values):7.2%}  [{min(values):.2%}, {max(values):.2%}]"
        )
    print(f"  frames the frame-mode recorder dropped: {dropped}")


def work(frame: Any) -> Any:
    """A stage's NumPy work on the picture (about what a light detector's pre-processing costs)."""
    small = frame.image[::4, ::4].astype(np.float32)
    float((small * 0.5 + 1.0).mean())
    return frame


def loop_throughput(path: Path, directory: Path, mode: str | None) -> tuple[float, int]:
    """Frames per second of the pipeline over the whole file; frames the clips left out."""
    source = VideoSource(path)
    clips = None
    pipeline = Pipeline()
    if mode == "packets":
        clips = Clips(directory, pre=5, post=5).attach(source)
    trigger_every = 2 * FPS

    def detect(frame: Any) -> Any:
        frame = work(frame)
        if clips is not None and frame.index % trigger_every == 0:
            clips.trigger("benchmark")
        return frame

    pipeline.add(detect, "Detect")
    if mode == "frames":  # a tap: in Detect's thread, no stage (and thread) of its own
        clips = Clips(directory, pre=5, post=5)
        pipeline.tap("Detect", clips)
    pipeline.parallelize()
    start = time.perf_counter()
    count = sum(1 for _ in pipeline.run(source))
    elapsed = time.perf_counter() - start
    pipeline.cleanup()
    lost = 0
    if clips is not None:
        assert clips.close(60)
        snapshot = clips.clips_snapshot()
        assert snapshot.clips_written >= 1, snapshot
        assert not snapshot.dropped, snapshot
        lost = snapshot.frames_dropped
    return count / elapsed, lost


def throughput(path: Path, rounds: int, directory: Path) -> None:
    ratios: dict[str, list[float]] = {"packets": [], "frames": []}
    rates: dict[str, list[float]] = {"none": [], "packets": [], "frames": []}
    lost = 0
    for round_index in range(rounds):
        order = ["none", "packets", "frames"]
        order = order[round_index % 3 :] + order[: round_index % 3]
        measured = {}
        for mode in order:
            target = directory / f"t{round_index}{mode}"
            measured[mode], left_out = loop_throughput(
                path, target, None if mode == "none" else mode
            )
            lost += left_out
            rates[mode].append(measured[mode])
        for mode in ("packets", "frames"):
            ratios[mode].append(measured[mode] / measured["none"])
    print(f"frame loop throughput, recording all the time / no recorder ({rounds} rounds):")
    print(f"  no recorder: {statistics.median(rates['none']):.1f} frames/s (median)")
    for mode, values in ratios.items():
        listed = ", ".join(f"{value:.3f}" for value in values)
        print(f"  {mode:<8} {statistics.median(values):.3f}x median  ({listed})")
    print(f"  frames the frame-mode recorder could not keep (its encoder behind): {lost}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--parts", default="cpu,throughput")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        directory = Path(folder)
        path = make_stream(directory, args.seconds)
        if "cpu" in args.parts:
            cpu_per_camera(Stream(path), args.rounds, directory)
        if "throughput" in args.parts:
            throughput(path, args.rounds, directory)


if __name__ == "__main__":
    main()
