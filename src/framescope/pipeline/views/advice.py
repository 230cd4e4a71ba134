"""What the diagnosis says about cores and replicas: where a stage's time goes, the machine's
idle cores, how much the replicas of a stage add, and when more would help; and whether a
batched stage's batch fits the rate its items come at.

Everything about cores comes from measured time: a thread's time on a CPU and
waiting for one (``StageSnapshot.cpu``) and the whole machine's CPU use
(``PipelineSnapshot.machine``), never from busy time alone, which counts the
time a thread waited for a CPU as work.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from fractions import Fraction
from typing import Protocol

from framescope.pipeline.model.batches import BatchSnapshot
from framescope.pipeline.model.cpu import CpuSplit
from framescope.pipeline.model.snapshot import PipelineSnapshot, StageSnapshot

__all__ = [
    "BATCHES_JUDGED",
    "BATCH_BUSY",
    "BLOCKED",
    "COMPUTE_BOUND",
    "CPU_STARVED",
    "FULL_SHARE",
    "IDLE_CORE",
    "INTERPRETER_BUSY",
    "SLOW_REPLICA",
    "STAGE_KINDS",
    "STARVED_SHARE",
    "TIMEOUT_SHARE",
    "about_one_core",
    "batch_advice",
    "idle_cores",
    "kind_line",
    "machine_line",
    "measured_gains",
    "replica_balance",
    "replica_gain",
    "replica_suggestion",
    "stage_kind",
    "starved_advice",
]

SLOW_REPLICA = 1.5
"""A replica whose mean processing time is this many times the others' median is slow."""
IDLE_CORE = 0.75
"""A core idle this share of the time (or more) counts as free for one more replica."""
INTERPRETER_BUSY = (0.9, 1.25)
"""A process keeping about one core busy (within these bounds) may be held by its interpreter
lock: a thread replica's blocked time then is not counted as work one replica alone would do.
A process busier than that runs threads in parallel: the lock is not what holds them."""

COMPUTE_BOUND = "compute-bound"
CPU_STARVED = "CPU-starved"
BLOCKED = "blocked"
#: What a busy stage's time is mostly spent on.
STAGE_KINDS = (COMPUTE_BOUND, CPU_STARVED, BLOCKED)
#: A stage waiting for a CPU this share of its busy time (or more) is CPU-starved.
STARVED_SHARE = 0.3
_MIN_BUSY_FOR_KIND = 0.05  # below this busy share, the split says too little

#: A batched stage is judged once this many batches left it full or at their timeout.
BATCHES_JUDGED = 10
#: More than this share of those batches left at their timeout: the batch is too big for
#: the rate items come at (a smaller batch, or a longer timeout).
TIMEOUT_SHARE = Fraction(1, 2)
#: At least this share left full: a bigger batch may pay.
FULL_SHARE = Fraction(19, 20)
BATCH_BUSY = 0.9  # the busy share from which full batches mean items wait for the stage

_GAIN_SHOWN = 1.2  # below this expected gain, suggest nothing
_PACE = 0.9  # replicas this busy on average are the pace (the stage-bound share)


class StageLoad(Protocol):
    """How loaded a stage is (the diagnosis's ``StageLoad``)."""

    @property
    def node_id(self) -> str: ...
    @property
    def busy(self) -> float: ...
    @property
    def mean_latency_s(self) -> float: ...
    @property
    def throughput_per_s(self) -> float: ...
    @property
    def replicas(self) -> int: ...
    @property
    def cpu(self) -> CpuSplit | None: ...
    @property
    def kind(self) -> str | None: ...
    @property
    def executor(self) -> str | None: ...


def stage_kind(cpu: CpuSplit | None) -> str | None:
    """What a stage's busy time is mostly spent on, from its split (None: unknown or idle).

    Waiting for a CPU :data:`STARVED_SHARE` of the busy time is CPU-starved;
    otherwise the larger of on-CPU and blocked decides. Where waiting is not
    reported, only a stage on a CPU most of its busy time gets a kind.
    """
    if cpu is None or cpu.busy < _MIN_BUSY_FOR_KIND:
        return None
    on_cpu = cpu.share_of_busy(cpu.on_cpu) or 0.0
    waiting, blocked = cpu.share_of_busy(cpu.waiting), cpu.share_of_busy(cpu.blocked)
    if waiting is None or blocked is None:
        return COMPUTE_BOUND if on_cpu >= 0.5 else None
    if waiting >= STARVED_SHARE:
        return CPU_STARVED
    return COMPUTE_BOUND if on_cpu >= blocked else BLOCKED


def idle_cores(snapshot: PipelineSnapshot) -> tuple[float, bool] | None:
    """The machine's idle cores and whether every process was counted (None: unknown).

    From the machine-wide CPU use where it was read; else from this process's
    own use (other processes unknown: the second value is False).
    """
    machine = snapshot.machine
    if machine is not None and machine.idle_cores is not None:
        return machine.idle_cores, True
    cores, used = snapshot.cpu_count, snapshot.cpu_load
    if not cores or used is None:
        return None
    return max(0.0, cores - used), False


def machine_line(snapshot: PipelineSnapshot) -> str | None:
    """The machine's cores, how busy they are (every process), the load, this process's share."""
    machine = snapshot.machine
    if machine is None or machine.cores is None:
        return None
    parts = [f"the machine's {machine.cores} cores are"]
    if machine.cpu_busy is not None:
        parts.append(f"{machine.cpu_busy:.0%} busy")
    else:
        parts.append("busy to an unknown degree (not reported here)")
    if machine.load1 is not None:
        parts.append(f"(load average {machine.load1:.1f})")
    line = " ".join(parts)
    if machine.process_cores is not None:
        line += f"; this process keeps {machine.process_cores:.1f} of them busy"
    return line


def _shares(cpu: CpuSplit) -> str:
    on_cpu = cpu.share_of_busy(cpu.on_cpu) or 0.0
    waiting, blocked = cpu.share_of_busy(cpu.waiting), cpu.share_of_busy(cpu.blocked)
    if waiting is None or blocked is None:
        return f"on a CPU {on_cpu:.0%} of its busy time (waiting and blocked not reported here)"
    return (
        f"on a CPU {on_cpu:.0%} of its busy time, waiting for a CPU {waiting:.0%}, "
        f"blocked {blocked:.0%}"
    )


def kind_line(load: StageLoad) -> str | None:
    """What the stage's busy time is spent on, as a reason line (None: not measured)."""
    cpu = load.cpu
    if cpu is None:
        return None
    if load.kind is None:
        return f"{load.node_id} is {_shares(cpu)}"
    return f"{load.node_id} is {load.kind}: {_shares(cpu)}"


def starved_advice(snapshot: PipelineSnapshot, load: StageLoad) -> str:
    """What to do for a stage that waits for a CPU: free cores; replicas would wait too."""
    machine = machine_line(snapshot) or "the machine's cores are busy"
    return (
        f"{load.node_id} waits for a CPU, not for work: {machine}. More replicas would "
        "wait too (they gain only the CPU time they take from the other work here); free "
        "cores (stop other work on this machine, or move it) or make the stage cheaper"
    )


def replica_gain(snapshot: PipelineSnapshot, load: StageLoad) -> tuple[float, str] | None:
    """How many times what one replica would do here the replicas of ``load`` do, and the basis.

    Each item costs the same time on a CPU however many replicas run, so the
    gain is the replicas' on-CPU share together over the share one replica
    alone would get. That one is on a CPU whenever it is runnable and a CPU
    is free: the chance of that comes from the replicas' own time on a CPU
    against their time waiting for one, with the machine's runnable threads
    less the other replicas' and less the work the other stages would not
    do at the lower rate. A thread replica's blocked time counts as time one
    replica alone would run when the process keeps about one core busy and
    the replicas hardly wait for a CPU (the interpreter lock may hold them),
    and when the stage is mostly on a CPU or waiting for one (the replicas
    block on each other: the lock held by one the system took off its CPU).
    Where waiting is not reported, the gain is the replicas' cores on a CPU
    (what one replica on a free core would need). None without a split.
    """
    cpu = load.cpu
    if cpu is None:
        return None
    together = cpu.cores_on_cpu
    if cpu.waiting is None or cpu.blocked is None or cpu.busy <= 0:
        return together, "their time on a CPU (waiting for one not reported here)"
    lock = _lock_may_hold(snapshot, load, cpu)
    # Thread replicas of a stage mostly on a CPU or waiting for one block on each other
    # (the interpreter lock held by a replica the system took off its CPU): one alone
    # would not.
    contention = load.executor in (None, "thread") and load.kind in (COMPUTE_BOUND, CPU_STARVED)
    alone = _one_replica_on_cpu(snapshot, load, cpu, lock or contention)
    if alone <= 0:
        return None
    basis = "their time on a CPU and waiting for one"
    if lock:
        basis += " (blocked time taken as the interpreter lock's: the process keeps one core busy)"
    elif contention and (cpu.blocked or 0.0) >= 0.01:
        basis += " (their blocked time taken as contention one replica alone would not have)"
    return together / alone, basis


def _one_replica_on_cpu(
    snapshot: PipelineSnapshot, load: StageLoad, cpu: CpuSplit, lock: bool
) -> float:
    """The share of its time one replica alone would spend on a CPU (see :func:`replica_gain`)."""
    runnable = cpu.on_cpu + (cpu.waiting or 0.0)  # each replica's, on a CPU or waiting
    blocked = 0.0 if lock else min(1.0, (cpu.blocked or 0.0) / cpu.busy)
    # Setting the pace alone, it is runnable whenever it is not blocked (a worker process
    # running several threads: as much as each replica is now).
    alone_runnable = max(runnable, 1.0 - blocked)
    chance = cpu.on_cpu / runnable if runnable > 0 else 1.0  # on a CPU when runnable
    cores = snapshot.machine.cores if snapshot.machine is not None else None
    if chance >= 0.98 or not cores:
        return alone_runnable * min(1.0, chance)
    machine_runnable = cores / chance  # threads runnable on the machine, on average
    together = cpu.cores_on_cpu
    # The rest of this process (other stages, the thread feeding the pipeline) does work
    # per item too: what it keeps on a CPU, runnable at the same chance, or the stages' own.
    process = snapshot.machine.process_cores if snapshot.machine is not None else None
    others = _other_stages_runnable(snapshot, load.node_id)
    if process is not None:
        local = load.executor in (None, "thread")  # else its workers are other processes
        others = max(others, (process - (together if local else 0.0)) / chance)
    alone = alone_runnable * chance
    for _ in range(8):  # the other stages' work falls with the rate: a few rounds settle it
        gain = together / max(alone, 1e-9)
        left = machine_runnable - runnable * cpu.threads + alone_runnable
        left -= others * max(0.0, 1.0 - 1.0 / gain)
        alone = alone_runnable * min(1.0, cores / max(left, 1e-9))
    return alone


def _other_stages_runnable(snapshot: PipelineSnapshot, key: str) -> float:
    """Threads of the pipeline's other stages runnable on average (on a CPU or waiting)."""
    total = 0.0
    for stage in snapshot.working_stages():
        split = stage.cpu
        if stage.key == key or split is None or split.waiting is None:
            continue
        total += (split.on_cpu + split.waiting) * split.threads
    return total


def replica_balance(snapshot: PipelineSnapshot, loads: Sequence[StageLoad]) -> list[str]:
    """Per replicated stage: what its replicas add over one, each one's share, the slow ones."""
    from statistics import median  # noqa: PLC0415 - loaded on first use (cold start)

    lines = []
    for load in loads:
        replicas = snapshot.replicas_of(load.node_id)
        if not replicas:
            continue
        means = [r.latency.recent_mean() for r in replicas]
        parts = [_replica_part(snapshot, r, m) for r, m in zip(replicas, means, strict=True)]
        line = f"{load.node_id} runs on {len(replicas)} replicas"
        if load.throughput_per_s > 0:
            line += f", together {load.throughput_per_s:.1f}/s"
            line += _gain_text(snapshot, load)
        lines.append(f"{line} ({'; '.join(parts)})")
        for replica, mean in zip(replicas, means, strict=True):
            others = [m for other, m in zip(replicas, means, strict=True) if other is not replica]
            typical = median(others) if others else 0.0
            if typical > 0 and mean >= SLOW_REPLICA * typical:
                lines.append(
                    f"{replica.key} is slow: {mean * 1e3:.1f} ms per item against "
                    f"{typical * 1e3:.1f} ms for the other replicas"
                )
    return lines


def _replica_part(snapshot: PipelineSnapshot, replica: StageSnapshot, mean: float) -> str:
    busy = min(1.0, mean * replica.latency.rate(snapshot.taken_ns))
    cpu = replica.cpu
    split = ""
    if cpu is not None:
        split = f" ({cpu.on_cpu:.0%} on a CPU"
        split += f", {cpu.waiting:.0%} waiting)" if cpu.waiting is not None else ")"
    return f"#{replica.replica_index} {busy:.0%} busy{split}, {mean * 1e3:.1f} ms"


def _gain_text(snapshot: PipelineSnapshot, load: StageLoad) -> str:
    gain = replica_gain(snapshot, load)
    if gain is None:
        return " (where their time went was not measured: no gain is claimed)"
    value, basis = gain
    if load.busy < _PACE:
        return (
            f"; the input keeps them {load.busy:.0%} busy, so one replica could do about as "
            f"much (from {basis}: {value:.2f}x one replica's worth)"
        )
    text = f": about {value:.2f}x what one replica would do here, from {basis}"
    cpu = load.cpu
    if cpu is not None and cpu.waiting is not None and cpu.waiting * cpu.threads >= 0.05:
        text += f"; together they wait for a CPU {cpu.waiting * cpu.threads:.2f} s of each second"
    return text


def measured_gains(snapshot: PipelineSnapshot, baseline: PipelineSnapshot) -> list[str]:
    """Per stage whose replica count differs in ``baseline``: its rate now against then."""
    before = {stage.key: stage for stage in baseline.stages}
    lines = []
    for stage in snapshot.working_stages():
        earlier = before.get(stage.key)
        if earlier is None or earlier.replicas == stage.replicas:
            continue
        now = stage.latency.rate(snapshot.taken_ns)
        then = earlier.latency.rate(baseline.taken_ns)
        if now <= 0 or then <= 0:
            continue
        lines.append(
            f"measured: {stage.key} does {now:.1f}/s on {stage.replicas} replica"
            f"{'s' if stage.replicas > 1 else ''} against {then:.1f}/s on {earlier.replicas} "
            f"in the baseline: {now / then:.2f}x"
        )
    return lines


def replica_suggestion(
    snapshot: PipelineSnapshot, loads: Sequence[StageLoad], busiest: StageLoad, runner_up: float
) -> str | None:
    """More replicas of the stage that sets the pace, only where the machine has idle cores.

    The gain is bounded by the next busiest stage's limit and by the idle
    cores of the whole machine: each added replica needs the cores one
    replica keeps on a CPU (a whole core where that was not measured). A
    CPU-starved stage gets no replicas: they would wait for a CPU too.
    """
    del loads  # the busiest stage and the runner-up's share say what is needed
    name = busiest.node_id
    factor = min(busiest.busy / runner_up, 10.0) if runner_up > 0 else 10.0
    if factor < _GAIN_SHOWN:
        return None
    if busiest.kind == CPU_STARVED:
        return starved_advice(snapshot, busiest)
    limit = (
        f"the next busiest stage ({runner_up:.0%} busy)"
        if runner_up >= 0.01
        else "another part of the pipeline"
    )
    free = idle_cores(snapshot)
    if free is not None:
        advice = _more_replicas(snapshot, busiest, factor, free, limit)
        if advice is not None:
            return advice
    busy = _busy_cores(snapshot, free)
    if runner_up <= 0:
        return f"{name} sets the pace; make it cheaper{busy}" if busy else None
    return (
        f"{name} sets the pace; making it faster could raise throughput about {factor:.1f}x "
        f"before {limit} limits it{busy}"
    )


def _busy_cores(snapshot: PipelineSnapshot, free: tuple[float, bool] | None) -> str:
    if free is None:
        return ""
    line = machine_line(snapshot)
    if free[0] >= IDLE_CORE or line is None:
        return ""
    return f"; more replicas would wait for a CPU: {line}"


def _more_replicas(
    snapshot: PipelineSnapshot, load: StageLoad, factor: float, free: tuple[float, bool], limit: str
) -> str | None:
    idle, whole_machine = free
    current = load.replicas
    need = _cores_per_replica(snapshot, load)
    # A replica whose share of a core is IDLE_CORE free counts as affordable.
    affordable = current + math.floor(idle / need + (1 - IDLE_CORE))
    wanted = max(current + 1, min(math.ceil(current * factor), affordable))
    gain = min(wanted / current, factor)
    if wanted > affordable or gain < _GAIN_SHOWN:
        return None
    where = "" if whole_machine else " (other processes' use unknown)"
    executor, condition = "", ""
    if _interpreter_bound(snapshot, load):
        executor = ", executor='process'"
        condition = (
            "if it waits for the interpreter lock (this process keeps about one core busy, "
            "as one interpreter can), "
        )
    return (
        f"{load.node_id} sets the pace on {current} replica{'s' if current > 1 else ''}; "
        f"{condition}add(..., replicas={wanted}{executor}) would raise throughput about "
        f"{gain:.1f}x before {limit} limits it (about {idle:.1f} of {snapshot.cpu_count} "
        f"cores are idle{where}; {_need_text(snapshot, load, need)})"
    )


def _need_text(snapshot: PipelineSnapshot, load: StageLoad, need: float) -> str:
    cpu = load.cpu
    if cpu is None:
        return "each replica taken to need a core: its time on a CPU was not measured"
    if _interpreter_bound(snapshot, load):  # freed from the interpreter lock, it would run
        return f"each replica would keep about {need:.2f} of a core busy"
    return f"each replica keeps {cpu.on_cpu:.2f} of a core on a CPU"


def _lock_may_hold(snapshot: PipelineSnapshot, load: StageLoad, cpu: CpuSplit) -> bool:
    """Thread replicas in a process keeping about one core busy that hardly wait for a CPU."""
    waiting = cpu.share_of_busy(cpu.waiting) or 0.0
    thread = load.executor in (None, "thread")
    return thread and about_one_core(snapshot) and waiting < STARVED_SHARE


def _interpreter_bound(snapshot: PipelineSnapshot, load: StageLoad) -> bool:
    """A blocked thread stage in a process that keeps about a core busy: the interpreter lock."""
    cpu = load.cpu
    return load.kind == BLOCKED and cpu is not None and _lock_may_hold(snapshot, load, cpu)


def about_one_core(snapshot: PipelineSnapshot) -> bool:
    """Whether the process keeps about one core busy, as one interpreter lock allows."""
    machine = snapshot.machine
    if machine is None or machine.process_cores is None:
        return False
    low, high = INTERPRETER_BUSY
    return low <= machine.process_cores <= high


def _cores_per_replica(snapshot: PipelineSnapshot, load: StageLoad) -> float:
    """The cores one more replica would keep busy: its on-CPU share (a core if unknown)."""
    cpu = load.cpu
    if cpu is None:
        return 1.0
    if _interpreter_bound(snapshot, load) and cpu.blocked is not None:
        return max(0.05, min(1.0, cpu.on_cpu + cpu.blocked))  # freed from the lock, it runs
    return max(0.05, cpu.on_cpu)  # a process replica's worker may keep several cores busy


def batch_advice(stage: StageSnapshot, busy: float | None = None) -> str | None:
    """Whether a batched stage's batches fit its items' rate: mostly timed out, or always full.

    Judged on the batches that left full or at their timeout (flushed ones,
    at the end of the input, say nothing of the rate), once there are
    :data:`BATCHES_JUDGED`: more than :data:`TIMEOUT_SHARE` timed out (items
    come too slowly to fill a batch within ``batch_timeout``), or at least
    :data:`FULL_SHARE` left full while the stage is busy at least
    :data:`BATCH_BUSY` of the time (``busy``: its share, see
    ``StageLoad.busy``): items wait for the stage, and more of them a call
    may pay. Full batches of a stage with time to spare only say that items
    come faster than a batch a ``batch_timeout``: a bigger batch would add
    waiting, not throughput. None otherwise, or for a stage not batched.
    """
    batch = stage.batch
    if batch is None:
        return None
    full, timed_out = batch.reason("full"), batch.reason("timeout")
    judged = full + timed_out
    if judged < BATCHES_JUDGED:
        return None
    timeout_ms = f"{batch.timeout_s * 1e3:g} ms"
    if timed_out > TIMEOUT_SHARE * judged:
        return (
            f"{stage.key}: {timed_out} of {judged} batches left at their {timeout_ms} timeout, "
            f"{batch.mean_size:.1f} items on average of {batch.size}: items come too slowly "
            f"to fill a batch in time; a smaller batch (about {_part_size(batch)}) "
            "or a longer batch_timeout would fill them"
        )
    if full >= FULL_SHARE * judged and busy is not None and busy >= BATCH_BUSY:
        return (
            f"{stage.key}: {full} of {judged} batches left full ({batch.size} items) before "
            f"their {timeout_ms} timeout: items wait for the stage; a bigger batch may pay "
            "(more items a call) where the stage has the memory for it"
        )
    return None


def _part_size(batch: BatchSnapshot) -> int:
    """The mean size of a stage's part-full batches (at least 1)."""
    parts = {size: n for size, n in batch.sizes.items() if size < batch.size}
    count = sum(parts.values())
    return max(1, round(sum(size * n for size, n in parts.items()) / count)) if count else 1
