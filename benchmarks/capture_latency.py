"""Capture to glass: the age split of a 4-camera pipeline's frames, measured in one run.

Run: python benchmarks/capture_latency.py [--seconds 30] [--cameras 4] [--sources rtsp|synthetic]
    [--decode-threads slice|frame]
    or: python benchmarks/capture_latency.py --cost 200000  (the per-item cost, see below)

``rtsp`` (the default): each camera is Debian's GStreamer RTSP server on
loopback (tests/video/rtsp_server.py: a live 320x240 test pattern at 30 fps,
x264 ultrafast/zerolatency), read by a ``VideoSource``, so capture times come
from the server's RTCP sender reports (its clock is this machine's).
``synthetic``: ``SyntheticSource`` s paced in real time (capture = generated).
All cameras feed one threaded pipeline (``run({name: source})``): a detect
stage (a 5x5 blur of the frame, OpenCV) and a draw stage (a box). Each result
is written by a ``VideoWriter`` per camera (x264 ultrafast into a temporary
Matroska file), which puts it on the glass.

Printed per camera and for all of them together, from the snapshot's
latency split: p50 and p99 of each part (capture -> received -> decoded ->
into the pipeline -> out -> written) and of capture-to-glass, over each
camera's newest 512 frames, and each part's share of the p50 total. Frames
are only counted after the warm-up (the first RTCP report comes within a
few seconds; frames before it are stamped ``received``).

``--cost N``: instead, the time an item of a many-source run takes when it
is not a frame (``run({"a": range(N)})`` through one pass-through stage,
serial and threaded, best of 3): what stamping and folding cost where a stage
does nothing. Run it with ``PYTHONPATH`` at this tree and at an older one to
compare.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import cv2

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from framescope.pipeline import Pipeline  # noqa: E402

if TYPE_CHECKING:  # a tree before the latency split can still run --cost
    from framescope.pipeline.model.latency import SourceLatency
from framescope.video import SyntheticSource, VideoSource, VideoWriter  # noqa: E402

WARMUP_S = 5.0


def detect(frame: Any) -> Any:
    """A stand-in for a detector: blur the frame (OpenCV, a few hundred us at 320x240)."""
    cv2.blur(frame.image, (5, 5), dst=frame.image)
    return frame


def draw(frame: Any) -> Any:
    cv2.rectangle(frame.image, (40, 40), (120, 120), (0, 255, 0), 2)
    return frame


def cameras(
    kind: str, count: int, threads: str | None = None
) -> tuple[dict[str, Iterable[Any]], list[Any]]:
    """The sources by name, and the servers to stop afterwards."""
    if kind == "synthetic":
        return {f"cam{i}": SyntheticSource(320, 240, 30, realtime=True) for i in range(count)}, []
    from tests.video.helpers import RtspCamera

    servers = [RtspCamera() for _ in range(count)]
    sources = {
        f"cam{i}": VideoSource(s.url, stall_timeout=10.0, decode_threads=threads)
        for i, s in enumerate(servers)
    }
    return sources, servers


def run(
    kind: str, count: int, seconds: float, threads: str | None = None
) -> dict[str, SourceLatency]:
    sources, servers = cameras(kind, count, threads)
    pipeline = Pipeline(name="Cams").add(detect, "Detect").add(draw, "Draw").parallelize()
    folder = Path(tempfile.mkdtemp(prefix="capture-latency-"))
    writers = {name: VideoWriter(str(folder / f"{name}.mkv"), fps=30) for name in sources}
    stop = threading.Event()
    timer = threading.Timer(WARMUP_S + seconds, stop.set)
    warm: dict[str, SourceLatency] = {}
    try:
        timer.start()
        started = threading.Timer(WARMUP_S, lambda: warm.update(_latencies(pipeline)))
        started.start()
        for frame in pipeline.run(sources):
            writers[frame.source].write(frame)
            if stop.is_set():
                break
        started.join()
        return {
            name: _since(latency, warm.get(name)) for name, latency in _latencies(pipeline).items()
        }
    finally:
        timer.cancel()
        pipeline.cleanup()
        for writer in writers.values():
            writer.close()
        for server in servers:
            server.stop()
        shutil.rmtree(folder, ignore_errors=True)


def _latencies(pipeline: Pipeline) -> dict[str, SourceLatency]:
    return {
        name: source.latency
        for name, source in pipeline.snapshot().sources.items()
        if source.latency is not None
    }


def _since(now: SourceLatency, then: SourceLatency | None) -> SourceLatency:
    """The clocks counted after the warm-up (the windows hold the newest frames anyway)."""
    if then is None:
        return now
    from framescope.pipeline.model.latency import SourceLatency

    clocks = {k: v - then.clocks.get(k, 0) for k, v in now.clocks.items()}
    return SourceLatency(now.stats, {k: v for k, v in clocks.items() if v}, now.untimed)


def report(name: str, latency: SourceLatency) -> None:
    from framescope.pipeline.model.latency import LATENCY_PARTS

    total = latency.figures("to_glass")
    if total is None:
        print(f"{name}: nothing reached the glass")
        return
    cells = []
    for part in LATENCY_PARTS:
        figures = latency.figures(part)
        if figures is None:
            cells.append(f"{part} -")
            continue
        share = figures.p50 / total.p50 if total.p50 else 0.0
        cells.append(f"{part} {figures.p50 * 1e3:.1f}/{figures.p99 * 1e3:.1f} ms ({share:.0%})")
    clocks = ", ".join(f"{k} {v}" for k, v in latency.clocks.items())
    print(
        f"{name}: capture to glass p50 {total.p50 * 1e3:.1f} ms, p99 {total.p99 * 1e3:.1f} ms,"
        f" max {total.maximum * 1e3:.1f} ms; p50/p99: {'; '.join(cells)} [clocks: {clocks}]"
    )


def cost(items: int) -> None:
    import time

    for threaded in (False, True):
        best = float("inf")
        for _ in range(3):
            pipeline = Pipeline(name="Cost").add(lambda item: item, "Pass")
            if threaded:
                pipeline.parallelize()
            start = time.perf_counter()
            done = sum(1 for _ in pipeline.run({"a": range(items)}))
            best = min(best, (time.perf_counter() - start) / done)
            pipeline.cleanup()
        mode = "threaded" if threaded else "serial"
        print(f"{mode}: {best * 1e6:.1f} us an item (many-source run, {items:,} plain items)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--cameras", type=int, default=4)
    parser.add_argument("--sources", choices=("rtsp", "synthetic"), default="rtsp")
    parser.add_argument(
        "--decode-threads", choices=("slice", "frame"), default=None, help="VideoSource's"
    )
    parser.add_argument("--cost", type=int, default=0, help="measure the per-item cost instead")
    args = parser.parse_args()
    if args.cost:
        cost(args.cost)
        return 0
    latencies = run(args.sources, args.cameras, args.seconds, args.decode_threads)
    print(
        f"{args.cameras} {args.sources} cameras (decode_threads={args.decode_threads}),"
        f" {args.seconds:g} s after a {WARMUP_S:g} s warm-up, one threaded pipeline"
        " (detect, draw), a VideoWriter per camera:"
    )
    merged: SourceLatency | None = None
    for name, latency in sorted(latencies.items()):
        report(name, latency)
        merged = latency if merged is None else merged.merge(latency)
    if merged is not None:
        report("all", merged)
    return 0


if __name__ == "__main__":
    sys.exit(main())
