"""The CPU split read from the real kernel: a spinning stage, the same next to CPU hogs, a sleeper.

The machine running the suite may be busy: where a verdict depends on free
cores, the test measures the machine itself (``/proc/stat``, less this
process's own CPU time) and checks the verdict against that fact.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from framescope.pipeline import CpuSplit, Pipeline, PipelineSnapshot, StageSnapshot
from framescope.pipeline.views.advice import STARVED_SHARE
from framescope.pipeline.views.diagnosis import diagnose_snapshot
from tests.polling import holds_within

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        not Path(f"/proc/self/task/{os.getpid()}/schedstat").exists(),
        reason="needs Linux's per-thread scheduler accounting",
    ),
]

CORES = os.cpu_count() or 1


def spin(item: int) -> int:
    """Pure-Python work for about 5 ms of CPU time."""
    end = time.thread_time() + 0.005
    while time.thread_time() < end:
        pass
    return item


def nap(item: int) -> int:
    time.sleep(0.005)
    return item


def _machine_ticks() -> tuple[int, int]:
    with open("/proc/stat") as file:
        values = [int(v) for v in file.readline().split()[1:9]]
    busy = values[0] + values[1] + values[2] + values[5] + values[6] + values[7]
    return busy, busy + values[3] + values[4]


def run_for(stage: object, seconds: float, **add: object) -> tuple[PipelineSnapshot, float]:
    """Run ``stage`` in a threaded pipeline for ``seconds``; the snapshot and other processes'
    average busy cores over the run (the machine's use less this process's)."""
    ticks, cpu, started = _machine_ticks(), time.process_time(), time.monotonic()
    with Pipeline(results_size=0) as pipeline:  # the last stage is the output
        pipeline.add(stage, "Work", **add).add(lambda x: x, "Pass").parallelize(queue_size=4)
        while time.monotonic() - started < seconds:
            pipeline.forward(0)  # waits for room: the stage sets the pace
        pipeline.close()
        assert pipeline.join(30)
        snapshot = pipeline.snapshot()
    busy, total = (now - before for now, before in zip(_machine_ticks(), ticks, strict=True))
    wall = time.monotonic() - started
    ours = time.process_time() - cpu
    others = max(0.0, (busy / total if total else 0.0) * CORES - ours / wall)
    return snapshot, others


def split_of(stage: StageSnapshot) -> CpuSplit:
    assert stage.cpu is not None, f"{stage.key} has no CPU split"
    assert stage.cpu.waiting is not None and stage.cpu.blocked is not None
    return stage.cpu


def _cpu_ticks(pid: int) -> int:
    """The CPU time of process ``pid`` so far, in clock ticks (utime + stime)."""
    with open(f"/proc/{pid}/stat") as file:
        fields = file.read().rpartition(")")[2].split()
    return int(fields[11]) + int(fields[12])


@pytest.fixture
def hogs() -> Iterator[None]:
    """Twice as many CPU-bound processes as cores, ended (and reaped) afterwards."""
    loop = "while True: pass"
    children = [subprocess.Popen([sys.executable, "-c", loop]) for _ in range(2 * CORES)]
    try:
        # Every hog has run (its process is past start-up and on the run queues).
        assert all(
            holds_within(lambda child=child: _cpu_ticks(child.pid) > 10) for child in children
        )
        yield
    finally:
        for child in children:
            child.kill()
        for child in children:
            child.wait(10)


def test_a_spinning_stage_is_on_a_cpu_or_waiting_for_one() -> None:
    snapshot, others = run_for(spin, 1.5)
    stage = snapshot.stage("MainPipeline__Work")
    cpu = split_of(stage)
    on_cpu, waiting = cpu.share_of_busy(cpu.on_cpu), cpu.share_of_busy(cpu.waiting)
    assert on_cpu is not None and waiting is not None
    assert on_cpu + waiting >= 0.85, cpu
    kind = diagnose_snapshot(snapshot).stages[0].kind
    if others <= CORES - 1.2:  # a core was free for it all along: it ran
        assert kind == "compute-bound", (cpu, others)
    else:  # the machine was busy with other work: it ran, or waited for a CPU
        assert kind in ("compute-bound", "CPU-starved"), (cpu, others)


@pytest.mark.usefixtures("hogs")
def test_a_spinning_stage_next_to_cpu_hogs_is_cpu_starved() -> None:
    snapshot, others = run_for(spin, 1.5)
    cpu = split_of(snapshot.stage("MainPipeline__Work"))
    waiting = cpu.share_of_busy(cpu.waiting)
    assert waiting is not None and waiting > 0.3, (cpu, others)
    diagnosis = diagnose_snapshot(snapshot)
    assert diagnosis.stages[0].kind == "CPU-starved"
    assert diagnosis.suggestion is None or "replicas=" not in diagnosis.suggestion
    machine = snapshot.machine
    assert machine is not None and machine.cpu_busy is not None and machine.cpu_busy > 0.9
    assert machine.idle_cores is not None and machine.idle_cores < 0.5


def test_a_sleeping_stage_is_blocked() -> None:
    snapshot, _ = run_for(nap, 1.0)
    cpu = split_of(snapshot.stage("MainPipeline__Work"))
    blocked, on_cpu = cpu.share_of_busy(cpu.blocked), cpu.share_of_busy(cpu.on_cpu)
    # Asleep, not running: on a busy machine part of it waits for a CPU at each wake-up.
    assert on_cpu is not None and on_cpu <= 0.2, cpu
    assert blocked is not None and blocked >= 0.3, cpu
    kind = diagnose_snapshot(snapshot).stages[0].kind
    # On a machine busy enough that each wake-up waits long for a CPU, that
    # wait is what the verdict names (the claim the readout makes is the split's).
    waiting = cpu.share_of_busy(cpu.waiting)
    starved = waiting is not None and waiting >= STARVED_SHARE
    assert kind == ("CPU-starved" if starved else "blocked"), cpu


def test_process_replicas_report_their_worker_processes() -> None:
    snapshot, _ = run_for(spin, 2.5, replicas=2, executor="process")
    stage = snapshot.stage("MainPipeline__Work")
    assert stage.executor == "process"
    replicas = snapshot.replicas_of("MainPipeline__Work")
    assert len(replicas) == 2
    worked = [split_of(replica) for replica in replicas if replica.latency.count]
    assert worked, "no replica took an item"
    for cpu in worked:
        on_cpu, waiting = cpu.share_of_busy(cpu.on_cpu), cpu.share_of_busy(cpu.waiting)
        assert on_cpu is not None and waiting is not None
        assert on_cpu + waiting >= 0.8, cpu  # the worker's own CPU, not the waiting thread's
    assert split_of(stage).threads == 2
