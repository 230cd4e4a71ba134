"""What holds a pipeline back, and why: ``pipeline.diagnose()``.

One verdict, with its evidence, from one snapshot:

- **source failed**: the pipeline's source raised; its input ended there;
- **stalled**: no item completed for ``stall_after`` seconds while items are inside;
- **failing**: a stage fails a share of its items;
- **dropping**: items are lost to an overflow policy or an unread result buffer;
- **stage-bound**: a stage is busy nearly all the time, or (with debugging
  on) its input queue is full most of the time: the stages before it wait to
  hand items over, however busy it looks on a shared machine;
- **source-bound**: the pipeline keeps up; its input comes slower than the
  slowest stage could take it (with the headroom);
- **not enough data yet**.

``busy`` is processing time over wall time in the recent window (a stage's
mean processing time times its rate over the last 5 s), bounded to 0..100%.

Where the scheduler's accounting was read (``StageSnapshot.cpu``), a stage
that sets the pace is also said to be one of :data:`STAGE_KINDS`:
**compute-bound** (on a CPU most of its busy time), **CPU-starved** (waiting
for a CPU at least :data:`STARVED_SHARE` of it: the machine is
oversubscribed) or **blocked** (sleeping: I/O, a lock, the interpreter lock).
Idle cores are the whole machine's (every process), and replicas are
suggested only where they are idle.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from framescope.pipeline.model.cpu import CpuSplit
from framescope.pipeline.model.snapshot import PipelineSnapshot, StageSnapshot
from framescope.pipeline.views.advice import (
    BLOCKED,
    COMPUTE_BOUND,
    CPU_STARVED,
    STAGE_KINDS,
    STARVED_SHARE,
    about_one_core,
    batch_advice,
    kind_line,
    machine_line,
    measured_gains,
    replica_balance,
    replica_suggestion,
    stage_kind,
)

__all__ = [
    "BLOCKED",
    "COMPUTE_BOUND",
    "CPU_STARVED",
    "LOSS_COUNTERS",
    "STAGE_KINDS",
    "STARVED_SHARE",
    "VERDICTS",
    "Diagnosis",
    "StageLoad",
    "diagnose_snapshot",
    "stage_kind",
    "stalled",
]

#: The pipeline counters a diagnosis reports as losses.
LOSS_COUNTERS = ("rejected", "dropped", "failed", "results_dropped", "discarded", "errors_dropped")
#: Every verdict a diagnosis can give.
VERDICTS = (
    "source failed",
    "stalled",
    "failing",
    "dropping",
    "stage-bound",
    "source-bound",
    "not enough data",
)

BUSY_BOUND = 0.9  # a stage this busy (or more) sets the pace

SHARE_REPORTED = 0.01  # failures or drops of at least 1% of the items are a verdict
_HEADLINE = {
    "source failed": "Source failed",
    "stalled": "Stalled",
    "failing": "Failing",
    "dropping": "Dropping",
    "stage-bound": "Stage-bound",
    "source-bound": "Source-bound",
    "not enough data": "Not enough data yet",
}


@dataclass(frozen=True, slots=True)
class StageLoad:
    """How loaded one stage is over the recent window.

    ``busy`` is the share of wall time it spends processing (0 to 1): its mean
    processing time times its rate over the last 5 s (for a stage with
    ``replicas``, divided by their number: the share of its replicas' time).
    ``cpu`` is where its threads' time went (None: not measured) and
    ``kind`` what its busy time is mostly spent on (one of
    :data:`STAGE_KINDS`; None when unknown or the stage is hardly busy).
    """

    node_id: str
    busy: float
    mean_latency_s: float
    throughput_per_s: float
    replicas: int = 1
    cpu: CpuSplit | None = None
    kind: str | None = None
    executor: str | None = None


@dataclass(frozen=True, slots=True)
class Diagnosis:
    """The verdict (one of :data:`VERDICTS`), its evidence, latency tails and losses.

    ``bottleneck`` names the stage that sets the pace when the verdict is
    stage-bound, the stage that holds the items when it is stalled (else the
    busiest stage, or None without data);
    ``suggestion`` says what would help, where the numbers support it.
    ``batching`` says, for each batched stage whose batches mostly leave at
    their timeout or nearly always full, what batch size may fit better
    (see :func:`~framescope.pipeline.views.advice.batch_advice`).
    """

    bottleneck: str | None
    reasons: tuple[str, ...]
    stages: tuple[StageLoad, ...]
    latency_p50_s: float
    latency_p90_s: float
    latency_p99_s: float
    items: int
    losses: dict[str, int] = field(default_factory=dict)
    verdict: str = "not enough data"
    headline: str = ""
    suggestion: str | None = None
    batching: tuple[str, ...] = ()

    def report(self) -> str:
        """A readable multi-line report: the verdict first, then the evidence and figures."""
        lines = [f"{_HEADLINE[self.verdict]}: {self.headline}"]
        lines.extend(f"  - {reason}" for reason in self.reasons)
        if self.suggestion:
            lines.append(f"  Suggestion: {self.suggestion}")
        lines.extend(f"  Batching: {advice}" for advice in self.batching)
        if self.items:
            lines.append(
                f"End-to-end latency over the last {self.items} items: "
                f"p50 {self.latency_p50_s * 1e3:.2f} ms, p90 {self.latency_p90_s * 1e3:.2f} ms, "
                f"p99 {self.latency_p99_s * 1e3:.2f} ms"
            )
        if self.stages:
            lines.extend(self._stage_table())
        losses = ", ".join(f"{name} {count}" for name, count in self.losses.items())
        lines.append(f"Losses: {losses or 'none'}")
        return "\n".join(lines)

    def _stage_table(self) -> list[str]:
        """Per stage: busy, where its time went (on CPU / waiting / blocked), mean, rate."""
        width = max(len(s.node_id) for s in self.stages)
        lines = [
            f"  {'stage':<{width}}  {'busy':>5}  {'on CPU':>6}  {'wait':>5}  {'blkd':>5}"
            f"  {'mean':>9}  {'rate':>9}"
        ]
        for stage in self.stages:
            marker = " <" if stage.node_id == self.bottleneck else ""
            mean_ms = stage.mean_latency_s * 1e3
            cpu = stage.cpu
            shares = [None, None, None] if cpu is None else [cpu.on_cpu, cpu.waiting, cpu.blocked]
            on_cpu, waiting, blocked = (
                "-" if cpu is None else "?" if share is None else f"{share:.0%}" for share in shares
            )
            lines.append(
                f"  {stage.node_id:<{width}}  {stage.busy:>5.0%}  {on_cpu:>6}  {waiting:>5}  "
                f"{blocked:>5}  {mean_ms:>6.2f} ms  {stage.throughput_per_s:>7.1f}/s{marker}"
            )
        return lines

    def __str__(self) -> str:
        return self.report()

    def __rich__(self) -> str:
        """The report, for ``rich.print`` (plain text)."""
        return self.report()


def _load(stage: StageSnapshot, now_ns: int) -> StageLoad:
    stats, replicas = stage.latency, stage.replicas
    mean = stats.recent_mean()
    rate = stats.rate(now_ns)
    busy = max(0.0, min(1.0, mean * rate / replicas))
    return StageLoad(
        stage.key,
        busy,
        mean,
        rate,
        replicas,
        cpu=stage.cpu,
        kind=stage_kind(stage.cpu),
        executor=stage.executor,
    )


def diagnose_snapshot(
    snapshot: PipelineSnapshot,
    *,
    stall_after: float = 5.0,
    baseline: PipelineSnapshot | None = None,
) -> Diagnosis:
    """The diagnosis of one pipeline snapshot (what ``Pipeline.diagnose()`` returns).

    ``stall_after``: seconds without a completed item, while items are inside,
    that make the verdict "stalled". ``baseline``: a snapshot of an earlier
    run of the same stages; a stage whose replica count differs there gets
    its measured gain (its rate now against its rate then).
    """
    if baseline is not None and not isinstance(baseline, PipelineSnapshot):
        raise TypeError(f"baseline must be a PipelineSnapshot, got {type(baseline).__name__}")
    now = snapshot.taken_ns
    working = snapshot.working_stages()
    loads = tuple(_load(stage, now) for stage in working)
    latency = snapshot.latency
    verdict, headline, reasons, suggestion, bottleneck = _verdict(snapshot, loads, stall_after)
    if baseline is not None:
        reasons = reasons + measured_gains(snapshot, baseline)
    return Diagnosis(
        bottleneck=bottleneck,
        reasons=tuple(reasons),
        stages=loads,
        latency_p50_s=latency.percentile(50),
        latency_p90_s=latency.percentile(90),
        latency_p99_s=latency.percentile(99),
        items=len(latency.samples),
        losses={key: snapshot.count(key) for key in LOSS_COUNTERS if snapshot.count(key)},
        verdict=verdict,
        headline=headline,
        suggestion=suggestion,
        batching=_batching(snapshot, loads),
    )


def _batching(snapshot: PipelineSnapshot, loads: tuple[StageLoad, ...]) -> tuple[str, ...]:
    """The batched stages' advice (see :func:`batch_advice`), each judged with its busy share."""
    busy = {load.node_id: load.busy for load in loads}
    advice = (batch_advice(stage, busy.get(stage.key)) for stage in snapshot.stages)
    return tuple(line for line in advice if line is not None)


Verdict = tuple[str, str, list[str], "str | None", "str | None"]


def _verdict(
    snapshot: PipelineSnapshot, loads: tuple[StageLoad, ...], stall_after: float
) -> Verdict:
    busiest = max(loads, key=lambda load: (load.busy, load.mean_latency_s), default=None)
    top = busiest.node_id if busiest is not None and busiest.mean_latency_s > 0 else None
    if snapshot.source_error is not None:
        return "source failed", *_source_failed(snapshot), None, top
    stall = stalled(snapshot, stall_after)
    if stall is not None:
        return "stalled", stall[0], stall[1], None, stall[2] or top
    forwarded = snapshot.count("forwarded")
    failing = _failing(snapshot, forwarded)
    if failing is not None:
        return "failing", failing[0], failing[1], None, top
    dropping = _dropping(snapshot, forwarded)
    if dropping is not None:
        return "dropping", dropping[0], dropping[1], dropping[2], top
    if busiest is None or snapshot.latency.count < 2 or busiest.mean_latency_s <= 0:
        return (
            "not enough data",
            "fewer than two items have gone through",
            [],
            None,
            None,
        )
    return _pace(snapshot, loads, busiest)


def _source_failed(snapshot: PipelineSnapshot) -> tuple[str, list[str]]:
    reasons = [
        f"the input ended when the source raised, after {snapshot.count('forwarded')} "
        f"item(s) went in ({snapshot.count('completed')} completed)"
    ]
    unread = snapshot.count("results_dropped")
    if unread:
        reasons.append(_unread(unread))
    return f"{snapshot.source_error}", reasons


def _unread(count: int) -> str:
    return f"{count} results dropped unread: read results() or pass results_size=0"


def stalled(
    snapshot: PipelineSnapshot, stall_after: float = 5.0
) -> tuple[str, list[str], str | None] | None:
    """The "stalled" verdict of ``snapshot`` alone: (headline, reasons, stage) or None.

    Stalled: items are inside the pipeline and none completed for
    ``stall_after`` seconds. ``stage`` is the last stage holding items
    (None where the snapshot cannot tell). The diagnosis and the health
    check (:mod:`framescope.pipeline.views.health`) both judge with it.
    """
    inside = snapshot.count("in_flight")
    last = snapshot.latency.last_event_ns
    if inside <= 0 or snapshot.mode is None:
        return None
    started = min(
        (s.latency.first_event_ns for s in snapshot.stages if s.latency.first_event_ns),
        default=None,
    )
    since = last if last is not None else started
    if since is None:
        return None
    idle = (snapshot.taken_ns - since) / 1e9
    if idle < stall_after:
        return None
    reasons = [f"{inside} item(s) are inside the pipeline and none has come out for {idle:.1f} s"]
    stuck = _where_stuck(snapshot)
    if stuck is not None:
        reasons.append(stuck[1])
    return f"no item completed for {idle:.1f} s", reasons, stuck[0] if stuck else None


def _where_stuck(snapshot: PipelineSnapshot) -> tuple[str, str] | None:
    """The last stage (in order) holding items, working on one or with a queue: (key, why)."""
    for stage in reversed(snapshot.working_stages()):
        phases = [stage.phase] + [replica.phase for replica in snapshot.replicas_of(stage.key)]
        if "PROCESSING" in phases:
            return stage.key, f"{stage.key} is still processing its item"
        if stage.queue_depth:
            return stage.key, f"{stage.key} has {stage.queue_depth} item(s) waiting and takes none"
    return None


def _failing(snapshot: PipelineSnapshot, forwarded: int) -> tuple[str, list[str]] | None:
    failed = snapshot.count("failed")
    if not failed or not forwarded or failed / forwarded < SHARE_REPORTED:
        return None
    reasons = [
        f"{stage.key} failed {stage.failures} of its items"
        for stage in snapshot.stages
        if stage.failures
    ]
    return f"{failed} of {forwarded} items failed ({failed / forwarded:.0%})", reasons


def _dropping(
    snapshot: PipelineSnapshot, forwarded: int
) -> tuple[str, list[str], str | None] | None:
    where = {
        "dropped_oldest": "at the input: the oldest queued items made room for new ones",
        "dropped_newest": "at the input: new items found the queue full",
        "rejected": "at the input: forward() found the queue full and gave up",
        "results_dropped": "at the output: results nobody read were dropped",
    }
    offered = forwarded + snapshot.count("dropped_newest") + snapshot.count("rejected")
    lost = {key: snapshot.count(key) for key in where if snapshot.count(key)}
    total = sum(lost.values())
    if not total or not offered or total / offered < SHARE_REPORTED:
        return None
    reasons = [
        _unread(count) if key == "results_dropped" else f"{count} {where[key]}"
        for key, count in lost.items()
    ]
    suggestion = None
    if "results_dropped" in lost:
        suggestion = (
            "read results() as fast as they come, or pass results_size=0 when the last "
            "stage is the output (results_size and results_bytes bound what waits)"
        )
    elif lost:
        suggestion = "the stages cannot take items as fast as they come: see the busiest stage"
    return f"{total} of {offered} items were lost ({total / offered:.0%})", reasons, suggestion


def _pace(snapshot: PipelineSnapshot, loads: tuple[StageLoad, ...], busiest: StageLoad) -> Verdict:
    """Stage-bound or source-bound, from how busy the stages are."""
    others = [load for load in loads if load is not busiest]
    runner_up = max((load.busy for load in others), default=0.0)
    serial = snapshot.mode != "parallel"
    # Serial stages take turns in one thread: together they share its time.
    pace = sum(load.busy for load in loads) if serial else busiest.busy
    rate = snapshot.latency.rate(snapshot.taken_ns)
    name = busiest.node_id
    if min(1.0, pace) >= BUSY_BOUND or (not serial and _input_full(snapshot, name)):
        reasons = [
            f"{name} is busy {busiest.busy:.0%} of the time, the most of any stage "
            f"(next: {runner_up:.0%}); mean processing {busiest.mean_latency_s * 1e3:.2f} ms"
        ]
        if serial:
            reasons.append(
                f"the stages run in turn in one thread, busy {min(1.0, pace):.0%} in all"
            )
        reasons.extend(_queue_evidence(snapshot, name))
        reasons.extend(_cpu_evidence(snapshot, busiest))
        reasons.extend(replica_balance(snapshot, loads))
        suggestion = None
        if not serial:
            suggestion = replica_suggestion(snapshot, loads, busiest, runner_up)
        kind = f" ({busiest.kind})" if busiest.kind is not None else ""
        return "stage-bound", f"{name} holds the pipeline back{kind}", reasons, suggestion, name
    headroom = 1 / pace if pace > 0 else float("inf")
    reasons = [
        f"input arrives at {rate:.1f} items/s and the busiest stage, {name}, "
        f"is busy {busiest.busy:.0%} of the time",
        f"the stages could take about {headroom:.1f}x the current input rate",
        *replica_balance(snapshot, loads),
    ]
    return "source-bound", "the pipeline keeps up with its input", reasons, None, name


def _cpu_evidence(snapshot: PipelineSnapshot, busiest: StageLoad) -> list[str]:
    """Where the pace-setting stage's time goes, and how busy the machine is."""
    lines = [line for line in (kind_line(busiest), machine_line(snapshot)) if line]
    if busiest.kind == CPU_STARVED:
        lines.append(
            "it waits for a CPU: the machine is oversubscribed; replicas would wait too, and "
            "gain only the CPU time they take from the other work here"
        )
    elif busiest.kind == BLOCKED:
        lines.append(
            "it sleeps inside its calls (I/O, a device, a lock or the interpreter lock): "
            "thread replicas help a stage waiting on I/O, process replicas one waiting "
            "for the interpreter lock"
        )
        lines.extend(_lock_holders(snapshot, busiest))
    return lines


def _lock_holders(snapshot: PipelineSnapshot, blocked: StageLoad) -> list[str]:
    """Stages of this process on a CPU most of their time: who may hold the interpreter lock."""
    if not about_one_core(snapshot):
        return []  # threads ran in parallel: the lock is not what they wait for
    holders = [
        stage
        for stage in snapshot.working_stages()
        if stage.key != blocked.node_id
        and stage.executor in (None, "thread")
        and stage.cpu is not None
        and stage.cpu.on_cpu >= 0.5
    ]
    return [
        f"{stage.key} is on a CPU {stage.cpu.on_cpu:.0%} of its time in this process, which "  # type: ignore[union-attr]
        f"keeps about one core busy: {blocked.node_id} may be waiting for the interpreter "
        f"lock {stage.key} holds (a process replica of either would free it)"
        for stage in holders
    ]


def _input_queue(snapshot: PipelineSnapshot, stage: str) -> tuple[int, int] | None:
    """The median items recently queued at ``stage``'s input and the queue's capacity."""
    if not snapshot.debug:
        return None
    node = snapshot.state.node_states.get(stage)
    port = node.input_states.get("in") if node is not None else None
    capacity = {s.key: s.queue_capacity for s in snapshot.stages}.get(stage)
    if port is None or not capacity:
        return None
    return int(port.queue_stats.median_queued_recent), int(capacity)


def _input_full(snapshot: PipelineSnapshot, stage: str) -> bool:
    """Whether ``stage``'s input queue is full most of the time (back-pressure, measured)."""
    queued = _input_queue(snapshot, stage)
    return queued is not None and queued[0] >= queued[1]


def _queue_evidence(snapshot: PipelineSnapshot, bottleneck: str) -> list[str]:
    evidence: list[str] = []
    if not snapshot.debug:
        return evidence
    state = snapshot.state.node_states
    stages = [stage.key for stage in snapshot.working_stages()]
    queued = _input_queue(snapshot, bottleneck)
    if queued is not None and queued[0] >= queued[1]:
        evidence.append(
            f"its input queue is full most of the time (median {queued[0]} of {queued[1]} "
            "queued): the stages before it wait to hand items over"
        )
    if bottleneck in stages:
        position = stages.index(bottleneck)
        if position + 1 < len(stages):
            follower = state.get(stages[position + 1])
            if follower is not None and follower.main_loop_timing.is_valid():
                loop = follower.main_loop_timing.duration_stats.average_micros_recent
                waiting = follower.inputs_get_timing.duration_stats.average_micros_recent
                if loop > 0 and waiting / loop >= 0.5:
                    share = min(1.0, waiting / loop)  # the two windows differ a little
                    evidence.append(
                        f"{stages[position + 1]} waits for its input {share:.0%} of its loop time"
                    )
    return evidence
