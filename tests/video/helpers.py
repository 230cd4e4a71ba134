"""Receivers for the video tests: real PyAV (or ffmpeg) processes on loopback."""

from __future__ import annotations

import json
import queue
import shutil
import socket
import subprocess
import sys
import threading
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


SYSTEM_PYTHON = "/usr/bin/python3"
_GSTREAMER_PROBE = (
    "import gi; gi.require_version('Gst', '1.0'); gi.require_version('GstRtspServer', '1.0');"
    "from gi.repository import Gst; Gst.init(None);"
    "assert all(Gst.ElementFactory.find(e) for e in ('videotestsrc', 'x264enc', 'rtph264pay'))"
)


def gstreamer_rtsp_missing() -> str | None:
    """Why the GStreamer RTSP server cannot run here (None: it can)."""
    if not Path(SYSTEM_PYTHON).exists():
        return f"no {SYSTEM_PYTHON} (the system python, with gi)"
    probe = subprocess.run(
        [SYSTEM_PYTHON, "-c", _GSTREAMER_PROBE],
        capture_output=True,
        check=False,
        timeout=60,
    )
    if probe.returncode:
        return (
            "GStreamer's RTSP server or its x264 plugins are not installed"
            " (scripts/install-test-servers.sh installs them)"
        )
    return None


class RtspCamera:
    """Debian's GStreamer RTSP server serving a live camera (tests/video/rtsp_server.py).

    ``command("freeze" | "drop")`` acts on the clients being served, and
    returns once the server has done it. ``port``: the port to listen on (0:
    a free one; give a killed camera's ``port`` to bring it back there).
    """

    def __init__(self, timeout: float = 60, port: int = 0) -> None:
        self.process = subprocess.Popen(
            [SYSTEM_PYTHON, str(Path(__file__).with_name("rtsp_server.py")), str(port)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        self._lines: queue.Queue[str] = queue.Queue()
        self._reader = threading.Thread(target=self._read, name="rtsp-camera-out", daemon=True)
        self._reader.start()
        words = self._expect("ready", timeout).split()
        self.port = int(words[1])
        self.url = f"rtsp://127.0.0.1:{self.port}/cam"

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self._lines.put(line.strip())

    def _expect(self, prefix: str, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                line = self._lines.get(timeout=left)
            except queue.Empty:
                break
            if line.startswith(prefix):
                return line
        raise AssertionError(f"the RTSP server did not say {prefix!r} within {timeout} s")

    def command(self, command: str, timeout: float = 30) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(command + "\n")
        self.process.stdin.flush()
        self._expect(f"done {command}", timeout)

    def kill(self) -> None:
        """Kill it (SIGKILL: a camera that loses power); its clients' connections drop."""
        self.process.kill()
        self.process.wait(10)
        self.stop()

    def stop(self) -> None:
        if self.process.poll() is None:
            assert self.process.stdin is not None
            self.process.stdin.close()  # the end of its commands: it quits
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        self._reader.join(10)  # it reads to the end of the output
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.close()
        self.process.stdout.close()


class SilentServer:
    """A TCP server on loopback that accepts every connection and never sends a byte.

    A camera that answers the connection and then says nothing: ``url`` is an
    RTSP URL on its port. ``accepted`` counts the connections it took.
    """

    def __init__(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.1)
        self.port: int = self._listener.getsockname()[1]
        self.url = f"rtsp://127.0.0.1:{self.port}/cam"
        self.accepted = 0
        self._held: list[socket.socket] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, name="silent-server", daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                connection, _ = self._listener.accept()
            except TimeoutError:
                continue
            self._held.append(connection)  # kept open, never written to
            self.accepted += 1

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)
        self._listener.close()
        for connection in self._held:
            connection.close()
