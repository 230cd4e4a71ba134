"""Decoding to numpy: VideoSource vs cv2.VideoCapture and bare PyAV, as ratios measured in one run.

Run: python benchmarks/decode.py [--frames 600] [--rounds 7] [--sizes 640x480,1280x720]

Makes High-profile H.264 clips (libx264 preset medium, profile high, 4:2:0)
of FFmpeg's moving testsrc2 pattern at each size, and an HEVC one (libx265
preset medium) where both PyAV and OpenCV decode it. In each round every
reader decodes the whole clip alone, one after another, in an order that
rotates round to round (so a busy machine slows each of them alike); a
reader's rate is taken from its first frame to its last, and the time to
its first frame (opening, probing, the decoder's start) is printed apart:

- VideoSource, BGR (``pixel_format="bgr24"``, the default);
- VideoSource, native (``pixel_format="native"``: the decoder's YUV, no conversion);
- VideoSource, BGR, as where OpenCV is not installed (PyAV's conversion);
- bare PyAV: ``container.decode`` + ``frame.to_ndarray(format="bgr24")``;
- ``cv2.VideoCapture.read()`` (BGR);
- and, to tell decoding from converting, PyAV decoding without a numpy
  array and ``cv2.VideoCapture.grab()`` (decodes, does not convert).

All decode with FFmpeg's frame and slice threads (PyAV's
``thread_type="AUTO"``: FFmpeg's own count, cores + 1; OpenCV's FFmpeg
backend: one per core by default; both printed), no hardware decoding.
The verdict per clip is the median of the per-round ratios, with their
range. Exits 1 when VideoSource BGR is below 1.0x
cv2.VideoCapture on any clip.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import av
import cv2

from framescope.video import VideoSource

Reader = Callable[[Path], Iterator[object]]
# Milliseconds from opening to the first frame, per reader and round (printed, not judged).
FIRST_FRAME_MS: dict[str, list[float]] = {}


def make_clip(path: Path, codec: str, frames: int, width: int, height: int) -> None:
    """testsrc2 (moving, with text and gradients) encoded at x264/x265 preset medium."""
    options = {"preset": "medium"}
    if codec == "libx264":
        options["profile"] = "high"
    else:
        options["x265-params"] = "log-level=error"
    pattern = f"testsrc2=size={width}x{height}:rate=30:duration={frames / 30}"
    with av.open(pattern, format="lavfi") as source, av.open(str(path), "w") as out:
        stream = out.add_stream(codec, rate=30, options=options)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for made in source.decode(video=0):
            frame = made.reformat(format="yuv420p")  # testsrc2's own: nothing to convert
            frame.pict_type = av.video.frame.PictureType.NONE
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)


def videosource_bgr(path: Path) -> Iterator[object]:
    source = VideoSource(path)
    try:
        for frame in source:
            assert source.converter == "opencv", source.converter
            yield frame.image
    finally:
        source.close()


def videosource_without_opencv(path: Path) -> Iterator[object]:
    saved = sys.modules.get("cv2")
    sys.modules["cv2"] = None  # type: ignore[assignment]  # as where OpenCV is not installed
    try:
        source = VideoSource(path)
    finally:
        sys.modules["cv2"] = saved  # type: ignore[assignment]
    try:
        for frame in source:
            assert source.converter == "pyav", source.converter
            yield frame.image
    finally:
        source.close()


def videosource_native(path: Path) -> Iterator[object]:
    source = VideoSource(path, pixel_format="native")
    try:
        for frame in source:
            yield frame.image
    finally:
        source.close()


def pyav_bgr(path: Path) -> Iterator[object]:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        for frame in container.decode(stream):
            yield frame.to_ndarray(format="bgr24")


def opencv_capture(path: Path) -> Iterator[object]:
    capture = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
    try:
        while True:
            ok, image = capture.read()
            if not ok:
                return
            yield image
    finally:
        capture.release()


def pyav_decode_only(path: Path) -> Iterator[object]:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        yield from container.decode(stream)


def opencv_grab(path: Path) -> Iterator[object]:
    capture = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
    try:
        while capture.grab():
            yield None
    finally:
        capture.release()


READERS: dict[str, Reader] = {
    "VideoSource BGR": videosource_bgr,
    "VideoSource native": videosource_native,
    "VideoSource BGR, no cv2": videosource_without_opencv,
    "PyAV to_ndarray bgr24": pyav_bgr,
    "cv2.VideoCapture": opencv_capture,
    "PyAV decode only": pyav_decode_only,
    "cv2 grab() only": opencv_grab,
}


def decode_threads(path: Path) -> str:
    """The decoder threads each side runs (hardware decoding is off on both)."""
    capture = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
    opencv = int(capture.get(cv2.CAP_PROP_N_THREADS))
    hardware = int(capture.get(cv2.CAP_PROP_HW_ACCELERATION))
    capture.release()
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"  # as VideoSource sets it
        next(container.decode(stream))
        pyav = stream.codec_context.thread_count
    return f"decoder threads: PyAV {pyav} (FFmpeg's auto), OpenCV {opencv} (hw accel {hardware})"


def both_decode(path: Path) -> bool:
    """True when PyAV and OpenCV both read frames of this clip."""
    try:
        return any(True for _ in pyav_bgr(path)) and any(True for _ in opencv_capture(path))
    except (av.FFmpegError, cv2.error):
        return False


def one_round(path: Path, order: list[str]) -> dict[str, tuple[int, float, float]]:
    """Every reader decodes the whole clip alone, in turn: (frames, seconds to the first, after).

    A reader is closed before the next one starts. Taking turns every few
    frames instead lets one reader's frame threads go on decoding the frames
    it had in flight during the next reader's turn, which then pays for them
    (with all seven readers, the reader after PyAV's ``to_ndarray`` gained
    about 20%); whole turns in an order that rotates give each reader the
    same share of a busy machine without that bleed.
    """
    totals: dict[str, tuple[int, float, float]] = {}
    for name in order:
        reader = READERS[name](path)
        start = time.perf_counter()
        next(reader)  # opened, probed, and the decoder's first frame out
        first = time.perf_counter()
        count = 1 + sum(1 for _ in reader)
        totals[name] = (count, first - start, time.perf_counter() - first)
    return totals


def measure(path: Path, frames: int, rounds: int) -> dict[str, list[float]]:
    """Frames per second of every reader, per round (the order rotates)."""
    names = list(READERS)
    fps: dict[str, list[float]] = {name: [] for name in names}
    one_round(path, names)  # warm-up: the file in the page cache, libraries loaded
    for index in range(rounds):
        order = names[index % len(names) :] + names[: index % len(names)]
        for name, (count, opening, seconds) in one_round(path, order).items():
            if count != frames:
                raise SystemExit(f"{name} read {count} frames of {path.name}, not {frames}")
            fps[name].append((count - 1) / seconds)
            FIRST_FRAME_MS.setdefault(name, []).append(opening * 1000)
    return fps


def ratios(fps: dict[str, list[float]], ours: str, peer: str) -> tuple[float, float, float]:
    """Median and range of the per-round ratio ours / peer."""
    per_round = [a / b for a, b in zip(fps[ours], fps[peer], strict=True)]
    return statistics.median(per_round), min(per_round), max(per_round)


def report(label: str, fps: dict[str, list[float]]) -> float:
    """Print one clip's figures; the BGR ratio to cv2.VideoCapture."""
    print(f"\n{label}")
    for name, values in fps.items():
        first = statistics.median(FIRST_FRAME_MS[name])
        print(
            f"  {name:<22} {statistics.median(values):8,.0f} frames/s (median), "
            f"first frame after {first:.1f} ms"
        )
    FIRST_FRAME_MS.clear()
    verdict = 0.0
    for ours, peer in (
        ("VideoSource BGR", "cv2.VideoCapture"),
        ("VideoSource BGR", "PyAV to_ndarray bgr24"),
        ("VideoSource native", "cv2.VideoCapture"),
        ("VideoSource BGR, no cv2", "cv2.VideoCapture"),
        ("VideoSource BGR, no cv2", "PyAV to_ndarray bgr24"),
        ("PyAV to_ndarray bgr24", "cv2.VideoCapture"),
        ("PyAV decode only", "cv2 grab() only"),
    ):
        median, low, high = ratios(fps, ours, peer)
        if (ours, peer) == ("VideoSource BGR", "cv2.VideoCapture"):
            verdict = median
        print(f"  {ours} / {peer}: {median:.2f}x (rounds {low:.2f}-{high:.2f})")
    return verdict


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=600)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--sizes", default="640x480,1280x720")
    args = parser.parse_args()
    sizes = [tuple(int(side) for side in size.split("x")) for size in args.sizes.split(",")]
    print(
        f"{os.cpu_count()} cores; OpenCV {cv2.__version__} ({cv2.getNumThreads()} threads), "
        f"PyAV {av.__version__}; {args.frames} frames, {args.rounds} rounds"
    )
    missed = []
    with tempfile.TemporaryDirectory() as folder:
        clips = []
        for width, height in sizes:
            clips.append((f"H.264 High {width}x{height}", "libx264", width, height))
        clips.append((f"HEVC Main {sizes[0][0]}x{sizes[0][1]}", "libx265", *sizes[0]))
        for label, codec, width, height in clips:
            path = Path(folder) / f"{codec}_{width}x{height}.mp4"
            make_clip(path, codec, args.frames, width, height)
            if not both_decode(path):
                print(f"\n{label}: not decoded by both PyAV and OpenCV here; skipped")
                continue
            ratio = report(
                f"{label}; {decode_threads(path)}", measure(path, args.frames, args.rounds)
            )
            if ratio < 1.0:
                missed.append(f"{label} {ratio:.2f}x")
    print(f"\nVideoSource BGR >= 1.0x cv2.VideoCapture: {'MISSED: ' if missed else 'met'}", end="")
    print(", ".join(missed))
    return 1 if missed else 0


if __name__ == "__main__":
    raise SystemExit(main())
