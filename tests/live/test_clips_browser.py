"""An event clip on the live page in a real browser (Debian's Chromium): its box, and it plays."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("selenium", reason="selenium drives the browser")

from selenium.webdriver.common.by import By

from framescope.live import LiveView

from .test_browser import browser, eventually, pytestmark  # noqa: F401 - the fixture and marks
from .test_clips import _record_one_clip


def test_a_recorder_s_box_lists_its_clip_and_the_clip_plays_in_the_page(
    browser: Any,  # noqa: F811 - the fixture
    tmp_path: Path,
) -> None:
    pytest.importorskip("av")
    pipeline, clips = _record_one_clip(tmp_path / "door")
    try:
        with LiveView(pipeline, refresh=0.1) as view:
            browser.get(view.url)
            link = eventually(lambda: browser.find_element(By.CSS_SELECTOR, "#clips-0 a.play"))
            box = browser.find_element(By.ID, "clips-0")
            assert "clips: door (frames)" in box.text
            assert "1 written, 0 dropped" in box.text and "1 on disk" in box.text
            assert "person" in box.text and "camera=door" in box.text
            (clip,) = clips.clips()
            assert link.get_attribute("href").endswith(f"/clips/door/{clip.file}")
            link.click()
            video = browser.find_element(By.CSS_SELECTOR, "#clips-0 video")

            def played() -> Any:
                state = browser.execute_script(
                    "const v = arguments[0]; return [v.error && v.error.code, v.duration,"
                    " v.getVideoPlaybackQuality().totalVideoFrames];",
                    video,
                )
                assert state[0] is None, f"the video failed: MediaError {state[0]}"
                return state if state[1] > 0 and state[2] > 0 else None

            _, duration, _ = eventually(played)
            assert duration == pytest.approx(clip.duration_s, abs=0.1)
    finally:
        pipeline.cleanup()
        clips.close()
