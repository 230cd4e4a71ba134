"""VideoWriter and VideoSource over the network, against real receivers and senders."""

from __future__ import annotations

import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest

pytest.importorskip("av")

from framescope.video import SyntheticSource, VideoSource, VideoWriter

from .helpers import REPO, FfmpegRtspServer, Receiver, free_port

pytestmark = pytest.mark.integration


def send(url: str, frames: int = 45, **options: object) -> None:
    with VideoWriter(url, fps=30, **options) as writer:  # type: ignore[arg-type]
        for frame in SyntheticSource(320, 240, 30, frames=frames):
            writer.write(frame)


@pytest.mark.parametrize(
    ("scheme", "receiver_format", "options"),
    [
        ("rtmp", "flv", ("listen=1",)),
        ("http", "mpegts", ("listen=1",)),
        ("tcp", "mpegts", ()),
    ],
)
def test_writer_streams_to_a_receiver(
    scheme: str, receiver_format: str, options: tuple[str, ...]
) -> None:
    port = free_port()
    url = {
        "rtmp": f"rtmp://127.0.0.1:{port}/live/cam",
        "http": f"http://127.0.0.1:{port}/feed",
        "tcp": f"tcp://127.0.0.1:{port}",
    }[scheme]
    listen_url = url + "?listen=1" if scheme == "tcp" else url
    receiver = Receiver(listen_url, receiver_format, *options)
    send(url)
    report = receiver.result()
    assert report["frames"] == 45
    assert report["size"] == [320, 240]
    assert report["last"] - report["first"] == pytest.approx(44 / 30, abs=0.01)


def test_writer_streams_mpegts_over_udp() -> None:
    port = free_port()
    receiver = Receiver(f"udp://127.0.0.1:{port}", "mpegts")
    send(f"udp://127.0.0.1:{port}", frames=60)
    report = receiver.result()
    assert 50 <= report["frames"] <= 60  # datagrams: the first, before a keyframe, may go
    assert report["size"] == [320, 240]


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="Debian's ffmpeg is the RTSP server")
def test_writer_publishes_to_an_rtsp_server() -> None:
    url = f"rtsp://127.0.0.1:{free_port()}/live"
    server = FfmpegRtspServer(url)
    send(url, frames=45)
    assert server.frames() == 45


def test_a_network_source_reconnects_when_its_stream_drops(tmp_path: Path) -> None:
    port = free_port()
    script = (
        "import sys, time\n"
        "from framescope.video import SyntheticSource, VideoWriter\n"
        "for attempt in range(2):\n"
        "    with VideoWriter(sys.argv[1], fps=30) as writer:\n"
        "        for frame in SyntheticSource(160, 120, 30, frames=30):\n"
        "            writer.write(frame)\n"
        "            time.sleep(0.005)\n"
        "    time.sleep(1.5)\n"
    )
    source = VideoSource(
        f"tcp://127.0.0.1:{port}?listen=1",
        format="mpegts",
        timeout=1,
        reconnect_initial=0.05,
        reconnect_max=0.1,
        max_reconnects=20,
    )
    received: list[int] = []

    def read() -> None:
        for frame in source:
            received.append(frame.index)
            if len(received) == 60:
                source.close()

    reader = threading.Thread(target=read)
    reader.start()
    sender = subprocess.Popen(
        [sys.executable, "-c", script, f"tcp://127.0.0.1:{port}"],
        cwd=REPO,
        stderr=subprocess.DEVNULL,
    )
    reader.join(60)
    sender.wait(30)
    assert not reader.is_alive()
    assert received == list(range(60))  # both streams, numbered on
    assert source.reconnects >= 1
