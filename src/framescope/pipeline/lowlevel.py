"""What stage code, tests and integrations use below the pipeline's main names.

- :class:`EventRecorder`: a node's recorder of DepthAI events (a stage reaches
  its own through ``framescope.running``; custom blocks with ``Stage.block``).
- :class:`CpuSource`, :class:`FakeCpuSource`: where a pipeline reads each
  thread's time on a CPU and the machine's load
  (``Pipeline(cpu_source=FakeCpuSource())`` drives it in tests).
- :data:`COUNTERS`: every pipeline counter and what it counts
  (``Pipeline.counters()`` has exactly these keys).
- :class:`Deferred`: a snapshot value worked out on first read, for code that
  builds its own :class:`~framescope.pipeline.PipelineSnapshot`.
"""

from framescope.pipeline.debug.recorder import EventRecorder
from framescope.pipeline.model.counters import COUNTERS
from framescope.pipeline.model.snapshot import Deferred
from framescope.pipeline.runtime.cpu import CpuSource, FakeCpuSource

__all__ = ["COUNTERS", "CpuSource", "Deferred", "EventRecorder", "FakeCpuSource"]
