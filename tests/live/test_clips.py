"""Event clips on the live view: each recorder's box in the page's data, and ``/clips/`` serving its files.

Real HTTP on 127.0.0.1; a real :class:`~framescope.video.Clips` recorder
writes the MP4 that is served, and PyAV reads what came back.
"""

from __future__ import annotations

import http.client
import io
import json
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from framescope import Pipeline
from framescope.clock import FakeClock
from framescope.live import LiveView
from framescope.pipeline import PipelineSnapshot
from framescope.pipeline.model.clips import ClipEntry, ClipsSnapshot
from framescope.stats import StatsSnapshot
from tests.polling import wait_for

from .views import view_showing, with_query

pytestmark = pytest.mark.integration


def fetch(url: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    """(status, headers, body) of a GET (an error status too)."""
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, dict(answer.headers), answer.read()
    except urllib.error.HTTPError as error:
        with error:
            return error.code, dict(error.headers), error.read()


def raw_status(port: int, target: str) -> int:
    """The status of a GET of ``target`` exactly as written (no client tidies ``../`` away)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.putrequest("GET", target, skip_accept_encoding=True)
        connection.endheaders()
        answer = connection.getresponse()
        answer.read()
        return answer.status
    finally:
        connection.close()


def entry(file: str, size: int, reason: str = "person") -> ClipEntry:
    return ClipEntry(
        clip_id=file.removesuffix(".mp4"),
        file=file,
        reason=reason,
        labels={"camera": "door", "score": 0.9},
        triggers=1,
        start_time=1_700_000_000.0,
        end_time=1_700_000_004.0,
        duration_s=4.0,
        frames=120,
        bytes=size,
    )


class Listed:
    """A pipeline whose snapshot lists one recorder, ``door``, with the given clips."""

    name = "Cam"

    def __init__(self, directory: Path, *clips: ClipEntry, **figures: Any) -> None:
        given: dict[str, Any] = {
            "mode": "packets",
            "recording": False,
            "triggers": len(clips),
            "clips_written": len(clips),
            "clips_on_disk": len(clips),
            **figures,
        }
        self.recorder = ClipsSnapshot(name="door", directory=str(directory), recent=clips, **given)

    def snapshot(self) -> PipelineSnapshot:
        return PipelineSnapshot("Cam", StatsSnapshot(window=1), clips=(self.recorder,))


@pytest.fixture
def listed(tmp_path: Path) -> Iterator[tuple[LiveView, bytes]]:
    """A view of a recorder whose directory holds a listed clip, an unlisted one, and a secret beside it."""
    directory = tmp_path / "door"
    directory.mkdir()
    data = bytes(range(256)) * 1000  # 256,000 bytes: several chunks
    (directory / "door-1.mp4").write_bytes(data)
    (directory / "door-unlisted.mp4").write_bytes(b"not listed")
    (tmp_path / "secret.txt").write_text("secret")
    pipeline = Listed(
        directory,
        entry("door-1.mp4", len(data)),
        entry("door-gone.mp4", 10),  # listed, deleted since
        entry("../secret.txt", 6),  # a listed name that leaves the directory is never served
    )
    with LiveView(pipeline, refresh=0.05) as view:
        view_showing(view, lambda v: v["clips"])
        yield view, data


def test_a_listed_clip_is_served_whole_as_mp4(listed: tuple[LiveView, bytes]) -> None:
    view, data = listed
    status, headers, body = fetch(with_query(view, "clips/door/door-1.mp4"))
    assert status == 200
    assert headers["Content-Type"] == "video/mp4"
    assert headers["Accept-Ranges"] == "bytes"
    assert int(headers["Content-Length"]) == len(data) and body == data


@pytest.mark.parametrize(
    ("header", "first", "last"),
    [
        ("bytes=1000-1999", 1000, 1999),
        ("bytes=255990-", 255990, 255999),
        ("bytes=-10", 255990, 255999),
        ("bytes=250000-999999", 250000, 255999),
        ("bytes=0-0", 0, 0),
    ],
)
def test_a_range_request_gets_206_and_those_bytes(
    listed: tuple[LiveView, bytes], header: str, first: int, last: int
) -> None:
    view, data = listed
    status, headers, body = fetch(with_query(view, "clips/door/door-1.mp4"), {"Range": header})
    assert status == 206
    assert headers["Content-Range"] == f"bytes {first}-{last}/{len(data)}"
    assert int(headers["Content-Length"]) == last - first + 1
    assert body == data[first : last + 1]


def test_a_range_past_the_end_gets_416_and_several_ranges_the_whole_file(
    listed: tuple[LiveView, bytes],
) -> None:
    view, data = listed
    url = with_query(view, "clips/door/door-1.mp4")
    status, headers, body = fetch(url, {"Range": f"bytes={len(data)}-"})
    assert status == 416 and headers["Content-Range"] == f"bytes */{len(data)}" and body == b""
    status, _, body = fetch(url, {"Range": "bytes=0-1,5-9"})  # one range only: the whole file
    assert status == 200 and body == data
    status, _, body = fetch(url, {"Range": "bytes=9-5"})  # does not parse: ignored
    assert status == 200 and body == data
    status, _, body = fetch(url, {"Range": "bytes=" + "9" * 5000 + "-"})  # beyond int()'s digits
    assert status == 200 and body == data


def test_only_a_file_the_snapshot_lists_is_served(listed: tuple[LiveView, bytes]) -> None:
    view, _ = listed
    for path in (
        "clips/door/door-unlisted.mp4",  # in the directory, not listed
        "clips/door/door-gone.mp4",  # listed, but deleted since
        "clips/door/..%2Fsecret.txt",  # listed as such: leaves the directory
        "clips/door/%2E%2E%2Fsecret.txt",
        "clips/yard/door-1.mp4",  # no such recorder
        "clips/door",
        "clips/door/door-1.mp4/more",
    ):
        status, _, body = fetch(with_query(view, path))
        assert status == 404, path
        assert b"secret" not in body
    for target in (
        "/clips/door/../secret.txt",
        "/clips/door/../../secret.txt",
        "/clips/../secret.txt",
    ):
        assert raw_status(view.port, target) == 404, target


def test_beyond_loopback_a_clip_needs_the_token(tmp_path: Path) -> None:
    (tmp_path / "door-1.mp4").write_bytes(b"\0" * 100)
    pipeline = Listed(tmp_path, entry("door-1.mp4", 100))
    with LiveView(pipeline, host="0.0.0.0", refresh=0.05) as view:
        base = f"http://127.0.0.1:{view.port}/clips/door/door-1.mp4"
        assert fetch(base)[0] == 401
        assert fetch(base + "?token=wrong-token")[0] == 401
        assert fetch(base, {"Range": "bytes=0-9"})[0] == 401
        assert fetch(base + f"?token={view.token}")[0] == 200
        status, _, body = fetch(
            base, {"Authorization": f"Bearer {view.token}", "Range": "bytes=0-9"}
        )
        assert status == 206 and len(body) == 10


def test_the_page_data_has_each_recorder_s_figures_and_clips(tmp_path: Path) -> None:
    pipeline = Listed(
        tmp_path,
        entry("door-2.mp4", 2_500_000, reason="car"),
        entry("door-1.mp4", 900),
        recording=True,
        clips_dropped={"disk": 2},
        clips_deleted=4,
        bytes_on_disk=3_000_000,
        frames_dropped=7,
        last_error="[Errno 28] No space left on device",
    )
    with LiveView(pipeline, refresh=0.05) as view:
        (box,) = view_showing(view, lambda v: v["clips"])["clips"]
    assert box["name"] == "door" and box["mode"] == "packets" and box["recording"] is True
    assert box["written"] == 2 and box["deleted"] == 4 and box["on_disk"] == 2
    assert box["dropped"] == {"disk": 2, "behind": 0, "stream": 0, "error": 0}
    assert box["dropped_total"] == 2
    assert box["bytes_on_disk"] == 3_000_000 and box["size"] == "3.0 MB"
    assert box["frames_dropped"] == 7
    assert box["last_error"] == "[Errno 28] No space left on device"
    newest, older = box["recent"]
    assert newest["reason"] == "car" and newest["size"] == "2.5 MB"
    assert newest["labels"] == {"camera": "door", "score": 0.9}
    assert newest["duration_s"] == 4.0 and newest["start_time"] == 1_700_000_000.0
    assert newest["url"] == "clips/door/door-2.mp4" and older["url"] == "clips/door/door-1.mp4"


def test_a_fleet_shows_a_box_s_clips_without_serving_them(tmp_path: Path) -> None:
    (tmp_path / "door-1.mp4").write_bytes(b"\0" * 100)
    box = LiveView(Listed(tmp_path, entry("door-1.mp4", 100)), refresh=0.05).start()
    fleet = LiveView(box.url, refresh=0.05).start()
    try:
        (shown,) = view_showing(fleet, lambda v: v["clips"])["clips"]
        assert shown["name"] == "door" and shown["served"] is False
        assert shown["recent"][0]["url"] is None  # the file is on the box, not here
        assert fetch(with_query(fleet, "clips/door/door-1.mp4"))[0] == 404
        assert fetch(with_query(box, "clips/door/door-1.mp4"))[0] == 200
    finally:
        fleet.close()
        box.close()


def _record_one_clip(directory: Path) -> tuple[Pipeline, Any]:
    """A pipeline whose Clips stage recorded one clip around a trigger at frame 45 (fake clock)."""
    video = pytest.importorskip("framescope.video")
    clock = FakeClock()
    clips = video.Clips(directory, pre=1, post=1, key_interval=0.5, clock=clock)

    def make(i: int) -> Any:
        # one frame at a time into the recorder's encoder: none is dropped for being early
        encoder = clips._encoder  # None before the first frame
        wait_for(lambda: encoder is None or not encoder.busy, 30, "the encoder took the frame")
        clock.advance(1 / 30)
        if i == 45:
            clips.trigger("person", camera="door")
        image = np.zeros((64, 96, 3), np.uint8)
        image[:, (i * 3) % 96] = 255
        return image

    pipeline = Pipeline(name="Cam", clock=clock).add(make, "Make").add(clips, "Clips")
    for _ in pipeline.run(range(120)):
        pass
    assert clips.close()
    return pipeline, clips


def test_the_served_clip_is_the_mp4_the_recorder_wrote(tmp_path: Path) -> None:
    av = pytest.importorskip("av")
    pipeline, clips = _record_one_clip(tmp_path / "door")
    try:
        with LiveView(pipeline, refresh=0.05) as view:
            shown = view_showing(view, lambda v: v["clips"] and v["clips"][0]["recent"])
            (box,) = shown["clips"]
            (clip,) = box["recent"]
            assert box["written"] == 1 and box["mode"] == "frames"
            assert clip["reason"] == "person" and clip["labels"] == {"camera": "door"}
            status, headers, body = fetch(with_query(view, clip["url"]))
            on_disk = (tmp_path / "door" / clip["file"]).read_bytes()
            assert status == 200 and headers["Content-Type"] == "video/mp4"
            assert body == on_disk and clip["bytes"] == len(body)
            served = tmp_path / "served.mp4"
            served.write_bytes(body)
            with av.open(str(served)) as container:
                frames = sum(1 for _ in container.decode(video=0))
            assert frames == clip["frames"] > 0
            status, headers, tail = fetch(with_query(view, clip["url"]), {"Range": "bytes=-100"})
            assert status == 206 and tail == on_disk[-100:]
    finally:
        pipeline.cleanup()
        clips.close()


def test_the_snapshot_json_still_lists_every_clip(listed: tuple[LiveView, bytes]) -> None:
    view, _ = listed
    with urllib.request.urlopen(with_query(view, "snapshot.json"), timeout=5) as answer:
        snapshot = json.loads(answer.read())
    (recorder,) = snapshot["clips"]
    assert [c["file"] for c in recorder["recent"]] == [
        "door-1.mp4",
        "door-gone.mp4",
        "../secret.txt",
    ]


def test_a_clip_is_read_a_chunk_at_a_time_and_stops_when_the_view_closes() -> None:
    from framescope.live._clips import CHUNK_BYTES, file_chunks

    data = bytes(range(256)) * 1024  # 4 chunks
    closing = threading.Event()
    chunks = file_chunks(io.BytesIO(data), 10, len(data) - 20, closing)
    first = next(chunks)
    assert first == data[10 : 10 + CHUNK_BYTES]
    rest = list(chunks)
    assert all(len(chunk) <= CHUNK_BYTES for chunk in rest)
    assert first + b"".join(rest) == data[10:-10]
    chunks = file_chunks(io.BytesIO(data), 0, len(data), closing)
    assert len(next(chunks)) == CHUNK_BYTES
    closing.set()
    assert list(chunks) == []  # the view closed: nothing more is read


def test_the_page_lists_the_newest_clips_and_quotes_their_addresses(tmp_path: Path) -> None:
    from framescope.live.view import PAGE_CLIPS, clips_view

    newest_first = tuple(entry(f"front door #{n}.mp4", 10) for n in range(PAGE_CLIPS + 5, 0, -1))
    recorder = replace(Listed(tmp_path, *newest_first).recorder, name="front/door")
    shown = clips_view(recorder)
    assert [c["file"] for c in shown["recent"]] == [c.file for c in newest_first[:PAGE_CLIPS]]
    assert shown["recent"][0]["url"] == "clips/front%2Fdoor/front%20door%20%2315.mp4"
    assert all(c["url"] is None for c in clips_view(recorder, served=False)["recent"])
    (tmp_path / "front door #15.mp4").write_bytes(b"15")
    pipeline = Listed(tmp_path, *newest_first)
    pipeline.recorder = recorder
    with LiveView(pipeline, refresh=0.05) as view:
        (box,) = view_showing(view, lambda v: v["clips"])["clips"]
        status, _, body = fetch(with_query(view, box["recent"][0]["url"]))
        assert status == 200 and body == b"15"
