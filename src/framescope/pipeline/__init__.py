"""Frame-processing pipelines: stages run serially or one thread per stage.

Code written for PyStream runs after changing the import::

    from framescope import Pipeline, Stage

    pipeline = Pipeline(input_generator=grab_frame)
    pipeline.add(Decode()).add(detect, "Detect").add(draw)
    pipeline.parallelize()
    pipeline.start_loop(1 / 30)
    ...
    latency, throughput = pipeline.get_profiles()
    pipeline.cleanup()
"""

from framescope.pipeline.errors import (
    ErrorPolicy,
    OverflowPolicy,
    PipelineClosedError,
    PipelineStoppedError,
    StageError,
)
from framescope.pipeline.pipeline import Pipeline, PipelineStage
from framescope.pipeline.stage import Stage

__all__ = [
    "ErrorPolicy",
    "OverflowPolicy",
    "Pipeline",
    "PipelineClosedError",
    "PipelineStage",
    "PipelineStoppedError",
    "Stage",
    "StageError",
]
