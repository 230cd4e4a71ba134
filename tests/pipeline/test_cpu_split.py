"""Where a stage's time goes (on a CPU, waiting for one, blocked) and what the diagnosis makes of it.

Scheduler readings come from a FakeCpuSource driven by the FakeClock, so the
shares and the verdicts are exact; the stages' busy time is the fake time
they advance the clock by.
"""

from __future__ import annotations

import threading
from dataclasses import replace

import pytest

from framescope import FakeClock
from framescope.pipeline import (
    CpuSplit,
    MachineLoad,
    Pipeline,
    PipelineSnapshot,
    SnapshotFormatError,
    StageSnapshot,
)
from framescope.pipeline.lowlevel import FakeCpuSource
from framescope.pipeline.runtime.cpu import CpuAccounting, TaskTimes
from framescope.pipeline.views.diagnosis import diagnose_snapshot
from framescope.stats import StatsSnapshot
from tests.polling import holds_within

WORK = "MainPipeline__Work"
PASS = "MainPipeline__Pass"


class Advance:
    """A stage that takes ``seconds`` of fake time per item."""

    def __init__(self, clock: FakeClock, seconds: float) -> None:
        self.clock, self.seconds = clock, seconds

    def __call__(self, item: int) -> int:
        self.clock.advance(self.seconds)
        return item


def run_with_split(
    clock: FakeClock,
    source: FakeCpuSource,
    *,
    on_cpu: float,
    waiting: float | None,
    items: int = 100,
) -> PipelineSnapshot:
    """Work takes 10 ms of fake time per item (all the time there is) at the given shares."""
    source.set_rates(WORK, on_cpu=on_cpu, waiting=waiting)
    source.set_rates(PASS, on_cpu=0.01, waiting=0.0 if waiting is not None else None)
    with Pipeline(clock=clock, cpu_source=source) as pipeline:
        pipeline.add(Advance(clock, 0.01), "Work").add(lambda x: x, "Pass").parallelize()
        results = pipeline.results()
        for item in range(items):  # one at a time: only Work's calls take fake time
            pipeline.forward(item)
            assert next(results) == item
        pipeline.close()
        assert list(results) == []
        return pipeline.snapshot()


@pytest.fixture
def source(clock: FakeClock) -> FakeCpuSource:
    fake = FakeCpuSource(cores=4, clock=clock)
    fake.set_machine_rate(0.25, load1=1.0)  # three of four cores idle
    return fake


def test_a_stage_is_shown_on_cpu_waiting_and_blocked_in_the_right_proportions(
    clock: FakeClock, source: FakeCpuSource
) -> None:
    snapshot = run_with_split(clock, source, on_cpu=0.6, waiting=0.3)
    work = snapshot.stage(WORK).cpu
    assert work is not None
    assert work.window_s == pytest.approx(1.0)
    assert work.busy == pytest.approx(1.0)
    assert work.on_cpu == pytest.approx(0.6)
    assert work.waiting == pytest.approx(0.3)
    assert work.blocked == pytest.approx(0.1)
    assert (work.on_cpu_s, work.waiting_s, work.blocked_s) == pytest.approx((0.6, 0.3, 0.1))
    idle = snapshot.stage(PASS).cpu
    assert idle is not None
    assert idle.busy == 0.0
    assert idle.on_cpu == pytest.approx(0.01)
    assert idle.blocked == 0.0  # asleep on its input queue, not inside a call
    machine = snapshot.machine
    assert machine is not None
    assert machine.cores == 4
    assert machine.cpu_busy == pytest.approx(0.25)
    assert machine.idle_cores == pytest.approx(3.0)
    assert machine.load1 == 1.0


def test_where_only_cpu_time_is_known_the_rest_is_unknown_not_guessed(
    clock: FakeClock, source: FakeCpuSource
) -> None:
    snapshot = run_with_split(clock, source, on_cpu=0.2, waiting=None)
    work = snapshot.stage(WORK).cpu
    assert work is not None
    assert work.on_cpu == pytest.approx(0.2)
    assert (work.waiting, work.blocked, work.waiting_s, work.blocked_s) == (None,) * 4
    diagnosis = diagnose_snapshot(snapshot)
    assert diagnosis.stages[0].kind is None  # 20% on a CPU: the other 80% is unknown
    assert "waiting and blocked not reported here" in diagnosis.report()


def test_a_serial_pipeline_has_no_split_per_stage(clock: FakeClock, source: FakeCpuSource) -> None:
    with Pipeline(clock=clock, cpu_source=source) as pipeline:
        pipeline.add(Advance(clock, 0.01), "Work").serialize()
        list(pipeline.run(range(10)))
        snapshot = pipeline.snapshot()
    assert snapshot.stage(WORK).cpu is None
    assert snapshot.machine is not None


def test_a_compute_bound_stage_gets_replicas_only_while_cores_are_idle(
    clock: FakeClock, source: FakeCpuSource
) -> None:
    snapshot = run_with_split(clock, source, on_cpu=0.95, waiting=0.02)
    diagnosis = diagnose_snapshot(snapshot)
    assert diagnosis.verdict == "stage-bound"
    assert diagnosis.stages[0].kind == "compute-bound"
    assert diagnosis.headline == f"{WORK} holds the pipeline back (compute-bound)"
    assert f"{WORK} is compute-bound: on a CPU 95% of its busy time" in diagnosis.report()
    assert diagnosis.suggestion is not None
    # Three idle cores and 0.95 of a core per replica: three more replicas fit.
    assert "add(..., replicas=4)" in diagnosis.suggestion
    assert "about 3.0 of 4 cores are idle" in diagnosis.suggestion

    saturated = MachineLoad(cores=4, window_s=1.0, cpu_busy=1.0, load1=7.5, process_cores=1.0)
    busy = diagnose_snapshot(replace(snapshot, machine=saturated))
    assert busy.suggestion is not None
    assert "replicas=" not in busy.suggestion
    assert "more replicas would wait for a CPU" in busy.suggestion
    assert "100% busy (load average 7.5)" in busy.suggestion


def test_a_cpu_starved_stage_names_the_load_and_gets_no_replicas(
    clock: FakeClock, source: FakeCpuSource
) -> None:
    source.set_machine_rate(1.0, load1=9.0)
    snapshot = run_with_split(clock, source, on_cpu=0.5, waiting=0.45)
    diagnosis = diagnose_snapshot(snapshot)
    assert diagnosis.stages[0].kind == "CPU-starved"
    assert diagnosis.headline.endswith("(CPU-starved)")
    text = diagnosis.report()
    assert "waiting for a CPU 45%" in text
    assert "the machine's 4 cores are 100% busy (load average 9.0)" in text
    assert diagnosis.suggestion is not None
    assert "replicas=" not in diagnosis.suggestion
    assert "More replicas would wait too" in diagnosis.suggestion


def test_a_starved_stage_gets_no_replicas_even_where_cores_look_idle(
    clock: FakeClock, source: FakeCpuSource
) -> None:
    # The machine's share is an average: a stage waiting 40% of its time is starved now.
    snapshot = run_with_split(clock, source, on_cpu=0.55, waiting=0.4)
    diagnosis = diagnose_snapshot(snapshot)
    assert diagnosis.stages[0].kind == "CPU-starved"
    assert diagnosis.suggestion is not None and "replicas=" not in diagnosis.suggestion


def test_a_blocked_stage_is_told_apart_and_its_replicas_need_little_cpu(
    clock: FakeClock, source: FakeCpuSource
) -> None:
    snapshot = run_with_split(clock, source, on_cpu=0.05, waiting=0.0)
    diagnosis = diagnose_snapshot(snapshot)
    assert diagnosis.stages[0].kind == "blocked"
    text = diagnosis.report()
    assert "blocked 95%" in text
    assert "thread replicas help a stage waiting on I/O" in text
    assert diagnosis.suggestion is not None
    assert "add(..., replicas=10)" in diagnosis.suggestion  # capped at 10x, not by cores
    assert "executor='process'" not in diagnosis.suggestion  # the process is not busy


def test_a_blocked_thread_stage_in_a_busy_interpreter_is_pointed_to_process_replicas(
    clock: FakeClock, source: FakeCpuSource
) -> None:
    snapshot = run_with_split(clock, source, on_cpu=0.3, waiting=0.0)
    busy_interpreter = replace(
        snapshot.machine, process_cores=1.0, cpu_busy=0.25
    )  # another thread keeps the interpreter busy
    diagnosis = diagnose_snapshot(replace(snapshot, machine=busy_interpreter))
    assert diagnosis.stages[0].kind == "blocked"
    assert diagnosis.suggestion is not None
    assert "executor='process'" in diagnosis.suggestion
    assert "each replica would keep about 1.00 of a core busy" in diagnosis.suggestion


def _stage(
    key: str, *, replicas: int = 1, replica_of: str | None = None, **cpu: float
) -> StageSnapshot:
    split = None
    if cpu:
        threads = replicas if replica_of is None else 1
        split = CpuSplit(
            window_s=5.0,
            threads=threads,
            busy=cpu["busy"],
            on_cpu=cpu["on_cpu"],
            waiting=cpu["waiting"],
            blocked=max(0.0, cpu["busy"] - cpu["on_cpu"] - cpu["waiting"]),
            on_cpu_s=0.0,
            waiting_s=0.0,
            blocked_s=0.0,
        )
    # 100 items of 20 ms over the last 5 s (rate() reads the event stamps).
    stamps = 100
    latency = StatsSnapshot(
        window=100,
        count=stamps,
        total=stamps * 0.02,
        minimum=0.02,
        maximum=0.02,
        samples=(0.02,) * 100,
        events=stamps,
        first_event_ns=4_950_000_000,
        last_event_ns=5_950_000_000,
    )
    return StageSnapshot(
        key=key,
        stage=key.split("__", 1)[1],
        latency=latency,
        replicas=replicas,
        replica_of=replica_of,
        working=replica_of is None,
        cpu=split,
        executor="thread" if replicas > 1 else None,
    )


def _replicated(on_cpu: float, waiting: float, process_cores: float) -> PipelineSnapshot:
    main = _stage(WORK, replicas=2, busy=1.0, on_cpu=on_cpu, waiting=waiting)
    replicas = tuple(
        _stage(f"{WORK}#{i}", replica_of=WORK, busy=1.0, on_cpu=on_cpu, waiting=waiting)
        for i in range(2)
    )
    machine = MachineLoad(
        cores=2, window_s=5.0, cpu_busy=1.0, load1=4.2, process_cores=process_cores
    )
    return PipelineSnapshot(
        pipeline="MainPipeline",
        latency=main.latency,
        stages=(main, *replicas),
        taken_ns=5_955_000_000,
        mode="parallel",
        cpu_count=2,
        cpu_load=process_cores,
        machine=machine,
    )


def test_the_gain_of_replicas_that_wait_for_a_cpu_is_not_claimed() -> None:
    # Two replicas, each busy all the time but on a CPU only half of it, on 2 cores with
    # about 2 other threads runnable: one replica alone (runnable all the time: their 2%
    # blocked is contention between them) would be on a CPU 2 / 2.96 of its time (the
    # machine's 3.92 runnable threads less the two replicas, plus it), so together they
    # do 1.0 / 0.676 = 1.48x what it would, not the 1.96x of busy time.
    diagnosis = diagnose_snapshot(_replicated(on_cpu=0.5, waiting=0.48, process_cores=1.0))
    text = diagnosis.report()
    assert "about 1.48x what one replica would do here" in text
    assert "their blocked time taken as contention one replica alone would not have" in text
    assert "1.96x" not in text and "2.00x" not in text
    assert "together they wait for a CPU 0.96 s of each second" in text


def test_the_gain_of_replicas_on_free_cores_is_their_time_on_a_cpu() -> None:
    diagnosis = diagnose_snapshot(_replicated(on_cpu=0.97, waiting=0.01, process_cores=1.95))
    assert "about 1.96x what one replica would do here" in diagnosis.report()


def test_a_baseline_gives_the_measured_gain() -> None:
    now = _replicated(on_cpu=0.97, waiting=0.01, process_cores=1.95)
    one = replace(now.stages[0], replicas=1, latency=replace(now.stages[0].latency, events=50))
    before = replace(now, stages=(one,))
    diagnosis = diagnose_snapshot(now, baseline=before)
    assert any(
        reason.startswith(f"measured: {WORK} does 99.0/s on 2 replicas against 49.0/s on 1")
        and reason.endswith(": 2.02x")
        for reason in diagnosis.reasons
    ), diagnosis.reasons
    with pytest.raises(TypeError, match="baseline must be a PipelineSnapshot"):
        diagnose_snapshot(now, baseline={"stages": []})  # type: ignore[arg-type]


def test_the_split_and_the_machine_survive_the_json_round_trip(
    clock: FakeClock, source: FakeCpuSource
) -> None:
    snapshot = run_with_split(clock, source, on_cpu=0.6, waiting=0.3)
    again = PipelineSnapshot.from_dict(snapshot.to_dict())
    assert again.stage(WORK).cpu == snapshot.stage(WORK).cpu
    assert again.machine == snapshot.machine
    data = snapshot.to_dict()
    data["stages"][0]["cpu"]["busy"] = 1.5
    with pytest.raises(SnapshotFormatError, match=r"stages\[0\]\.cpu\.busy: expected a share"):
        PipelineSnapshot.from_dict(data)
    data = snapshot.to_dict()
    data["machine"]["cores"] = 0
    with pytest.raises(SnapshotFormatError, match=r"machine\.cores"):
        PipelineSnapshot.from_dict(data)


def test_sampling_is_bounded_in_time_and_memory_and_skips_close_readings() -> None:
    clock = FakeClock()
    source = FakeCpuSource(cores=2, clock=clock)
    accounting = CpuAccounting(source, clock.monotonic_ns, window_s=5.0, min_gap_s=0.25)
    thread = threading.Thread(name="framescope:Main__A")
    source.set_rates("Main__A", on_cpu=0.5, waiting=0.25)
    busy = [0.0]
    accounting.track_thread("Main__A", thread, lambda: busy[0])
    for _ in range(1000):  # 250 s of readings every 0.25 s
        clock.advance(0.25)
        busy[0] += 0.25
        assert accounting.sample()
    assert not accounting.sample()  # no time passed: skipped
    split = accounting.split(["Main__A"])
    assert split is not None
    assert split.window_s == pytest.approx(5.0)
    assert len(split.series) == 20
    assert (split.on_cpu, split.waiting, split.blocked) == pytest.approx((0.5, 0.25, 0.25))
    assert split.on_cpu_s == pytest.approx(125.0)


def test_a_recycled_worker_process_starts_from_its_first_reading() -> None:
    clock = FakeClock()
    source = FakeCpuSource(cores=2, clock=clock)
    accounting = CpuAccounting(source, clock.monotonic_ns)
    pid = [100]
    source.set(100, on_cpu=50.0, waiting=0.0)
    accounting.track_process("Main__A#0", lambda: pid[0], lambda: 0.0)
    clock.advance(1.0)
    source.set(100, on_cpu=50.8, waiting=0.0)
    accounting.sample()
    clock.advance(1.0)
    pid[0] = 200  # recycled: its start-up (imports, unpickling) is not the stage's time
    source.set(200, on_cpu=0.5, waiting=0.1)
    accounting.sample()
    clock.advance(1.0)
    source.set(200, on_cpu=1.2, waiting=0.1)
    accounting.sample()
    split = accounting.split(["Main__A#0"])
    assert split is not None
    assert split.on_cpu_s == pytest.approx(1.5)  # 0.8 by the first worker, 0.7 by the second
    assert split.on_cpu == pytest.approx(0.75)  # over the 2 s that were read


def test_a_cpu_source_without_the_methods_is_refused_by_name() -> None:
    with pytest.raises(TypeError, match="cpu_source must provide thread"):
        Pipeline(cpu_source=object())  # type: ignore[arg-type]


def test_task_times_read_from_the_kernel_for_this_thread() -> None:
    from framescope.pipeline.runtime.cpu import default_cpu_source

    source = default_cpu_source()
    times = source.thread(threading.current_thread())
    assert isinstance(times, TaskTimes)
    assert times.on_cpu_ns > 0


@pytest.mark.parametrize(
    ("process_cores", "gain", "basis"),
    [
        # About one interpreter's worth: one replica alone would run instead of waiting
        # for the lock (0.6 cores of work against 0.70 alone: no gain).
        (1.0, "0.86x", "blocked time taken as the interpreter lock's"),
        # Threads ran in parallel: blocked is I/O, which one replica would wait on too
        # (and the rest of the process, a core's worth, would do less work for it).
        (1.6, "1.50x", "their time on a CPU and waiting for one;"),
    ],
)
def test_thread_replicas_blocked_time_counts_unless_the_interpreter_holds_them(
    process_cores: float, gain: str, basis: str
) -> None:
    text = diagnose_snapshot(_replicated(0.3, 0.1, process_cores)).report()
    assert f"about {gain} what one replica would do here" in text
    assert basis in text


def test_calls_longer_than_the_gap_between_readings_are_not_counted_blocked() -> None:
    # Busy time arrives when a call ends; on-CPU time while it runs. A stage on a CPU all
    # the time with 1 s calls read every 0.25 s was never blocked.
    clock = FakeClock()
    source = FakeCpuSource(cores=2, clock=clock)
    accounting = CpuAccounting(source, clock.monotonic_ns, window_s=5.0, min_gap_s=0.25)
    source.set_rates("Main__A", on_cpu=1.0, waiting=0.0)
    busy = [0.0]
    accounting.track_thread("Main__A", threading.Thread(name="framescope:Main__A"), lambda: busy[0])
    for tick in range(1, 41):  # 10 s
        clock.advance(0.25)
        if tick % 4 == 0:
            busy[0] += 1.0  # a 1 s call ended
        accounting.sample()
    split = accounting.split(["Main__A"])
    assert split is not None
    assert split.on_cpu_s == pytest.approx(10.0)
    assert split.blocked_s == pytest.approx(0.0)
    assert split.blocked == pytest.approx(0.0)


def test_a_replica_that_could_not_be_read_does_not_count_as_a_thread() -> None:
    clock = FakeClock()
    source = FakeCpuSource(cores=2, clock=clock)
    accounting = CpuAccounting(source, clock.monotonic_ns)
    source.set(1, on_cpu=0.0, waiting=0.0)
    accounting.track_process("Main__A#0", lambda: 1, lambda: 0.0)
    accounting.track_process("Main__A#1", lambda: None, lambda: 0.0)  # restarting: no pid
    for _ in range(20):
        clock.advance(0.25)
        source.set(1, on_cpu=clock.monotonic_ns() / 1e9 - 1.0, waiting=0.0)
        accounting.sample()
    split = accounting.split(["Main__A#0", "Main__A#1"])
    assert split is not None
    assert split.threads == 1
    assert split.cores_on_cpu == pytest.approx(1.0)
    assert split.window_s == pytest.approx(5.0)


def test_a_process_replica_running_threads_shows_the_cores_it_keeps_busy() -> None:
    clock = FakeClock()
    source = FakeCpuSource(cores=4, clock=clock)
    accounting = CpuAccounting(source, clock.monotonic_ns)
    source.set_rates(7, on_cpu=3.0, waiting=0.0)  # a worker whose library runs 3 threads
    accounting.track_process("Main__A#0", lambda: 7, lambda: clock.monotonic_ns() / 1e9)
    for _ in range(20):
        clock.advance(0.25)
        accounting.sample()
    split = accounting.split(["Main__A#0"])
    assert split is not None
    assert split.on_cpu == pytest.approx(3.0)
    assert split.on_cpu_s == pytest.approx(split.window_s * 3.0)
    again = CpuSplit.from_dict(split.to_dict())
    assert again == split


def test_without_debugging_a_threaded_pipeline_reads_on_its_own(
    clock: FakeClock, source: FakeCpuSource
) -> None:
    # The shares are of the last 5 s even when snapshots are far apart.
    source.set_rates(WORK, on_cpu=1.0, waiting=0.0)
    source.set_rates(PASS, on_cpu=0.0, waiting=0.0)
    with Pipeline(clock=clock, cpu_source=source) as pipeline:
        pipeline.add(Advance(clock, 0.25), "Work").add(lambda x: x, "Pass").parallelize()
        results = pipeline.results()
        for item in range(40):  # 10 s busy on a CPU
            pipeline.forward(item)
            assert next(results) == item
        source.set_rates(WORK, on_cpu=0.0, waiting=0.0)
        accounting = pipeline._runtime.cpu  # no public probe of its readings
        for _ in range(24):  # then 6 s idle, read by the pipeline's own thread
            clock.advance(0.25)
            assert holds_within(lambda: accounting.last_reading_ns == clock.monotonic_ns())
        snapshot = pipeline.snapshot()
    work = snapshot.stage(WORK).cpu
    assert work is not None
    assert work.window_s <= 5.0 + 1e-9
    assert work.on_cpu < 0.2, work


def test_a_blocked_stage_beside_a_spinning_one_in_a_one_core_process_names_the_lock_holder() -> (
    None
):
    nap = _stage("MainPipeline__Nap", busy=1.0, on_cpu=0.01, waiting=0.01)
    spin = replace(
        _stage("MainPipeline__Spin", busy=0.97, on_cpu=0.97, waiting=0.0),
        latency=replace(nap.latency, samples=(0.019,) * 100),  # a little less busy
    )
    machine = MachineLoad(cores=2, window_s=5.0, cpu_busy=0.5, load1=0.6, process_cores=1.0)
    snapshot = PipelineSnapshot(
        pipeline="MainPipeline",
        latency=nap.latency,
        stages=(nap, spin),
        taken_ns=5_955_000_000,
        mode="parallel",
        cpu_count=2,
        cpu_load=1.0,
        machine=machine,
    )
    text = diagnose_snapshot(snapshot).report()
    assert "holds the pipeline back (blocked)" in text
    assert (
        "MainPipeline__Spin is on a CPU 97% of its time in this process, which keeps about one "
        "core busy: MainPipeline__Nap may be waiting for the interpreter lock" in text
    )
    parallel = replace(snapshot, machine=replace(machine, process_cores=1.9))
    assert "interpreter lock MainPipeline__Spin holds" not in diagnose_snapshot(parallel).report()
