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

The names here are grouped: building and running a pipeline; reading it (the
snapshot every view renders, the diagnosis); DepthAI's node states; PyStream's
module-level names. What stage code, tests and integrations need below that
(event recorders, CPU sources) is in :mod:`framescope.pipeline.lowlevel`.
"""

from framescope.pipeline.errors import (
    ErrorPolicy,
    OverflowPolicy,
    PipelineClosedError,
    PipelineStoppedError,
    StageError,
)
from framescope.pipeline.model.cpu import CpuSplit, MachineLoad
from framescope.pipeline.model.events import (
    EventInterval,
    EventStatus,
    EventType,
    NodePhase,
    PipelineEvent,
)
from framescope.pipeline.model.snapshot import (
    PipelineSnapshot,
    SnapshotFormatError,
    SnapshotSource,
    StageSnapshot,
    merge_snapshots,
)
from framescope.pipeline.model.state import (
    DurationStats,
    InputQueueState,
    NodeState,
    OutputQueueState,
    PipelineState,
    QueueStats,
    Timing,
    merge_states,
)
from framescope.pipeline.pipeline import Pipeline, PipelineStage
from framescope.pipeline.pystream import (
    MAIN_PIPELINE_NAME,
    PipelineUndefined,
    get_profiler_db_folder,
    logger,
    set_profiler_db_folder,
)
from framescope.pipeline.replicas.base import ReplicaLostError, ThreadExecutor
from framescope.pipeline.replicas.process import ProcessExecutor
from framescope.pipeline.replicas.ray import RayExecutor
from framescope.pipeline.stage import Stage
from framescope.pipeline.views import tables as _tables  # noqa: F401  (registers the views of the data)
from framescope.pipeline.views.diagnosis import Diagnosis, StageLoad

__all__ = [  # noqa: RUF022 - grouped as the docstring says
    # building and running
    "ErrorPolicy",
    "OverflowPolicy",
    "Pipeline",
    "PipelineClosedError",
    "PipelineStage",
    "PipelineStoppedError",
    "ProcessExecutor",
    "RayExecutor",
    "ReplicaLostError",
    "Stage",
    "StageError",
    "ThreadExecutor",
    # reading
    "CpuSplit",
    "Diagnosis",
    "MachineLoad",
    "PipelineSnapshot",
    "SnapshotFormatError",
    "SnapshotSource",
    "StageLoad",
    "StageSnapshot",
    "merge_snapshots",
    # DepthAI's node states and events
    "DurationStats",
    "EventInterval",
    "EventStatus",
    "EventType",
    "InputQueueState",
    "NodePhase",
    "NodeState",
    "OutputQueueState",
    "PipelineEvent",
    "PipelineState",
    "QueueStats",
    "Timing",
    "merge_states",
    "MAIN_PIPELINE_NAME",
    "PipelineUndefined",
    "get_profiler_db_folder",
    "logger",
    "set_profiler_db_folder",
]
