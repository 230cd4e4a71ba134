"""Optional dependencies: the error names the extra that installs them, with or without an import."""

from __future__ import annotations

import sys

import pytest

from framescope._optional import require, require_installed


def test_a_missing_package_names_its_extra_whether_imported_or_only_looked_for() -> None:
    said = (
        r"WebRTC video needs the 'no_such_package_xyz' package: pip install 'framescope\[webrtc\]'"
    )
    with pytest.raises(ImportError, match=said):
        require("no_such_package_xyz.sub", "webrtc", "WebRTC video")
    with pytest.raises(ImportError, match=said):
        require_installed("no_such_package_xyz.sub", "webrtc", "WebRTC video")


def test_an_installed_package_is_only_looked_for_not_imported() -> None:
    sys.modules.pop("json.tool", None)
    require_installed("json.tool", "x", "y")  # the package json is found; nothing loaded
    assert "json.tool" not in sys.modules
    assert require("json", "x", "y") is sys.modules["json"]
