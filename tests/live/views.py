"""A LiveView's view.json as a test reads it, and polling it until it shows what a test waits for."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Callable
from typing import Any

from framescope.live import LiveView
from tests.polling import eventually


def with_query(view: LiveView, path: str) -> str:
    """The URL of ``path`` on ``view``, with the view's token when it has one."""
    base, _, query = view.url.partition("?")
    return base + path + (f"?{query}" if query else "")


def view_json(view: LiveView) -> dict[str, Any]:
    """What the page shows now (``/view.json``)."""
    with urllib.request.urlopen(with_query(view, "view.json"), timeout=5) as answer:
        shown: dict[str, Any] = json.loads(answer.read())
        return shown


def view_showing(
    view: LiveView, check: Callable[[dict[str, Any]], object], limit: float = 15.0
) -> dict[str, Any]:
    """``view.json`` once ``check`` holds for it (polled); an AssertionError with the last reading."""
    last: dict[str, Any] = {}

    def showing() -> dict[str, Any] | None:
        nonlocal last
        last = view_json(view)
        return last if check(last) else None

    try:
        shown: dict[str, Any] = eventually(showing, limit, every=0.02)
    except AssertionError:
        raise AssertionError(f"the view never showed it within {limit} s; last: {last}") from None
    return shown
