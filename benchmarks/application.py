"""The real application, decode -> model -> draw -> encode: framescope against hand-written threads.

Run: python benchmarks/application.py [--rounds 15] [--frames 300] [--queue-sizes 1,4] [--quick]

The clip is made at the start with PyAV: FFmpeg's ``testsrc2`` (moving
content), 640x480 at 30 fps, H.264 High profile. Every variant does the same
work on every frame:

- decode to BGR (4:2:0 to BGR with OpenCV's two-plane conversion, the one
  ``VideoSource`` uses for such video);
- model: a small CNN (3 convolutions, pooling) in torch on the CPU, one
  intra-op thread, under ``torch.inference_mode()``, on a 224x224 resize of
  the frame; the 4 highest-scoring cells of its 7x7 output become boxes;
- draw: the boxes with their labels, half see-through, with
  ``framescope.annotation``'s ``OpenCVImageAnnotationDriver``;
- encode: libx264 ultrafast, zerolatency, a key frame every 60 frames, to an
  .mp4 in a temporary folder.

Variants, for each queue size N of ``--queue-sizes``:

- ``framescope qN``: ``Pipeline`` with the model, draw and encode stages,
  ``parallelize(queue_size=N)``, fed by ``pipeline.run(VideoSource(clip))``
  (its input loop decodes), ``VideoWriter`` encoding; debugging off;
- ``framescope debug qN``: the same with ``Pipeline(debug=True)``;
- ``threads qN``: hand-written, no framescope code: one thread per step
  (decode, model, draw, encode) joined by ``queue.Queue(maxsize=N)``, bare
  PyAV decoding and encoding with the same settings;

and ``one thread``: the four steps in a plain loop, for reference. The
hand-written version with the highest median rate is the reference; the
verdicts compare framescope at the same queue size with it.

Throughput is frames per second from the 10th frame leaving the encoder to
the last (the same point, inside the encode step, in every variant); CPU
ms/frame is the process's CPU time (all its threads) over the same frames.
Every round runs every variant once: the three of one queue size one after
the other, so a change in the machine's load falls on all three, in an order
that rotates from round to round (and so does the order of the groups). The
ratios are per round, and each figure is the median over the rounds with
the range. Before any figure is printed every variant must have encoded
every frame of the clip, with the same detections and the same drawn pixels
on the first frame.

Targets: framescope >= 0.98x the hand-written threaded version with
debugging off, >= 0.93x with debugging on. Exit status 1 when one is missed.
"""

from __future__ import annotations

import argparse
import fractions
import hashlib
import os
import queue
import statistics
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import av
import cv2
import numpy as np
import torch

from framescope import Pipeline
from framescope.annotation import (
    BoundingBoxAnnotation,
    Color,
    OpenCVImageAnnotationDriver,
    Point,
    Rectangle,
)
from framescope.video import VideoSource, VideoWriter

WIDTH, HEIGHT, FPS = 640, 480, 30
SKIP = 9  # the steady part starts at the 10th encoded frame
GOP = 60
ENCODER = {"preset": "ultrafast", "tune": "zerolatency"}
TIME_BASE = fractions.Fraction(1, 90_000)
TARGETS = {"framescope": 0.98, "framescope debug": 0.93}

Boxes = list[tuple[float, float, float, float, float]]


def make_clip(path: Path, frames: int) -> None:
    """testsrc2, 640x480 at 30 fps, encoded with libx264 in the High profile."""
    source = f"testsrc2=size={WIDTH}x{HEIGHT}:rate={FPS}"
    with av.open(source, format="lavfi") as lavfi, av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=FPS, options={"profile": "high"})
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        for index, frame in enumerate(lavfi.decode(video=0)):
            if index == frames:
                break
            frame.pts, frame.time_base = index, fractions.Fraction(1, FPS)
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))


# -- the work, the same functions in every variant ------------------------------------


class Net(torch.nn.Module):
    """3 convolutions with pooling: 224x224 BGR in, a 7x7 grid of (score, dx, dy, w, h) out."""

    def __init__(self) -> None:
        super().__init__()
        self.body = torch.nn.Sequential(
            torch.nn.Conv2d(3, 32, 3, stride=2, padding=1),
            torch.nn.ReLU(),
            torch.nn.MaxPool2d(2),
            torch.nn.Conv2d(32, 64, 3, padding=1),
            torch.nn.ReLU(),
            torch.nn.MaxPool2d(2),
            torch.nn.Conv2d(64, 5, 3, padding=1),
            torch.nn.AdaptiveAvgPool2d(7),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)  # type: ignore[no-any-return]


class Detector:
    """The model step: an image in, the 4 best-scoring boxes (x0, y0, x1, y1, score) out."""

    def __init__(self) -> None:
        torch.manual_seed(0)
        self.net = Net().eval()

    @torch.inference_mode()
    def __call__(self, image: np.ndarray) -> Boxes:
        small = cv2.resize(image, (224, 224), interpolation=cv2.INTER_AREA)
        x = torch.from_numpy(small).permute(2, 0, 1).unsqueeze(0).float().div_(255)
        out = self.net(x)[0]
        scores = torch.sigmoid(out[0]).flatten()
        best = torch.topk(scores, 4).indices
        rows, cols = best // 7, best % 7
        cx = (cols + 0.5 + 0.5 * torch.tanh(out[1].flatten()[best])) / 7
        cy = (rows + 0.5 + 0.5 * torch.tanh(out[2].flatten()[best])) / 7
        w = 0.1 + 0.2 * torch.sigmoid(out[3].flatten()[best])
        h = 0.1 + 0.2 * torch.sigmoid(out[4].flatten()[best])
        table = torch.stack(
            [
                (cx - w / 2).clamp(0, 1),
                (cy - h / 2).clamp(0, 1),
                (cx + w / 2).clamp(0, 1),
                (cy + h / 2).clamp(0, 1),
                scores[best],
            ],
            dim=1,
        )
        return [tuple(row) for row in table.tolist()]  # type: ignore[misc]


DRIVER = OpenCVImageAnnotationDriver()


def draw(image: np.ndarray, boxes: Boxes) -> None:
    """The draw step: labelled, half see-through boxes, in place."""
    DRIVER.render(
        [
            BoundingBoxAnnotation(
                Rectangle(Point(x0, y0), Point(x1, y1)),
                top_label=f"object {score:.2f}",
                color=Color.from_id(index).with_alpha(0.5),
            )
            for index, (x0, y0, x1, y1, score) in enumerate(boxes)
        ],
        image,
    )


@dataclass
class Output:
    """What one run produced: when each frame left the encoder, and the first frame's result."""

    stamps: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)
    first_boxes: Boxes | None = None
    first_pixels: str = ""

    def done(self, index: int, image: np.ndarray, boxes: Boxes) -> None:
        """Called in the encode step after each frame is encoded."""
        self.stamps.append(time.perf_counter())
        self.cpu.append(time.process_time())
        if index == 0:
            self.first_boxes = boxes
            self.first_pixels = hashlib.sha1(image.tobytes()).hexdigest()

    def rate(self) -> float:
        """Frames per second from the 10th encoded frame to the last."""
        return (len(self.stamps) - 1 - SKIP) / (self.stamps[-1] - self.stamps[SKIP])

    def cpu_ms(self) -> float:
        """CPU time of the whole process (every thread) per frame over the same part, in ms."""
        return (self.cpu[-1] - self.cpu[SKIP]) / (len(self.cpu) - 1 - SKIP) * 1e3


# -- bare PyAV: decode and encode as VideoSource and VideoWriter do --------------------


def plane(frame_plane: Any, rows: int, cols: int) -> np.ndarray:
    """A plane's first rows x cols samples, a view of PyAV's buffer."""
    line = frame_plane.line_size
    return np.frombuffer(frame_plane, np.uint8, count=rows * line).reshape(rows, line)[:, :cols]


def decode_bare(path: Path) -> Iterator[tuple[int, np.ndarray]]:
    """(index, BGR image) of every frame: PyAV decoding, OpenCV's two-plane conversion."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        chroma = None
        for index, frame in enumerate(container.decode(stream)):
            width, height = frame.width, frame.height
            u = plane(frame.planes[1], height // 2, width // 2)
            v = plane(frame.planes[2], height // 2, width // 2)
            chroma = cv2.merge([u, v], dst=chroma)
            luma = plane(frame.planes[0], height, width)
            yield index, cv2.cvtColorTwoPlane(luma, chroma, cv2.COLOR_YUV2BGR_NV12)


class BareEncoder:
    """libx264 to a file with VideoWriter's settings, in bare PyAV."""

    def __init__(self, path: Path) -> None:
        self.container = av.open(str(path), "w")
        stream = self.container.add_stream("libx264", rate=FPS, options=ENCODER)
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        stream.codec_context.time_base = TIME_BASE
        stream.codec_context.gop_size = GOP
        self.stream = stream

    def write(self, index: int, image: np.ndarray) -> None:
        frame = av.VideoFrame.from_ndarray(image, format="bgr24")
        frame.pts, frame.time_base = round(index / FPS / TIME_BASE), TIME_BASE
        self.container.mux(self.stream.encode(frame))

    def close(self) -> None:
        self.container.mux(self.stream.encode(None))
        self.container.close()


# -- the variants -----------------------------------------------------------------------


def run_framescope(clip: Path, out: Path, detect: Detector, debug: bool, qsize: int) -> Output:
    """VideoSource -> Pipeline(model, draw, encode), threaded; VideoWriter encodes."""
    output = Output()
    with VideoWriter(str(out), fps=FPS, gop=GOP, **ENCODER) as writer:

        def model(frame: Any) -> tuple[Any, Boxes]:
            return frame, detect(frame.image)

        def annotate(item: tuple[Any, Boxes]) -> tuple[Any, Boxes]:
            draw(item[0].image, item[1])
            return item

        def encode(item: tuple[Any, Boxes]) -> int:
            frame, boxes = item
            writer.write(frame)
            output.done(frame.index, frame.image, boxes)
            return int(frame.index)

        pipeline = Pipeline(debug=debug)
        pipeline.add(model, "Model").add(annotate, "Draw").add(encode, "Encode")
        pipeline.parallelize(queue_size=qsize)
        try:
            results = sum(1 for _ in pipeline.run(VideoSource(clip)))
        finally:
            pipeline.cleanup()
    if results != len(output.stamps):
        raise RuntimeError(f"framescope gave {results} results for {len(output.stamps)} frames")
    return output


def run_threads(clip: Path, out: Path, detect: Detector, qsize: int) -> Output:
    """One thread per step, joined by queue.Queue(maxsize=qsize); no framescope code."""
    output = Output()
    encoder = BareEncoder(out)
    stop = object()
    queues: list[queue.Queue[Any]] = [queue.Queue(maxsize=qsize) for _ in range(3)]

    def decode() -> None:
        put = queues[0].put
        for item in decode_bare(clip):
            put(item)
        put(stop)

    def model() -> None:
        get, put = queues[0].get, queues[1].put
        while (item := get()) is not stop:
            put((item[0], item[1], detect(item[1])))
        put(stop)

    def annotate() -> None:
        get, put = queues[1].get, queues[2].put
        while (item := get()) is not stop:
            draw(item[1], item[2])
            put(item)
        put(stop)

    def encode() -> None:
        get = queues[2].get
        while (item := get()) is not stop:
            encoder.write(item[0], item[1])
            output.done(*item)

    threads = [threading.Thread(target=step) for step in (decode, model, annotate, encode)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    encoder.close()
    return output


def run_one_thread(clip: Path, out: Path, detect: Detector) -> Output:
    """The four steps in a plain loop."""
    output = Output()
    encoder = BareEncoder(out)
    for index, image in decode_bare(clip):
        boxes = detect(image)
        draw(image, boxes)
        encoder.write(index, image)
        output.done(index, image, boxes)
    encoder.close()
    return output


def encoded_frames(path: Path) -> int:
    """Video packets in a file: the frames that were encoded."""
    with av.open(str(path)) as container:
        return sum(1 for packet in container.demux(video=0) if packet.size)


def check_same(name: str, output: Output, file: Path, first: Output, frames: int) -> None:
    """Fail loudly unless a run encoded every frame, with the reference's first frame."""
    written = encoded_frames(file)
    if len(output.stamps) != frames or written != frames:
        raise SystemExit(
            f"{name}: {len(output.stamps)} frames done, {written} in the file, "
            f"of {frames}: the variants did not do the same work"
        )
    if (output.first_boxes, output.first_pixels) != (first.first_boxes, first.first_pixels):
        raise SystemExit(f"{name}: the first frame's detections or pixels differ from the others'")


def parse_sizes(text: str) -> list[int]:
    """'1,2,4' -> [1, 2, 4]; each at least 1."""
    sizes = [int(part) for part in text.split(",") if part.strip()]
    if not sizes or min(sizes) < 1:
        raise argparse.ArgumentTypeError(f"queue sizes must be integers >= 1, got {text!r}")
    return sizes


@dataclass
class Figures:
    """Per variant, one value per round: frames/s and CPU ms per frame (all threads)."""

    rates: dict[str, list[float]] = field(default_factory=dict)
    cpu: dict[str, list[float]] = field(default_factory=dict)

    def add(self, name: str, output: Output) -> None:
        self.rates.setdefault(name, []).append(output.rate())
        self.cpu.setdefault(name, []).append(output.cpu_ms())

    def ratios(self, name: str, reference: str) -> list[float]:
        """Per round: ``name``'s frames/s over ``reference``'s."""
        pairs = zip(self.rates[name], self.rates[reference], strict=True)
        return [ours / theirs for ours, theirs in pairs]


def variant_groups(
    clip: Path, detect: Detector, sizes: list[int]
) -> list[dict[str, Callable[[Path], Output]]]:
    """Per queue size: framescope, framescope debug and hand-written threads; then one thread."""
    groups: list[dict[str, Callable[[Path], Output]]] = []
    for size in sizes:
        groups.append(
            {
                f"framescope q{size}": lambda out, n=size: run_framescope(
                    clip, out, detect, False, n
                ),
                f"framescope debug q{size}": lambda out, n=size: run_framescope(
                    clip, out, detect, True, n
                ),
                f"threads q{size}": lambda out, n=size: run_threads(clip, out, detect, n),
            }
        )
    groups.append({"one thread": lambda out: run_one_thread(clip, out, detect)})
    return groups


def rotated(items: list[Any], by: int) -> list[Any]:
    """``items`` starting at position ``by`` (modulo their number)."""
    shift = by % len(items)
    return items[shift:] + items[:shift]


def run_rounds(args: argparse.Namespace, folder: Path) -> Figures:
    """Every variant once per round; the groups and the variants in each rotate by round.

    The variants compared with each other (one queue size) run one after the
    other, so that a change in the machine's load falls on all of them.
    """
    clip = folder / "clip.mp4"
    make_clip(clip, args.frames)
    frames = sum(1 for _ in decode_bare(clip))
    groups = variant_groups(clip, Detector(), args.queue_sizes)
    figures = Figures()
    first: Output | None = None
    for number in range(args.rounds):
        for group in rotated(groups, number):
            for name in rotated(list(group), number):
                file = folder / f"out-{name.replace(' ', '-')}.mp4"
                output = group[name](file)
                first = first or output
                check_same(name, output, file, first, frames)
                figures.add(name, output)
        print(
            f"round {number + 1}: "
            + ", ".join(f"{name} {values[-1]:.1f}" for name, values in figures.rates.items()),
            flush=True,
        )
    print(f"every variant encoded all {frames} frames, first frame's detections and pixels equal")
    return figures


def span(values: list[float], digits: int) -> str:
    """'median [min-max]'."""
    return (
        f"{statistics.median(values):.{digits}f} "
        f"[{min(values):.{digits}f}-{max(values):.{digits}f}]"
    )


def report(figures: Figures, sizes: list[int]) -> bool:
    """Print the table and the verdicts; True when every target is met."""
    best = max(sizes, key=lambda size: statistics.median(figures.rates[f"threads q{size}"]))
    reference = f"threads q{best}"
    print(
        f"\n{'variant':>20}  {'frames/s':>20}  {'CPU ms/frame':>18}  {'/ ' + reference:>20}  "
        f"{'/ threads, same N':>20}  CPU / threads, same N"
    )
    for name, rates in figures.rates.items():
        same = cpu = ""
        if name.startswith("framescope"):
            twin = "threads q" + name.rsplit("q", 1)[1]
            same = span(figures.ratios(name, twin), 3)
            pairs = zip(figures.cpu[name], figures.cpu[twin], strict=True)
            cpu = span([ours / theirs for ours, theirs in pairs], 3)
        print(
            f"{name:>20}  {span(rates, 1):>20}  {span(figures.cpu[name], 2):>18}  "
            f"{span(figures.ratios(name, reference), 3):>20}  {same:>20}  {cpu}"
        )
    met = True
    for name, target in TARGETS.items():
        ratios = figures.ratios(f"{name} q{best}", reference)
        ok = statistics.median(ratios) >= target
        met &= ok
        print(
            f"{name} q{best} / {reference} = {span(ratios, 3)}: "
            f"target >= {target} {'ok' if ok else 'MISSED'}"
        )
    return met


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--frames", type=int, default=300, help="frames in the clip")
    parser.add_argument(
        "--queue-sizes",
        type=parse_sizes,
        default=[1, 4],
        help="queue sizes to run every threaded variant with (default 1,4)",
    )
    parser.add_argument("--quick", action="store_true", help="a smoke run: 1 round, 60 frames")
    args = parser.parse_args()
    if args.quick:
        args.rounds, args.frames = 1, 60
    if args.frames <= SKIP + 1:
        parser.error(f"--frames must be above {SKIP + 1}")
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    torch.set_num_threads(1)
    print(
        f"{WIDTH}x{HEIGHT} testsrc2, {args.frames} frames, {args.rounds} rounds, "
        f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs, torch "
        f"{torch.__version__}, PyAV {av.__version__}, OpenCV {cv2.__version__}"
    )
    with tempfile.TemporaryDirectory() as folder:
        figures = run_rounds(args, Path(folder))
    met = report(figures, args.queue_sizes)
    print(f"load average at the end {os.getloadavg()[0]:.2f}")
    return 0 if met else 1


if __name__ == "__main__":
    raise SystemExit(main())
