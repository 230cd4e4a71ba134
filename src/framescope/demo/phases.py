"""``--replicas N``: Infer on one replica, then on N, on the same input; what each phase measured.

The diagnosis of the N-replica phase says what it makes of the replicas (their
gain over one, a suggestion); the two phases measure it: the same frames,
the same stages, one phase after the other. The measured ratio is the fact the
claim is shown beside.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from framescope.pipeline import PipelineSnapshot
from framescope.pipeline.views.diagnosis import LOSS_COUNTERS, Diagnosis

__all__ = ["DemoPhase", "PhaseInput", "ShownPipeline", "compare_phases", "replica_claims"]

INFER = "Demo__Infer"
"""The key of the stage whose replicas the phases compare."""


@dataclass(frozen=True, slots=True)
class DemoPhase:
    """What one phase of a run measured: Infer on ``replicas`` threads for ``seconds``.

    ``frames_in`` frames went into the pipeline in this phase; each came out
    (``frames_out``, handed to the output) or was lost (``frames_lost``: a
    stage failed it, or it was dropped or discarded), except any still
    inside when the phase's drain gave up. ``infer_frames`` frames went
    through Infer. ``seconds`` runs from the phase's first frame in to its last
    frame out (the drain included), so ``fps``, ``infer_frames / seconds``, is
    the phase's measured throughput.
    """

    replicas: int
    frames_in: int
    frames_out: int
    frames_lost: int
    infer_frames: int
    seconds: float

    @property
    def fps(self) -> float:
        """Frames through Infer per second of the phase (0.0 for a phase that took no time)."""
        return self.infer_frames / self.seconds if self.seconds > 0 else 0.0

    @classmethod
    def measured(
        cls, final: PipelineSnapshot, frames_in: int, seconds: float, replicas: int
    ) -> DemoPhase:
        """The phase as its drained pipeline's last snapshot counts it."""
        infer = next((stage for stage in final.stages if stage.key == INFER), None)
        return cls(
            replicas=replicas,
            frames_in=frames_in,
            frames_out=final.count("completed"),
            frames_lost=sum(final.count(name) for name in LOSS_COUNTERS),
            infer_frames=0 if infer is None else infer.latency.count,
            seconds=seconds,
        )


class PhaseInput:
    """The demo's frames, handed to one phase's pipeline: counts what it took, ends on request.

    Several phases take from one iterator in turn; :meth:`close` ends this
    phase's share (a later pull gets StopIteration, so a phase's input loop
    can never take a frame meant for the next). ``ended`` says the frames
    themselves ended or failed: no later phase gets any.
    """

    def __init__(self, frames: Iterator[Any]) -> None:
        self._frames = frames
        self._lock = threading.Lock()
        self._closed = False
        self.taken = 0
        self.ended = False

    def __iter__(self) -> PhaseInput:
        return self

    def __next__(self) -> Any:
        with self._lock:
            if self._closed or self.ended:
                raise StopIteration
            try:
                item = next(self._frames)
            except BaseException:
                self.ended = True
                raise
            self.taken += 1
            return item

    def close(self) -> None:
        """This phase takes no more frames."""
        with self._lock:
            self._closed = True


class ShownPipeline:
    """What a live view shows: the pipeline of the phase running now."""

    name = "Demo"

    def __init__(self, pipeline: Any) -> None:
        self.pipeline = pipeline

    def snapshot(self) -> PipelineSnapshot:
        """The current phase's snapshot."""
        snapshot: PipelineSnapshot = self.pipeline.snapshot()
        return snapshot


def replica_claims(diagnosis: Diagnosis) -> tuple[str, ...]:
    """The diagnosis's lines about replicas (evidence and suggestion), as it printed them."""
    lines = [reason for reason in diagnosis.reasons if "replica" in reason]
    if diagnosis.suggestion and "replica" in diagnosis.suggestion:
        lines.append(f"Suggestion: {diagnosis.suggestion}")
    return tuple(lines)


def _replicas(count: int) -> str:
    return f"{count} replica{'s' if count != 1 else ''}"


def compare_phases(phases: list[DemoPhase], claims: tuple[str, ...], wanted: int) -> str:
    """The phases' measured throughput side by side, their ratio, and the diagnosis's claim."""
    lines = [f"Infer on 1 replica, then on {wanted}, on the same input (measured):"]
    width = len(_replicas(wanted))
    for phase in phases:
        lines.append(
            f"  {_replicas(phase.replicas):<{width}}  {phase.infer_frames:>6} frames through "
            f"Infer in {phase.seconds:5.2f} s: {phase.fps:7.1f}/s"
        )
    if len(phases) < 2:
        lines.append(f"  The run ended before the {wanted}-replica phase: nothing to compare.")
        return "\n".join(lines)
    one, many = phases[0], phases[-1]
    if one.fps > 0:
        measured = many.fps / one.fps
        lines.append(
            f"  Measured: {wanted} replicas did {measured:.2f}x what 1 did "
            "(the diagnosis below estimated it from the last phase alone)."
        )
        estimate = _estimate(claims)
        if estimate is not None:
            gap = estimate / measured - 1
            lines.append(
                f"  Estimate {estimate:.2f}x against measured {measured:.2f}x: "
                f"{abs(gap):.0%} {'high' if gap > 0 else 'low'}."
            )
    else:
        lines.append("  Measured: nothing went through Infer on 1 replica: no ratio.")
    if claims:
        lines.append(f"  What the diagnosis of the {wanted}-replica phase claimed:")
        lines.extend(f"    {claim}" for claim in claims)
    else:
        lines.append(f"  The diagnosis of the {wanted}-replica phase made no claim about replicas.")
    return "\n".join(lines)


def _estimate(claims: Sequence[str]) -> float | None:
    """The gain the diagnosis estimated for the replicas (its ``about <n>x what one replica``)."""
    for claim in claims:
        found = re.search(r"about (\d+(?:\.\d+)?)x what one replica", claim)
        if found:
            return float(found.group(1))
    return None
