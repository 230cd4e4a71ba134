"""What the diagnosis says about replicas: how balanced they are, and when more would help."""

from __future__ import annotations

import math
from collections.abc import Sequence
from statistics import median
from typing import Protocol

from framescope.pipeline.snapshot import PipelineSnapshot

__all__ = ["SLOW_REPLICA", "replica_balance", "replica_suggestion"]

SLOW_REPLICA = 1.5
"""A replica whose mean processing time is this many times the others' median is slow."""

_GAIN_SHOWN = 1.2  # below this expected gain, suggest nothing


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


def replica_balance(snapshot: PipelineSnapshot, loads: Sequence[StageLoad]) -> list[str]:
    """One line per replicated stage: its gain over one replica, each replica's share, slow ones."""
    lines = []
    now = snapshot.taken_ns
    for load in loads:
        replicas = snapshot.replicas_of(load.node_id)
        if not replicas:
            continue
        means = [r.latency.recent_mean() for r in replicas]
        parts = []
        for replica, mean in zip(replicas, means, strict=True):
            busy = min(1.0, mean * replica.latency.rate(now))
            parts.append(f"#{replica.replica_index} {busy:.0%} busy, {mean * 1e3:.1f} ms")
        line = f"{load.node_id} runs on {len(replicas)} replicas"
        if load.mean_latency_s > 0 and load.throughput_per_s > 0:
            one = 1 / load.mean_latency_s
            line += (
                f", together {load.throughput_per_s:.1f}/s: {load.throughput_per_s / one:.2f}x "
                f"what one replica does at their {load.mean_latency_s * 1e3:.1f} ms per item"
            )
        lines.append(f"{line} ({'; '.join(parts)})")
        cores, in_use = snapshot.cpu_count, snapshot.cpu_load
        if cores and in_use is not None and in_use >= cores - 0.3:
            lines.append(
                f"the process keeps {in_use:.1f} of {cores} cores busy: the replicas share "
                "them, so each takes longer per item than one alone would"
            )
        for replica, mean in zip(replicas, means, strict=True):
            others = [m for other, m in zip(replicas, means, strict=True) if other is not replica]
            typical = median(others) if others else 0.0
            if typical > 0 and mean >= SLOW_REPLICA * typical:
                lines.append(
                    f"{replica.key} is slow: {mean * 1e3:.1f} ms per item against "
                    f"{typical * 1e3:.1f} ms for the other replicas"
                )
    return lines


def replica_suggestion(
    snapshot: PipelineSnapshot, loads: Sequence[StageLoad], busiest: StageLoad, runner_up: float
) -> str | None:
    """More replicas of the stage that sets the pace, when the machine has idle cores.

    The gain is what the measured busy times allow: the pace stage's rate
    grows with its replicas until the next busiest stage's limit, and each
    added replica is taken to need one core (so a machine whose cores are
    already busy gets the generic advice instead).
    """
    name = busiest.node_id
    factor = min(busiest.busy / runner_up, 10.0) if runner_up > 0 else 10.0
    if factor < _GAIN_SHOWN:
        return None
    cores = snapshot.cpu_count or 0
    used = snapshot.cpu_load
    if used is None:  # not measured: take each busy stage thread as a busy core
        used = sum(load.busy * load.replicas for load in loads)
    idle = cores - used
    current = busiest.replicas
    affordable = current + math.floor(idle + 0.25)  # a core 75% idle is as good as free
    wanted = max(current + 1, min(math.ceil(current * factor), affordable))
    gain = min(wanted / current, factor)
    limit = (
        f"the next busiest stage ({runner_up:.0%} busy)"
        if runner_up >= 0.01
        else "another part of the pipeline"
    )
    if wanted <= affordable and gain >= _GAIN_SHOWN:
        return (
            f"{name} sets the pace on {current} replica{'s' if current > 1 else ''}; "
            f"add(..., replicas={wanted}) would raise throughput about {gain:.1f}x "
            f"before {limit} limits it (about {idle:.1f} of {cores} cores are idle)"
        )
    if runner_up <= 0:
        return None
    return (
        f"{name} sets the pace; making it faster (or running it on more workers) could "
        f"raise throughput about {factor:.1f}x before {limit} limits it"
    )
