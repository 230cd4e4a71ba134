"""One run of the encoder process: start it, feed it frames, hear what it says."""

from __future__ import annotations

import contextlib
import json
import logging
import subprocess
import sys
import threading
from collections.abc import Callable
from typing import Any

from framescope.video.encoder_process import HEADER

__all__ = ["EncoderSession"]

logger = logging.getLogger(__name__)


class EncoderSession:
    """An encoder child process and the thread that reads its reports.

    Args:
        settings: the VideoWriter settings (``uri`` included), JSON-ready.
        on_event: called on the reader thread with each report (a dict).
        name: names the reader thread.
    """

    def __init__(
        self, settings: dict[str, Any], on_event: Callable[[dict[str, Any]], None], name: str
    ) -> None:
        self._process = subprocess.Popen(
            [sys.executable, "-m", "framescope.video.encoder_process"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        assert self._process.stdin is not None
        assert self._process.stdout is not None
        self._stdin = self._process.stdin
        self._stdin.write((json.dumps(settings) + "\n").encode())
        self._stdin.flush()
        self._on_event = on_event
        self.ended = threading.Event()  # the process said it failed or closed, or exited
        self._reader = threading.Thread(target=self._read, name=f"{name}-reports", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        stdout = self._process.stdout
        assert stdout is not None
        try:
            for line in stdout:
                try:
                    event = json.loads(line)
                except ValueError:
                    continue
                self._on_event(event)
                if event.get("event") in ("error", "closed"):
                    break
        except (OSError, ValueError):  # closed under us by kill()
            pass
        finally:
            with contextlib.suppress(OSError):
                stdout.close()
            self.ended.set()

    def send(self, image: Any, stream_time: float) -> None:
        """Hand one BGR image to the encoder (blocks while its pipe is full); OSError if gone."""
        height, width = image.shape[:2]
        self._stdin.write(HEADER.pack(height, width, stream_time))
        self._stdin.write(memoryview(image).cast("B"))

    def finish(self, timeout: float | None) -> bool:
        """Close the stream (the encoder flushes and exits); kill it after ``timeout`` s.

        Returns True when it ended by itself.
        """
        with contextlib.suppress(OSError):
            self._stdin.close()
        try:
            self._process.wait(timeout)
            clean = True
        except subprocess.TimeoutExpired:
            clean = False
            self.kill()
        self._reader.join(5)
        return clean

    def kill(self) -> None:
        """End the encoder process now (a stuck receiver cannot hold it)."""
        with contextlib.suppress(OSError):
            self._process.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self._process.wait(5)
        with contextlib.suppress(OSError):
            self._stdin.close()

    @property
    def alive(self) -> bool:
        """Whether the process is running and has not reported its end."""
        return self._process.poll() is None and not self.ended.is_set()
