"""One run of the fragmenter process: start it, feed it frames, take its fragments."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import threading
from collections.abc import Callable
from typing import Any

from framescope.kvs.fragmenter_process import FRAGMENT_FACTS, HEADER, MESSAGE
from framescope.kvs.fragments import Fragment

__all__ = ["FragmenterSession"]


_PIPE_SIZE = 1 << 20  # the most a pipe may hold without privileges (pipe-max-size)


def _widen(fd: int) -> None:
    """Let the pipe hold a 1 MiB: a 720p frame then goes in 3 writes, not 42.

    Between the writes the feeder thread takes Python's interpreter lock
    again, and each time it may make the frame loop wait for it.
    """
    try:
        import fcntl  # noqa: PLC0415 - POSIX only

        fcntl.fcntl(fd, getattr(fcntl, "F_SETPIPE_SZ", 1031), _PIPE_SIZE)
    except (ImportError, OSError):  # elsewhere, or refused: the default size works too
        pass


class FragmenterSession:
    """A fragmenter child process and the thread that reads its fragments.

    Args:
        settings: the encoder settings (see :mod:`framescope.kvs.fragmenter_process`).
        on_fragment: called on the reader thread with (stream header, fragment).
        name: names the reader thread.
    """

    def __init__(
        self,
        settings: dict[str, Any],
        on_fragment: Callable[[bytes, Fragment], None],
        name: str,
    ) -> None:
        self._process = subprocess.Popen(
            [sys.executable, "-m", "framescope.kvs.fragmenter_process"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        assert self._process.stdin is not None
        assert self._process.stdout is not None
        _widen(self._process.stdin.fileno())
        self._stdin = self._process.stdin
        self._stdin.write((json.dumps(settings) + "\n").encode())
        self._stdin.flush()
        self._on_fragment = on_fragment
        self.error: str | None = None
        self.encoded: int | None = None  # frames, once it closed cleanly
        self.ended = threading.Event()
        self._reader = threading.Thread(target=self._read, name=f"{name}-fragments", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        stdout = self._process.stdout
        assert stdout is not None
        header: bytes | None = None
        try:
            while True:
                head = stdout.read(MESSAGE.size)
                if len(head) < MESSAGE.size:
                    break
                kind, length = MESSAGE.unpack(head)
                body = stdout.read(length)
                if kind == b"H":
                    header = body
                elif kind == b"F" and header is not None:
                    timecode, frames = FRAGMENT_FACTS.unpack_from(body)
                    fragment = Fragment(body[FRAGMENT_FACTS.size :], timecode, frames)
                    self._on_fragment(header, fragment)
                elif kind == b"E":
                    self.error = body.decode("utf-8", "replace")
                elif kind == b"C":
                    self.encoded = int(body)
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
        """Close the input (the encoder flushes its last fragment) and wait for it to end."""
        with contextlib.suppress(OSError):
            self._stdin.close()
        try:
            self._process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            return False
        self._reader.join(timeout)
        return self.error is None

    def kill(self) -> None:
        """End the encoder process now."""
        with contextlib.suppress(OSError):
            self._process.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self._process.wait(5)
        with contextlib.suppress(OSError):
            self._stdin.close()
        if self._reader is not threading.current_thread():
            self._reader.join(5)

    @property
    def alive(self) -> bool:
        """Whether the process runs and has not reported an error or its end."""
        return self._process.poll() is None and not self.ended.is_set()
