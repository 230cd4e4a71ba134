"""The ``framescope demo``: a real video through a pipeline, watched live, then diagnosed.

It writes a short H.264 clip of a moving test pattern (``SyntheticSource`` +
``VideoWriter``; no camera or download needed), or takes ``--video PATH``,
and decodes it in a loop with ``VideoSource``. The frames go through four
stages of different cost, one of them clearly the slowest, and the annotated
result goes to a video file (or, with ``--restream URL``, to a stream) through
a ``SpyGlass``. While it runs, a live view of every node's state refreshes in
the terminal. At the end come the diagnosis, which names the bottleneck, the
annotated video's path and a Chrome trace file to open in Perfetto.
"""

from __future__ import annotations

import tempfile
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, TextIO

from framescope._optional import require
from framescope._validation import check_number
from framescope.pipeline import Pipeline, PipelineSnapshot, Stage
from framescope.pipeline.diagnosis import diagnose_snapshot
from framescope.pipeline.render import snapshot_table
from framescope.trace import chrome_trace, write_trace

__all__ = ["build_demo_pipeline", "render_state", "run_demo"]

_CLEAR = "\x1b[H\x1b[2J"
_DRAIN_S = 10.0
"""Seconds the frames in flight at the end may take to pass through every stage."""


def _numpy() -> Any:
    return require("numpy", "demo", "framescope demo")


def demo_clip(folder: Path, seconds: float = 4.0) -> Path:
    """Write the demo's input: a 640x480, 30 fps H.264 clip of a moving test pattern."""
    from framescope.video import SyntheticSource, VideoWriter  # noqa: PLC0415 - needs PyAV

    path = folder / "input.mp4"
    with VideoWriter(str(path), fps=30) as writer:
        for frame in SyntheticSource(640, 480, 30, frames=round(30 * seconds)):
            writer.write(frame)
    return path


def video_frames(path: str | Path) -> Iterator[dict[str, Any]]:
    """The frames of ``path``, decoded in a loop, as the demo's items."""
    from framescope.video import VideoSource  # noqa: PLC0415 - needs PyAV

    for frame in VideoSource(path, loop=True):
        yield {"frame": frame.image, "index": frame.index}


class Preprocess(Stage):
    """Downscale by 4 and normalise to float32 (light work)."""

    name = "Preprocess"

    def __call__(self, item: dict[str, Any]) -> dict[str, Any]:
        item["tensor"] = item["frame"][::4, ::4].astype("float32") / 255.0
        return item


class Infer(Stage):
    """A stand-in model: dense layers over the downscaled frame (the heavy stage)."""

    name = "Infer"

    def __init__(self, layers: int = 12) -> None:
        np = _numpy()
        rng = np.random.default_rng(0)
        self.weights = [
            rng.standard_normal((480, 480)).astype("float32") / 22 for _ in range(layers)
        ]

    def __call__(self, item: dict[str, Any]) -> dict[str, Any]:
        features = item["tensor"].reshape(120, 480)
        with self.events.block("backbone"):
            for weight in self.weights:
                features = features @ weight
                features = features * (features > 0)
        with self.events.block("head"):
            item["scores"] = features.mean(axis=1)
        return item


class Postprocess(Stage):
    """Find the brightest band as a 'detection' (light work)."""

    name = "Postprocess"

    def __call__(self, item: dict[str, Any]) -> dict[str, Any]:
        frame = item["frame"]
        row = int(frame[..., 0].mean(axis=1).argmax())
        column = int(frame[row].sum(axis=1).argmax())
        item["box"] = (max(row - 32, 0), max(column - 32, 0), row + 32, column + 32)
        return item


class Annotate(Stage):
    """Draw the detection box onto the frame (light work)."""

    name = "Annotate"

    def __call__(self, item: dict[str, Any]) -> dict[str, Any]:
        top, left, bottom, right = item["box"]
        frame = item["frame"]
        frame[top:bottom, left : left + 2] = (0, 255, 0)
        frame[top:bottom, right - 2 : right] = (0, 255, 0)
        frame[top : top + 2, left:right] = (0, 255, 0)
        frame[bottom - 2 : bottom, left:right] = (0, 255, 0)
        return item


class Output(Stage):
    """Hand the annotated frame to a SpyGlass, which writes or restreams it without waiting."""

    name = "Output"

    def __init__(self, spyglass: Any) -> None:
        self.spyglass = spyglass

    def __call__(self, item: dict[str, Any]) -> dict[str, Any]:
        self.spyglass.put(item["frame"])
        return item

    def cleanup(self) -> None:
        self.spyglass.stop_streaming()


def _preview_tap() -> Any:
    from framescope.live import PreviewTap  # noqa: PLC0415 - the live view loads on demand

    return PreviewTap("annotated")


def _serve(pipeline: Pipeline, preview: Any, refresh: float) -> Any:
    """Start a live view of ``pipeline`` showing ``preview``; returns it."""
    from framescope.live import LiveView  # noqa: PLC0415

    view = LiveView(pipeline, refresh=refresh)
    view.previews[preview.name] = preview
    return view.start()


def build_demo_pipeline(
    frames: Iterable[dict[str, Any]],
    output: Any = None,
    *,
    trace_every: int = 1,
    preview: Any = None,
    replicas: int = 1,
) -> Pipeline:
    """The demo's pipeline: frames -> Preprocess -> Infer -> Postprocess -> Annotate [-> output].

    ``output`` (a SpyGlass) restreams or writes the annotated frames;
    ``preview`` (a live view's PreviewTap) shows them in the browser;
    ``replicas``: how many threads run Infer (its matrix products release the GIL).
    """
    pipeline = Pipeline(input_generator=frames, name="Demo", debug=True, trace_every=trace_every)
    pipeline.add(Preprocess()).add(Infer(), replicas=replicas).add(Postprocess()).add(Annotate())
    if preview is not None:  # the annotated frame, in Annotate's thread: no stage added
        pipeline.tap("Annotate", lambda item: preview(item["frame"]))
    if output is not None:
        pipeline.add(Output(output))
    return pipeline.parallelize(queue_size=4, input_timeout=None)


def render_state(snapshot: PipelineSnapshot) -> str:
    """The live view's table: ``str(snapshot)``, as a user would print it.

    Every stage's state, input state, rate and processing times (the time
    inside the stage call, which names the slow stage), queue and failures.
    """
    return snapshot_table(snapshot)


def _drain(pipeline: Pipeline, out: TextIO) -> None:
    """Stop the input and carry every frame already in through all stages.

    Then the final reading, the trace and the video count the same frames.
    """
    pipeline.stop_loop()
    pipeline.close()
    if not pipeline.join(_DRAIN_S):
        out.write(f"Frames still in flight after {_DRAIN_S:g} s are counted as discarded.\n")


def run_demo(
    out: TextIO,
    seconds: float = 6.0,
    *,
    refresh: float = 0.5,
    fps: float = 400.0,
    trace_path: str | Path | None = None,
    live: bool | None = None,
    video: str | Path | None = None,
    restream: str | None = None,
    serve: bool = False,
    replicas: int = 1,
) -> Path:
    """Run the demo for ``seconds``, showing live state every ``refresh`` s; returns the trace path.

    ``live`` redraws the view in place (default: when ``out`` is a terminal);
    otherwise each refresh prints a new block. ``video``: the clip to decode
    (default: one it writes); ``restream``: a URL to send the annotated video
    to (default: a file beside the trace); ``serve``: show it live in a
    browser too (a LiveView on 127.0.0.1, with the annotated preview);
    ``replicas``: run Infer on that many threads (the diagnosis shows the gain).
    """
    from framescope.video import SpyGlass  # noqa: PLC0415 - needs PyAV

    for name, value in (("seconds", seconds), ("refresh", refresh), ("fps", fps)):
        check_number(value, name, positive=True)
    if live is None:
        live = out.isatty()
    folder = Path(tempfile.mkdtemp(prefix="framescope-demo-"))  # its own, not a fixed name
    if trace_path is None:
        trace_path = folder / "trace.json.gz"
    source = Path(video) if video is not None else demo_clip(folder)
    target = restream if restream is not None else str(folder / "annotated.mp4")
    # A second of frames may queue while the encoder process starts.
    spyglass = SpyGlass(target, 30, 640, 480, queue_size=48, name="Output")
    preview = _preview_tap() if serve else None
    pipeline = build_demo_pipeline(
        video_frames(source), spyglass, preview=preview, replicas=replicas
    )
    live_view = _serve(pipeline, preview, refresh) if preview is not None else None
    stop = threading.Event()
    on = f" (Infer on {replicas} replicas)" if replicas > 1 else ""
    out.write(
        f"framescope demo: {source} decoded at up to {fps:g} fps through 4 stages{on} and an "
        f"output for {seconds:g} s.\nThe input is deliberately faster than the pipeline can go: "
        "watch which stage holds the others back.\n"
    )
    if live_view is not None:
        out.write(f"Live view: open {live_view.url}\n")
    spyglass.start_streaming()
    with pipeline:
        pipeline.start_loop(1 / fps)
        consumer = threading.Thread(
            target=lambda: [None for _ in pipeline.results(timeout=0.5) if not stop.is_set()],
            name="framescope:demo-consumer",
        )
        consumer.start()
        elapsed = 0.0
        while elapsed < seconds:
            stop.wait(min(refresh, seconds - elapsed))
            elapsed += min(refresh, seconds - elapsed)
            view = render_state(pipeline.snapshot())
            out.write((_CLEAR if live else "\n") + f"t = {elapsed:4.1f} s\n{view}\n")
            out.flush()
        _drain(pipeline, out)
        stop.set()
        final = pipeline.snapshot()  # the report and the trace render the same reading
        diagnosis = diagnose_snapshot(final)
        written = write_trace(trace_path, chrome_trace(final.traces, final.node_ids, title="Demo"))
    consumer.join(timeout=5)
    if live_view is not None:
        live_view.close()
    counts = spyglass.counts
    out.write(f"\n{diagnosis.report()}\n")
    where = "Restreamed to" if restream is not None else "Annotated video written to"
    out.write(f"\n{where} {target} ({counts['sent']} frames, {counts['dropped']} dropped)\n")
    out.write(f"\nTrace written to {written} (open it at https://ui.perfetto.dev)\n")
    if live_view is None:
        out.write("To watch it live in a browser: framescope demo --serve\n")
    if replicas == 1:
        out.write("To run Infer on two threads and see the gain: framescope demo --replicas 2\n")
    return written
