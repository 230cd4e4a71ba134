"""The ``framescope demo``: a synthetic video pipeline, watched live, then diagnosed.

A synthetic camera makes numpy frames (no camera or download needed). They go
through five stages of different cost, one of them clearly the slowest. While
it runs, a live view of every node's state refreshes in the terminal. At the
end comes the diagnosis, which names the bottleneck, and a Chrome trace file
to open in Perfetto.
"""

from __future__ import annotations

import tempfile
import threading
from pathlib import Path
from typing import Any, TextIO

from framescope._optional import require
from framescope._validation import check_number
from framescope.pipeline import Pipeline, PipelineSnapshot, Stage
from framescope.pipeline.diagnosis import diagnose_snapshot
from framescope.trace import chrome_trace, write_trace

__all__ = ["build_demo_pipeline", "render_state", "run_demo"]

_CLEAR = "\x1b[H\x1b[2J"


def _numpy() -> Any:
    return require("numpy", "demo", "framescope demo")


class SyntheticCamera:
    """Makes 480x640 BGR frames: a gradient with a bright square moving across it."""

    def __init__(self, height: int = 480, width: int = 640) -> None:
        np = _numpy()
        self.np = np
        self.height, self.width = height, width
        y, x = np.mgrid[0:height, 0:width]
        self.background = np.stack(
            [(x * 255 // width), (y * 255 // height), np.full_like(x, 96)], axis=-1
        ).astype(np.uint8)
        self.count = 0

    def __call__(self) -> dict[str, Any]:
        frame = self.background.copy()
        left = (self.count * 8) % (self.width - 64)
        frame[200:264, left : left + 64] = 255
        self.count += 1
        return {"frame": frame, "index": self.count}


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


def build_demo_pipeline(*, trace_every: int = 1) -> Pipeline:
    """The demo's pipeline: camera -> Preprocess -> Infer -> Postprocess -> Annotate."""
    camera = SyntheticCamera()
    pipeline = Pipeline(input_generator=camera, name="Demo", debug=True, trace_every=trace_every)
    pipeline.add(Preprocess()).add(Infer()).add(Postprocess()).add(Annotate())
    return pipeline.parallelize(queue_size=4, input_timeout=None)


def render_state(snapshot: PipelineSnapshot) -> str:
    """A table of every node's state in a snapshot: what it does, fps, loop time, queue."""
    state = snapshot.state.node_states
    width = max(len(node_id) for node_id in state)
    lines = [f"{'node':<{width}}  {'state':<15}  {'fps':>6}  {'loop':>9}  {'in queue':>10}"]
    for node_id, node in state.items():
        loop = node.main_loop_timing
        loop_ms = loop.duration_stats.average_micros_recent / 1000 if loop.is_valid() else 0.0
        port = node.input_states.get("in")
        queued = f"{port.num_queued} {port.state}" if port is not None else "-"
        lines.append(
            f"{node_id:<{width}}  {node.state:<15}  {loop.fps:>6.1f}  "
            f"{loop_ms:>6.2f} ms  {queued:>10}"
        )
    return "\n".join(lines)


def run_demo(
    out: TextIO,
    seconds: float = 6.0,
    *,
    refresh: float = 0.5,
    fps: float = 400.0,
    trace_path: str | Path | None = None,
    live: bool | None = None,
) -> Path:
    """Run the demo for ``seconds``, showing live state every ``refresh`` s; returns the trace path.

    ``live`` redraws the view in place (default: when ``out`` is a terminal);
    otherwise each refresh prints a new block.
    """
    for name, value in (("seconds", seconds), ("refresh", refresh), ("fps", fps)):
        check_number(value, name, positive=True)
    if live is None:
        live = out.isatty()
    if trace_path is None:  # a fresh folder of its own, not a fixed name in the shared one
        trace_path = Path(tempfile.mkdtemp(prefix="framescope-demo-")) / "trace.json.gz"
    pipeline = build_demo_pipeline()
    stop = threading.Event()
    out.write(
        f"framescope demo: a synthetic {fps:g} fps camera through 4 stages for {seconds:g} s\n"
    )
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
        pipeline.stop_loop()
        stop.set()
        final = pipeline.snapshot()  # the report and the trace render the same reading
        diagnosis = diagnose_snapshot(final)
        written = write_trace(trace_path, chrome_trace(final.traces, final.node_ids, title="Demo"))
    consumer.join(timeout=5)
    out.write(f"\n{diagnosis.report()}\n")
    out.write(f"\nTrace written to {written} (open it at https://ui.perfetto.dev)\n")
    return written
