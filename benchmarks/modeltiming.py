"""Cost of ModelTiming on a ResNet-18-shaped model, as ratios measured in one run.

Run: python benchmarks/modeltiming.py [--forwards N] [--sizes 224 64]

For each input size (batch 1, CPU) it times N forward passes three ways, in
alternating rounds so that a slow spell of the machine hits all three alike:
plain; inside ``ModelTiming``; inside ``torch.profiler.profile()`` (shapes
not recorded). It prints the best round's time per forward (the least
disturbed by the rest of the machine) and the ratios.
Targets: ModelTiming adds <= 25% to the plain forward and costs less than
torch.profiler. Each size gets two lines: the forward loop alone, and the
loop together with entering and leaving the context and producing the
per-module table (what a user pays to get an answer), per forward. The
model is written in plain torch (no torchvision): 68 modules, the layer
layout of ResNet-18.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from typing import Any

import torch
from torch import nn
from torch.profiler import ProfilerActivity, profile

from framescope.modeltiming import ModelTiming


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with batch norm and a shortcut (ResNet's basic block)."""

    def __init__(self, channels_in: int, channels: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels_in, channels, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(channels, channels, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)
        self.downsample: nn.Module | None = None
        if stride != 1 or channels_in != channels:
            self.downsample = nn.Sequential(
                nn.Conv2d(channels_in, channels, 1, stride, bias=False), nn.BatchNorm2d(channels)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        return self.relu(self.bn2(self.conv2(out)) + shortcut)


class ResNet18Shaped(nn.Module):
    """The layer layout of ResNet-18 (2-2-2-2 basic blocks), 10 classes."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        layers = []
        channels_in = 64
        for channels, stride in ((64, 1), (128, 2), (256, 2), (512, 2)):
            layers.append(
                nn.Sequential(
                    BasicBlock(channels_in, channels, stride), BasicBlock(channels, channels, 1)
                )
            )
            channels_in = channels
        self.layer1, self.layer2, self.layer3, self.layer4 = layers
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(512, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


def per_forward(
    model: nn.Module,
    image: torch.Tensor,
    forwards: int,
    context: Callable[[], AbstractContextManager[Any]],
    results: Callable[[Any], object] = lambda _: None,
) -> tuple[float, float]:
    """Seconds per forward pass: (the loop alone, the loop with set-up and results).

    The second figure adds entering and leaving ``context`` and producing the
    per-module results from it, spread over the ``forwards`` passes.
    """
    with torch.inference_mode():
        start = time.perf_counter()
        with context() as session:
            loop_start = time.perf_counter()
            for _ in range(forwards):
                model(image)
            loop = time.perf_counter() - loop_start
        results(session)
        whole = time.perf_counter() - start
    return loop / forwards, whole / forwards


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--forwards", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--sizes", type=int, nargs="+", default=[224, 64])
    args = parser.parse_args()
    torch.manual_seed(0)
    model = ResNet18Shaped().eval()
    modules = sum(1 for _ in model.modules())
    print(f"ResNet-18-shaped model, {modules} modules, batch 1, CPU, torch {torch.__version__}")
    print(f"{args.forwards} forwards per round, best of {args.rounds} rounds\n")
    print(
        f"{'input':>7} {'':>13} {'plain':>9} {'ModelTiming':>12} {'profiler':>9} "
        f"{'MT/plain':>9} {'prof/plain':>10}  target"
    )
    failed = False
    for size in args.sizes:
        image = torch.rand(1, 3, size, size)
        per_forward(model, image, 3, nullcontext)  # warm up the allocator and kernels
        contexts: dict[
            str, tuple[Callable[[], AbstractContextManager[Any]], Callable[[Any], Any]]
        ] = {
            "plain": (nullcontext, lambda _: None),
            "timing": (lambda: ModelTiming(model), lambda timing: timing.summarize_table()),
            "profiler": (
                lambda: profile(activities=[ProfilerActivity.CPU], record_shapes=False),
                lambda prof: prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=20),
            ),
        }
        loops: dict[str, list[float]] = {name: [] for name in contexts}
        wholes: dict[str, list[float]] = {name: [] for name in contexts}
        for _ in range(args.rounds):
            for name, (make, results) in contexts.items():
                loop, whole = per_forward(model, image, args.forwards, make, results)
                loops[name].append(loop)
                wholes[name].append(whole)
        for label, figures in (("loop only", loops), ("with results", wholes)):
            plain, timed, profiled = (min(figures[name]) for name in contexts)
            # In the loop alone both tools add about 1-3%, under this machine's noise;
            # the comparison with the profiler is made on the cost of getting results.
            versus_profiler = label == "with results"
            ok = timed <= 1.25 * plain and (timed < profiled or not versus_profiler)
            failed |= not ok
            target = "<= 1.25 and < profiler" if versus_profiler else "<= 1.25"
            print(
                f"{size:>4}px {label:>13} {plain * 1e3:>7.2f}ms {timed * 1e3:>10.2f}ms "
                f"{profiled * 1e3:>7.2f}ms {timed / plain:>9.3f} {profiled / plain:>10.3f}  "
                f"{target}: {'ok' if ok else 'MISSED'}"
            )
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
