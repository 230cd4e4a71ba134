"""Readable renderings of states and snapshots: aligned text tables, and rich tables.

``str(state)``, ``str(snapshot)`` and the terminal live view all come from
here, so what a user prints and what the demo shows read the same.
"""

from __future__ import annotations

from typing import Any

from framescope._optional import require
from framescope._views import register
from framescope.pipeline.model.batches import BatchSnapshot
from framescope.pipeline.model.latency import LATENCY_PARTS, LATENCY_TOTALS
from framescope.pipeline.model.snapshot import PipelineSnapshot
from framescope.pipeline.model.state import NodeState, PipelineState, Timing

# The renderers take states and snapshots by shape (``Any``, as the live views'
# data also is); they register themselves for the classes' __str__ and __rich__
# at the end of this module, so the classes import nothing that renders them.

__all__ = [
    "BATCH_COLUMNS",
    "CLIPS_COLUMNS",
    "LATENCY_COLUMNS",
    "SNAPSHOT_COLUMNS",
    "SOURCE_COLUMNS",
    "STATE_COLUMNS",
    "VIEWER_COLUMNS",
    "batch_rows",
    "batch_sizes_text",
    "batch_text",
    "bytes_text",
    "clips_rows",
    "clocks_text",
    "cpu_text",
    "latency_rows",
    "machine_text",
    "node_text",
    "rich_table",
    "snapshot_head",
    "snapshot_rows",
    "snapshot_table",
    "source_rows",
    "state_rows",
    "state_table",
    "text_table",
    "timing_text",
    "viewer_rows",
]

_WORDS = frozenset(
    {"node", "stage", "state", "input", "source", "why", "sizes", "span", "clock"}
    | {"viewer", "preview", "camera", "codec"}
    | {"part", "figure", "interval", "verdict"}
    | {"recorder", "mode", "recording"}
)
"""Columns of words, aligned left (numbers align right)."""
_STYLES = {
    "WAITING": "yellow",
    "BLOCKED": "bold red",
    "PROCESSING": "green",
    # a source's states
    "running": "green",
    "degraded": "yellow",
    "blocked": "yellow",
    "reconnecting": "yellow",
    "stalled": "bold red",
    "failed": "bold red",
}

SOURCE_COLUMNS = (
    "source",
    "state",
    "for s",
    "frames",
    "fps",
    "dropped",
    "failed",
    "reconnects",
    "up",
    "of nominal",
    "last frame s",
    "why",
)
"""The columns of :func:`source_rows`."""

LATENCY_COLUMNS = ("source", "span", "clock", "frames", "p50 ms", "p90 ms", "p99 ms", "max ms")
"""The columns of :func:`latency_rows`."""

VIEWER_COLUMNS = (
    "viewer",
    "preview",
    "camera",
    "codec",
    "state",
    "sent",
    "dropped",
    "timed",
    "p50 ms",
    "p90 ms",
    "p99 ms",
    "max ms",
    "clock +- ms",
)
"""The columns of :func:`viewer_rows`."""

CLIPS_COLUMNS = (
    "recorder",
    "mode",
    "triggers",
    "written",
    "dropped",
    "deleted",
    "on disk",
    "size",
    "recording",
    "why",
)
"""The columns of :func:`clips_rows`."""


def timing_text(timing: Any) -> str:
    """``12.5 fps, p50 4.10 ms, p90 5.20 ms (1,234 samples)``; ``-`` without samples."""
    if not timing.is_valid():
        return "-"
    stats = timing.duration_stats
    return (
        f"{timing.fps:.1f} fps, p50 {stats.median_micros_recent / 1e3:.2f} ms, "
        f"p90 {stats.p90_micros_recent / 1e3:.2f} ms ({timing.count:,} samples)"
    )


def node_text(node: Any) -> str:
    """A node in a few lines: its state, loop timing, input queue and custom blocks."""
    lines = [f"{node.state}; loop {timing_text(node.main_loop_timing)}"]
    for name, port in node.input_states.items():
        lines.append(f"  input {name}: {port.num_queued} queued, {port.state}")
    for name, port in node.output_states.items():
        lines.append(f"  output {name}: {port.state}")
    lines.extend(f"  {name}: {timing_text(t)}" for name, t in node.other_timings.items())
    return "\n".join(lines)


def _ms(micros: float, valid: bool) -> str:
    return f"{micros / 1e3:.2f}" if valid else "-"


# One meaning per column name in every view: "fps", "p50 ms" and "p90 ms" are
# always the stage's processing (the time inside the stage call, and how many
# calls a second); a node state knows only whole loops (waiting for input and
# handing on included), so its columns say "loop".
STATE_COLUMNS = ("node", "state", "loop fps", "loop p50 ms", "loop p90 ms", "queue", "input")


def state_rows(state: Any) -> list[tuple[str, ...]]:
    """One row per node: id, state, loop rate, loop p50/p90 in ms, queued items, input state.

    A loop lasts from taking an item to having handed it on: waiting for
    input and for room downstream included. A node that ran no loop reads
    0.0 loops a second.
    """
    rows: list[tuple[str, ...]] = []
    for node_id, node in state.node_states.items():
        loop = node.main_loop_timing
        valid = loop.is_valid()
        port = node.input_states.get("in")
        rows.append(
            (
                node_id,
                node.state,
                f"{loop.fps:.1f}" if valid else "0.0",
                _ms(loop.duration_stats.median_micros_recent, valid),
                _ms(loop.duration_stats.p90_micros_recent, valid),
                str(port.num_queued) if port is not None else "-",
                port.state if port is not None else "-",
            )
        )
    return rows


SNAPSHOT_COLUMNS = (
    "stage",
    "state",
    "input",
    "fps",
    "p50 ms",
    "p90 ms",
    "queue",
    "failed",
    "cpu/wait/blk",
)
"""The stage table's columns, the browser live view's too."""


def _percent(share: float | None) -> str:
    return "?" if share is None else f"{share * 100:.0f}"


def cpu_text(split: Any) -> str:
    """``62/30/5%``: a stage thread's recent window on a CPU / waiting for one / blocked.

    Each is a share of the window's wall time (``-`` when not measured;
    ``62/?/?%`` where the system reports only CPU time). The rest of the
    window the thread was idle, waiting for an item.
    """
    if split is None:
        return "-"
    parts = (split.on_cpu, split.waiting, split.blocked)
    return "/".join(_percent(part) for part in parts) + "%"


def machine_text(machine: Any) -> str:
    """One line about the machine: cores, busy share of all of them (every process), load, us.

    ``machine: 4 cores, 50% busy (all processes), load 1.50, this process 0.70 cores``;
    a figure that is not known reads ``?``.
    """
    if machine is None:
        return "machine: not measured"
    cores = "?" if machine.cores is None else f"{machine.cores}"
    load = "?" if machine.load1 is None else f"{machine.load1:.2f}"
    process = "?" if machine.process_cores is None else f"{machine.process_cores:.2f}"
    return (
        f"machine: {cores} cores, {_percent(machine.cpu_busy)}% busy (all processes), "
        f"load {load}, this process {process} cores"
    )


def _input_states(snapshot: Any) -> dict[str, str]:
    """Each node's input state (WAITING, BLOCKED, IDLE) when debugging is on."""
    if not snapshot.debug:
        return {}
    return {
        node_id: node.input_states["in"].state
        for node_id, node in snapshot.state.node_states.items()
        if "in" in node.input_states
    }


def snapshot_rows(snapshot: Any) -> list[tuple[str, ...]]:
    """One row per stage: key, state, input, fps, p50/p90 ms, queue n/size, failures, CPU split.

    fps, p50 and p90 are the stage's processing: calls a second and the time
    inside the stage call (as in the browser live view). A stage that
    received nothing reads 0.0 fps and ``-`` for the times. The last column
    is :func:`cpu_text` of its recent window.
    """
    inputs = _input_states(snapshot)
    rows: list[tuple[str, ...]] = []
    for stage in snapshot.stages:
        stats = stage.latency
        valid = stats.count > 0
        summary = stats.summary() if valid else None
        queue = "-"
        if stage.queue_depth is not None:
            queue = f"{stage.queue_depth}/{stage.queue_capacity}"
        rows.append(
            (
                stage.key,
                stage.phase or "-",
                inputs.get(stage.key, "-"),
                f"{stats.rate(snapshot.taken_ns):.1f}" if valid else "0.0",
                f"{summary.median * 1e3:.2f}" if summary else "-",
                f"{summary.p90 * 1e3:.2f}" if summary else "-",
                queue,
                str(stage.failures),
                cpu_text(stage.cpu),
            )
        )
    return rows


BATCH_COLUMNS = (
    "stage",
    "batch",
    "timeout ms",
    "batches",
    "mean",
    "full",
    "timeout",
    "flush",
    "wait p50 ms",
    "wait p99 ms",
    "wait max ms",
    "sizes",
)
"""The columns of :func:`batch_rows`: a batched stage's batches."""

_SIZES_SHOWN = 6  # the most common batch sizes a cell lists


def batch_sizes_text(sizes: Any) -> str:
    """``8x120 5x30 3x2``: batches of each size, the most common first (six at most, then ...)."""
    common = sorted(sizes.items(), key=lambda entry: (-entry[1], -entry[0]))
    text = " ".join(f"{size}x{count:,}" for size, count in common[:_SIZES_SHOWN])
    return (text + " ...") if len(common) > _SIZES_SHOWN else (text or "-")


def _wait_ms(batch: Any) -> tuple[str, str, str]:
    wait = batch.wait
    if not wait.count:
        return "-", "-", "-"
    return (
        f"{wait.percentile(50) * 1e3:.2f}",
        f"{wait.percentile(99) * 1e3:.2f}",
        f"{wait.maximum * 1e3:.2f}",
    )


def batch_rows(snapshot: Any) -> list[tuple[str, ...]]:
    """One row per batched stage: its batch size and timeout, batches, mean size, why they
    left, the items' wait in a forming batch (p50/p99 recent, max all time), sizes seen."""
    rows = []
    for stage in snapshot.stages:
        batch = stage.batch
        if batch is None:
            continue
        rows.append(
            (
                stage.key,
                str(batch.size),
                f"{batch.timeout_s * 1e3:g}",
                f"{batch.batches:,}",
                f"{batch.mean_size:.1f}",
                *(f"{batch.reason(name):,}" for name in ("full", "timeout", "flush")),
                *_wait_ms(batch),
                batch_sizes_text(batch.sizes),
            )
        )
    return rows


def batch_text(batch: Any) -> str:
    """A batched stage's batches in one line (the browser live view's)."""
    p50, p99, most = _wait_ms(batch)
    return (
        f"batch {batch.size} ({batch.timeout_s * 1e3:g} ms): {batch.batches:,} batches, "
        f"mean {batch.mean_size:.1f} [{batch_sizes_text(batch.sizes)}]; full "
        f"{batch.reason('full'):,}, timeout {batch.reason('timeout'):,}, flush "
        f"{batch.reason('flush'):,}; wait p50 {p50} p99 {p99} max {most} ms"
    )


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def source_rows(snapshot: Any) -> list[tuple[str, ...]]:
    """One row per source of a many-source run (see :data:`SOURCE_COLUMNS`)."""
    return [
        (
            source.name,
            str(source.state),
            _seconds(source.since),
            f"{source.frames:,}",
            "-" if source.fps is None else f"{source.fps:.1f}",
            f"{source.dropped:,}",
            f"{source.failed:,}",
            f"{source.reconnects:,}",
            *_quality_cells(source.quality),
            _seconds(source.last_frame_age),
            source.reason or "",
        )
        for source in snapshot.sources.values()
    ]


def _quality_cells(quality: Any) -> tuple[str, str]:
    """``up`` (the share of its last hour frames came), ``of nominal`` (fps while up / nominal)."""
    if quality is None or not quality.window:
        return "-", "-"
    ratio = quality.rate_ratio
    return f"{quality.up:.1%}", "-" if ratio is None else f"{ratio:.2f}x"


def clocks_text(clocks: Any) -> str:
    """Which capture clocks stamped a source's frames: ``rtcp`` or ``rtcp 97%, received 3%``."""
    total = sum(clocks.values())
    if not total:
        return "-"
    ordered = sorted(clocks.items(), key=lambda entry: -entry[1])
    if len(ordered) == 1:
        return str(ordered[0][0])
    return ", ".join(f"{name} {count / total:.0%}" for name, count in ordered)


def latency_rows(snapshot: Any) -> list[tuple[str, ...]]:
    """Each source's latency split: a row per part and total that has frames.

    The parts in their order (``capture`` -> ``decode`` -> ``queue`` ->
    ``pipeline`` -> ``output``), then the totals (``to_out``, ``to_glass``);
    the first row of a source names the capture clocks of its frames.
    """
    rows = []
    for source in snapshot.sources.values():
        latency = source.latency
        if latency is None:
            continue
        clock = clocks_text(latency.clocks)
        for name in (*LATENCY_PARTS, *LATENCY_TOTALS):
            figures = latency.figures(name)
            if figures is None:
                continue
            rows.append(
                (
                    source.name,
                    name,
                    clock,
                    f"{figures.count:,}",
                    *(f"{v * 1e3:.2f}" for v in (figures.p50, figures.p90, figures.p99)),
                    f"{figures.maximum * 1e3:.2f}",
                )
            )
            clock = ""
    return rows


def viewer_rows(snapshot: Any) -> list[tuple[str, ...]]:
    """Each WebRTC viewer: frames sent and dropped, its stage-to-screen latency (ms).

    ``timed`` is the frames its browser reported presented and matched to
    the stage's moment; the percentiles are over its recent ones; ``clock
    +- ms`` is the uncertainty of relating the browser's clock to this one.
    """
    rows = []
    for viewer in snapshot.viewers:
        latency = viewer.stage_to_screen
        summary = latency.summary() if latency.count else None
        figures = (
            ("-",) * 4
            if summary is None
            else tuple(
                f"{v * 1e3:.1f}"
                for v in (summary.median, summary.p90, summary.p99, summary.maximum)
            )
        )
        uncertainty = viewer.clock_uncertainty
        rows.append(
            (
                viewer.viewer,
                viewer.preview,
                viewer.camera or "all",
                viewer.codec,
                viewer.state,
                f"{viewer.frames_sent:,}",
                f"{viewer.frames_dropped:,}",
                f"{latency.count:,}",
                *figures,
                "-" if uncertainty is None else f"{uncertainty * 1e3:.1f}",
            )
        )
    return rows


def bytes_text(count: int) -> str:
    """A size at a glance: ``512 B``, ``1.5 kB``, ``23.4 MB``, ``1.2 GB`` (powers of 1000)."""
    if count < 1000:
        return f"{count} B"
    value = float(count)
    for unit in ("kB", "MB", "GB", "TB"):
        value /= 1000
        if value < 1000 or unit == "TB":
            break
    return f"{value:.1f} {unit}"


def clips_rows(snapshot: Any) -> list[tuple[str, ...]]:
    """Each event-clip recorder: clips written, dropped, deleted, on disk now, whether it records.

    ``mode`` is ``packets`` (a source's own stream) or ``frames`` (encoded
    by the recorder), ``-`` before either came; ``why`` the drops by
    reason and the last failure to write.
    """
    rows: list[tuple[str, ...]] = []
    for recorder in snapshot.clips:
        why = [f"{reason} {count:,}" for reason, count in recorder.clips_dropped.items() if count]
        if recorder.last_error:
            why.append(f"last error: {recorder.last_error}")
        rows.append(
            (
                recorder.name,
                recorder.mode or "-",
                f"{recorder.triggers:,}",
                f"{recorder.clips_written:,}",
                f"{recorder.dropped:,}",
                f"{recorder.clips_deleted:,}",
                f"{recorder.clips_on_disk:,}",
                bytes_text(recorder.bytes_on_disk),
                "yes" if recorder.recording else "no",
                "; ".join(why),
            )
        )
    return rows


def text_table(columns: tuple[str, ...], rows: list[tuple[str, ...]]) -> str:
    """An aligned text table: words left, numbers right (every row as long as ``columns``)."""
    return _table(columns, rows)


def _table(columns: tuple[str, ...], rows: list[tuple[str, ...]]) -> str:
    widths = [max(len(c), *(len(r[i]) for r in rows)) for i, c in enumerate(columns)]

    left = [column in _WORDS for column in columns]

    def line(cells: tuple[str, ...]) -> str:
        return "  ".join(
            f"{cell:<{width}}" if word else f"{cell:>{width}}"
            for cell, width, word in zip(cells, widths, left, strict=True)
        ).rstrip()

    return "\n".join([line(columns), *map(line, rows)])


def state_table(state: Any) -> str:
    """An aligned text table of every node (see :func:`state_rows`)."""
    rows = state_rows(state)
    return _table(STATE_COLUMNS, rows) if rows else "(no nodes)"


def snapshot_table(snapshot: Any) -> str:
    """The pipeline's headline, the machine's line, a table of its stages, then of its sources.

    See :func:`snapshot_head`, :func:`snapshot_rows`, :func:`batch_rows` (only
    with a batched stage), :func:`source_rows` (only for a many-source run)
    and :func:`clips_rows` (only with event-clip recorders).
    """
    rows = snapshot_rows(snapshot)
    text = snapshot_head(snapshot) + ("\n" + _table(SNAPSHOT_COLUMNS, rows) if rows else "")
    batches = batch_rows(snapshot)
    text += "\n" + _table(BATCH_COLUMNS, batches) if batches else ""
    sources = source_rows(snapshot)
    text += "\n" + _table(SOURCE_COLUMNS, sources) if sources else ""
    latency = latency_rows(snapshot)
    text += "\n" + _table(LATENCY_COLUMNS, latency) if latency else ""
    viewers = viewer_rows(snapshot)
    text += "\n" + _table(VIEWER_COLUMNS, viewers) if viewers else ""
    clips = clips_rows(snapshot)
    return text + ("\n" + _table(CLIPS_COLUMNS, clips) if clips else "")


def snapshot_head(snapshot: Any) -> str:
    """Two lines: items in, out, failed and dropped, end-to-end latency; :func:`machine_text`."""
    counts = snapshot.counters
    latency = snapshot.latency
    head = (
        f"{snapshot.pipeline} ({snapshot.mode or 'not started'}): "
        f"{counts.get('completed', 0):,} completed of {counts.get('forwarded', 0):,} forwarded, "
        f"{counts.get('failed', 0):,} failed, {counts.get('dropped', 0):,} dropped"
    )
    if latency.count:
        summary = latency.summary()
        head += (
            f"; end to end p50 {summary.median * 1e3:.2f} ms, p90 {summary.p90 * 1e3:.2f} ms, "
            f"{latency.rate(snapshot.taken_ns):.1f} items/s"
        )
    return head + "\n" + machine_text(snapshot.machine)


def rich_table(columns: tuple[str, ...], rows: list[tuple[str, ...]], title: str = "") -> Any:
    """A ``rich.table.Table`` of the rows, states coloured (needs the ``rich`` package)."""
    table_type = require("rich.table", "demo", "rendering with rich").Table
    table = table_type(title=title or None)
    for column in columns:
        table.add_column(column, justify="left" if column in _WORDS else "right")
    for row in rows:
        table.add_row(*(f"[{_STYLES[cell]}]{cell}[/]" if cell in _STYLES else cell for cell in row))
    return table


def _rich_snapshot(snapshot: PipelineSnapshot) -> Any:
    table = rich_table(SNAPSHOT_COLUMNS, snapshot_rows(snapshot), title=snapshot_head(snapshot))
    tables = [table]
    batches = batch_rows(snapshot)
    if batches:
        tables.append(rich_table(BATCH_COLUMNS, batches, title="batches"))
    sources = source_rows(snapshot)
    if sources:
        tables.append(rich_table(SOURCE_COLUMNS, sources, title="sources"))
    latency = latency_rows(snapshot)
    if latency:
        tables.append(rich_table(LATENCY_COLUMNS, latency, title="capture to glass"))
    viewers = viewer_rows(snapshot)
    if viewers:
        tables.append(rich_table(VIEWER_COLUMNS, viewers, title="WebRTC viewers: stage to screen"))
    clips = clips_rows(snapshot)
    if clips:
        tables.append(rich_table(CLIPS_COLUMNS, clips, title="event clips"))
    if len(tables) == 1:
        return table
    group = require("rich.console", "demo", "rendering with rich").Group
    return group(*tables)


def _rich_state(state: PipelineState) -> Any:
    return rich_table(STATE_COLUMNS, state_rows(state))


register(PipelineSnapshot, snapshot_table, _rich_snapshot)
register(PipelineState, state_table, _rich_state)
register(NodeState, node_text)
register(Timing, timing_text)
register(BatchSnapshot, batch_text)
