"""The demo's stages: a light pre- and post-processing, a heavy stand-in model, an output."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from typing import Any

from framescope._optional import require
from framescope.pipeline import Pipeline, PipelineSnapshot, Stage
from framescope.pipeline.views.tables import snapshot_table

_ROOM_POLL_S = 0.002
"""How often Output looks for room in a full SpyGlass queue it must not overflow."""

__all__ = [
    "MODEL_INPUT",
    "Annotate",
    "Infer",
    "Output",
    "OutputFailedError",
    "Postprocess",
    "Preprocess",
    "QuietOutputFailures",
    "build_demo_pipeline",
    "render_state",
]

MODEL_INPUT = (120, 160)
"""Rows and columns of the stand-in model's input grid (any frame size is sampled onto it)."""


def _numpy() -> Any:
    return require("numpy", "demo", "framescope demo")


class OutputFailedError(RuntimeError):
    """The annotated frame could not be handed on: the output (a restream) is failing."""


class QuietOutputFailures(logging.Filter):
    """A log filter for the command: no per-frame error log for frames a failing output refused.

    The output's own warning says why it fails (once per attempt), and the
    frames it could not take are counted in the diagnosis and the summary;
    a traceback for each would bury both.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        """False for the pipeline's log of an :class:`OutputFailedError`."""
        args = record.args if isinstance(record.args, tuple) else ()
        for arg in args:
            if arg == OutputFailedError.__name__:
                return False
            if isinstance(getattr(arg, "error", None), OutputFailedError):
                return False
        return True


class Preprocess(Stage):
    """Sample the frame onto the model's fixed input grid and normalise to float32 (light)."""

    name = "Preprocess"

    def __call__(self, item: dict[str, Any]) -> dict[str, Any]:
        np = _numpy()
        frame = item["frame"]
        rows, columns = MODEL_INPUT
        height, width = frame.shape[:2]
        grid = frame[
            (np.arange(rows) * height // rows)[:, None], np.arange(columns) * width // columns
        ]
        item["tensor"] = grid.astype("float32") / 255.0
        return item


class Infer(Stage):
    """A stand-in model: dense layers over the fixed-size input grid (the heavy stage)."""

    name = "Infer"

    def __init__(self, layers: int = 12) -> None:
        np = _numpy()
        rng = np.random.default_rng(0)
        features = MODEL_INPUT[1] * 3
        self.weights = [
            rng.standard_normal((features, features)).astype("float32") / 22 for _ in range(layers)
        ]

    def __call__(self, item: dict[str, Any]) -> dict[str, Any]:
        features = item["tensor"].reshape(MODEL_INPUT[0], MODEL_INPUT[1] * 3)
        with self.events.block("backbone"):
            for weight in self.weights:
                features = features @ weight
                features = features * (features > 0)
        with self.events.block("head"):
            item["scores"] = features.mean(axis=1)
        return item


class Postprocess(Stage):
    """Find the mid-grey, colourless region as a 'detection' (light work).

    On the demo's test clip that is its moving grey square; on another video,
    the densest mid-grey area, or nothing when there is none. It looks at the
    model's small input grid, so its cost does not grow with the frame.
    """

    name = "Postprocess"

    def __call__(self, item: dict[str, Any]) -> dict[str, Any]:
        np = _numpy()
        grid = item["tensor"]  # rows x columns x BGR in 0..1
        grey = (np.ptp(grid, axis=2) < 0.08) & (np.abs(grid.mean(axis=2) - 0.5) < 0.12)
        item["box"] = _densest_box(np, grey, item["frame"].shape[:2])
        return item


def _densest_box(np: Any, mask: Any, frame_size: tuple[int, int]) -> tuple[int, ...] | None:
    """Where ``mask`` is densest, scaled to the frame: (top, left, bottom, right)."""
    rows, columns = mask.sum(axis=1), mask.sum(axis=0)
    if rows.max(initial=0) < 3:  # a few stray pixels are no object
        return None
    dense_rows = np.flatnonzero(rows >= rows.max() / 2)
    dense_columns = np.flatnonzero(columns >= columns.max() / 2)
    height, width = frame_size
    scale_y, scale_x = height / mask.shape[0], width / mask.shape[1]
    return (
        int(dense_rows[0] * scale_y),
        int(dense_columns[0] * scale_x),
        min(height, int((dense_rows[-1] + 1) * scale_y)),
        min(width, int((dense_columns[-1] + 1) * scale_x)),
    )


class Annotate(Stage):
    """Draw the detection box around it, green edged in black to show on any colour (light)."""

    name = "Annotate"

    def __call__(self, item: dict[str, Any]) -> dict[str, Any]:
        frame = item["frame"]
        if item.get("box") is None:
            return item
        height, width = frame.shape[:2]
        line = max(2, min(height, width) // 240)
        top, left, bottom, right = item["box"]
        top, left = max(0, top - 2 * line), max(0, left - 2 * line)
        bottom, right = min(height, bottom + 2 * line), min(width, right + 2 * line)
        _rectangle(frame, (top, left, bottom, right), line + 2, (0, 0, 0))
        _rectangle(frame, (top + 1, left + 1, bottom - 1, right - 1), line, (0, 255, 0))
        return item


def _rectangle(frame: Any, box: tuple[int, int, int, int], line: int, colour: Any) -> None:
    top, left, bottom, right = box
    frame[top:bottom, left : left + line] = colour
    frame[top:bottom, max(right - line, 0) : right] = colour
    frame[top : top + line, left:right] = colour
    frame[max(bottom - line, 0) : bottom, left:right] = colour


class Output(Stage):
    """Hand the annotated frame, with its stream time, to a SpyGlass (which never waits).

    The frame is cut to the SpyGlass's size (H.264 needs even sides: an odd
    row or column is left out). While the SpyGlass is failing (a restream
    that cannot connect), the frame cannot be delivered: it fails with
    :class:`OutputFailedError`, so the pipeline counts it as lost.
    ``stop``: stop the SpyGlass at the pipeline's cleanup (False: the caller
    stops it, when several pipelines feed it one after another).
    ``wait``: wait for room in the SpyGlass's queue before each frame (a file:
    nothing may be lost, so an encoder that lags holds the pipeline back, and
    the diagnosis names Output); without it a full queue drops its oldest
    frame (a live restream: late frames are worth less than new ones).
    """

    name = "Output"

    def __init__(self, spyglass: Any, *, stop: bool = True, wait: bool = False) -> None:
        self.spyglass = spyglass
        self.stop = stop
        self.wait = wait

    def __call__(self, item: dict[str, Any]) -> dict[str, Any]:
        from framescope.video import SpyGlassState  # noqa: PLC0415 - needs PyAV

        spyglass = self.spyglass
        if self.wait:
            self._wait_for_room(spyglass)
        if spyglass.state is SpyGlassState.ERROR:
            raise OutputFailedError(f"{spyglass.uri}: {spyglass.last_error or 'failing'}")
        frame = item["frame"]
        if spyglass.width is not None and spyglass.height is not None:
            frame = frame[: spyglass.height, : spyglass.width]
        spyglass.put(frame, time=item.get("time"))
        return item

    @staticmethod
    def _wait_for_room(spyglass: Any) -> None:
        """Wait while the SpyGlass's queue is full and it is streaming (a short look each time)."""
        from framescope.video import SpyGlassState  # noqa: PLC0415 - needs PyAV

        while spyglass.backlog >= spyglass.queue_size and spyglass.state is SpyGlassState.STREAMING:
            time.sleep(_ROOM_POLL_S)

    def cleanup(self) -> None:
        """Stop the SpyGlass (unless ``stop`` is False): what it holds is sent, then it closes."""
        if self.stop:
            self.spyglass.stop_streaming()


def build_demo_pipeline(
    frames: Iterable[dict[str, Any]],
    output: Any = None,
    *,
    trace_every: int = 1,
    preview: Any = None,
    replicas: int = 1,
    stop_output: bool = True,
    wait_for_output: bool = False,
) -> Pipeline:
    """The demo's pipeline: frames -> Preprocess -> Infer -> Postprocess -> Annotate [-> Output].

    ``output`` (a SpyGlass) restreams or writes the annotated frames (a frame
    it cannot take is a counted failure of the Output stage), and then the
    pipeline keeps no results (``results_size=0``);
    ``preview`` (a live view's PreviewTap) shows them in the browser;
    ``replicas``: how many threads run Infer (its matrix products release the GIL);
    ``stop_output``: stop ``output`` when the pipeline is cleaned up (False:
    the caller stops it, e.g. after a later pipeline fed it too);
    ``wait_for_output``: Output waits for room rather than let ``output`` drop
    a frame (a file).
    """
    pipeline = Pipeline(
        input_generator=frames,
        name="Demo",
        debug=True,
        trace_every=trace_every,
        # With an output the last stage is the output: no result is kept for a reader.
        results_size=1024 if output is None else 0,
    )
    pipeline.add(Preprocess()).add(Infer(), replicas=replicas).add(Postprocess()).add(Annotate())
    if preview is not None:  # the annotated frame, in Annotate's thread: no stage added
        pipeline.tap("Annotate", lambda item: preview(item["frame"]))
    if output is not None:
        pipeline.add(Output(output, stop=stop_output, wait=wait_for_output), on_error="skip")
    return pipeline.parallelize(queue_size=4, input_timeout=None)


def render_state(snapshot: PipelineSnapshot) -> str:
    """The live view's table: ``str(snapshot)``, as a user would print it.

    Every stage's state, input state, rate and processing times (the time
    inside the stage call, which names the slow stage), queue and failures.
    """
    return snapshot_table(snapshot)
