"""How data shows itself without importing what renders it.

Data classes (the snapshot, the DepthAI states) call :func:`text` and
:func:`rich` for their ``__str__`` and ``__rich__``; the renderers register
their functions here when they are imported (``framescope.pipeline`` imports
them), so data sits below its renderers and imports none of them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = ["register", "rich", "text"]

_TEXT: dict[type, Callable[[Any], str]] = {}
_RICH: dict[type, Callable[[Any], Any]] = {}


def register(
    kind: type, text: Callable[[Any], str], rich: Callable[[Any], Any] | None = None
) -> None:
    """Render instances of ``kind`` with ``text`` (``str``) and ``rich`` (``__rich__``)."""
    _TEXT[kind] = text
    if rich is not None:
        _RICH[kind] = rich


def _find(table: dict[type, Callable[[Any], Any]], value: object) -> Callable[[Any], Any] | None:
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
