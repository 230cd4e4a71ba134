"""Receivers for the video tests: real PyAV (or ffmpeg) processes on loopback."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from framescope.video import SyntheticSource, VideoWriter

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class Receiver:
    """A PyAV process that receives one stream, decodes it, and reports what it got."""

    def __init__(self, url: str, container_format: str, *options: str) -> None:
        self.url = url
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.video.receive", url, container_format, *options],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()  # "ready": PyAV is loaded
        assert json.loads(line)["event"] == "ready", line
        time.sleep(0.3)  # and it is listening

    def result(self, timeout: float = 30) -> dict[str, Any]:
        """Wait for the end of the stream; what it decoded."""
        out, _ = self.process.communicate(timeout=timeout)
        last = [line for line in out.splitlines() if line.startswith('{"frames"')]
        assert last, f"receiver printed {out!r}"
        report: dict[str, Any] = json.loads(last[-1])
        return report

    def kill(self) -> None:
        """End it now (a receiver that goes away)."""
        self.process.kill()
        self.process.communicate(timeout=10)  # reaps it and closes its pipe


class FfmpegRtspServer:
    """Debian's ffmpeg listening for one RTSP publisher; counts the frames it receives."""

    def __init__(self, url: str) -> None:
        binary = shutil.which("ffmpeg")
        assert binary is not None
        self.process = subprocess.Popen(
            [
                binary,
                "-loglevel",
                "error",
                "-rtsp_flags",
                "listen",
                "-timeout",
                "20",
                "-i",
                url,
                "-f",
                "framemd5",
                "-",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        time.sleep(1.0)

    def frames(self, timeout: float = 30) -> int:
        out, _ = self.process.communicate(timeout=timeout)
        return sum(1 for line in out.splitlines() if line and not line.startswith("#"))


def write_clip(
    path: Path, frames: int = 60, size: tuple[int, int] = (320, 240), fps: int = 30
) -> Path:
    """A synthetic clip, encoded: the test input."""
    with VideoWriter(str(path), fps=fps) as writer:
        for frame in SyntheticSource(size[0], size[1], fps, frames=frames):
            writer.write(frame)
    return path
