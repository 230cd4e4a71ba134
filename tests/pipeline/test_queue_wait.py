"""A frame's queue wait at each stage, exact under a FakeClock.

A stage's wait runs from the moment the stage before it handed the item on
(for the first stage: from ``forward()``) to the moment this stage's worker
took it. The test moves fake time only while every thread that reads the
clock is parked at a known point, so each wait is an exact number.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from itertools import islice
from typing import Any

from framescope import Pipeline, Stage
from framescope.clock import FakeClock
from framescope.trace import chrome_trace
from tests.polling import wait_for

MS = 1_000_000


class Stepper(Stage):
    """Takes ``seconds`` of fake time per item, one item per :meth:`step` the test allows."""

    def __init__(self, name: str, clock: FakeClock, seconds: float) -> None:
        self.name = name
        self.clock = clock
        self.seconds = seconds
        self.tokens = threading.Semaphore(0)
        self.entered: list[Any] = []
        self.changed = threading.Condition()

    def __call__(self, data: Any) -> Any:
        with self.changed:
            self.entered.append(data)
            self.changed.notify_all()
        if not self.tokens.acquire(timeout=30):
            raise TimeoutError(f"{self.name}: no step allowed for item {data}")
        self.clock.advance(self.seconds)
        return data

    def step(self) -> None:
        """Let the call in progress (or the next one) finish."""
        self.tokens.release()

    def has_taken(self, item: Any) -> None:
        """Wait until the stage's worker took ``item`` (its clock reading is behind it)."""
        with self.changed:
            assert self.changed.wait_for(lambda: item in self.entered, timeout=30), item


def drive(
    pipeline: Pipeline, a: Stepper, b: Stepper, clock: FakeClock, phase: Callable[[str], Any]
) -> None:
    """Four items through A (1 ms each) and B (10 ms, a one-place queue), fake ms noted."""
    for item in range(4):
        assert pipeline.forward(item)  # all at +0 ms: A takes 0, 1 to 3 wait in its queue
    a.has_taken(0)
    clock.advance(0.005)  # +5
    a.step()  # A ends 0 at +6 and hands it to B (idle), then takes 1
    b.has_taken(0)
    a.has_taken(1)
    clock.advance(0.002)  # +8
    a.step()  # A hands 1 on at +9 (into B's one-place queue) and takes 2
    a.has_taken(2)
    clock.advance(0.003)  # +12
    a.step()  # A ends 2 at +13 and waits: B's queue is full
    wait_for(lambda: phase("A") == "SENDING_OUTPUTS", what="A waiting to hand item 2 on")
    clock.advance(0.004)  # +17
    b.step()  # B ends 0 at +27 and takes 1; A's item 2 gets into the queue at +27
    b.has_taken(1)
    a.has_taken(3)  # A took 3 after handing 2 on: its reading of the hand-over is behind it
    clock.advance(0.001)  # +28
    b.step()  # B ends 1 at +38 and takes 2
    b.has_taken(2)
    a.step()  # A ends 3 at +39 and hands it on at once
    wait_for(lambda: phase("A") == "GETTING_INPUTS", what="A back at its input")
    clock.advance(0.002)  # +41
    b.step()  # B ends 2 at +51 and takes 3
    b.has_taken(3)
    b.step()  # B ends 3 at +61


def test_each_stage_waits_from_the_hand_over_before_it_to_its_take() -> None:
    clock = FakeClock()
    start = clock.monotonic_ns()
    a, b = Stepper("A", clock, 0.001), Stepper("B", clock, 0.010)
    pipeline = Pipeline(debug=True, clock=clock, name="P")
    pipeline.add(a).add(b, queue_size=1).parallelize(queue_size=4, input_timeout=None)

    def phase(stage: str) -> str | None:
        return pipeline.snapshot().stage(f"P__{stage}").phase

    try:
        drive(pipeline, a, b, clock, phase)
        assert list(islice(pipeline.results(timeout=30), 4)) == [0, 1, 2, 3]
        snapshot = pipeline.snapshot()
    finally:
        for stage in (a, b):
            for _ in range(4):
                stage.step()  # nothing held back should the test fail half way
        pipeline.cleanup(timeout=30)
    traces = snapshot.traces
    waits = {t.frame_id: [span.wait_ns // MS for span in t.spans] for t in traces}
    assert waits == {
        0: [0, 0],  # A took it at once; B took it as A handed it on
        1: [6, 18],  # A: +0 -> +6; B: handed on at +9, taken at +27
        2: [9, 11],  # A: +0 -> +9; B: handed on at +27 (after A waited from +13), taken at +38
        3: [27, 12],  # A: +0 -> +27; B: handed on at +39, taken at +51
    }
    assert all(span.wait_ns % MS == 0 for t in traces for span in t.spans)  # exact
    ready = {t.frame_id: [(s.t_ready - start) // MS for s in t.spans] for t in traces}
    assert ready == {0: [0, 6], 1: [0, 9], 2: [0, 27], 3: [0, 39]}
    taken = {t.frame_id: [(s.t_start - start) // MS for s in t.spans] for t in traces}
    assert taken == {0: [0, 6], 1: [6, 27], 2: [9, 38], 3: [27, 51]}
    # A's worker found an item in its queue each time it went for one: no wait for input
    # (it goes for the next one once the last is handed on, at +27 for item 2, not at +13).
    a_input = snapshot.state.node_states["P__A"].inputs_get_timing
    assert (a_input.count, a_input.duration_stats.max_micros) == (4, 0.0)
    a_span_2 = next(t for t in traces if t.frame_id == 2).spans[0]
    assert ((a_span_2.t_end - start) // MS, (a_span_2.t_sent - start) // MS) == (13, 27)

    document = chrome_trace(traces, snapshot.node_ids)
    shown = {
        (e["args"]["frame"], e["name"]): e["args"]["queue_wait_ms"]
        for e in document["traceEvents"]
        if e.get("cat") == "stage"
    }
    assert shown == {
        (0, "A"): 0.0,
        (0, "B"): 0.0,
        (1, "A"): 6.0,
        (1, "B"): 18.0,
        (2, "A"): 9.0,
        (2, "B"): 11.0,
        (3, "A"): 27.0,
        (3, "B"): 12.0,
    }
