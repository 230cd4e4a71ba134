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

from framescope.pipeline import render as _render  # noqa: F401  (the views of the data)
from framescope.pipeline.cpu import CpuSource, CpuSplit, FakeCpuSource, MachineLoad
from framescope.pipeline.diagnosis import Diagnosis, StageLoad
from framescope.pipeline.errors import (
    ErrorPolicy,
    OverflowPolicy,
    PipelineClosedError,
    PipelineStoppedError,
    StageError,
)
from framescope.pipeline.events import (
    EventInterval,
    EventRecorder,
    EventStatus,
    EventType,
    NodePhase,
    PipelineEvent,
)
from framescope.pipeline.pipeline import Pipeline, PipelineStage
from framescope.pipeline.pystream import (
    MAIN_PIPELINE_NAME,
    PipelineUndefined,
    get_profiler_db_folder,
    logger,
    set_profiler_db_folder,
)
from framescope.pipeline.snapshot import (
    PipelineSnapshot,
    SnapshotFormatError,
    SnapshotSource,
    StageSnapshot,
    merge_snapshots,
)
from framescope.pipeline.stage import Stage
from framescope.pipeline.state import (
    DurationStats,
    InputQueueState,
    NodeState,
    OutputQueueState,
    PipelineState,
    QueueStats,
    Timing,
    merge_states,
)

__all__ = [
    "MAIN_PIPELINE_NAME",
    "CpuSource",
    "CpuSplit",
    "Diagnosis",
    "DurationStats",
    "ErrorPolicy",
    "EventInterval",
    "EventRecorder",
    "EventStatus",
    "EventType",
    "FakeCpuSource",
    "InputQueueState",
    "MachineLoad",
    "NodePhase",
    "NodeState",
    "OutputQueueState",
    "OverflowPolicy",
    "Pipeline",
    "PipelineClosedError",
    "PipelineEvent",
    "PipelineSnapshot",
    "PipelineStage",
    "PipelineState",
    "PipelineStoppedError",
    "PipelineUndefined",
    "QueueStats",
    "SnapshotFormatError",
    "SnapshotSource",
    "Stage",
    "StageError",
    "StageLoad",
    "StageSnapshot",
    "Timing",
    "get_profiler_db_folder",
    "logger",
    "merge_snapshots",
    "merge_states",
    "set_profiler_db_folder",
]
