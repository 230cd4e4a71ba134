"""The live page in a real browser: Debian's Chromium, driven by selenium."""

from __future__ import annotations

import shutil
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("selenium", reason="selenium drives the browser")

from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By

from framescope import Pipeline
from framescope.live import LiveView
from tests import polling

from ..pipeline.helpers import Gate
from .camera import Camera, striped

CHROMIUM, DRIVER = shutil.which("chromium"), shutil.which("chromedriver")
pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        CHROMIUM is None or DRIVER is None,
        reason="Debian's chromium and chromium-driver are not installed "
        "(scripts/install-test-servers.sh installs them)",
    ),
]


@pytest.fixture
def browser() -> Iterator[Any]:
    options = Options()
    options.binary_location = CHROMIUM  # type: ignore[assignment]
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--autoplay-policy=no-user-gesture-required",
    ):
        options.add_argument(argument)
    options.page_load_strategy = "none"  # SSE and MJPEG never finish loading
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    driver.set_window_size(1200, 800)
    yield driver
    driver.quit()


def eventually(check: Callable[[], Any], limit: float = 20) -> Any:
    """The page may still be drawing: an error from ``check`` counts as not yet."""
    return polling.eventually(check, limit, errors=True)


def as_mjpeg(url: str) -> str:
    """The page at ``url`` showing its previews as MJPEG (not WebRTC)."""
    return url + ("&" if "?" in url else "?") + "video=mjpeg"


def totals(driver: Any) -> str:
    text: str = driver.find_element(By.ID, "totals").text
    return text


def test_the_page_shows_every_stage_and_live_numbers(browser: Any, tmp_path: Path) -> None:
    pipeline = Pipeline(name="Cam", debug=True).add(lambda x: x, "Decode")
    pipeline.add(lambda x: x, "Detect").add(lambda x: x, "Draw").parallelize(queue_size=4)
    with LiveView(pipeline, refresh=0.1) as view:
        browser.get(view.url)
        names = eventually(
            lambda: [e.text for e in browser.find_elements(By.CSS_SELECTOR, "#graph .node b")]
        )
        assert names == ["Cam__Decode", "Cam__Detect", "Cam__Draw"]
        assert eventually(lambda: browser.find_element(By.ID, "conn").text == "live")
        for item in range(5):
            pipeline.forward(item)
        assert eventually(lambda: totals(browser).startswith("5 completed of 5"))
        for item in range(5):
            pipeline.forward(item)
        assert eventually(lambda: totals(browser).startswith("10 completed of 10"))  # SSE arrive
        browser.save_screenshot(str(tmp_path / "live.png"))
    # The server stopped: the indicator says so, and the page keeps trying.
    assert eventually(lambda: "lost" in browser.find_element(By.ID, "conn").get_attribute("class"))
    pipeline.cleanup()


def test_replicas_are_shown_inside_their_stage(browser: Any) -> None:
    pipeline = Pipeline(name="Cam", debug=True).add(lambda x: x, "Decode")
    pipeline.add(lambda x: x, "Detect", replicas=3).parallelize(queue_size=4)
    try:
        with LiveView(pipeline, refresh=0.1) as view:
            browser.get(view.url)
            names = eventually(
                lambda: [e.text for e in browser.find_elements(By.CSS_SELECTOR, "#graph .node > b")]
            )
            assert names == ["Cam__Decode", "Cam__Detect \u00d73"]
            for item in range(30):
                pipeline.forward(item)
            assert eventually(lambda: totals(browser).startswith("30 completed of 30"))
            # one reading of the page (it redraws every refresh)
            lines, rows = browser.execute_script(
                "return [[...document.querySelectorAll('.node[data-key=\"Cam__Detect\"] .replica')]"
                ".map(e => [e.dataset.key, e.textContent]),"
                "[...document.querySelectorAll('#stages tbody tr')]"
                ".map(r => r.firstChild.textContent.trim())]"
            )
    finally:
        pipeline.cleanup()
    assert [key for key, _ in lines] == [f"Cam__Detect#{index}" for index in range(3)]
    assert all(line.startswith(f"#{i} ") and "fps" in line for i, (_, line) in enumerate(lines))
    replicas = [f"Cam__Detect#{index}" for index in range(3)]
    assert rows == ["Cam__Decode", "Cam__Detect", *replicas]


def test_a_batched_stage_shows_its_batches_in_its_box(browser: Any) -> None:
    # One item at a time, each read before the next goes in: every batch leaves
    # with one item at its timeout, however slow the machine (12 batches).
    pipeline = Pipeline(name="Cam").add(lambda items: items, "Detect", batch=4, batch_timeout=0.001)
    pipeline.parallelize(queue_size=8)
    try:
        with LiveView(pipeline, refresh=0.1) as view:
            browser.get(view.url)
            results = pipeline.results(timeout=30)
            for item in range(12):
                pipeline.forward(item)
                assert next(results) == item
            assert eventually(lambda: totals(browser).startswith("12 completed of 12"))
            line = eventually(
                lambda: (
                    browser.find_element(
                        By.CSS_SELECTOR, '.node[data-key="Cam__Detect"] .batch'
                    ).text
                )
            )
            reasons = eventually(lambda: browser.find_element(By.ID, "reasons").text)
    finally:
        pipeline.cleanup()
    assert line.startswith("batch 4 (1 ms): 12 batches, mean 1.0 [1x12]; full 0, timeout 12")
    # Every batch left at its timeout: the diagnosis's advice is on the page.
    assert "Batching: Cam__Detect: 12 of 12 batches left at their 1 ms timeout" in reasons


def test_a_blocked_input_turns_red_behind_a_gated_stage(browser: Any) -> None:
    gate = Gate()
    pipeline = Pipeline(name="Cam", debug=True).add(lambda x: x, "Decode").add(gate)
    pipeline.parallelize(queue_size=1)
    try:
        _look_at_the_gate(browser, pipeline, gate)
    finally:
        gate.release.set()
        pipeline.cleanup()


def _look_at_the_gate(browser: Any, pipeline: Pipeline, gate: Gate) -> None:
    with LiveView(pipeline, refresh=0.1) as view:
        for item in range(3):
            pipeline.forward(item)
        assert gate.entered.wait(10)
        browser.get(view.url)
        # The page redraws each event: read the node in one script, not across redraws.
        colour, classes = eventually(
            lambda: browser.execute_script(
                "const n = document.querySelector('#graph .node[data-key=\"Cam__Gate\"]');"
                "const b = n && n.querySelector('.in.BLOCKED');"
                "return b ? [getComputedStyle(b).backgroundColor, n.className] : null;"
            )
        )
        assert colour == "rgb(204, 34, 34)"  # DepthAI's red for BLOCKED
        assert "PROCESSING" in classes
        # Nothing comes out for 5 s: the verdict names the gated stage, outlined.
        verdict = eventually(lambda: _stalled_verdict(browser), limit=30)
        assert "Cam__Gate is still processing its item" in verdict
        assert (
            eventually(
                lambda: browser.execute_script(
                    "const n = document.querySelector('#graph .node.bottleneck');"
                    "return n && n.dataset.key;"
                )
            )
            == "Cam__Gate"
        )


def _stalled_verdict(browser: Any) -> str | None:
    verdict = browser.find_element(By.ID, "verdict").text
    reasons: str = browser.find_element(By.ID, "reasons").text
    return reasons if verdict.startswith("stalled") else None


def test_nested_pipelines_are_grouped(browser: Any) -> None:
    inner = Pipeline(name="Inner").add(lambda x: x, "Resize").add(lambda x: x, "Crop")
    outer = Pipeline(name="Outer", debug=True).add(lambda x: x, "Decode").add(inner)
    outer.add(lambda x: x, "Draw").parallelize(queue_size=2)
    for _ in outer.run(range(5)):
        pass
    with LiveView(outer, refresh=0.1) as view:
        browser.get(view.url)
        grouped = eventually(
            lambda: browser.execute_script(
                "const g = document.querySelector('.group[data-group=\"Outer__Inner\"]');"
                "return g && [...g.querySelectorAll('.node b')].map((b) => b.textContent);"
            )
        )
        assert grouped == ["Outer__Inner__Resize", "Outer__Inner__Crop"]
        top = browser.execute_script(
            "const g = document.querySelector('.group[data-group=\"Outer\"]');"
            "return [...g.children].filter((c) => c.classList.contains('node'))"
            ".map((n) => n.dataset.key);"
        )
        assert top == ["Outer__Decode", "Outer__Inner", "Outer__Draw"]
    outer.cleanup()


_BOX = """
import sys, threading, time
from framescope import Pipeline
from framescope.live import LiveView
pipeline = Pipeline(name=sys.argv[1], debug=True).add(lambda x: x, "Detect")
pipeline.add(lambda x: x, "Draw").parallelize(queue_size=4)
view = LiveView(pipeline, refresh=0.1).start()
print(view.url, flush=True)
gone = threading.Event()
threading.Thread(target=lambda: (sys.stdin.read(), gone.set()), daemon=True).start()
deadline, item = time.monotonic() + 120, 0
while not gone.is_set() and time.monotonic() < deadline:  # until the test lets go
    pipeline.forward(item)
    item += 1
    time.sleep(0.02)
view.close()
pipeline.cleanup()
"""


def test_a_fleet_of_two_processes_and_one_killed(browser: Any) -> None:
    import subprocess
    import sys

    boxes = [
        subprocess.Popen(
            [sys.executable, "-c", _BOX, name],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for name in ("Left", "Right")
    ]
    try:
        urls = [box.stdout.readline().strip() for box in boxes if box.stdout is not None]
        ports = [url.rsplit(":", 1)[1].strip("/") for url in urls]
        with LiveView(*urls, refresh=0.1) as fleet:
            browser.get(fleet.url)
            expected = [f"127_0_0_1_{ports[0]}__Left__Detect", f"127_0_0_1_{ports[1]}__Right__Draw"]
            names = eventually(
                lambda: (
                    found
                    if set(expected)
                    <= set(
                        found := [
                            e.text for e in browser.find_elements(By.CSS_SELECTOR, "#graph .node b")
                        ]
                    )
                    else None
                )
            )
            assert len(names) == 4
            assert eventually(lambda: totals(browser).split()[0] != "0")  # items from both
            boxes[1].kill()
            boxes[1].wait(10)
            gone = eventually(lambda: browser.find_element(By.ID, "unreachable").text)
            assert gone.startswith(f"127_0_0_1_{ports[1]} unreachable since")
            shown = browser.execute_script(  # in one call: the page redraws every event
                "return [...document.querySelectorAll('#graph .node b')].map((b) => b.textContent);"
            )
            assert expected[1] in shown  # its last answer stays on the page
    finally:
        for box in boxes:
            if box.stdin is not None:
                box.stdin.close()
            try:
                box.wait(10)
            except subprocess.TimeoutExpired:
                box.kill()
                box.wait(5)
            if box.stdout is not None:
                box.stdout.close()


def test_the_preview_image_receives_frames(browser: Any) -> None:
    pytest.importorskip("av")
    pipeline = Pipeline(name="Cam")
    view = LiveView(pipeline, refresh=0.1)
    pipeline.add(lambda f: f, "Annotate").add(view.preview("annotated", fps=20)).parallelize()
    with view:
        browser.get(as_mjpeg(view.url))
        for _ in range(40):
            pipeline.forward(np.full((120, 160, 3), 180, np.uint8))
            time.sleep(0.02)
        size = eventually(
            lambda: browser.execute_script(
                "const i = document.getElementById('preview-annotated');"
                "return i && i.naturalWidth ? [i.naturalWidth, i.naturalHeight] : null;"
            )
        )
        assert size == [160, 120]
    pipeline.cleanup()


def test_without_the_token_the_browser_gets_401(browser: Any) -> None:
    pipeline = Pipeline(name="Cam").add(lambda x: x, "A")
    with LiveView(pipeline, host="0.0.0.0", refresh=0.1) as view:
        browser.get(f"http://127.0.0.1:{view.port}/")
        assert eventually(lambda: "unauthorised" in browser.find_element(By.TAG_NAME, "body").text)
        browser.get(view.url)  # with the token: the page
        assert eventually(lambda: browser.find_elements(By.CSS_SELECTOR, "#graph .node"))
    pipeline.cleanup()


def test_a_screenshot_of_the_demo_pipeline(browser: Any, tmp_path: Path) -> None:
    """The page for the demo pipeline; ``FRAMESCOPE_SCREENSHOT=path`` also saves it there."""
    import os

    pytest.importorskip("av")
    from framescope.demo import build_demo_pipeline, demo_clip, video_frames
    from framescope.live import PreviewTap

    tap = PreviewTap("annotated")
    pipeline = build_demo_pipeline(video_frames(demo_clip(tmp_path, seconds=2)), preview=tap)
    view = LiveView(pipeline, refresh=0.25)
    view.previews[tap.name] = tap
    with view:
        pipeline.start_loop(1 / 200)
        browser.set_window_size(1500, 760)
        browser.get(as_mjpeg(view.url))
        assert eventually(
            lambda: browser.execute_script(
                "const i = document.getElementById('preview-annotated');"
                "return i && i.naturalWidth === 640;"
            )
        )
        time.sleep(3)  # a few seconds of sparklines
        shot = tmp_path / "live-view.png"
        browser.save_screenshot(str(shot))
        pipeline.stop_loop()
    pipeline.cleanup()
    assert shot.stat().st_size > 10_000
    target = os.environ.get("FRAMESCOPE_SCREENSHOT")
    if target:
        Path(target).write_bytes(shot.read_bytes())


class Feeder:
    """Forwards ``make(n)`` into a pipeline from its own thread until stopped (a live source)."""

    def __init__(self, pipeline: Pipeline, make: Callable[[int], Any]) -> None:
        self.pipeline, self.make = pipeline, make
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name="test-feeder")

    def _run(self) -> None:
        number = 0
        while not self.stop.wait(0.02):
            self.pipeline.forward(self.make(number))
            number += 1

    def __enter__(self) -> Feeder:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(10)


def preview_note(driver: Any, name: str) -> str:
    text: str = driver.find_element(By.ID, f"preview-{name}-note").text
    return text


def test_a_stage_that_returns_a_dict_shows_its_image(browser: Any) -> None:
    pytest.importorskip("av")
    pipeline = Pipeline(name="Cam")
    pipeline.add(lambda f: {"frame": f, "index": 7}, "Annotate").parallelize()
    view = LiveView(pipeline, refresh=0.1)
    view.preview("annotated", "Annotate", fps=20)
    with pipeline, view, Feeder(pipeline, lambda n: np.full((120, 160, 3), 180, np.uint8)):
        browser.get(as_mjpeg(view.url))
        size = eventually(
            lambda: browser.execute_script(
                "const i = document.getElementById('preview-annotated');"
                "return i && i.naturalWidth ? [i.naturalWidth, i.naturalHeight] : null;"
            )
        )
        assert size == [160, 120]
        assert eventually(lambda: preview_note(browser, "annotated") == "")


def test_a_result_without_an_image_says_so_in_the_preview_box(browser: Any) -> None:
    pipeline = Pipeline(name="Cam")
    pipeline.add(lambda f: {"score": 0.9}, "Annotate").parallelize()
    view = LiveView(pipeline, refresh=0.1)
    view.preview("annotated", "Annotate", fps=20)
    with pipeline, view, Feeder(pipeline, lambda n: n):
        browser.get(view.url)
        assert eventually(
            lambda: (
                preview_note(browser, "annotated")
                == "Annotate returns dict without an image in it: pass image=..."
            )
        )


def test_an_empty_preview_does_not_hold_up_the_page(browser: Any) -> None:
    pipeline = Pipeline(name="Cam").add(lambda f: f, "Annotate").parallelize()
    view = LiveView(pipeline, refresh=0.1)
    view.preview("annotated", "Annotate")
    with pipeline, view:  # no frame ever comes
        browser.get(as_mjpeg(view.url))
        # The load event fires promptly (the MJPEG stream starts after it), not after 30 s.
        assert eventually(
            lambda: browser.execute_script("return document.readyState") == "complete", 10
        )
        assert browser.execute_script(
            "return document.getElementById('preview-annotated').src"
        ).endswith("video/annotated.mjpg")
        assert eventually(
            lambda: preview_note(browser, "annotated") == "waiting for the first frame"
        )


def mjpeg_parts(url: str, count: int) -> list[bytes]:
    """The first ``count`` JPEGs of an MJPEG stream."""
    parts = []
    with urllib.request.urlopen(url, timeout=10) as stream:
        while len(parts) < count:
            assert stream.readline() == b"--frame\r\n"
            assert stream.readline() == b"Content-Type: image/jpeg\r\n"
            length = int(stream.readline().split(b":")[1])
            assert stream.readline() == b"\r\n"
            parts.append(stream.read(length))
            stream.readline()
    return parts


def test_a_stage_that_reuses_its_output_buffer_keeps_the_preview_moving(browser: Any) -> None:
    pytest.importorskip("av")
    buffer = np.zeros((120, 160, 3), np.uint8)

    def draw(n: int) -> Any:
        buffer[:] = (n * 37) % 256  # one preallocated frame, drawn into every time
        return buffer

    pipeline = Pipeline(name="Cam").add(draw, "Annotate").parallelize()
    view = LiveView(pipeline, refresh=0.1)
    view.preview("annotated", "Annotate", fps=20)
    with pipeline, view, Feeder(pipeline, lambda n: n):
        browser.get(as_mjpeg(view.url))
        assert eventually(
            lambda: browser.execute_script(
                "return document.getElementById('preview-annotated').naturalWidth === 160"
            )
        )
        parts = mjpeg_parts(view.url.split("?")[0] + "video/annotated.mjpg", 4)
        assert len(set(parts)) == 4  # every JPEG a new picture


_READ_CPU = """
const bars = {};
for (const bar of document.querySelectorAll('#graph .cpu')) {
  const owner = bar.closest('[data-key]').dataset.key, whole = bar.getBoundingClientRect().width;
  bars[owner] = {title: bar.title, parts: [...bar.children].map(
    (part) => [part.className, 100 * part.getBoundingClientRect().width / whole])};
}
const cells = {};
for (const row of document.querySelectorAll('#stages tbody tr')) {
  cells[row.firstChild.textContent.trim()] = row.lastChild.textContent;
}
return [bars, cells, document.getElementById('machine').textContent];
"""


def test_each_stage_shows_a_bar_of_where_its_time_goes(browser: Any, clock: Any) -> None:
    from ..cpu_figures import measured_pipeline

    pipeline, _ = measured_pipeline(clock)
    try:
        with LiveView(pipeline, refresh=0.1) as view:
            browser.get(view.url)
            # one reading of the page (it redraws every refresh)
            bars, cells, machine = eventually(
                lambda: (read := browser.execute_script(_READ_CPU))[2] and read
            )
    finally:
        pipeline.cleanup()
    assert (
        machine == "machine: 4 cores, 50% busy (all processes), load 1.50, this process 0.70 cores"
    )
    assert cells == {
        "Cam__Detect": "50/20/10%",
        "Cam__Infer": "20/10/0%",
        "Cam__Infer#0": "30/10/0%",
        "Cam__Infer#1": "10/10/0%",
        "Cam__Draw": "10/?/?%",
    }
    expected = {
        "Cam__Detect": [("on", 50), ("wait", 20), ("blk", 10)],  # and 20% idle
        "Cam__Infer": [("on", 20), ("wait", 10), ("blk", 0)],
        "Cam__Infer#0": [("on", 30), ("wait", 10), ("blk", 0)],
        "Cam__Infer#1": [("on", 10), ("wait", 10), ("blk", 0)],
        "Cam__Draw": [("on", 10), ("unk", 0)],  # busy 0: nothing of it left unsplit
    }
    assert set(bars) == set(expected)
    for key, parts in expected.items():
        names = [name for name, _ in bars[key]["parts"]]
        assert names == [name for name, _ in parts], key
        for (_, width), (_, share) in zip(bars[key]["parts"], parts, strict=True):
            assert width == pytest.approx(share, abs=1.0), key
    assert bars["Cam__Detect"]["title"] == (
        "on a CPU 50.0%, waiting for a CPU 20.0%, blocked 10.0%, idle 20.0% of the last 1.0 s"
    )
    assert "waiting and blocked unknown" in bars["Cam__Draw"]["title"]


def _source_box(browser: Any, name: str) -> list[Any] | None:
    """[classes, text, background colour] of a source's box, read in one script (one redraw)."""
    found: list[Any] | None = browser.execute_script(
        "const b = document.querySelector(`#sources .source[data-source='${arguments[0]}']`);"
        "return b ? [b.className, b.innerText, getComputedStyle(b).backgroundColor] : null;",
        name,
    )
    return found


def test_a_stalled_camera_s_box_turns_grey_with_the_time_since_its_last_frame(
    browser: Any, clock: Any
) -> None:
    from framescope.pipeline.model.sources import SourceState

    from ..pipeline.test_many_sources import Gate as SilentSource

    silent = SilentSource(before=2, after=3)
    pipeline = Pipeline(name="Cams", clock=clock).add(lambda item: item, "Pass").parallelize()
    run = pipeline.run({"cam1": silent, "cam2": range(2)}, stall_after=2.0)
    reader = threading.Thread(target=lambda: list(run), name="framescope-test:reader")
    try:
        reader.start()
        assert silent.waiting.wait(10)
        with LiveView(pipeline, refresh=0.1) as view:
            browser.get(view.url)
            classes, shown, _ = eventually(lambda: _source_box(browser, "cam1"))
            assert classes == "source running" and "2 frames" in shown
            feeds = pipeline._runtime.sources
            assert feeds is not None
            clock.advance(2.0 + feeds.check_every)
            polling.wait_for(
                lambda: pipeline.snapshot().sources["cam1"].state is SourceState.STALLED
            )
            classes, shown, colour = eventually(
                lambda: (box := _source_box(browser, "cam1")) and "down" in box[0] and box
            )
            assert classes == "source stalled down" and colour == "rgb(221, 221, 221)"
            assert feeds.check_every == 0.25
            assert "no frame for 2.3 s" in shown  # 2.25 s of the clock, as the page rounds it
            assert eventually(lambda: "cam1 stalled" in browser.find_element(By.ID, "health").text)
            silent.release.set()
            reader.join(30)
            # Running again for its last frames, then ended: the page may show either on
            # the way, so the wait is for the end.
            classes, shown, _ = eventually(
                lambda: (box := _source_box(browser, "cam1")) and "ended" in box[0] and box
            )
            assert classes == "source ended" and "5 frames" in shown
            assert eventually(lambda: browser.find_element(By.ID, "health").text == "healthy")
    finally:
        silent.release.set()
        pipeline.cleanup()


# -- WebRTC video ---------------------------------------------------------------------------


def red_picture(index: int) -> np.ndarray:
    return striped(index, 240, 320, channel=2, level=220)


def video_state(browser: Any, name: str) -> dict[str, Any]:
    state: dict[str, Any] = browser.execute_script(
        "const v = document.getElementById(arguments[0] + '-video');"
        "const c = document.createElement('canvas'); c.width = 8; c.height = 8;"
        "let pixel = null;"
        "if (v.videoWidth) { const g = c.getContext('2d');"
        "  g.drawImage(v, v.videoWidth / 2 - 4, 4, 8, 8, 0, 0, 8, 8);"
        "  pixel = Array.from(g.getImageData(4, 4, 1, 1).data.slice(0, 3)); }"
        "return {mode: document.getElementById(arguments[0] + '-mode').textContent,"
        " waiting: document.getElementById(arguments[0] + '-waiting').textContent,"
        " latency: document.getElementById(arguments[0] + '-latency').textContent,"
        " width: v.videoWidth, frames: v.getVideoPlaybackQuality().totalVideoFrames, pixel};",
        f"preview-{name}",
    )
    return state


def _grey(pixel: list[int] | None) -> bool:
    """Whether ``pixel`` is the placeholder's grey (64, give or take the codec's rounding)."""
    return pixel is not None and all(abs(value - 64) <= 4 for value in pixel)


def test_the_preview_plays_over_webrtc_timed_to_the_screen_and_shows_a_placeholder(
    browser: Any,
) -> None:
    pytest.importorskip("aiortc")
    pipeline = Pipeline(name="Cam").add(red_picture, "Draw")
    view = LiveView(pipeline, refresh=0.2)
    view.preview("main", stage="Draw")
    with view:
        camera = Camera(pipeline)
        try:
            browser.get(view.url)
            assert eventually(lambda: video_state(browser, "main")["frames"] > 10)
            state = video_state(browser, "main")
            assert state["mode"] == "WebRTC H264" and state["width"] == 320
            assert state["pixel"][0] > 150 and state["pixel"][2] < 80  # red (RGBA on a canvas)
            # The page's reports reach the view: each frame timed from the stage to the screen.
            timed = eventually(lambda: view.snapshot().viewers[0].stage_to_screen.count > 20)
            assert timed
            viewer = view.snapshot().viewers[0]
            latency = viewer.stage_to_screen.summary()
            assert 0 < latency.median < 2.0 and latency.p99 >= latency.median
            assert viewer.clock_uncertainty is not None and viewer.clock_uncertainty < 0.5
            assert viewer.unmatched <= viewer.presented // 10
            assert eventually(
                lambda: video_state(browser, "main")["latency"].startswith("stage to screen p50")
            )
        finally:
            camera.close()
        # The stage stopped: within about a second the video says since when, in grey.
        stopped = time.monotonic()
        assert eventually(
            lambda: video_state(browser, "main")["waiting"].startswith("no frame since")
        )
        grey = eventually(lambda: _grey(video_state(browser, "main")["pixel"]))
        assert grey
        print(f"placeholder shown {time.monotonic() - stopped:.2f} s after the stage stopped")
        frames = video_state(browser, "main")["frames"]
        assert eventually(lambda: video_state(browser, "main")["frames"] > frames)  # not frozen
        # The stage comes back: so does its video.
        camera = Camera(pipeline)
        try:
            assert eventually(lambda: video_state(browser, "main")["waiting"] == "")
            assert eventually(lambda: video_state(browser, "main")["pixel"][0] > 150)
        finally:
            camera.close()
    pipeline.cleanup()


def test_a_page_that_cannot_have_webrtc_shows_mjpeg_and_says_why(browser: Any) -> None:
    pytest.importorskip("aiortc")
    pipeline = Pipeline(name="Cam").add(red_picture, "Draw")
    view = LiveView(pipeline, refresh=0.2, max_viewers=1)
    view.preview("main", stage="Draw")
    with view:
        camera = Camera(pipeline)
        try:
            browser.get(view.url)  # the one viewer WebRTC serves
            assert eventually(lambda: video_state(browser, "main")["frames"] > 0)
            browser.switch_to.new_window("tab")
            browser.get(view.url)  # the second falls back to MJPEG, and says why
            mode = eventually(
                lambda: (
                    video_state(browser, "main")["mode"].startswith("MJPEG")
                    and video_state(browser, "main")["mode"]
                )
            )
            assert "the view answered 503: 1 viewers are watching already" in mode
            assert eventually(
                lambda: (
                    browser.execute_script(
                        "return document.getElementById('preview-main').naturalWidth"
                    )
                    == 320
                )
            )
        finally:
            camera.close()
    pipeline.cleanup()


def test_each_camera_of_a_many_source_run_is_its_own_track(browser: Any) -> None:
    pytest.importorskip("aiortc")
    from framescope.video import Frame

    def draw(item: Any) -> Frame:
        image = np.zeros((240, 320, 3), np.uint8)
        image[:, :, 0 if item.source == "gate" else 1] = 220  # gate blue, door green
        return Frame(image, item.item, source=item.source)

    pipeline = Pipeline(name="Cams").add(draw, "Draw").parallelize()
    view = LiveView(pipeline, refresh=0.2)
    view.preview("main", stage="Draw")
    stop = threading.Event()

    def endless() -> Any:
        index = 0
        while not stop.wait(1 / 30):
            yield index
            index += 1

    def run() -> None:
        for _ in pipeline.run({"gate": endless(), "door": endless()}):
            pass

    with view:
        runner = threading.Thread(target=run, name="run")
        runner.start()
        try:
            browser.get(view.url)
            options = eventually(
                lambda: (
                    [
                        o.get_attribute("value")
                        for o in browser.find_elements(
                            By.CSS_SELECTOR, "#preview-main-camera option"
                        )
                    ]
                    or None
                )
            )
            assert options[0] == "" and sorted(options[1:]) == ["door", "gate"]  # as they came
            browser.execute_script(
                "const s = document.getElementById('preview-main-camera');"
                "s.value = 'door'; s.dispatchEvent(new Event('change'));"
            )
            assert eventually(lambda: [v.camera for v in view.snapshot().viewers] == ["door"])
            assert eventually(lambda: video_state(browser, "main")["pixel"][1] > 150)  # green
        finally:
            stop.set()
            runner.join(20)
    pipeline.cleanup()


def test_a_video_process_that_dies_is_said_in_the_preview_s_caption(browser: Any) -> None:
    pytest.importorskip("aiortc")
    import os
    import signal

    from framescope.live.videoprocess import VideoProcess

    pipeline = Pipeline(name="Cam").add(red_picture, "Draw")
    view = LiveView(pipeline, refresh=0.2)
    view.preview("main", stage="Draw")
    assert isinstance(view._webrtc, VideoProcess)
    with view:
        camera = Camera(pipeline)
        try:
            browser.get(view.url)
            assert eventually(lambda: video_state(browser, "main")["frames"] > 3)
            assert preview_note(browser, "main") == ""
            pid = view._webrtc.pid
            assert pid is not None
            os.kill(pid, signal.SIGKILL)
            said = "the WebRTC video process ended unexpectedly 1 time"
            assert eventually(lambda: preview_note(browser, "main") == said)
        finally:
            camera.close()
    pipeline.cleanup()
