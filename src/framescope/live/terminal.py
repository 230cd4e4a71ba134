"""The terminal live view: a pipeline's stages, redrawn in place while it runs."""

from __future__ import annotations

import importlib.util
import sys
import threading
from typing import Any, TextIO

from framescope._validation import check_bool, check_positive_seconds
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
) -> None:
    """Show ``pipeline``'s stages live, every ``refresh`` s, for ``seconds`` (or until ``stop``).

    One line for your own pipeline: ``watch(pipeline, 30)``. In a terminal
    with ``rich`` installed it draws a rich table in place (WAITING and
    BLOCKED in colour); elsewhere it prints the text table (the same one
    ``print(pipeline.snapshot())`` prints), redrawn in place on a terminal.
    Each view renders one snapshot. Ctrl-C ends it.
    """
    refresh = check_positive_seconds(refresh, "refresh")
    if seconds is not None:
        seconds = check_positive_seconds(seconds, "seconds")
    use_rich = check_bool(use_rich, "use_rich", or_none=True)
    if not isinstance(stop, threading.Event | None):
        raise TypeError(f"stop must be a threading.Event or None, got {type(stop).__name__}")
    stream = sys.stdout if out is None else out
    stopped = threading.Event() if stop is None else stop
    tty = stream.isatty()
    if use_rich is None:
        use_rich = tty and importlib.util.find_spec("rich") is not None
    deadline = None
    if seconds is not None:
        deadline = threading.Timer(seconds, stopped.set)
        deadline.daemon = True
        deadline.start()
    try:
        if use_rich:
            _watch_rich(pipeline, refresh, stream, stopped)
        else:
            _watch_text(pipeline, refresh, stream, stopped, in_place=tty)
    except KeyboardInterrupt:
        pass
    finally:
        if deadline is not None:
            deadline.cancel()


def _watch_text(
    pipeline: SnapshotSource, refresh: float, out: TextIO, stop: threading.Event, *, in_place: bool
) -> None:
    while True:
        view = snapshot_table(pipeline.snapshot())
        out.write((_CLEAR if in_place else "\n") + view + "\n")
        out.flush()
        if stop.wait(refresh):
            return


def _watch_rich(
    pipeline: SnapshotSource, refresh: float, out: TextIO, stop: threading.Event
) -> None:
    from rich.console import Console  # noqa: PLC0415 - optional, checked above
    from rich.live import Live  # noqa: PLC0415

    console = Console(file=out)
    snapshot: Any = pipeline.snapshot()
    with Live(snapshot, console=console, refresh_per_second=max(1.0, 1 / refresh)) as live:
        while not stop.wait(refresh):
            live.update(pipeline.snapshot())
