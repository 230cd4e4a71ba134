"""How data shows itself without importing what renders it.

Data classes (the snapshot, the DepthAI states) call :func:`text` and
:func:`rich` for their ``__str__`` and ``__rich__``; the renderers register
their functions here when they are imported, so data sits below its renderers
and imports none of them. A package names its renderer modules with
:func:`register_lazily` (``framescope.pipeline`` does); they are imported when
something is first rendered, not when the package is.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Callable
from typing import Any

__all__ = ["register", "register_lazily", "rich", "text"]

_TEXT: dict[type, Callable[[Any], str]] = {}
_RICH: dict[type, Callable[[Any], Any]] = {}
_PENDING: list[str] = []
"""Renderer modules named by register_lazily and not imported yet."""
_PENDING_LOCK = threading.RLock()


def register(
    kind: type, text: Callable[[Any], str], rich: Callable[[Any], Any] | None = None
) -> None:
    """Render instances of ``kind`` with ``text`` (``str``) and ``rich`` (``__rich__``)."""
    _TEXT[kind] = text
    if rich is not None:
        _RICH[kind] = rich


def register_lazily(module: str) -> None:
    """Import ``module`` (which calls :func:`register`) when something is first rendered."""
    with _PENDING_LOCK:
        if module not in _PENDING:
            _PENDING.append(module)


def _load_pending() -> None:
    # Held while importing, so no other thread renders with a renderer half registered.
    with _PENDING_LOCK:
        while _PENDING:
            importlib.import_module(_PENDING[0])
            _PENDING.pop(0)


def _find(table: dict[type, Callable[[Any], Any]], value: object) -> Callable[[Any], Any] | None:
    if _PENDING:
        _load_pending()
    for kind in type(value).__mro__:
        found = table.get(kind)
        if found is not None:
            return found
    return None


def text(value: object) -> str:
    """``value`` as text, by its registered renderer (its repr while none is registered)."""
    render = _find(_TEXT, value)
    return repr(value) if render is None else str(render(value))


def rich(value: object) -> Any:
    """``value`` for ``rich.print``: its registered rich renderer, else its text."""
    render = _find(_RICH, value)
    return text(value) if render is None else render(value)
