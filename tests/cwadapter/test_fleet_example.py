"""The fleet metrics example runs end to end against its local servers."""

from __future__ import annotations

import re
import runpy
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

pytest.importorskip("prometheus_client")

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "fleet_metrics.py"


def test_fleet_metrics_example(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AppGraph_Uid", "")  # the example sets it; restored after the test
    with pytest.raises(SystemExit) as exit_info:
        runpy.run_path(str(EXAMPLE), run_name="__main__")
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert 'application_name="people-counter"' in out
    assert 'device_name="dock-camera-3"' in out
    ticked = int(re.search(r"frames ticked: (\d+)", out).group(1))  # type: ignore[union-attr]
    completed = re.search(r'completed_items_total\{pipeline="Counter"\} (\d+)', out)
    assert completed is not None and int(completed.group(1)) == ticked
    frames = re.search(r"CloudWatch frame_time: (\d+) frames", out)
    assert frames is not None and int(frames.group(1)) == ticked - 1  # intervals between ticks
    assert "'dropped': 0" in out and "'pending': 0" in out
