"""Event-clip recorders in ``str(snapshot)`` and its rich rendering: a row each, only when there are any."""

from __future__ import annotations

import io

import pytest

from framescope.pipeline import PipelineSnapshot
from framescope.pipeline.model.clips import ClipsSnapshot
from framescope.pipeline.views.tables import CLIPS_COLUMNS, bytes_text, clips_rows
from framescope.stats import StatsSnapshot

DOOR = ClipsSnapshot(
    name="door",
    directory="/var/clips/door",
    mode="packets",
    recording=True,
    triggers=12,
    clips_written=7,
    clips_dropped={"disk": 2, "behind": 0, "stream": 1},
    clips_deleted=3,
    clips_on_disk=4,
    bytes_on_disk=23_456_789,
    last_error="[Errno 28] No space left on device",
)
YARD = ClipsSnapshot(
    name="yard",
    directory="/var/clips/yard",
    mode=None,
    recording=False,
    triggers=0,
    clips_written=0,
)


def _snapshot(*clips: ClipsSnapshot) -> PipelineSnapshot:
    return PipelineSnapshot("Cam", StatsSnapshot(window=1), clips=clips)


def test_each_recorder_is_a_row_of_str_snapshot() -> None:
    lines = str(_snapshot(DOOR, YARD)).splitlines()
    (head,) = [n for n, line in enumerate(lines) if line.startswith("recorder")]
    assert lines[head].split() == [
        *("recorder", "mode", "triggers", "written", "dropped", "deleted"),
        *("on", "disk", "size", "recording", "why"),
    ]
    door, yard = lines[head + 1].split(), lines[head + 2].split()
    assert door[:10] == ["door", "packets", "12", "7", "3", "3", "4", "23.5", "MB", "yes"]
    assert " ".join(door[10:]) == (
        "disk 2; stream 1; last error: [Errno 28] No space left on device"
    )
    assert yard == ["yard", "-", "0", "0", "0", "0", "0", "0", "B", "no"]


def test_rows_say_whether_it_records_now() -> None:
    (door, yard) = clips_rows(_snapshot(DOOR, YARD))
    recording = CLIPS_COLUMNS.index("recording")
    assert door[recording] == "yes" and yard[recording] == "no"
    assert door[CLIPS_COLUMNS.index("size")] == "23.5 MB"


def test_no_recorder_no_clips_table() -> None:
    assert clips_rows(_snapshot()) == []
    assert "recorder" not in str(_snapshot())


@pytest.mark.parametrize(
    ("count", "text"),
    [
        (0, "0 B"),
        (999, "999 B"),
        (1000, "1.0 kB"),
        (1_500, "1.5 kB"),
        (23_456_789, "23.5 MB"),
        (1_200_000_000, "1.2 GB"),
        (5_000_000_000_000_000, "5000.0 TB"),
    ],
)
def test_bytes_text(count: int, text: str) -> None:
    assert bytes_text(count) == text


def test_the_rich_rendering_has_an_event_clips_table() -> None:
    console_module = pytest.importorskip("rich.console")
    out = io.StringIO()
    console = console_module.Console(file=out, width=200, color_system=None)
    console.print(_snapshot(DOOR))
    printed = out.getvalue()
    assert "event clips" in printed
    assert "door" in printed and "packets" in printed and "23.5 MB" in printed
