"""Where the time goes in a small detector and its pre- and post-processing.

Run: python examples/model_timing.py [--images N] [--batch B]

A detector-shaped model written in plain torch (a backbone whose modules are
named like torchvision's, ``backbone.body.layer1.0.conv1``, a small feature
pyramid and a detection head) runs on generated images: gradients with
bright rectangles. Preprocessing is a resize object and a normalising
module; postprocessing decodes boxes with a plain function. ModelTiming
prints the pipeline time, the table and the tree.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator

import torch
import torch.nn.functional as F  # noqa: N812 (the usual torch spelling)
from torch import nn

from framescope.modeltiming import ModelTiming


def generated_images(
    count: int, batch: int, seed: int = 0
) -> Iterator[tuple[torch.Tensor, list[str]]]:
    """Batches of 3x240x320 uint8-range images with a few bright boxes, and made-up paths."""
    generator = torch.Generator().manual_seed(seed)
    for start in range(0, count, batch):
        size = min(batch, count - start)
        ramp = torch.linspace(0, 180, 320).expand(size, 3, 240, 320).clone()
        for index in range(size):
            for _ in range(3):
                x, y = torch.randint(0, 260, (2,), generator=generator).tolist()
                w, h = torch.randint(20, 60, (2,), generator=generator).tolist()
                ramp[index, :, y % 200 : y % 200 + h, x : x + w] = 250
        yield ramp, [f"frame_{start + i:05d}.png" for i in range(size)]


class Resize:
    """Resize a batch to a fixed size (a torchvision-style transform object)."""

    def __init__(self, size: tuple[int, int]) -> None:
        self.size = size

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        return F.interpolate(images, size=self.size, mode="bilinear", align_corners=False)


class Normalize(nn.Module):
    """Scale to [0, 1] and standardise per channel."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return (images / 255.0 - self.mean) / self.std


class Bottleneck(nn.Module):
    def __init__(self, channels_in: int, channels: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels_in, channels, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)
        self.conv3 = nn.Conv2d(channels, channels * 2, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(channels * 2)
        self.relu = nn.ReLU()
        self.downsample = nn.Sequential(
            nn.Conv2d(channels_in, channels * 2, 1, stride, bias=False),
            nn.BatchNorm2d(channels * 2),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        return self.relu(self.bn3(self.conv3(out)) + self.downsample(x))


class Body(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 16, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        self.relu = nn.ReLU()
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        self.layer1 = nn.Sequential(Bottleneck(16, 16, 1), Bottleneck(32, 16, 1))
        self.layer2 = nn.Sequential(Bottleneck(32, 32, 2), Bottleneck(64, 32, 1))
        self.layer3 = nn.Sequential(Bottleneck(64, 64, 2))

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        c2 = self.layer1(x)
        c3 = self.layer2(c2)
        return [c2, c3, self.layer3(c3)]


class FeaturePyramid(nn.Module):
    def __init__(self, channels: tuple[int, ...], width: int) -> None:
        super().__init__()
        self.inner_blocks = nn.ModuleList(nn.Conv2d(c, width, 1) for c in channels)
        self.layer_blocks = nn.ModuleList(nn.Conv2d(width, width, 3, padding=1) for _ in channels)

    def forward(self, features: list[torch.Tensor]) -> list[torch.Tensor]:
        last = self.inner_blocks[-1](features[-1])
        outputs = [self.layer_blocks[-1](last)]
        for index in range(len(features) - 2, -1, -1):
            lateral = self.inner_blocks[index](features[index])
            last = lateral + F.interpolate(last, size=lateral.shape[-2:], mode="nearest")
            outputs.insert(0, self.layer_blocks[index](last))
        return outputs


class Backbone(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.body = Body()
        self.fpn = FeaturePyramid((32, 64, 128), 32)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        return self.fpn(self.body(x))


class Head(nn.Module):
    """One shared head run on every pyramid level: class scores and box offsets."""

    def __init__(self, width: int, classes: int) -> None:
        super().__init__()
        self.conv = nn.Sequential(nn.Conv2d(width, width, 3, padding=1), nn.ReLU())
        self.cls_logits = nn.Conv2d(width, classes, 1)
        self.bbox_pred = nn.Conv2d(width, 4, 1)

    def forward(self, feature: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.conv(feature)
        return self.cls_logits(x), self.bbox_pred(x)


class TinyDetector(nn.Module):
    def __init__(self, classes: int = 5) -> None:
        super().__init__()
        self.backbone = Backbone()
        self.head = Head(32, classes)

    def forward(self, images: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
        return [self.head(level) for level in self.backbone(images)]


def decode_boxes(
    images: torch.Tensor, paths: list[str], predictions: list[tuple[torch.Tensor, torch.Tensor]]
) -> dict[str, list[tuple[float, float, float, float, float]]]:
    """Keep the 10 best-scoring cells per image as boxes (x1, y1, x2, y2, score)."""
    height, width = images.shape[-2:]
    found: dict[str, list[tuple[float, float, float, float, float]]] = {}
    for index, path in enumerate(paths):
        candidates = []
        for scores, offsets in predictions:
            best = scores[index].sigmoid().amax(0)
            rows, cols = best.shape
            top = best.flatten().topk(min(10, best.numel()))
            for score, cell in zip(top.values.tolist(), top.indices.tolist(), strict=True):
                y, x = divmod(cell, cols)
                dx, dy, dw, dh = offsets[index, :, y, x].tanh().tolist()
                cx, cy = (x + 0.5 + dx) * width / cols, (y + 0.5 + dy) * height / rows
                w, h = width / cols * (1 + dw), height / rows * (1 + dh)
                candidates.append((cx - w, cy - h, cx + w, cy + h, score))
        found[path] = sorted(candidates, key=lambda box: -box[4])[:10]
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=40)
    parser.add_argument("--batch", type=int, default=2)
    args = parser.parse_args()
    torch.manual_seed(0)
    model = TinyDetector().eval()
    pre_transforms = [Resize((192, 256)), Normalize()]
    post_transforms = [decode_boxes]
    with (
        torch.inference_mode(),
        ModelTiming(model, pre_transforms, post_transforms, warmup=1) as timing,
    ):
        for raw, paths in generated_images(args.images, args.batch):
            images = raw
            for transform in pre_transforms:
                images = transform(images)
            predictions = model(images)
            post_transforms[0](images, paths, predictions)
    print(f"Pipeline time: {timing.timing_data.total_time * 1000:.2f}ms\n")
    print(timing.summarize_table())
    print()
    print(timing.summarize_tree())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
