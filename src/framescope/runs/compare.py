"""Two recorded runs compared stage by stage, each change with an interval and a verdict.

For every stage (matched by profile key) and for the pipeline end to end:
throughput (items a second over the run), a stage's work per item (its
threads' on-CPU seconds over its items), processing time p50, p90, p99,
p99.9 and max, failures, drops, the mean queue depth and the CPU split.
Each change is ``after / before - 1`` with a confidence interval from a
block bootstrap: a run's intervals (1 s each, by default) are the blocks,
drawn with replacement, so the interval respects that neighbouring frames
are alike (a busy second slows all of its frames). A change is a verdict
(``slower`` or ``faster``) only when its interval excludes no change *and*
it is at least ``min_change`` (5% by default): on a shared machine two runs
of the same code differ by a few percent for reasons no bootstrap within
one run can see, and ``min_change`` is that floor. A stage's verdict is
its work per item's where both runs have it, else its median's (its
typical item); the tail has its own rows. Runs recorded in turns
(``record(..., append=True)``) share the machine's slow and fast minutes.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from framescope._optional import require
from framescope.runs.run import PIPELINE, Run, load_run

__all__ = [
    "METRICS",
    "Change",
    "Comparison",
    "FailRule",
    "PartComparison",
    "compare",
    "parse_fail_rules",
]

METRICS = ("throughput", "cpu", "p50", "p90", "p99", "p99.9", "max")
"""The figures compared with an interval (times in seconds; throughput in items/s; ``cpu``:
a stage's on-CPU seconds per item)."""

_QUANTILES = {"p50": 50.0, "p90": 90.0, "p99": 99.0, "p99.9": 99.9}
_BINS = 768
_MAX_BLOCKS = 240
SLOWER, FASTER, NO_CHANGE, UNKNOWN = "slower", "faster", "no change", "not judged"


@dataclass(frozen=True, slots=True)
class Change:
    """One figure of one part, before and after.

    Attributes:
        metric: its name (:data:`METRICS`, ``failures``, ``dropped``, ``queue``,
            ``on_cpu``, ``waiting``, ``blocked``).
        before, after: its value in each run (None: not measured there).
        change: ``after / before - 1`` (None where it cannot be told).
        low, high: the confidence interval of ``change`` (None: no interval).
        verdict: ``slower``, ``faster``, ``no change``, ``not judged`` (a figure
            without an interval) or, for losses, ``more``/``fewer``.
    """

    metric: str
    before: float | None
    after: float | None
    change: float | None = None
    low: float | None = None
    high: float | None = None
    verdict: str = NO_CHANGE

    def to_dict(self) -> dict[str, Any]:
        """As a JSON-ready dict."""
        return {
            "metric": self.metric,
            "before": self.before,
            "after": self.after,
            "change": self.change,
            "low": self.low,
            "high": self.high,
            "verdict": self.verdict,
        }


@dataclass(frozen=True)
class PartComparison:
    """A stage (or the pipeline end to end: key ``pipeline``) in both runs.

    ``status`` is ``both``, ``added`` (only in the second run) or
    ``removed`` (only in the first); ``verdict`` is its work per item's where both runs
    have it, else its median's.
    """

    key: str
    status: str
    changes: dict[str, Change] = field(default_factory=dict)

    @property
    def verdict(self) -> str:
        """``slower``, ``faster`` or ``no change``; ``added``/``removed``.

        By its work per item (``cpu``: its threads' on-CPU time per item)
        where both runs recorded it, else by its median time (``p50``).
        """
        if self.status != "both":
            return self.status
        change = self.changes.get("cpu") or self.changes.get("p50")
        return NO_CHANGE if change is None else change.verdict

    def to_dict(self) -> dict[str, Any]:
        """As a JSON-ready dict."""
        return {
            "key": self.key,
            "status": self.status,
            "verdict": self.verdict,
            "changes": {name: change.to_dict() for name, change in self.changes.items()},
        }


@dataclass(frozen=True)
class FailRule:
    """``p99>+10%``: fail when ``metric`` of ``part`` (any part: None) changed past ``limit``."""

    metric: str
    above: bool
    limit: float
    part: str | None = None

    def __str__(self) -> str:
        where = f"{self.part}:" if self.part else ""
        return f"{where}{self.metric}{'>' if self.above else '<'}{self.limit * 100:+g}%"

    def broken_by(self, change: Change) -> bool:
        """Whether ``change`` is past the limit with confidence (its whole interval is)."""
        if change.low is None or change.high is None:
            return False
        return change.low > self.limit if self.above else change.high < self.limit


_RULE = re.compile(r"^\s*(?:(?P<part>[^:<>]+):)?(?P<metric>[a-z0-9_.]+)\s*(?P<op>[<>])\s*"
                   r"(?P<sign>[+-]?)(?P<value>\d+(?:\.\d+)?)\s*%\s*$")  # fmt: skip


def parse_fail_rules(text: str) -> list[FailRule]:
    """Rules like ``"p99>+10%,throughput<-5%"`` (``Detect:p50>+5%`` for one stage).

    A ValueError names the rule that cannot be read and what is allowed.
    """
    rules = []
    for chunk in text.split(","):
        if not chunk.strip():
            continue
        match = _RULE.match(chunk)
        if match is None or match["metric"] not in METRICS:
            raise ValueError(
                f"fail-on: cannot read {chunk.strip()!r}; write METRIC>+N% or METRIC<-N% "
                f"(optionally STAGE:METRIC...), METRIC one of {', '.join(METRICS)}"
            )
        value = float(match["value"]) / 100 * (-1 if match["sign"] == "-" else 1)
        rules.append(FailRule(match["metric"], match["op"] == ">", value, match["part"]))
    return rules


@dataclass(frozen=True)
class Comparison:
    """Two runs compared (see :func:`compare`): ``parts``, the pipeline's first, then each stage."""

    before: str
    after: str
    confidence: float
    min_change: float
    parts: tuple[PartComparison, ...]
    seconds: tuple[float, float] = (0.0, 0.0)
    machine: float | None = None
    """What the later run's times were divided by: 1.12 is a machine 12% slower in the later
    run (by its probe, or by the stages' median change); None: as measured."""
    adjusted_by: str | None = None
    """``probe`` (the machine probe), ``stages`` (the stages' median change), None: as measured."""
    pipelines: tuple[str | None, str | None] = (None, None)
    """Each run's pipeline name (the headline says when they differ)."""

    def part(self, key: str) -> PartComparison:
        """The comparison of stage ``key`` (``"pipeline"``: end to end); KeyError if unknown."""
        for part in self.parts:
            if part.key == key:
                return part
        known = ", ".join(p.key for p in self.parts)
        raise KeyError(f"no part {key!r} in this comparison; there are: {known}")

    @property
    def slower(self) -> tuple[str, ...]:
        """The parts whose verdict is ``slower``."""
        return tuple(p.key for p in self.parts if p.verdict == SLOWER)

    def broken(self, rules: Sequence[FailRule]) -> list[str]:
        """Each rule broken with confidence: ``"Cam__Detect: p99 +14.2% [+9.1%, +19.0%] ..."``.

        A ValueError for a rule naming a stage neither run has (a typo would
        make a CI gate that never fails).
        """
        names = {name for p in self.parts for name in (p.key, p.key.split("__")[-1])}
        for rule in rules:
            if rule.part is not None and rule.part not in names:
                known = ", ".join(p.key for p in self.parts)
                raise ValueError(
                    f"fail-on: no stage {rule.part!r} in these runs ({rule}); there are: {known}"
                )
        found = []
        for rule in rules:
            for part in self.parts:
                change = part.changes.get(rule.metric)
                if part.status != "both" or change is None:
                    continue
                if rule.part is not None and rule.part not in (part.key, part.key.split("__")[-1]):
                    continue
                if rule.broken_by(change):
                    found.append(f"{part.key}: {rule.metric} {_range(change)} breaks {rule}")
        return found

    def to_dict(self) -> dict[str, Any]:
        """As a JSON-ready dict."""
        return {
            "before": self.before,
            "after": self.after,
            "confidence": self.confidence,
            "min_change": self.min_change,
            "seconds": list(self.seconds),
            "machine": self.machine,
            "adjusted_by": self.adjusted_by,
            "pipelines": list(self.pipelines),
            "parts": [part.to_dict() for part in self.parts],
        }

    def to_json(self) -> str:
        """As JSON."""
        return json.dumps(self.to_dict(), indent=1)

    def rows(self) -> list[tuple[str, ...]]:
        """A row per part and figure: part, figure, before, after, change, interval, verdict."""
        rows: list[tuple[str, ...]] = []
        for part in self.parts:
            if part.status != "both":
                rows.append((part.key, "-", "-", "-", "-", "-", part.status))
                continue
            for change in part.changes.values():
                rows.append(
                    (
                        part.key,
                        change.metric,
                        _value(change.metric, change.before),
                        _value(change.metric, change.after),
                        "-" if change.change is None else f"{change.change * 100:+.1f}%",
                        "-"
                        if change.low is None
                        else f"[{change.low * 100:+.1f}%, {change.high * 100:+.1f}%]",  # type: ignore[operator]
                        change.verdict,
                    )
                )
        return rows

    def headline(self) -> str:
        """One line: the runs, the parts that got slower or faster, those that waited longer.

        "Waited longer, same work": a stage whose median time was called slower
        while its work per item was not (it waited for a lock, a core, I/O).
        """
        slower = [p.key for p in self.parts if p.verdict == SLOWER]
        faster = [p.key for p in self.parts if p.verdict == FASTER]
        said = [
            f"{name}: {', '.join(keys)}"
            for name, keys in (("slower", slower), ("faster", faster))
            if keys
        ]
        verdict = "; ".join(said) or (
            f"no change detectable (at {self.min_change:.0%} and {self.confidence:.0%} confidence)"
        )
        # Judged by their work per item, but their wall time moved: waiting for something else.
        waited = [
            p.key
            for p in self.parts
            if "cpu" in p.changes
            and p.verdict == NO_CHANGE
            and getattr(p.changes.get("p50"), "verdict", None) == SLOWER
        ]
        if waited:
            verdict += f"; waited longer, same work: {', '.join(waited)}"
        first, second = self.pipelines
        if first != second:
            verdict += f" (runs of different pipelines: {first!r} and {second!r})"
        machine = ""
        if self.machine is not None and abs(self.machine - 1) >= 0.01:
            pace = "slower" if self.machine > 1 else "faster"
            machine = (
                f" (the machine ran {abs(self.machine - 1):.0%} {pace} in {self.after}: "
                "times compared at equal speed)"
            )
            if self.adjusted_by == "stages":
                machine = (
                    f" (the stages ran {abs(self.machine - 1):.0%} {pace} together in "
                    f"{self.after}, the machine or a change to all: each compared against that)"
                )
        return f"{self.before} -> {self.after}: {verdict}{machine}"

    def markdown(self) -> str:
        """A Markdown table (a pull-request comment)."""
        head = "| part | figure | before | after | change | interval | verdict |"
        lines = [f"**{self.headline()}**", "", head, "|---|---|---:|---:|---:|---|---|"]
        for row in self.rows():
            cells = list(row)
            if cells[-1] in (SLOWER, FASTER):
                cells[-1] = f"**{cells[-1]}**"
            lines.append("| " + " | ".join(cells) + " |")
        return "\n".join(lines)

    def __str__(self) -> str:
        from framescope.pipeline.views.tables import text_table  # noqa: PLC0415 - a renderer

        columns = ("part", "figure", "before", "after", "change", "interval", "verdict")
        return self.headline() + "\n" + text_table(columns, self.rows())

    def __rich__(self) -> Any:
        """A rich table (needs ``rich``)."""
        from framescope.pipeline.views.tables import rich_table  # noqa: PLC0415 - a renderer

        columns = ("part", "figure", "before", "after", "change", "interval", "verdict")
        return rich_table(columns, self.rows(), title=self.headline())


def _value(metric: str, value: float | None) -> str:
    if value is None:
        return "-"
    if metric in _QUANTILES or metric in ("max", "cpu"):
        return f"{value * 1e3:.3f} ms"
    if metric == "throughput":
        return f"{value:.2f}/s"
    if metric in ("on_cpu", "waiting", "blocked"):
        return f"{value:.0%}"
    if metric == "queue":
        return f"{value:.2f}"
    return f"{value:g}"


def _range(change: Change) -> str:
    middle = "?" if change.change is None else f"{change.change * 100:+.1f}%"
    if change.low is None or change.high is None:
        return middle
    return f"{middle} [{change.low * 100:+.1f}%, {change.high * 100:+.1f}%]"


class _Blocks:
    """One run's part as bootstrap blocks: items, seconds and a histogram of times per block."""

    def __init__(
        self, np: Any, run: Run, key: str, edges: Any, probe: str = "probe_cpu_ns"
    ) -> None:
        parts, spans = run.part(key), run.spans()
        counting = "completed" if key == PIPELINE else "count"
        group = max(1, math.ceil(len(parts) / _MAX_BLOCKS))  # at most _MAX_BLOCKS blocks
        self.count = np.array([p.get(counting, 0) for p in parts], dtype=float)
        self.span = np.array(spans, dtype=float)
        self.cpu = np.array([p.get("on_cpu_s", np.nan) for p in parts], dtype=float)
        samples = [np.asarray(p.get("samples_ns", ()), dtype=float) / 1e9 for p in parts]
        self.values = np.concatenate(samples) if samples else np.zeros(0)
        self.hist = np.stack(
            [np.histogram(np.clip(s, edges[0], edges[-1]), edges)[0] for s in samples]
        ) if samples else np.zeros((0, len(edges) - 1))  # fmt: skip
        probes = [i.get(probe) for i in run.intervals]
        # None, or 0 from a CPU clock too coarse for the probe's loop: not known.
        self.probe = np.array([p if p else np.nan for p in probes], dtype=float)
        if group > 1:
            blocks = np.arange(len(parts)) // group
            self.count = np.bincount(blocks, self.count)
            self.span = np.bincount(blocks, self.span)
            self.cpu = _grouped(np, blocks, self.cpu, mean=False)
            self.hist = np.stack([self.hist[blocks == b].sum(0) for b in range(blocks[-1] + 1)])
            self.probe = _grouped(np, blocks, self.probe, mean=True)
        # Whether every block has the machine probe (runs recorded by this framescope).
        self.probed = bool(self.probe.size) and bool(np.all(np.isfinite(self.probe)))
        # The stage's on-CPU seconds (its work per item) where known: at least half its items.
        known = np.isfinite(self.cpu)
        self.work = np.where(known, self.cpu, 0.0), np.where(known, self.count, 0.0)
        self.worked = bool(self.work[1].sum() > 0) and self.work[1].sum() >= self.count.sum() / 2


def _grouped(np: Any, blocks: Any, values: Any, *, mean: bool) -> Any:
    """``values`` summed (or averaged) by block; NaN for a block missing any of its values."""
    sums = np.bincount(blocks, np.nan_to_num(values))
    if mean:
        sums = sums / np.bincount(blocks)
    return np.where(np.bincount(blocks, np.isnan(values)) > 0, np.nan, sums)


def _quantile_rows(np: Any, hist: Any, edges: Any, q: float) -> Any:
    """The q-th percentile of each histogram row (log-linear inside a bin)."""
    cumulative = np.cumsum(hist, axis=1)
    total = cumulative[:, -1:]
    target = total * q / 100.0
    index = np.minimum((cumulative < target).sum(axis=1), hist.shape[1] - 1)
    below = np.where(index > 0, np.take_along_axis(cumulative, (index - 1)[:, None], 1)[:, 0], 0)
    inside = np.take_along_axis(hist, index[:, None], 1)[:, 0]
    fraction = np.where(inside > 0, (target[:, 0] - below) / np.maximum(inside, 1), 0.5)
    low, high = np.log(edges[index]), np.log(edges[index + 1])
    result = np.exp(low + np.clip(fraction, 0, 1) * (high - low))
    return np.where(total[:, 0] > 0, result, np.nan)


def _edges(np: Any, *values: Any) -> Any:
    pooled = np.concatenate([v[v > 0] for v in values] or [np.ones(1)])
    if not pooled.size:
        pooled = np.ones(1)
    low, high = pooled.min() * 0.999, pooled.max() * 1.001
    return np.geomspace(low, max(high, low * 1.01), _BINS + 1)


def _verdict(
    change: float, low: float, high: float, *, min_change: float, up_is_slower: bool
) -> str:
    if not (low > 0 or high < 0) or abs(change) < min_change:
        return NO_CHANGE
    grew = change > 0
    return SLOWER if grew == up_is_slower else FASTER


def _bootstrap(
    np: Any,
    blocks: tuple[_Blocks, _Blocks],
    edges: Any,
    settings: tuple[int, float, float, Any],
    divisor: _Divisor | None,
) -> dict[str, Change]:
    """Each figure's change and interval; the later run's divided by ``divisor``'s."""
    _, confidence, min_change, weights = settings
    a, b = blocks
    changes: dict[str, Change] = {}
    na, nb = len(a.count), len(b.count)
    if not na or not nb:
        return changes
    wa, wb = weights
    tail = (1 - confidence) / 2 * 100
    rate_a, rate_b = a.count.sum() / a.span.sum(), b.count.sum() / b.span.sum()
    if rate_a > 0:
        ratio = ((wb @ b.count) / (wb @ b.span)) / np.maximum((wa @ a.count) / (wa @ a.span), 1e-12)
        low, high = np.percentile(ratio - 1, [tail, 100 - tail])
        point = rate_b / rate_a - 1
        verdict = _verdict(point, low, high, min_change=min_change, up_is_slower=False)
        changes["throughput"] = Change("throughput", rate_a, rate_b, point, low, high, verdict)
    machine, speed = (1.0, 1.0) if divisor is None else divisor.time
    work = _work_change(
        np, blocks, weights, (1.0, 1.0) if divisor is None else divisor.work, (tail, min_change)
    )
    if work is not None:
        changes["cpu"] = work
    if a.values.size and b.values.size:
        ha, hb = wa @ a.hist, wb @ b.hist
        for name, q in _QUANTILES.items():
            before, after = float(np.percentile(a.values, q)), float(np.percentile(b.values, q))
            ratio = _quantile_rows(np, hb, edges, q) / _quantile_rows(np, ha, edges, q) / speed
            low, high = np.nanpercentile(ratio - 1, [tail, 100 - tail])
            point = after / before / machine - 1 if before > 0 else math.nan
            verdict = _verdict(point, low, high, min_change=min_change, up_is_slower=True)
            changes[name] = Change(name, before, after, point, float(low), float(high), verdict)
        before, after = float(a.values.max()), float(b.values.max())
        change = after / before - 1 if before else None
        changes["max"] = Change("max", before, after, change, verdict=UNKNOWN)
    return changes


def _work_ratio(
    np: Any, blocks: tuple[_Blocks, _Blocks], weights: tuple[Any, Any]
) -> tuple[float, Any] | None:
    """The later run's work per item over the earlier's: (the point, each bootstrap draw's)."""
    (a, b), (wa, wb) = blocks, weights
    if not (a.worked and b.worked):
        return None
    (cpu_a, items_a), (cpu_b, items_b) = a.work, b.work
    if cpu_a.sum() <= 0 or cpu_b.sum() <= 0:
        return None
    point = (cpu_b.sum() / items_b.sum()) / (cpu_a.sum() / items_a.sum())
    with np.errstate(divide="ignore", invalid="ignore"):
        draws = ((wb @ cpu_b) / (wb @ items_b)) / ((wa @ cpu_a) / (wa @ items_a))
    return float(point), draws


def _work_change(
    np: Any,
    blocks: tuple[_Blocks, _Blocks],
    weights: tuple[Any, Any],
    divisor: tuple[float, Any],
    limits: tuple[float, float],
) -> Change | None:
    """On-CPU seconds per item (its threads' CPU time over its items), before and after."""
    ratio = _work_ratio(np, blocks, weights)
    if ratio is None:
        return None
    (point, draws), (machine, speed), (tail, min_change) = ratio, divisor, limits
    draws = draws / speed
    draws = draws[np.isfinite(draws)]
    if not draws.size:
        return None
    (cpu_a, items_a), (cpu_b, items_b) = blocks[0].work, blocks[1].work
    before, after = cpu_a.sum() / items_a.sum(), cpu_b.sum() / items_b.sum()
    low, high = np.percentile(draws - 1, [tail, 100 - tail])
    change = point / machine - 1
    verdict = _verdict(change, low, high, min_change=min_change, up_is_slower=True)
    return Change("cpu", float(before), float(after), change, float(low), float(high), verdict)


def _gauge(part: dict[str, Any], name: str) -> float | None:
    if name == "queue":
        return part.get("queue_depth")
    value = (part.get("cpu") or {}).get(name)
    return None if value is None else float(value)


def _plain(run_a: Run, run_b: Run, key: str) -> dict[str, Change]:
    """The figures compared without an interval: losses, queue depth, CPU split."""
    changes = {}
    losses = (("failures", "failed"), ("dropped", "dropped")) if key == PIPELINE else (
        ("failures", "failures"),
    )  # fmt: skip
    for name, counted in losses:
        before = sum(p.get(counted, 0) for p in run_a.part(key))
        after = sum(p.get(counted, 0) for p in run_b.part(key))
        verdict = NO_CHANGE if before == after else ("more" if after > before else "fewer")
        changes[name] = Change(name, before, after, verdict=verdict)
    for name in ("queue", "on_cpu", "waiting", "blocked"):
        values = [
            [v for p in run.part(key) if (v := _gauge(p, name)) is not None]
            for run in (run_a, run_b)
        ]
        if values[0] and values[1]:
            before, after = sum(values[0]) / len(values[0]), sum(values[1]) / len(values[1])
            changes[name] = Change(name, before, after, verdict=UNKNOWN)
    return changes


def compare(
    before: Run | str,
    after: Run | str,
    *,
    confidence: float = 0.95,
    min_change: float = 0.05,
    resamples: int = 2000,
    seed: int | None = 0,
    adjust: bool | str = False,
) -> Comparison:
    """Compare two recorded runs (:class:`Run` objects or paths to ``.fsrun`` files).

    Every stage (matched by profile key; stages only in one run are listed as
    ``added`` or ``removed``) and the pipeline end to end: throughput and
    processing time p50/p90/p99/p99.9 with the change and its ``confidence``
    interval (a block bootstrap of ``resamples`` draws over the runs'
    intervals; ``seed`` makes it repeatable), the max, failures, drops, mean
    queue depth and CPU split. A change is ``slower`` or ``faster`` only
    when its interval excludes no change and it is at least ``min_change``.

    A stage's verdict is its work per item (``cpu``: its threads' on-CPU
    seconds over its items) where both runs recorded it, else its p50: a
    heavier stage also lengthens its neighbours' wall times (they wait for
    the interpreter lock or a core), and their own rows say so.

    On a shared machine, record the two versions in turns (a few seconds
    each, ``record(..., append=True)``): the machine's speed moves between
    minutes, and turns put both runs in the same minutes. ``adjust``:
    compare times at equal machine speed (off by default: as measured).
    ``True`` (or ``"probe"``): each interval of a recording times a fixed
    piece of Python work on the recorder's thread (its machine probe, on
    that thread's CPU time); when the later run's machine was, say, 12%
    slower throughout, every time of the later run is divided by 1.12 before
    it is compared (and so within each bootstrap draw). A Python loop does
    not slow down as NumPy or OpenCV work does, and a VM's stolen time
    reaches it unevenly: on this project's test machine it made comparisons
    worse (docs/benchmarks.md). ``"stages"``:
    the median change of the stages' medians (at least 3 stages) is taken as
    the machine's, and each stage is compared against it: a machine that
    slows slows every stage, a change to one stage shows against the others;
    but a change that slows every stage alike reads as a slower machine (the
    headline says by how much the stages moved together). Throughput is never
    adjusted. :attr:`Comparison.machine` says by how much it adjusted (None:
    as measured, or a run without probes).
    """
    _check_settings(confidence, min_change, resamples)
    adjusted_by = _check_adjust(adjust)
    np = require("numpy", "report", "comparing runs")
    run_a = before if isinstance(before, Run) else load_run(before)
    run_b = after if isinstance(after, Run) else load_run(after)
    rng = np.random.default_rng(seed)
    weights = (_draws(np, rng, run_a, resamples), _draws(np, rng, run_b, resamples))
    settings = (resamples, confidence, min_change, weights)
    keys_a, keys_b = run_a.stage_keys, run_b.stage_keys
    shared = [key for key in keys_a if key in keys_b]
    divisor = _divisor(np, (run_a, run_b), shared, settings, adjusted_by)
    parts = [
        _compare_part(np, (run_a, run_b), key, settings, divisor)
        if key == PIPELINE or key in shared
        else PartComparison(key, "added" if key in keys_b else "removed")
        for key in (PIPELINE, *keys_a, *(k for k in keys_b if k not in keys_a))
    ]
    return Comparison(
        run_a.label,
        run_b.label,
        confidence,
        min_change,
        tuple(parts),
        (run_a.seconds, run_b.seconds),
        None if divisor is None else divisor.work[0],
        adjusted_by if divisor is not None else None,
        (run_a.header.get("pipeline"), run_b.header.get("pipeline")),
    )


def _check_settings(confidence: float, min_change: float, resamples: int) -> None:
    """A ValueError naming the first setting out of its range."""
    if not 0.5 <= confidence < 1:
        raise ValueError(f"confidence must be from 0.5 to below 1, got {confidence!r}")
    if not 0 <= min_change < 1:
        raise ValueError(f"min_change must be from 0 to below 1, got {min_change!r}")
    if isinstance(resamples, bool) or not isinstance(resamples, int) or resamples < 100:
        raise ValueError(f"resamples must be an int of at least 100, got {resamples!r}")


def _check_adjust(adjust: object) -> str | None:
    """``adjust`` as a name: None (as measured), ``probe`` or ``stages``."""
    if adjust is False or adjust is None:
        return None
    if adjust is True:
        return "probe"
    if adjust in ("probe", "stages"):
        return str(adjust)
    raise ValueError(f"adjust must be False, True ('probe') or 'stages', got {adjust!r}")


def _draws(np: Any, rng: Any, run: Run, resamples: int) -> Any:
    """The bootstrap's draws of a run's blocks (each block's weight): the same for every part."""
    intervals = len(run.intervals)
    blocks = math.ceil(intervals / max(1, math.ceil(intervals / _MAX_BLOCKS))) if intervals else 0
    if not blocks:
        return np.zeros((resamples, 0))
    return rng.multinomial(blocks, np.full(blocks, 1 / blocks), size=resamples).astype(float)


def _compare_part(
    np: Any,
    runs: tuple[Run, Run],
    key: str,
    settings: tuple[int, float, float, Any],
    divisor: _Divisor | None,
) -> PartComparison:
    """One part in both runs: the bootstrapped figures, then those without an interval."""
    blocks, edges = _part_blocks(np, runs, key)
    changes = _bootstrap(np, blocks, edges, settings, divisor)
    changes.update(_plain(*runs, key))
    return PartComparison(key, "both", changes)


def _part_blocks(np: Any, runs: tuple[Run, Run], key: str) -> tuple[tuple[_Blocks, _Blocks], Any]:
    samples = [
        np.asarray([v for p in run.part(key) for v in p.get("samples_ns", ())], float) / 1e9
        for run in runs
    ]
    edges = _edges(np, *samples)
    return (_Blocks(np, runs[0], key, edges), _Blocks(np, runs[1], key, edges)), edges


@dataclass(frozen=True)
class _Divisor:
    """What the later run's figures are divided by: (the point, each bootstrap draw's)."""

    time: tuple[float, Any]
    work: tuple[float, Any]  # the stages' times' where their work is not known


def _divisor(
    np: Any,
    runs: tuple[Run, Run],
    stages: list[str],
    settings: tuple[int, float, float, Any],
    adjusted_by: str | None,
) -> _Divisor | None:
    """The machine's change to divide by (None: as measured, or not known)."""
    if adjusted_by == "probe":
        # On-CPU probes where both runs have them (this framescope's), else wall (older runs).
        a, b = (_Blocks(np, run, PIPELINE, np.geomspace(1e-9, 1.0, 2)) for run in runs)
        if not (a.probed and b.probed):
            a, b = (_Blocks(np, r, PIPELINE, np.geomspace(1e-9, 1.0, 2), "probe_ns") for r in runs)
        if not (a.probed and b.probed):
            return None
        wa, wb = settings[3]
        draws = ((wb @ b.probe) / len(b.probe)) / ((wa @ a.probe) / len(a.probe))
        probe = float(b.probe.mean() / a.probe.mean()), draws
        return _Divisor(probe, probe)
    if adjusted_by != "stages":
        return None
    if len(stages) < 3:
        raise ValueError(
            f"adjust='stages' needs at least 3 stages in both runs (their median change is "
            f"the machine's), got {len(stages)}"
        )
    return _stages_divisor(np, runs, stages, settings[3])


def _stages_divisor(
    np: Any, runs: tuple[Run, Run], stages: list[str], weights: tuple[Any, Any]
) -> _Divisor | None:
    """The median of the stages' changes: of their medians for times, of their work for work."""
    wa, wb = weights
    times: list[tuple[float, Any]] = []
    works: list[tuple[float, Any]] = []
    for key in stages:
        blocks, edges = _part_blocks(np, runs, key)
        (a, b) = blocks
        if a.values.size and b.values.size:
            point = float(np.percentile(b.values, 50) / np.percentile(a.values, 50))
            draws = _quantile_rows(np, wb @ b.hist, edges, 50.0) / _quantile_rows(
                np, wa @ a.hist, edges, 50.0
            )
            times.append((point, draws))
        work = _work_ratio(np, blocks, weights)
        if work is not None:
            works.append(work)
    if len(times) < 3:
        return None

    def median(changes: list[tuple[float, Any]]) -> tuple[float, Any]:
        points = [point for point, _ in changes]
        return float(np.median(points)), np.nanmedian(np.stack([d for _, d in changes]), axis=0)

    time = median(times)
    if len(works) < 3:  # the stages' work is not known: their times stand for it
        return _Divisor(time, time)
    work = median(works)
    return _Divisor(time, work)
