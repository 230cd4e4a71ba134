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

Every name here loads its module on first use (a module ``__getattr__``), so
``from framescope import Pipeline`` loads the facade and the runtime a
threaded pipeline needs, and nothing of process or Ray replicas until one is
asked for.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from framescope import _views
from framescope._lazy import lazy_names

if TYPE_CHECKING:
    from framescope.pipeline.errors import (
        ErrorPolicy,
        OverflowPolicy,
        PipelineClosedError,
        PipelineStoppedError,
        StageError,
    )
    from framescope.pipeline.model.batches import BatchSnapshot
    from framescope.pipeline.model.cpu import CpuSplit, MachineLoad
    from framescope.pipeline.model.events import (
        EventInterval,
        EventStatus,
        EventType,
        NodePhase,
        PipelineEvent,
    )
    from framescope.pipeline.model.latency import LatencyFigures, SourceLatency
    from framescope.pipeline.model.snapshot import (
        PipelineSnapshot,
        SnapshotFormatError,
        SnapshotSource,
        StageSnapshot,
        merge_snapshots,
    )
    from framescope.pipeline.model.sources import (
        Sourced,
        SourceSnapshot,
        SourceState,
        SourceTransition,
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
    from framescope.pipeline.model.viewers import ViewerSnapshot
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
    from framescope.pipeline.views.diagnosis import Diagnosis, StageLoad

# The snapshot and the node states print through these tables: loaded when one is first printed.
_views.register_lazily("framescope.pipeline.views.tables")

_LAZY: dict[str, str] = {
    "ErrorPolicy": "framescope.pipeline.errors",
    "OverflowPolicy": "framescope.pipeline.errors",
    "PipelineClosedError": "framescope.pipeline.errors",
    "PipelineStoppedError": "framescope.pipeline.errors",
    "StageError": "framescope.pipeline.errors",
    "BatchSnapshot": "framescope.pipeline.model.batches",
    "CpuSplit": "framescope.pipeline.model.cpu",
    "MachineLoad": "framescope.pipeline.model.cpu",
    "EventInterval": "framescope.pipeline.model.events",
    "EventStatus": "framescope.pipeline.model.events",
    "EventType": "framescope.pipeline.model.events",
    "NodePhase": "framescope.pipeline.model.events",
    "PipelineEvent": "framescope.pipeline.model.events",
    "LatencyFigures": "framescope.pipeline.model.latency",
    "SourceLatency": "framescope.pipeline.model.latency",
    "PipelineSnapshot": "framescope.pipeline.model.snapshot",
    "SnapshotFormatError": "framescope.pipeline.model.snapshot",
    "SnapshotSource": "framescope.pipeline.model.snapshot",
    "StageSnapshot": "framescope.pipeline.model.snapshot",
    "merge_snapshots": "framescope.pipeline.model.snapshot",
    "SourceSnapshot": "framescope.pipeline.model.sources",
    "SourceState": "framescope.pipeline.model.sources",
    "SourceTransition": "framescope.pipeline.model.sources",
    "Sourced": "framescope.pipeline.model.sources",
    "ViewerSnapshot": "framescope.pipeline.model.viewers",
    "DurationStats": "framescope.pipeline.model.state",
    "InputQueueState": "framescope.pipeline.model.state",
    "NodeState": "framescope.pipeline.model.state",
    "OutputQueueState": "framescope.pipeline.model.state",
    "PipelineState": "framescope.pipeline.model.state",
    "QueueStats": "framescope.pipeline.model.state",
    "Timing": "framescope.pipeline.model.state",
    "merge_states": "framescope.pipeline.model.state",
    "Pipeline": "framescope.pipeline.pipeline",
    "PipelineStage": "framescope.pipeline.pipeline",
    "MAIN_PIPELINE_NAME": "framescope.pipeline.pystream",
    "PipelineUndefined": "framescope.pipeline.pystream",
    "get_profiler_db_folder": "framescope.pipeline.pystream",
    "logger": "framescope.pipeline.pystream",
    "set_profiler_db_folder": "framescope.pipeline.pystream",
    "ReplicaLostError": "framescope.pipeline.replicas.base",
    "ThreadExecutor": "framescope.pipeline.replicas.base",
    "ProcessExecutor": "framescope.pipeline.replicas.process",
    "RayExecutor": "framescope.pipeline.replicas.ray",
    "Stage": "framescope.pipeline.stage",
    "Diagnosis": "framescope.pipeline.views.diagnosis",
    "StageLoad": "framescope.pipeline.views.diagnosis",
}
"""Each public name and the module that defines it."""

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
    "Sourced",
    "Stage",
    "StageError",
    "ThreadExecutor",
    # reading
    "BatchSnapshot",
    "CpuSplit",
    "Diagnosis",
    "LatencyFigures",
    "MachineLoad",
    "PipelineSnapshot",
    "SnapshotFormatError",
    "SnapshotSource",
    "SourceLatency",
    "SourceSnapshot",
    "SourceState",
    "SourceTransition",
    "StageLoad",
    "StageSnapshot",
    "ViewerSnapshot",
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


__getattr__, __dir__ = lazy_names(__name__, _LAZY, globals())
