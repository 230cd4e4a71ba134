"""The terminal live view: a pipeline's stages, redrawn in place while it runs."""

from __future__ import annotations

import importlib.util
import sys
import threading
from typing import Any, TextIO

from framescope._validation import check_bool, check_positive_seconds
from framescope.clock import SYSTEM_CLOCK, TimeSource
from framescope.live._pace import Beat
from framescope.pipeline.model.snapshot import SnapshotSource
from framescope.pipeline.views.tables import snapshot_table

__all__ = ["watch"]

_CLEAR = "\x1b[H\x1b[2J"


def watch(
    pipeline: SnapshotSource,
    seconds: float | None = None,
    *,
    refresh: float = 0.5,
    out: TextIO | None = None,
    stop: threading.Event | None = None,
    use_rich: bool | None = None,
    clock: TimeSource | None = None,
) -> None:
    """Show ``pipeline``'s stages live, every ``refresh`` s, for ``seconds`` (or until ``stop``).

    One line for your own pipeline: ``watch(pipeline, 30)``. In a terminal
    with ``rich`` installed it draws a rich table in place (WAITING and
    BLOCKED in colour); elsewhere it prints the text table (the same one
    ``print(pipeline.snapshot())`` prints), redrawn in place on a terminal.
    Each view renders one snapshot: the first at once, then one each
    ``refresh`` s of ``clock`` (the system clock unless given) until
    ``seconds`` of it have passed. Ctrl-C ends it.
    """
    refresh = check_positive_seconds(refresh, "refresh")
    if seconds is not None:
        seconds = check_positive_seconds(seconds, "seconds")
    use_rich = check_bool(use_rich, "use_rich", or_none=True)
    if not isinstance(stop, threading.Event | None):
        raise TypeError(f"stop must be a threading.Event or None, got {type(stop).__name__}")
    if clock is not None and not isinstance(clock, TimeSource):
        raise TypeError(f"clock must be a framescope Clock or None, got {type(clock).__name__}")
    stream = sys.stdout if out is None else out
    tty = stream.isatty()
    if use_rich is None:
        use_rich = tty and importlib.util.find_spec("rich") is not None
    beat = Beat(
        SYSTEM_CLOCK if clock is None else clock,
        refresh,
        threading.Event() if stop is None else stop,
        until=seconds,
    )
    try:
        if use_rich:
            _watch_rich(pipeline, beat, stream)
        else:
            _watch_text(pipeline, beat, stream, in_place=tty)
    except KeyboardInterrupt:
        pass


def _watch_text(pipeline: SnapshotSource, beat: Beat, out: TextIO, *, in_place: bool) -> None:
    while True:
        view = snapshot_table(pipeline.snapshot())
        out.write((_CLEAR if in_place else "\n") + view + "\n")
        out.flush()
        if not beat.wait():
            return


def _watch_rich(pipeline: SnapshotSource, beat: Beat, out: TextIO) -> None:
    from rich.console import Console  # noqa: PLC0415 - optional, checked above
    from rich.live import Live  # noqa: PLC0415

    console = Console(file=out)
    snapshot: Any = pipeline.snapshot()
    # Redrawn on the beat only: rich's own refresh thread would wait in real time.
    with Live(snapshot, console=console, auto_refresh=False) as live:
        while beat.wait():
            live.update(pipeline.snapshot(), refresh=True)
