"""The diagnosis's thresholds, exactly at each boundary and just beside it.

Snapshots are built by hand so every share is an exact float: a stage whose
samples are ``busy_ns`` nanoseconds and whose two events lie 1 s apart, read
at the second event, is busy ``busy_ns / 1e9`` of the time.
"""

from __future__ import annotations

import pytest

from framescope.pipeline import (
    CpuSplit,
    Diagnosis,
    MachineLoad,
    PipelineSnapshot,
    StageSnapshot,
)
from framescope.pipeline.views.diagnosis import diagnose_snapshot, stage_kind
from framescope.stats import StatsSnapshot

SECOND = 1_000_000_000
BELOW = 1  # one nanosecond: the closest a measured figure comes to a boundary


def latency(busy_ns: int, *, last_ns: int = SECOND) -> StatsSnapshot:
    """Two items of ``busy_ns`` each, 1 s apart, the second at ``last_ns``."""
    return StatsSnapshot(
        window=100,
        count=2,
        total=2 * busy_ns / 1e9,
        minimum=busy_ns / 1e9,
        maximum=busy_ns / 1e9,
        samples=(busy_ns, busy_ns),
        divisor=1e9,
        events=2,
        first_event_ns=last_ns - SECOND,
        last_event_ns=last_ns,
    )


def stage(name: str, busy_ns: int, **fields: object) -> StageSnapshot:
    return StageSnapshot(key=f"P__{name}", stage=name, latency=latency(busy_ns), **fields)  # type: ignore[arg-type]


def snapshot(*stages: StageSnapshot, mode: str = "parallel", **fields: object) -> PipelineSnapshot:
    counters = {"forwarded": 2, "completed": 2, "in_flight": 0}
    counters.update(fields.pop("counters", {}))  # type: ignore[call-overload]
    return PipelineSnapshot(
        pipeline="P",
        latency=latency(1000),
        counters=counters,
        stages=stages,
        taken_ns=SECOND,
        mode=mode,
        **fields,  # type: ignore[arg-type]
    )


def split(busy: float, on_cpu: float, waiting: float | None, blocked: float | None) -> CpuSplit:
    return CpuSplit(
        window_s=1.0,
        threads=1,
        busy=busy,
        on_cpu=on_cpu,
        waiting=waiting,
        blocked=blocked,
        on_cpu_s=on_cpu,
        waiting_s=waiting,
        blocked_s=blocked,
    )


def diagnosis_of(*stages: StageSnapshot, **fields: object) -> Diagnosis:
    return diagnose_snapshot(snapshot(*stages, **fields))


# -- the bottleneck: busy 90% of the time ----------------------------------------------------


@pytest.mark.parametrize("mode", ["parallel", "serial"])
def test_a_stage_busy_exactly_90_percent_sets_the_pace(mode: str) -> None:
    diagnosis = diagnosis_of(stage("A", 900_000_000), stage("B", 0), mode=mode)
    assert diagnosis.stages[0].busy == 0.9
    assert diagnosis.verdict == "stage-bound"
    assert diagnosis.bottleneck == "P__A"


@pytest.mark.parametrize("mode", ["parallel", "serial"])
def test_a_stage_busy_just_under_90_percent_does_not(mode: str) -> None:
    diagnosis = diagnosis_of(stage("A", 900_000_000 - BELOW), stage("B", 0), mode=mode)
    assert diagnosis.verdict == "source-bound"
    assert diagnosis.bottleneck == "P__A"  # the busiest, though it sets no pace


def test_serial_stages_add_up_to_the_bound_and_parallel_ones_do_not() -> None:
    a, b = stage("A", 450_000_000), stage("B", 450_000_000)
    assert diagnosis_of(a, b, mode="serial").verdict == "stage-bound"  # one thread, 90% busy
    assert diagnosis_of(a, b, mode="parallel").verdict == "source-bound"  # two, 45% each
    under = stage("B", 450_000_000 - BELOW)
    assert diagnosis_of(a, under, mode="serial").verdict == "source-bound"


def test_the_busiest_stage_is_named_not_the_first_or_the_last() -> None:
    stages = (stage("A", 100_000_000), stage("B", 950_000_000), stage("C", 200_000_000))
    diagnosis = diagnosis_of(*stages)
    assert diagnosis.bottleneck == "P__B"
    assert [load.busy for load in diagnosis.stages] == [0.1, 0.95, 0.2]
    assert "(next: 20%)" in diagnosis.reasons[0]  # the runner-up is the next busiest


# -- what a busy stage's time is spent on ------------------------------------------------------


@pytest.mark.parametrize(
    ("cpu", "kind"),
    [
        (split(1.0, 0.7, 0.3, 0.0), "CPU-starved"),  # waiting exactly 30% of the busy time
        (split(1.0, 0.7, 0.3 - 1e-9, 1e-9), "compute-bound"),  # just under 30%
        (split(0.5, 0.35, 0.15, 0.0), "CPU-starved"),  # 30% of a half-busy stage's time
        (split(1.0, 0.4, 0.2, 0.4), "compute-bound"),  # on a CPU as long as blocked
        (split(1.0, 0.4 - 1e-9, 0.2, 0.4 + 1e-9), "blocked"),  # blocked a little longer
        (split(1.0, 0.5, None, None), "compute-bound"),  # waiting unknown: on a CPU half the time
        (split(1.0, 0.5 - 1e-9, None, None), None),  # less than half: the rest is unknown
        (split(0.05, 0.05, 0.0, 0.0), "compute-bound"),  # busy 5%: enough to say
        (split(0.05 - 1e-9, 0.05, 0.0, 0.0), None),  # busy just under 5%: too little
        (None, None),
    ],
)
def test_the_kind_of_a_stage_at_each_boundary(cpu: CpuSplit | None, kind: str | None) -> None:
    assert stage_kind(cpu) == kind
    diagnosis = diagnosis_of(stage("A", 950_000_000, cpu=cpu), stage("B", 0))
    assert diagnosis.stages[0].kind == kind
    expected = "P__A holds the pipeline back" + ("" if kind is None else f" ({kind})")
    assert diagnosis.headline == expected


# -- stalled: no item out for stall_after seconds ------------------------------------------------


def held_snapshot(
    idle_ns: int, *, inside: int = 3, mode: str | None = "parallel"
) -> PipelineSnapshot:
    """Items inside; the last came out ``idle_ns`` before the reading; stage B processing."""
    return PipelineSnapshot(
        pipeline="P",
        latency=latency(1000, last_ns=SECOND),
        counters={"forwarded": 2 + inside, "completed": 2, "in_flight": inside},
        stages=(
            stage("A", 1000, queue_depth=2),
            stage("B", 1000, phase="PROCESSING"),
            stage("C", 1000, queue_depth=0),
        ),
        taken_ns=SECOND + idle_ns,
        mode=mode,
    )


@pytest.mark.parametrize("stall_after", [5.0, 0.5, 30.0])
def test_stalled_exactly_at_stall_after(stall_after: float) -> None:
    idle_ns = round(stall_after * 1e9)
    diagnosis = diagnose_snapshot(held_snapshot(idle_ns), stall_after=stall_after)
    assert diagnosis.verdict == "stalled"
    assert diagnosis.headline == f"no item completed for {stall_after:.1f} s"
    assert diagnosis.bottleneck == "P__B"  # the last stage holding an item
    assert diagnosis.reasons == (
        f"3 item(s) are inside the pipeline and none has come out for {stall_after:.1f} s",
        "P__B is still processing its item",
    )
    early = diagnose_snapshot(held_snapshot(idle_ns - BELOW), stall_after=stall_after)
    assert early.verdict != "stalled"


def test_the_default_stall_after_is_five_seconds() -> None:
    assert diagnose_snapshot(held_snapshot(5 * SECOND)).verdict == "stalled"
    assert diagnose_snapshot(held_snapshot(5 * SECOND - BELOW)).verdict != "stalled"


def test_not_stalled_with_nothing_inside_or_before_the_start() -> None:
    assert diagnose_snapshot(held_snapshot(60 * SECOND, inside=0)).verdict != "stalled"
    assert diagnose_snapshot(held_snapshot(60 * SECOND, mode=None)).verdict != "stalled"
    assert diagnose_snapshot(held_snapshot(60 * SECOND, inside=1)).verdict == "stalled"


def test_a_stall_with_items_only_queued_names_the_last_queue() -> None:
    held = held_snapshot(6 * SECOND)
    queued = PipelineSnapshot(
        pipeline="P",
        latency=held.latency,
        counters=held.counters,
        stages=(stage("A", 1000, queue_depth=2), stage("B", 1000, queue_depth=1), stage("C", 1000)),
        taken_ns=held.taken_ns,
        mode="parallel",
    )
    diagnosis = diagnose_snapshot(queued)
    assert diagnosis.bottleneck == "P__B"
    assert diagnosis.reasons[1] == "P__B has 1 item(s) waiting and takes none"


# -- failing and dropping: 1% of the items ---------------------------------------------------------


def test_failing_from_one_percent_of_the_items() -> None:
    at = diagnosis_of(stage("A", 1000, failures=1), counters={"forwarded": 100, "failed": 1})
    assert at.verdict == "failing"
    assert at.headline == "1 of 100 items failed (1%)"
    under = diagnosis_of(stage("A", 1000, failures=1), counters={"forwarded": 101, "failed": 1})
    assert under.verdict != "failing"


@pytest.mark.parametrize("counter", ["dropped_oldest", "results_dropped"])
def test_dropping_from_one_percent_of_the_items_offered(counter: str) -> None:
    at = diagnosis_of(stage("A", 1000), counters={"forwarded": 100, counter: 1})
    assert at.verdict == "dropping"
    assert at.headline == "1 of 100 items were lost (1%)"
    under = diagnosis_of(stage("A", 1000), counters={"forwarded": 101, counter: 1})
    assert under.verdict != "dropping"


def test_items_refused_at_the_input_count_as_offered() -> None:
    # 1 of 99 forwarded would be over 1%; the refused one makes it 1 of 100 offered, 2 of 100.
    diagnosis = diagnosis_of(stage("A", 1000), counters={"forwarded": 99, "rejected": 1})
    assert diagnosis.headline == "1 of 100 items were lost (1%)"
    newest = diagnosis_of(stage("A", 1000), counters={"forwarded": 100, "dropped_newest": 1})
    assert newest.verdict != "dropping"  # 1 of 101 offered: under 1%


# -- replicas: the gain shown, idle cores, slow replicas, one interpreter ----------------------


def test_more_replicas_are_suggested_from_a_gain_of_1_2() -> None:
    at = diagnosis_of(stage("A", 960_000_000), stage("B", 800_000_000))
    assert at.suggestion is not None and "about 1.2x" in at.suggestion
    under = diagnosis_of(stage("A", 960_000_000), stage("B", 800_000_000 + 1000))
    assert under.verdict == "stage-bound" and under.suggestion is None


def machine(idle: float) -> MachineLoad:
    """Four cores with ``idle`` of them idle (an exact float for the idles used here)."""
    return MachineLoad(cores=4, window_s=1.0, cpu_busy=1 - idle / 4, load1=None, process_cores=None)


def test_a_replica_is_added_where_three_quarters_of_a_core_is_idle() -> None:
    cpu = split(1.0, 1.0, 0.0, 0.0)
    slow, fast = stage("A", 950_000_000, cpu=cpu), stage("B", 100_000_000)
    at = diagnosis_of(slow, fast, machine=machine(0.75), cpu_count=4)
    assert at.suggestion is not None and "add(..., replicas=2)" in at.suggestion
    assert "about 0.8 of 4 cores are idle" in at.suggestion
    under = diagnosis_of(slow, fast, machine=machine(0.75 - 1 / 64), cpu_count=4)
    assert under.suggestion is not None and "replicas=" not in under.suggestion
    assert "more replicas would wait for a CPU" in under.suggestion


def test_a_core_three_quarters_idle_is_not_called_busy() -> None:
    # A replica keeping two cores on a CPU does not fit in 0.75 idle cores; those cores
    # are free enough that the machine is not blamed.
    cpu = split(1.0, 2.0, 0.0, 0.0)
    slow, fast = stage("A", 950_000_000, cpu=cpu), stage("B", 100_000_000)
    at = diagnosis_of(slow, fast, machine=machine(0.75), cpu_count=4)
    assert at.suggestion is not None and "replicas=" not in at.suggestion
    assert "wait for a CPU" not in at.suggestion
    under = diagnosis_of(slow, fast, machine=machine(0.75 - 1 / 64), cpu_count=4)
    assert under.suggestion is not None and "more replicas would wait for a CPU" in under.suggestion


def replicated(means_ns: tuple[int, ...]) -> PipelineSnapshot:
    replicas = tuple(
        StageSnapshot(
            key=f"P__A#{index}",
            stage="A",
            latency=latency(mean),
            replica_of="P__A",
            working=False,
        )
        for index, mean in enumerate(means_ns)
    )
    main = stage("A", 900_000_000, replicas=len(means_ns), executor="thread")
    return snapshot(main, *replicas)


def test_a_replica_is_slow_from_one_and_a_half_times_the_others() -> None:
    at = diagnose_snapshot(replicated((10_000_000, 10_000_000, 15_000_000)))
    assert "P__A#2 is slow: 15.0 ms per item against 10.0 ms for the other replicas" in at.reasons
    under = diagnose_snapshot(replicated((10_000_000, 10_000_000, 15_000_000 - BELOW)))
    assert not any("is slow" in reason for reason in under.reasons)


@pytest.mark.parametrize(
    ("process_cores", "lock"),
    [(0.9, True), (1.25, True), (0.9 - 1e-9, False), (1.25 + 1e-9, False)],
)
def test_one_interpreter_is_0_9_to_1_25_cores(process_cores: float, lock: bool) -> None:
    blocked = stage("A", 950_000_000, cpu=split(1.0, 0.1, 0.0, 0.9), executor="thread")
    spinning = stage("B", 100_000_000, cpu=split(0.1, 0.9, 0.0, 0.0), executor="thread")
    load = MachineLoad(cores=8, window_s=1.0, cpu_busy=0.1, load1=None, process_cores=process_cores)
    diagnosis = diagnosis_of(blocked, spinning, machine=load, cpu_count=8)
    assert diagnosis.stages[0].kind == "blocked"
    holder = any(
        "may be waiting for the interpreter lock P__B holds" in r for r in diagnosis.reasons
    )
    assert holder is lock
    assert diagnosis.suggestion is not None
    assert ("executor='process'" in diagnosis.suggestion) is lock


def test_a_replicated_stage_is_busy_its_replicas_share_of_the_time() -> None:
    # Two replicas doing 1.8 s of work in a second are each busy 90%: the bound exactly.
    diagnosis = diagnosis_of(stage("A", 1_800_000_000, replicas=2), stage("B", 0))
    assert diagnosis.stages[0].busy == 0.9
    assert diagnosis.verdict == "stage-bound"
    two = diagnosis_of(stage("A", 900_000_000, replicas=2), stage("B", 0))
    assert two.stages[0].busy == 0.45
    assert two.verdict == "source-bound"
