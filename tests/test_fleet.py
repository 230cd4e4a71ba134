"""A fleet: two boxes in two processes, one Prometheus scraping both, one merged live view."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from framescope.live import LiveView

from .exporters.test_prometheus import prometheus_server, query  # noqa: F401 - the fixture

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[1]


def start_box(name: str, items: int) -> tuple[subprocess.Popen[str], dict[str, str]]:
    box = subprocess.Popen(
        [sys.executable, "-m", "tests.fleet_box", str(items)],
        cwd=ROOT,
        env={**os.environ, "FLEET_BOX": name},
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert box.stdout is not None
    try:
        urls: dict[str, str] = json.loads(box.stdout.readline())
        assert box.stdout.readline().strip() == "done"
    except BaseException:
        box.kill()
        box.communicate(timeout=30)
        raise
    return box, urls


def eventually(check: Any, limit: float = 30) -> Any:
    deadline = time.monotonic() + limit
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.2)


def test_two_boxes_read_through_their_endpoints_and_one_merged_view(
    prometheus_server: Any,  # noqa: F811
) -> None:
    boxes = []
    try:
        for name, items in (("box1", 30), ("box2", 50)):
            boxes.append(start_box(name, items))
        urls_one, urls_two = (urls for _box, urls in boxes)
        # each box's own endpoint, scraped by hand
        text = urllib.request.urlopen(urls_one["metrics"], timeout=5).read().decode()
        assert 'framescope_pipeline_completed_items_total{box="box1"' in text
        assert 'replica="1"' in text and 'stage="Detect"' in text
        # one Prometheus scraping both (a central server, or the one a federation reads)
        targets = "', '".join(
            url.split("/")[2] for url in (urls_one["metrics"], urls_two["metrics"])
        )
        prometheus = prometheus_server(targets)
        completed = eventually(
            lambda: (
                len(found := query(prometheus, "framescope_pipeline_completed_items_total")) == 2
                and found
            )
        )
        assert completed, "Prometheus never scraped both boxes"
        by_box = {entry["metric"]["box"]: float(entry["value"][1]) for entry in completed}
        assert by_box == {"box1": 30.0, "box2": 50.0}
        assert all(entry["metric"]["host_name"] for entry in completed)
        replicas = query(prometheus, 'framescope_replica_frames_per_second{box="box2"}')
        assert sorted(entry["metric"]["replica"] for entry in replicas) == ["0", "1"]
        # one merged live view of both
        with LiveView(urls_one["view"], urls_two["view"], refresh=0.1) as fleet:

            def both() -> Any:
                try:
                    merged = fleet.snapshot()
                except RuntimeError:  # no box has answered yet
                    return None
                return merged if merged.counters.get("completed") == 80 else None

            snapshot = eventually(both)
        assert snapshot, "the fleet view never showed both boxes"
        detect = [stage for stage in snapshot.stages if stage.key.endswith("__Cam__Detect")]
        assert len(detect) == 2 and all(stage.replicas == 2 for stage in detect)
        assert sorted(stage.latency.count for stage in detect) == [30, 50]
        replica_keys = [s.key for s in snapshot.stages if s.replica_of in {d.key for d in detect}]
        assert len(replica_keys) == 4
    finally:
        for box, _ in boxes:
            assert box.stdin is not None and box.stdout is not None
            box.stdin.close()
            box.wait(30)
            box.stdout.close()
