"""Batched stages: a small CNN across four cameras, batch 8 against batch 1.

Run: python benchmarks/batching.py [--rounds 7] [--latency-rounds 3] [--threads 2]

A torch CNN (four 3x3 convolutions with stride 2 on a 3x128x128 frame, then
two linear layers: 128*8*8 -> 512 -> 10) is the one stage of a threaded
pipeline fed by four sources (``pipeline.run({"cam0": ..., ...})``):

1. Throughput: the sources give their frames as fast as the pipeline takes
   them; items/s from the 10th result to the last, ``add(cnn, batch=8)``
   against ``add(cnn)`` (the stage then gets one frame a call). Ratio of each
   round's pair, median of the rounds.
2. Latency added: each source paced at 30 fps in real time (120 frames a
   second in all, the cameras a quarter frame apart), end-to-end p99 of
   every item with ``batch=8, batch_timeout=0.04`` less the p99 with batch 1
   (each round's pair, median of the rounds); with the batched run's batch
   sizes and why its batches left.

The configurations alternate within each round (A B, then B A). torch runs
``--threads`` intra-op threads (2 by default: the benchmark machine's cores);
the net is called with every batch size 1-8 first (torch prepares its
kernels for each shape on its first call), as a service warms up.
"""

from __future__ import annotations

import argparse
import itertools
import os
import statistics
import time
from collections.abc import Iterator
from typing import Any

import torch

from framescope import Pipeline
from framescope.pipeline import PipelineSnapshot
from framescope.pipeline.views.diagnosis import diagnose_snapshot

SOURCES = 4
FPS = 30.0
BATCH, TIMEOUT = 8, 0.04


def make_net() -> torch.nn.Module:
    """The CNN: four stride-2 convolutions, then 8192 -> 512 -> 10."""
    layers: list[torch.nn.Module] = []
    channels = [3, 16, 32, 64, 128]
    for inner, outer in itertools.pairwise(channels):
        layers += [torch.nn.Conv2d(inner, outer, 3, stride=2, padding=1), torch.nn.ReLU()]
    layers += [torch.nn.Flatten(), torch.nn.Linear(128 * 8 * 8, 512), torch.nn.ReLU()]
    layers.append(torch.nn.Linear(512, 10))
    return torch.nn.Sequential(*layers).eval()


class OneFrame:
    """The stage as ``add(stage)`` calls it: one frame, its 10 scores."""

    def __init__(self, net: torch.nn.Module) -> None:
        self.net = net

    def __call__(self, frame: Any) -> torch.Tensor:
        with torch.inference_mode():
            return self.net(frame.item.unsqueeze(0))[0]


class Frames:
    """The stage as ``add(stage, batch=8)`` calls it: a list of frames, a tensor of scores."""

    def __init__(self, net: torch.nn.Module) -> None:
        self.net = net

    def __call__(self, frames: list[Any]) -> torch.Tensor:
        with torch.inference_mode():
            return self.net(torch.stack([frame.item for frame in frames]))


def warm_up(net: torch.nn.Module, frame: torch.Tensor) -> None:
    """Call the net with every batch size first: torch prepares its kernels for each shape."""
    with torch.inference_mode():
        for _ in range(3):
            for size in range(1, BATCH + 1):
                net(torch.stack([frame] * size))


def pipeline_for(net: torch.nn.Module, batch: int) -> Pipeline:
    pipeline = Pipeline(name="Cams", window=2000)
    if batch > 1:
        pipeline.add(Frames(net), "CNN", batch=batch, batch_timeout=TIMEOUT)
    else:
        pipeline.add(OneFrame(net), "CNN")
    return pipeline.parallelize(queue_size=16)


def throughput(net: torch.nn.Module, frames: list[torch.Tensor], batch: int, each: int) -> float:
    """Items/s of four sources given as fast as taken, from the 10th result to the last."""
    sources = {f"cam{k}": [frames[k % len(frames)]] * each for k in range(SOURCES)}
    with pipeline_for(net, batch) as pipeline:
        started, count = 0.0, 0
        for count, _ in enumerate(pipeline.run(sources), 1):
            if count == 10:
                started = time.perf_counter()
        return (count - 10) / (time.perf_counter() - started)


def paced(frame: torch.Tensor, frames: int, offset: float, start: float) -> Iterator[torch.Tensor]:
    """``frames`` frames at FPS in real time, the first ``offset`` s after ``start``."""
    for index in range(frames):
        delay = start + offset + index / FPS - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        yield frame


def latency(
    net: torch.nn.Module, frames: list[torch.Tensor], batch: int, seconds: float
) -> tuple[float, PipelineSnapshot]:
    """End-to-end p99 (s) of every item of four paced 30 fps sources; the batches."""
    count = round(seconds * FPS)
    start = time.perf_counter() + 0.2
    sources = {
        f"cam{k}": paced(frames[k % len(frames)], count, k / (FPS * SOURCES), start)
        for k in range(SOURCES)
    }
    with pipeline_for(net, batch) as pipeline:
        results = sum(1 for _ in pipeline.run(sources))
        snapshot = pipeline.snapshot()
    assert results == SOURCES * count, (results, SOURCES * count)
    assert snapshot.latency.count == results
    return snapshot.latency.percentile(99), snapshot


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--latency-rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--items", type=int, default=150, help="frames per source (throughput)")
    parser.add_argument("--seconds", type=float, default=2.0, help="paced seconds (latency)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    net = make_net()
    frames = [torch.randn(3, 128, 128) for _ in range(SOURCES)]
    print(
        f"{os.cpu_count()} CPUs, torch {torch.__version__} with {args.threads} threads; "
        f"{SOURCES} sources; batch {BATCH} (timeout {TIMEOUT * 1e3:g} ms) against batch 1\n"
    )
    warm_up(net, frames[0])
    throughput(net, frames, BATCH, 20)  # and both paths through the pipeline
    throughput(net, frames, 1, 20)
    ratios, rates = [], {1: [], BATCH: []}
    for round_ in range(args.rounds):
        order = (BATCH, 1) if round_ % 2 == 0 else (1, BATCH)
        got = {batch: throughput(net, frames, batch, args.items) for batch in order}
        for batch, value in got.items():
            rates[batch].append(value)
        ratios.append(got[BATCH] / got[1])
    print("1. Throughput, sources as fast as taken (items/s, each round):")
    for batch, values in rates.items():
        shown = ", ".join(f"{v:.0f}" for v in values)
        print(f"   batch {batch}: median {statistics.median(values):.0f}  ({shown})")
    print(f"   batch {BATCH} / batch 1: {statistics.median(ratios):.2f}x (median of the rounds)\n")

    added, p99s = [], {1: [], BATCH: []}
    batched: PipelineSnapshot | None = None
    for round_ in range(args.latency_rounds):
        order = (BATCH, 1) if round_ % 2 == 0 else (1, BATCH)
        got = {}
        for batch in order:
            got[batch], snapshot = latency(net, frames, batch, args.seconds)
            batched = snapshot if batch > 1 else batched
        for batch, value in got.items():
            p99s[batch].append(value)
        added.append(got[BATCH] - got[1])
    print(f"2. Latency, {SOURCES} sources paced at {FPS:g} fps (end-to-end p99, ms):")
    for batch, values in p99s.items():
        shown = ", ".join(f"{v * 1e3:.1f}" for v in values)
        print(f"   batch {batch}: median {statistics.median(values) * 1e3:.1f}  ({shown})")
    median_added = statistics.median(added) * 1e3
    print(f"   p99 added by batching: {median_added:.1f} ms (median of the rounds)")
    batches = None if batched is None else batched.stage("Cams__CNN").batch
    if batched is not None and batches is not None:
        sizes = " ".join(f"{size}x{count}" for size, count in sorted(batches.sizes.items()))
        reasons = ", ".join(f"{name} {count}" for name, count in batches.reasons.items())
        print(f"   last batched run: sizes {sizes}; {reasons}")
        for advice in diagnose_snapshot(batched).batching:
            print(f"   its diagnosis: {advice}")


if __name__ == "__main__":
    main()
