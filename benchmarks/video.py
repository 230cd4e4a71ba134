"""Video layer costs, as ratios measured in one run.

Run: python benchmarks/video.py [--frames 300] [--runs 5]

1. Decode: VideoSource frames/s vs bare PyAV decoding the same file to numpy
   (BGR, the same threading). Target: >= 0.95x.
2. Encode: VideoWriter vs bare PyAV encoding the same frames with the same
   settings (libx264 ultrafast, zerolatency). Target: >= 0.95x.
3. The share of one core that encoding 640x480 and 1280x720 at 30 fps takes
   with the defaults (CPU time per second of video).
4. SpyGlass.put() cost in the frame loop at 1280x720 (median and p99),
   with its encoder running. Target: median below 20 us.
The two sides of each ratio alternate, --runs times; the verdict is the
median of the per-pair ratios.
"""

from __future__ import annotations

import argparse
import fractions
import statistics
import tempfile
import time
from pathlib import Path

import av
import numpy as np

from framescope.video import SpyGlass, SyntheticSource, VideoSource, VideoWriter


def clip(path: Path, frames: int, width: int, height: int) -> list[np.ndarray]:
    images = [SyntheticSource(width, height, 30).image(i) for i in range(frames)]
    with VideoWriter(str(path), fps=30) as writer:
        for image in images:
            writer.write(image)
    return images


def decode_ours(path: Path) -> float:
    start = time.perf_counter()
    count = sum(1 for _ in VideoSource(path))
    return count / (time.perf_counter() - start)


def decode_bare(path: Path) -> float:
    start = time.perf_counter()
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        count = 0
        for frame in container.decode(stream):
            frame.to_ndarray(format="bgr24")
            count += 1
    return count / (time.perf_counter() - start)


def encode_ours(path: Path, images: list[np.ndarray]) -> tuple[float, float]:
    start, cpu = time.perf_counter(), time.process_time()
    with VideoWriter(str(path), fps=30) as writer:
        for image in images:
            writer.write(image)
    return len(images) / (time.perf_counter() - start), time.process_time() - cpu


def encode_bare(path: Path, images: list[np.ndarray]) -> float:
    start = time.perf_counter()
    height, width = images[0].shape[:2]
    base = fractions.Fraction(1, 90_000)
    with av.open(str(path), "w") as container:
        stream = container.add_stream(
            "libx264", rate=30, options={"preset": "ultrafast", "tune": "zerolatency"}
        )
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.codec_context.time_base = base
        stream.codec_context.gop_size = 60
        for index, image in enumerate(images):
            frame = av.VideoFrame.from_ndarray(image, format="bgr24")
            frame.pts, frame.time_base = round(index / 30 / base), base
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return len(images) / (time.perf_counter() - start)


def put_cost(frames: int) -> tuple[float, float]:
    image = np.asarray(SyntheticSource(1280, 720, 30).image(0))
    with tempfile.TemporaryDirectory() as folder:
        spyglass = SpyGlass(str(Path(folder) / "put.mkv"), 30, 1280, 720)
        spyglass.start_streaming()
        costs = []
        work = np.zeros((720, 1280, 3), np.uint8)
        for _ in range(frames):
            np.add(work, 1, out=work)  # the frame loop's own work between puts
            started = time.perf_counter_ns()
            spyglass.put(image)
            costs.append(time.perf_counter_ns() - started)
        spyglass.stop_streaming()
    costs.sort()
    return costs[len(costs) // 2] / 1e3, costs[int(len(costs) * 0.99)] / 1e3


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    failed = False
    with tempfile.TemporaryDirectory() as folder:
        base = Path(folder)
        images = clip(base / "in.mp4", args.frames, 1280, 720)
        pairs = []
        for _ in range(args.runs):
            bare = decode_bare(base / "in.mp4")
            ours = decode_ours(base / "in.mp4")
            pairs.append((ours, bare))
        ratio = statistics.median(o / b for o, b in pairs)
        failed |= ratio < 0.95
        print(
            f"1. decode 1280x720 H.264: VideoSource {statistics.median(p[0] for p in pairs):,.0f} "
            f"frames/s, bare PyAV {statistics.median(p[1] for p in pairs):,.0f}: "
            f"{ratio:.3f}x (>= 0.95 {'ok' if ratio >= 0.95 else 'MISSED'})"
        )
        pairs = []
        for _ in range(args.runs):
            bare = encode_bare(base / "bare.mp4", images)
            ours, _ = encode_ours(base / "ours.mp4", images)
            pairs.append((ours, bare))
        ratio = statistics.median(o / b for o, b in pairs)
        failed |= ratio < 0.95
        print(
            f"2. encode 1280x720: VideoWriter {statistics.median(p[0] for p in pairs):,.0f} "
            f"frames/s, bare PyAV {statistics.median(p[1] for p in pairs):,.0f}: "
            f"{ratio:.3f}x (>= 0.95 {'ok' if ratio >= 0.95 else 'MISSED'})"
        )
        for width, height in ((640, 480), (1280, 720)):
            moving = [SyntheticSource(width, height, 30).image(i) for i in range(args.frames)]
            shares = []
            for _ in range(args.runs):
                _, cpu = encode_ours(base / f"share{width}.mp4", moving)
                shares.append(cpu / (len(moving) / 30))
            print(
                f"3. encoding {width}x{height} at 30 fps takes {statistics.median(shares):.1%} "
                "of one core (CPU s per s of video, libx264 ultrafast)"
            )
    median, p99 = put_cost(max(args.frames, 300))
    failed |= median >= 20
    print(
        f"4. SpyGlass.put() at 1280x720: median {median:.1f} us, p99 {p99:.1f} us "
        f"(median < 20 us {'ok' if median < 20 else 'MISSED'})"
    )
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
