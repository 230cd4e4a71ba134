"""On the glass: SpyGlass, VideoWriter and the live preview stamp the frames they send, write, show."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("av")

from framescope.clock import FakeClock
from framescope.live import PreviewTap
from framescope.pipeline import Pipeline
from framescope.video import SpyGlass, SyntheticSource, VideoSource, VideoWriter
from tests.polling import wait_for

WRITE_S = 0.004  # the test's own time between a frame's way out and its writing


def test_frames_written_after_the_run_are_on_the_glass_exactly_when_written(
    tmp_path: Path,
) -> None:
    clock = FakeClock()
    pipeline = Pipeline(name="Cams", clock=clock)
    pipeline.add(lambda frame: frame, "Pass")
    sources = {name: SyntheticSource(32, 32, frames=6, clock=clock) for name in ("a", "b")}
    with VideoWriter(str(tmp_path / "out.mp4"), fps=30) as writer:
        for frame in pipeline.run(sources):
            clock.advance(WRITE_S)
            writer.write(frame)
            assert frame.stamps is not None and frame.stamps.glass_by == "writer"
    snapshot = pipeline.snapshot()
    pipeline.cleanup()
    for name in ("a", "b"):
        latency = snapshot.sources[name].latency
        assert latency is not None
        output = latency.figures("output")
        assert output is not None and output.count == 6
        assert output.p50 == output.maximum == pytest.approx(WRITE_S, abs=1e-9)
        to_glass, to_out = latency.figures("to_glass"), latency.figures("to_out")
        assert to_glass is not None and to_out is not None
        assert to_glass.maximum == pytest.approx(to_out.maximum + WRITE_S, abs=1e-9)
    assert len(list(VideoSource(tmp_path / "out.mp4"))) == 12


@pytest.mark.integration
def test_a_spyglass_stage_puts_on_the_glass_exactly_the_frames_it_sent(tmp_path: Path) -> None:
    spyglass = SpyGlass(str(tmp_path / "sent.mkv"), 30, 64, 48, queue_size=256)
    pipeline = Pipeline(name="Cams")
    pipeline.add(spyglass, "Restream")
    spyglass.start_streaming()
    sources = {name: SyntheticSource(64, 48, frames=20) for name in ("a", "b")}
    try:
        frames = list(pipeline.run(sources))
        assert spyglass.stop_streaming(timeout=30)
        snapshot = pipeline.snapshot()
    finally:
        pipeline.cleanup()
    sent = spyglass.counters()["sent"]
    assert sent == 40
    glassed = [f for f in frames if f.stamps is not None and f.stamps.glass_by == "spyglass"]
    assert len(glassed) == sent
    for frame in glassed:
        stamps = frame.stamps
        assert stamps is not None and stamps.in_ns is not None and stamps.out_ns is not None
        assert stamps.glass_ns is not None and stamps.in_ns <= stamps.out_ns <= stamps.glass_ns
    counted = 0
    for name in ("a", "b"):
        latency = snapshot.sources[name].latency
        assert latency is not None
        output = latency.figures("output")
        assert output is not None
        counted += output.count
    assert counted == sent
    assert len(list(VideoSource(tmp_path / "sent.mkv"))) == sent


def test_the_live_preview_puts_a_frame_it_shows_on_the_glass() -> None:
    clock = FakeClock()
    tap = PreviewTap("annotated", clock=clock)
    pipeline = Pipeline(name="Cams", clock=clock)

    def after(frame: Any) -> Any:
        clock.advance(0.05)  # a stage after the preview: not on the frame's way to its glass
        return frame

    pipeline.add(tap, "Preview").add(after, "After")
    tap.start()
    try:
        results = pipeline.run({"cam": SyntheticSource(32, 32, frames=1, clock=clock)})
        frame = next(results)
        assert frame.stamps is not None and frame.stamps.out_ns is not None
        assert frame.stamps.out_ns == frame.stamps.in_ns  # handed to the preview at once

        def shown() -> bool:
            clock.advance(0.1)  # the preview's pace: one JPEG at most every 0.1 s
            return tap.sequence > 0

        wait_for(shown, 30, "a JPEG")
        assert list(results) == []
        stamps = frame.stamps
        assert stamps is not None
        wait_for(lambda: stamps.glass_by == "preview", 30, "the frame marked shown")
        latency = pipeline.snapshot().sources["cam"].latency
        assert latency is not None
        output = latency.figures("output")
        assert output is not None and output.count == 1
        assert stamps.glass_ns is not None and stamps.out_ns is not None
        assert output.maximum == (stamps.glass_ns - stamps.out_ns) / 1e9
        inside = latency.figures("pipeline")
        assert inside is not None and inside.maximum == 0.0  # the 50 ms after it left out
    finally:
        tap.stop()
        pipeline.cleanup()
