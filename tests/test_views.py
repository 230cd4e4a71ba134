"""How data shows itself: renderers registered now, or named and imported on first render."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from framescope import _views

RENDERER = """
from framescope import _views
from {data} import Shown

_views.register(Shown, lambda value: f"shown {{value.n}}", lambda value: ["rich", value.n])
"""


class Shown:
    def __init__(self, n: int) -> None:
        self.n = n

    def __repr__(self) -> str:
        return f"Shown({self.n})"


def test_a_renderer_named_lazily_loads_on_the_first_render(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "lazy_renderer_for_test.py").write_text(RENDERER.format(data=__name__))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "lazy_renderer_for_test", raising=False)
    _views.register_lazily("lazy_renderer_for_test")
    _views.register_lazily("lazy_renderer_for_test")  # naming it again changes nothing
    assert "lazy_renderer_for_test" not in sys.modules  # naming it imports nothing
    assert _views.text(Shown(3)) == "shown 3"
    assert "lazy_renderer_for_test" in sys.modules
    assert _views.rich(Shown(4)) == ["rich", 4]


def test_without_a_renderer_text_is_the_repr() -> None:
    class Plain:
        def __repr__(self) -> str:
            return "Plain()"

    assert _views.text(Plain()) == "Plain()"
    assert _views.rich(Plain()) == "Plain()"
