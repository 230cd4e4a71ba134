"""The run report: one self-contained page, every plot drawn; in Chromium, rendered without errors."""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("matplotlib")

from framescope.cli import main
from framescope.runs import write_report

from .test_compare import write_run

PLOTS = ("fps", "latency", "cdf-pipeline", "cdf-Decode", "cdf-Detect")


def test_a_comparison_s_page_has_every_plot_and_needs_nothing_else(tmp_path: Path) -> None:
    a = write_run(tmp_path / "a.fsrun", {"Decode": 4.0, "Detect": 10.0}, seed=1, label="main")
    b = write_run(tmp_path / "b.fsrun", {"Decode": 4.0, "Detect": 11.0}, seed=2, label="branch")
    page = write_report(b, tmp_path / "report.html", against=a).read_text()
    found = re.findall(r'<figure class="plot" data-plot="([^"]+)"><svg', page)
    assert found == list(PLOTS)
    assert "<script" not in page
    addresses = set(re.findall(r"https?://[^\"'\s<>]+", page))
    assert addresses <= {"http://www.w3.org/2000/svg", "http://www.w3.org/1999/xlink"}  # names
    assert "main -&gt; branch: slower: pipeline, Detect" in page
    assert '<td class="slower">slower</td>' in page
    assert "border-color:#d62728" in page  # Detect's box, red
    assert "prefers-color-scheme:dark" in page and "@media print" in page


def test_the_command_writes_the_page(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a = str(write_run(tmp_path / "a.fsrun", {"Detect": 10.0}, seed=3))
    out = tmp_path / "out" / "single.html"
    assert main(["report", a, "-o", str(out)]) == 0
    assert f"wrote {out}" in capsys.readouterr().out
    assert out.read_text().count('<figure class="plot"') == 4  # fps, latency, 2 CDFs
    assert main(["report", str(tmp_path / "nothing.fsrun")]) == 2


@pytest.mark.integration
@pytest.mark.skipif(shutil.which("chromium") is None, reason="Debian's chromium is not installed")
def test_the_page_renders_in_chromium_without_errors(tmp_path: Path) -> None:
    pytest.importorskip("selenium")
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    a = write_run(tmp_path / "a.fsrun", {"Decode": 4.0, "Detect": 10.0}, seed=1)
    b = write_run(tmp_path / "b.fsrun", {"Decode": 4.0, "Detect": 11.0}, seed=2)
    page = write_report(b, tmp_path / "report.html", against=a)
    options = Options()
    options.binary_location = shutil.which("chromium")  # type: ignore[assignment]
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"):
        options.add_argument(argument)
    driver: Any = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)
    try:
        driver.set_window_size(1100, 900)
        driver.get(page.as_uri())
        drawn = driver.execute_script(
            "return Array.from(document.querySelectorAll('figure.plot')).map(f => {"
            " const s = f.querySelector('svg'); const r = s.getBoundingClientRect();"
            " return [f.dataset.plot, s.querySelectorAll('path').length, r.width, r.height]; });"
        )
        assert [d[0] for d in drawn] == list(PLOTS)
        for name, paths, width, height in drawn:
            assert paths > 5 and width > 150 and height > 100, name
        errors = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
        assert errors == []
        shot = tmp_path / "report.png"
        driver.save_screenshot(str(shot))
        assert shot.stat().st_size > 20_000  # a page with plots, not a blank one
    finally:
        driver.quit()
