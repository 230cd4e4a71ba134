"""The live page draws each camera's capture-to-glass split as a bar in its box (real browser)."""

from __future__ import annotations

from typing import Any

import pytest

pytest.importorskip("numpy")

from framescope import Pipeline
from framescope.clock import FakeClock
from framescope.live import LiveView
from tests.live.test_browser import browser, eventually, pytestmark  # noqa: F401
from tests.pipeline.test_capture_latency import (
    CAPTURE_S,
    DECODE_S,
    OUTPUT_S,
    QUEUE_S,
    STAGE_S,
    Camera,
    _run_released,
    _stage,
)

_READ_BAR = """
const box = document.querySelector(`#sources .source[data-source='cam']`);
const bar = box && box.querySelector('.glass');
if (!bar) return null;
const whole = bar.getBoundingClientRect().width;
return [bar.title, box.querySelector('.lat').textContent,
        [...bar.children].map((p) => [p.className, 100 * p.getBoundingClientRect().width / whole]),
        document.getElementById('glass-legend').innerText];
"""


def test_a_camera_s_box_shows_its_split_as_a_bar_of_its_parts(browser: Any) -> None:  # noqa: F811
    clock = FakeClock()
    pipeline = Pipeline(name="Cams", clock=clock)
    pipeline.add(_stage(clock), "Detect")
    try:
        _run_released(clock, pipeline, Camera(clock, 3))
        with LiveView(pipeline, refresh=0.1) as view:
            browser.get(view.url)
            title, line, parts, legend = eventually(lambda: browser.execute_script(_READ_BAR))
    finally:
        pipeline.cleanup()
    spans = {
        "capture": CAPTURE_S,
        "decode": DECODE_S,
        "queue": QUEUE_S,
        "pipeline": STAGE_S,
        "output": OUTPUT_S,
    }
    whole = sum(spans.values())
    assert [name for name, _ in parts] == list(spans)
    for (name, width), seconds in zip(parts, spans.values(), strict=True):
        assert width == pytest.approx(100 * seconds / whole, abs=1.0), name
    assert line == f"capture to glass p50 {whole * 1e3:.1f} ms, p99 {whole * 1e3:.1f} ms (rtcp)"
    assert title.startswith("capture p50 30.0 ms, p99 30.0 ms; decode p50 10.0 ms")
    assert title.endswith("output p50 5.0 ms, p99 5.0 ms (clock: rtcp)")
    assert legend.startswith("a camera's bar: its frames' age at p50 from capture to glass")
