"""Readable renderings of states and snapshots: aligned text tables, and rich tables.

``str(state)``, ``str(snapshot)`` and the terminal live view all come from
here, so what a user prints and what the demo shows read the same.
"""

from __future__ import annotations

from typing import Any

from framescope._optional import require

# The renderers take states and snapshots by shape (``Any``): the classes call
# them for their own __str__, so this module must not import them back.

__all__ = [
    "SNAPSHOT_COLUMNS",
    "STATE_COLUMNS",
    "node_text",
    "rich_table",
    "snapshot_rows",
    "snapshot_table",
    "state_rows",
    "state_table",
    "timing_text",
]

_STYLES = {"WAITING": "yellow", "BLOCKED": "bold red", "PROCESSING": "green"}


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


STATE_COLUMNS = ("node", "state", "fps", "p50 ms", "p90 ms", "queue", "input")


def state_rows(state: Any) -> list[tuple[str, ...]]:
    """One row per node: id, state, fps, loop p50/p90 in ms, queued items, input state."""
    rows: list[tuple[str, ...]] = []
    for node_id, node in state.node_states.items():
        loop = node.main_loop_timing
        valid = loop.is_valid()
        port = node.input_states.get("in")
        rows.append(
            (
                node_id,
                node.state,
                f"{loop.fps:.1f}" if valid else "-",
                _ms(loop.duration_stats.median_micros_recent, valid),
                _ms(loop.duration_stats.p90_micros_recent, valid),
                str(port.num_queued) if port is not None else "-",
                port.state if port is not None else "-",
            )
        )
    return rows


SNAPSHOT_COLUMNS = ("stage", "state", "fps", "p50 ms", "p90 ms", "queue", "failed")


def snapshot_rows(snapshot: Any) -> list[tuple[str, ...]]:
    """One row per stage: key, state, fps, processing p50/p90 ms, queue n/size, failures."""
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
                f"{stats.rate(snapshot.taken_ns):.1f}" if valid else "-",
                f"{summary.median * 1e3:.2f}" if summary else "-",
                f"{summary.p90 * 1e3:.2f}" if summary else "-",
                queue,
                str(stage.failures),
            )
        )
    return rows


def _table(columns: tuple[str, ...], rows: list[tuple[str, ...]]) -> str:
    widths = [max(len(c), *(len(r[i]) for r in rows)) for i, c in enumerate(columns)]

    def line(cells: tuple[str, ...]) -> str:
        first = f"{cells[0]:<{widths[0]}}  {cells[1]:<{widths[1]}}"
        rest = "  ".join(
            f"{cell:>{width}}" for cell, width in zip(cells[2:], widths[2:], strict=True)
        )
        return f"{first}  {rest}".rstrip()

    return "\n".join([line(columns), *map(line, rows)])


def state_table(state: Any) -> str:
    """An aligned text table of every node (see :func:`state_rows`)."""
    rows = state_rows(state)
    return _table(STATE_COLUMNS, rows) if rows else "(no nodes)"


def snapshot_table(snapshot: Any) -> str:
    """The pipeline's headline, then a table of its stages (see :func:`snapshot_rows`)."""
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
    rows = snapshot_rows(snapshot)
    return head + ("\n" + _table(SNAPSHOT_COLUMNS, rows) if rows else "")


def rich_table(columns: tuple[str, ...], rows: list[tuple[str, ...]], title: str = "") -> Any:
    """A ``rich.table.Table`` of the rows, states coloured (needs the ``rich`` package)."""
    table_type = require("rich.table", "demo", "rendering with rich").Table
    table = table_type(title=title or None)
    for index, column in enumerate(columns):
        table.add_column(column, justify="left" if index < 2 else "right")
    for row in rows:
        table.add_row(*(f"[{_STYLES[cell]}]{cell}[/]" if cell in _STYLES else cell for cell in row))
    return table
