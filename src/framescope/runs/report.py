"""A recorded run (or two, compared) as one self-contained HTML page with plots.

:func:`write_report` renders with matplotlib into inline SVG (no script, no
CDN, no network: the file opens from a mail attachment): the stages as a
graph coloured by the comparison's verdict, frames a second and the median
processing time over the run per stage, each stage's latency distribution
(a CDF with p50 and p99 marked), where each stage's thread spent its time
(on a CPU, waiting for one, blocked), batch sizes and cameras where the run
had them, the losses, and for a comparison the two runs overlaid and the
table of changes. The page follows the reader's light or dark theme and
prints on white.
"""

from __future__ import annotations

import html
import io
import os
import re
import statistics
from pathlib import Path
from typing import Any

from framescope._optional import require
from framescope.runs.compare import FASTER, SLOWER, Comparison, compare
from framescope.runs.run import PIPELINE, Run, load_run

__all__ = ["report_html", "write_report"]

_BEFORE, _AFTER = "#8c8c8c", "#1f77b4"
_VERDICT_COLOURS = {SLOWER: "#d62728", FASTER: "#2ca02c", "added": "#1f77b4", "removed": "#999"}
_INK = "#7f7f7f"  # axes and text: readable on white and on a dark page

_STYLE = """
:root{color-scheme:light dark;--ink:#222;--page:#fff;--soft:#666;--line:#ccc;--box:#f6f6f6}
@media (prefers-color-scheme:dark){
:root{--ink:#e6e6e6;--page:#16181c;--soft:#aaa;--line:#444;--box:#22252b}}
@media print{:root{--ink:#000;--page:#fff;--soft:#444;--line:#bbb;--box:#fff}
figure{break-inside:avoid}}
body{font:14px system-ui,sans-serif;margin:24px;background:var(--page);color:var(--ink)}
h1{font-size:20px}h2{font-size:16px;margin-top:28px;border-bottom:1px solid var(--line)}
.meta{color:var(--soft)}.warn{color:#d62728;font-weight:600}
.graph{display:flex;gap:8px;flex-wrap:wrap;align-items:stretch}
.node{border:3px solid #999;border-radius:8px;padding:6px 10px;background:var(--box);
min-width:130px}
.node small{display:block;color:var(--soft)}
figure.plot{margin:8px 0}figure.plot svg{max-width:100%;height:auto}
.row{display:flex;flex-wrap:wrap;gap:12px}
figcaption{color:var(--soft);font-size:90%}
table{border-collapse:collapse}
td,th{padding:2px 10px;text-align:right;border-bottom:1px solid var(--line)}
td:first-child,th:first-child,td:nth-child(2){text-align:left}
td.slower{color:#d62728;font-weight:600}td.faster{color:#2ca02c;font-weight:600}
"""


def _svg(figure: Any, name: str) -> str:
    """``figure`` as inline SVG (ids salted with ``name``: several SVGs share one page)."""
    matplotlib = require("matplotlib", "report", "the run report")
    buffer = io.StringIO()
    with matplotlib.rc_context({"svg.hashsalt": name, "svg.fonttype": "none"}):
        figure.savefig(buffer, format="svg", transparent=True, bbox_inches="tight")
    text = buffer.getvalue()
    text = re.sub(r"<metadata>.*?</metadata>", "", text, flags=re.DOTALL)  # who made it, when
    return text[text.index("<svg") :]


def _figure(width: float = 7.5, height: float = 2.6) -> tuple[Any, Any]:
    """A figure with one axes, styled for both themes."""
    figure_type = require("matplotlib.figure", "report", "the run report").Figure
    figure = figure_type(figsize=(width, height))
    axes = figure.add_subplot()
    for spine in axes.spines.values():
        spine.set_color(_INK)
    axes.tick_params(colors=_INK, labelcolor=_INK)
    axes.xaxis.label.set_color(_INK)
    axes.yaxis.label.set_color(_INK)
    axes.title.set_color(_INK)
    axes.grid(True, color=_INK, alpha=0.25, linewidth=0.5)
    return figure, axes


def _legend(axes: Any, *, outside: bool = False) -> None:
    if axes.get_legend_handles_labels()[0]:
        where = {"loc": "upper left", "bbox_to_anchor": (1.01, 1.0)} if outside else {}
        axes.legend(fontsize=8, frameon=False, labelcolor=_INK, **where)


def _plot(name: str, caption: str, figure: Any) -> str:
    return (
        f'<figure class="plot" data-plot="{html.escape(name)}">{_svg(figure, name)}'
        f"<figcaption>{html.escape(caption)}</figcaption></figure>"
    )


def _series(np: Any, run: Run, key: str) -> tuple[Any, Any, Any]:
    """Per interval: its end (s), items a second, median processing time (ms; NaN: none)."""
    parts = run.part(key)
    counting = "completed" if key == PIPELINE else "count"
    t = np.array([i["t"] for i in run.intervals], float)
    rate = np.array([p.get(counting, 0) for p in parts], float) / np.array(run.spans(), float)
    median = np.array(
        [np.median(p["samples_ns"]) / 1e6 if p.get("samples_ns") else np.nan for p in parts]
    )
    return t, rate, median


def _runs(run: Run, against: Run | None) -> list[tuple[Run, str, str]]:
    """The runs to draw: (run, colour, line style), the earlier one first (dashed)."""
    if against is None:
        return [(run, _AFTER, "-")]
    return [(against, _BEFORE, "--"), (run, _AFTER, "-")]


def _over_time(np: Any, run: Run, against: Run | None, keys: list[str], what: str) -> str:
    figure, axes = _figure(7.5, 0.9 + 1.1 * max(1, min(len(keys), 4)))
    for index, key in enumerate(keys):
        for shown, _, style in _runs(run, against):
            if key != PIPELINE and key not in shown.stage_keys:
                continue
            t, rate, median = _series(np, shown, key)
            values = rate if what == "fps" else median
            label = f"{key} ({shown.label})" if against is not None else key
            axes.plot(t, values, style, color=f"C{index}", linewidth=1.2, label=label)
    axes.set_xlabel("seconds into the run")
    axes.set_ylabel("items/s" if what == "fps" else "median ms")
    _legend(axes, outside=True)
    caption = (
        "Items a second, per interval." if what == "fps"
        else "Median processing time per interval (end to end for the pipeline)."
    )  # fmt: skip
    return _plot(what, caption, figure)


def _cdf(np: Any, run: Run, against: Run | None, key: str) -> str:
    figure, axes = _figure(3.6, 2.4)
    for shown, colour, style in _runs(run, against):
        if key != PIPELINE and key not in shown.stage_keys:
            continue
        values = np.sort(
            np.array([v for p in shown.part(key) for v in p.get("samples_ns", ())], float) / 1e6
        )
        if not values.size:
            continue
        axes.plot(values, np.arange(1, values.size + 1) / values.size, style, color=colour,
                  linewidth=1.2, label=shown.label)  # fmt: skip
        for q in (50, 99):
            axes.axvline(np.percentile(values, q), color=colour, linestyle=":", linewidth=0.8)
    if axes.get_lines():
        ticker = require("matplotlib.ticker", "report", "the run report")
        axes.set_xscale("log")
        axes.xaxis.set_major_formatter(ticker.FormatStrFormatter("%g"))
        axes.xaxis.set_minor_formatter(ticker.NullFormatter())
    axes.set_xlabel("ms (dotted: p50, p99)")
    axes.set_ylabel("share of items")
    axes.set_title(key, fontsize=9)
    if against is not None:
        _legend(axes)
    return _plot(f"cdf-{key}", f"{key}: processing time distribution.", figure)


def _cpu(np: Any, run: Run, against: Run | None, keys: list[str]) -> str | None:
    rows = []
    for shown, _, _ in _runs(run, against):
        for key in keys:
            cpu = [p["cpu"] for p in shown.part(key) if p.get("cpu")]
            if cpu:
                means = [
                    float(np.mean([c.get(s) or 0.0 for c in cpu]))
                    for s in ("on_cpu", "waiting", "blocked")
                ]
                rows.append((f"{key} ({shown.label})" if against else key, means))  # fmt: skip
    if not rows:
        return None
    figure, axes = _figure(7.5, 0.6 + 0.35 * len(rows))
    left = np.zeros(len(rows))
    names = [name for name, _ in rows]
    for index, (state, colour) in enumerate(
        (("on a CPU", "#2ca02c"), ("waiting for a CPU", "#d62728"), ("blocked", "#8899aa"))
    ):
        widths = np.array([means[index] for _, means in rows])
        axes.barh(names, widths, left=left, color=colour, label=state)
        left += widths
    axes.set_xlim(0, max(1.0, float(left.max())))
    axes.set_xlabel("share of the thread's time")
    _legend(axes)
    return _plot("cpu", "Where each stage's thread spent its time (mean of the intervals).", figure)


def _extras(np: Any, run: Run, against: Run | None, keys: list[str]) -> list[str]:
    """Batch sizes and cameras, where the run has them."""
    plots = []
    batched = [k for k in keys if any("batch_mean" in p for p in run.part(k))]
    if batched:
        figure, axes = _figure()
        for index, key in enumerate(batched):
            t = [
                i["t"]
                for i, p in zip(run.intervals, run.part(key), strict=True)
                if "batch_mean" in p
            ]
            sizes = [p["batch_mean"] for p in run.part(key) if "batch_mean" in p]
            axes.plot(t, sizes, color=f"C{index}", label=key)
        axes.set_ylabel("mean batch size")
        axes.set_xlabel("seconds into the run")
        _legend(axes)
        plots.append(_plot("batches", "Mean items a batch (batched stages).", figure))
    cameras = run.header.get("sources") or []
    if cameras:
        figure, axes = _figure()
        t = np.array([i["t"] for i in run.intervals])
        spans = np.array(run.spans())
        for index, name in enumerate(cameras):
            frames = np.array(
                [i.get("sources", {}).get(name, {}).get("frames", 0) for i in run.intervals]
            )
            axes.plot(t, frames / spans, color=f"C{index}", label=name)
        axes.set_ylabel("frames/s")
        axes.set_xlabel("seconds into the run")
        _legend(axes)
        plots.append(_plot("cameras", "Frames a second from each camera.", figure))
    return plots


def _bottleneck(run: Run) -> str | None:
    """The stage the final snapshot's diagnosis names as setting the pace (None: none)."""
    if run.end is None:
        return None
    from framescope.pipeline.views.diagnosis import diagnose_snapshot  # noqa: PLC0415

    diagnosis = diagnose_snapshot(run.end)
    return diagnosis.bottleneck if diagnosis.verdict in ("stage-bound", "stalled") else None


def _median_ms(run: Run, key: str) -> str:
    """The stage's median processing time over the whole run (every recording appended)."""
    samples = [value for part in run.part(key) for value in part.get("samples_ns", ())]
    return f"{statistics.median(samples) / 1e6:.2f} ms p50" if samples else ""


def _graph(run: Run, comparison: Comparison | None) -> str:
    boxes = []
    bottleneck = None if comparison is not None else _bottleneck(run)
    for key in run.stage_keys:
        colour, note = "#999", ""
        if key == bottleneck:
            colour, note = "#d62728", "the bottleneck (the diagnosis)"
        if comparison is not None:
            part = comparison.part(key)
            colour = _VERDICT_COLOURS.get(part.verdict, "#999")
            judged = "cpu" if "cpu" in part.changes else "p50"  # what its verdict is by
            change = part.changes.get(judged)
            figure = "work per item" if judged == "cpu" else "p50"
            note = part.verdict + (
                ""
                if change is None or change.change is None
                else f" ({change.change * 100:+.1f}% {figure})"
            )
        figures = _median_ms(run, key)
        boxes.append(
            f'<div class="node" style="border-color:{colour}"><b>{html.escape(key)}</b>'
            f"<small>{html.escape(figures)}</small><small>{html.escape(note)}</small></div>"
        )
    return f'<div class="graph">{"".join(boxes)}</div>'


def _losses(run: Run, keys: list[str]) -> str:
    whole = run.part(PIPELINE)
    rows = [
        ("pipeline (failed)", sum(p.get("failed", 0) for p in whole)),
        ("pipeline (dropped)", sum(p.get("dropped", 0) for p in whole)),
    ]
    rows += [(f"{key} (failed)", sum(p.get("failures", 0) for p in run.part(key))) for key in keys]
    cells = "".join(f"<tr><td>{html.escape(n)}</td><td>{v:,}</td></tr>" for n, v in rows)
    return f"<table><tr><th>where</th><th>items</th></tr>{cells}</table>"


def _changes(comparison: Comparison) -> str:
    head = "".join(
        f"<th>{c}</th>"
        for c in ("part", "figure", "before", "after", "change", "interval", "verdict")
    )
    body = []
    for row in comparison.rows():
        cells = "".join(f"<td>{html.escape(cell)}</td>" for cell in row[:-1])
        verdict = row[-1]
        body.append(f'<tr>{cells}<td class="{verdict}">{html.escape(verdict)}</td></tr>')
    return f'<table class="changes"><tr>{head}</tr>{"".join(body)}</table>'


def _meta(run: Run) -> str:
    """One line of what describes the run (what its header does not say is left out)."""
    header = run.header
    host = header.get("host") or {}
    load = host.get("load")
    facts = [
        f"{run.seconds:.0f} s recorded"
        + (f" from {header['started']}" if header.get("started") else ""),
        f"{header['mode']} mode" if header.get("mode") else "",
        f"framescope {header['framescope']}" if header.get("framescope") else "",
        f"Python {header['python']}" if header.get("python") else "",
        f"{host['cores']} cores" if host.get("cores") else "",
        f"load {load[0]:.2f}" if load else "",
    ]
    name = f"{header['pipeline']}: " if header.get("pipeline") else ""
    text = html.escape(name + ", ".join(fact for fact in facts if fact))
    warn = ' <span class="warn">the file ends mid-record (a crash?): read up to there</span>'
    return f'<p class="meta">{html.escape(run.label)}: {text}{warn if run.torn else ""}</p>'


def report_html(
    run: Run | str, *, against: Run | str | None = None, title: str | None = None
) -> str:
    """The report page of ``run`` (compared with ``against``, the earlier run, when given)."""
    np = require("numpy", "report", "the run report")
    run = run if isinstance(run, Run) else load_run(run)
    before = (
        None if against is None else (against if isinstance(against, Run) else load_run(against))
    )
    comparison = None if before is None else compare(before, run)
    keys = list(run.stage_keys)
    name = title or (run.label if before is None else f"{before.label} -> {run.label}")
    parts = [f"<h1>{html.escape(name)}</h1>", _meta(run)]
    if before is not None:
        parts.append(_meta(before))
    if comparison is not None:
        parts += [f"<p><b>{html.escape(comparison.headline())}</b></p>"]
    parts += ["<h2>Stages</h2>", _graph(run, comparison)]
    parts += ["<h2>Over the run</h2>", _over_time(np, run, before, [PIPELINE, *keys], "fps")]
    parts.append(_over_time(np, run, before, [PIPELINE, *keys], "latency"))
    parts.append("<h2>Latency distributions</h2>")
    cdfs = "".join(_cdf(np, run, before, key) for key in [PIPELINE, *keys])
    parts.append(f'<div class="row">{cdfs}</div>')
    cpu = _cpu(np, run, before, keys)
    if cpu is not None:
        parts += ["<h2>Where the stages' threads spent their time</h2>", cpu]
    extras = _extras(np, run, before, keys)
    if extras:
        parts += ["<h2>Batches and cameras</h2>", *extras]
    parts += ["<h2>Losses</h2>", _losses(run, keys)]
    if comparison is not None:
        parts += ["<h2>Changes</h2>", _changes(comparison)]
    body = "\n".join(parts)
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(name)}</title><style>{_STYLE}</style></head>"
        f"<body>{body}</body></html>"
    )


def write_report(
    run: Run | str,
    path: str | os.PathLike[str],
    *,
    against: Run | str | None = None,
    title: str | None = None,
) -> Path:
    """Write the report of ``run`` (compared with ``against``) to ``path``; returns the path."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(report_html(run, against=against, title=title), encoding="utf-8")
    return target
