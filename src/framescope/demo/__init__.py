"""The ``framescope demo``: a real video through a pipeline, watched live, then diagnosed.

It writes a short H.264 clip of a moving test pattern (``SyntheticSource`` +
``VideoWriter``; no camera or download needed), or takes ``--video PATH``
(any size, codec and pixel format PyAV decodes), and decodes it in a loop
with ``VideoSource``. The frames go through four stages of different cost,
one of them clearly the slowest, and the annotated result goes to a video
file (or, with ``--restream URL``, to a stream) through a ``SpyGlass``, each
frame stamped with its stream time so the result plays at the source's
speed. While it runs, a live view of every node's state refreshes in the
terminal. At the end come the diagnosis, which names the bottleneck, a
summary of what became of every frame read, the annotated video's path and a
Chrome trace file to open in Perfetto. Everything goes into one output
folder (``--out``), overwritten by the next run. With ``--replicas N`` it
runs Infer on 1 replica and then on N, on the same input, and sets each
phase's measured throughput and their ratio beside the diagnosis's claim.
"""

from framescope.demo.inputs import DemoError, DemoInput, default_out_dir, demo_clip, video_frames
from framescope.demo.phases import DemoPhase
from framescope.demo.run import DemoReport, run_demo
from framescope.demo.stages import (
    MODEL_INPUT,
    Annotate,
    Infer,
    Output,
    OutputFailedError,
    Postprocess,
    Preprocess,
    QuietOutputFailures,
    build_demo_pipeline,
    render_state,
)

__all__ = [
    "MODEL_INPUT",
    "Annotate",
    "DemoError",
    "DemoInput",
    "DemoPhase",
    "DemoReport",
    "Infer",
    "Output",
    "OutputFailedError",
    "Postprocess",
    "Preprocess",
    "QuietOutputFailures",
    "build_demo_pipeline",
    "default_out_dir",
    "demo_clip",
    "render_state",
    "run_demo",
    "video_frames",
]
