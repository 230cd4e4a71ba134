"""A pipeline whose CPU split is known exactly: fake scheduler readings on a fake clock.

Over one window of 1.0 s (fake clock) the pipeline ``Cam`` reads:

=============  ====  ======  =======  =======  ======================
stage          busy  on CPU  waiting  blocked  shown
=============  ====  ======  =======  =======  ======================
Cam__Detect    0.8   0.5     0.2      0.1      ``50/20/10%``
Cam__Infer     0     0.2     0.1      0        ``20/10/0%`` (average)
Cam__Infer#0   0     0.3     0.1      0        ``30/10/0%``
Cam__Infer#1   0     0.1     0.1      0        ``10/10/0%``
Cam__Draw      0     0.1     unknown  unknown  ``10/?/?%``
=============  ====  ======  =======  =======  ======================

and the machine: 4 cores, 50% busy, load 1.50, this process 0.70 cores.
"""

from __future__ import annotations

from framescope import Pipeline
from framescope.clock import FakeClock
from framescope.pipeline.runtime.cpu import FakeCpuSource

ITEMS = 8
DETECT_S = 0.1  # the fake time each Detect call takes


def _work(clock: FakeClock) -> object:
    def detect(item: int) -> int:
        clock.advance(DETECT_S)
        return item

    return detect


def measured_pipeline(clock: FakeClock, *, debug: bool = False) -> tuple[Pipeline, FakeCpuSource]:
    """``Cam`` run over one 1.0 s window with the readings in the module's table set.

    The readings grow with the fake clock as a kernel's would (Detect's only
    while it works), so a reading taken at any moment of the run is consistent.
    """
    source = FakeCpuSource(cores=4, clock=clock)
    busy_s = ITEMS * DETECT_S  # 0.8 s of Detect calls
    source.set_rates("Cam__Detect", on_cpu=0.5 / busy_s, waiting=0.2 / busy_s)
    source.set_rates("Cam__Infer#0", on_cpu=0.3, waiting=0.1)
    source.set_rates("Cam__Infer#1", on_cpu=0.1, waiting=0.1)
    source.set_rates("Cam__Draw", on_cpu=0.1, waiting=None)
    source.set_machine(busy=0.0, total=0.0, load1=1.5, process=0.0)
    pipeline = Pipeline(name="Cam", clock=clock, cpu_source=source, debug=debug)
    pipeline.add(_work(clock), "Detect").add(lambda x: x, "Infer", replicas=2)
    pipeline.add(lambda x: x, "Draw").parallelize(queue_size=ITEMS)
    for item in range(ITEMS):
        pipeline.forward(item)
    results = pipeline.results(timeout=10)
    assert sorted(next(results) for _ in range(ITEMS)) == list(range(ITEMS))
    source.set_rates("Cam__Detect", on_cpu=0.0, waiting=0.0)  # idle from here on
    clock.advance(1.0 - busy_s)
    source.set_machine(busy=2.0, total=4.0, load1=1.5, process=0.7)
    return pipeline, source
