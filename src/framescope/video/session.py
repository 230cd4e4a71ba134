"""One run of an encoder child process: start it, feed it frames, hear what it says.

:class:`FrameProcess` is the part every encoder process shares: a child
started with ``python -m <module>``, one JSON settings line, then frames
(in shared-memory slots, or through the pipe) on its stdin, and a reader
thread on its stdout. :class:`EncoderSession` (SpyGlass) reads JSON reports;
``framescope.kvs`` reads fragments.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
import threading
from collections.abc import Callable
from typing import IO, TYPE_CHECKING, Any

from framescope.video.frame_slots import SLOT_HEADER, FrameSlots

if TYPE_CHECKING:
    import subprocess

__all__ = ["ENCODER_MODULE", "EncoderSession", "FrameProcess", "spawn"]

ENCODER_MODULE = "framescope.video.encoder_process"
"""The module SpyGlass's encoder child runs."""

logger = logging.getLogger(__name__)


def spawn(module: str) -> subprocess.Popen[bytes]:
    """Start ``python -m module`` with pipes for stdin and stdout (its settings come later).

    Starting it early lets it load its imports while the parent still
    decides the settings (see :class:`FrameProcess`'s ``process``). It runs
    in a session of its own, so a terminal's Ctrl-C (sent to the whole
    foreground process group) reaches only the parent, which then stops it
    in order and the file it writes stays whole. It ends by itself when the
    parent goes away (its stdin closes).
    """
    import subprocess  # noqa: PLC0415 - loaded on first use (cold start)

    return subprocess.Popen(
        [sys.executable, "-m", module],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        start_new_session=os.name == "posix",
    )


class FrameProcess:
    """A child process that takes frames on stdin, and the thread that reads its stdout.

    Subclasses implement :meth:`read` (on the reader thread) and call
    :meth:`slot_free` when the child says it is done with a slot; :attr:`ended`
    is set when ``read`` returns.

    Args:
        module: the module the child runs (``python -m module``).
        settings: its settings, JSON-ready (the first line of its stdin).
        name: names the reader thread.
        prepare: called with the child's stdin before the settings are written.
        frame_bytes: the size of the frames it will get; with it, frames of
            that size or smaller go through shared-memory slots (see
            :mod:`framescope.video.frame_slots`), listed in
            ``settings["slots"]``.
        process: a child already started with :func:`spawn` for ``module``
            (None: start one now).
    """

    SLOTS = 3

    def __init__(
        self,
        module: str,
        settings: dict[str, Any],
        name: str,
        prepare: Callable[[IO[bytes]], None] | None = None,
        frame_bytes: int | None = None,
        *,
        process: subprocess.Popen[bytes] | None = None,
    ) -> None:
        self._slots: FrameSlots | None = None
        if frame_bytes:
            try:
                self._slots = FrameSlots(self.SLOTS, frame_bytes, lambda: self.alive)
                settings = {**settings, "slots": self._slots.names}
            except OSError as error:  # no shared memory here: the pipe carries the frames
                logger.info("frames go through the pipe (no shared memory: %s)", error)
        self._process = spawn(module) if process is None else process
        assert self._process.stdin is not None
        assert self._process.stdout is not None
        self._stdin = self._process.stdin
        if prepare is not None:
            prepare(self._stdin)
        with contextlib.suppress(OSError):  # a child already gone: the reader sees it end
            self._stdin.write((json.dumps(settings) + "\n").encode())
            self._stdin.flush()
        self.ended = threading.Event()  # the process said it failed or closed, or exited
        self._reader = threading.Thread(target=self._run_reader, name=name, daemon=True)
        self._reader.start()

    def read(self, stdout: IO[bytes]) -> None:
        """Read what the child says until it ends (on the reader thread)."""
        raise NotImplementedError

    def _run_reader(self) -> None:
        stdout = self._process.stdout
        assert stdout is not None
        try:
            self.read(stdout)
        except (OSError, ValueError):  # closed under us by kill()
            pass
        finally:
            with contextlib.suppress(OSError):
                stdout.close()
            self.ended.set()

    def send(self, image: Any, stream_time: float) -> None:
        """Hand one contiguous BGR image to the encoder; OSError if it is gone.

        Blocks while the child holds every slot (or its pipe is full): the
        caller is the feeder thread, never the frame loop.
        """
        height, width = image.shape[:2]
        slots = self._slots
        if slots is not None and slots.fits(image):
            index = slots.acquire()
            slots.write(index, image)
            self._stdin.write(SLOT_HEADER.pack(height, width, stream_time, index))
            self._stdin.flush()  # the header is all the child waits for
            return
        self._stdin.write(SLOT_HEADER.pack(height, width, stream_time, -1))
        self._stdin.write(memoryview(image).cast("B"))

    def slot_free(self, index: int) -> None:
        """The child is done with slot ``index`` (called by :meth:`read`)."""
        if self._slots is not None:
            self._slots.release(index)

    def _close_slots(self) -> None:
        if self._slots is not None:
            self._slots.close()

    def finish(self, timeout: float | None) -> bool:
        """Close the stream (the encoder flushes and exits); kill it after ``timeout`` s.

        Returns True when it ended by itself.
        """
        import subprocess  # noqa: PLC0415 - loaded on first use (cold start)

        with contextlib.suppress(OSError):
            self._stdin.close()
        try:
            self._process.wait(timeout)
            clean = True
        except subprocess.TimeoutExpired:
            clean = False
            self.kill()
        self._reader.join(5)
        self._close_slots()
        return clean

    def kill(self) -> None:
        """End the encoder process now (a stuck receiver cannot hold it)."""
        import subprocess  # noqa: PLC0415 - loaded on first use (cold start)

        with contextlib.suppress(OSError):
            self._process.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self._process.wait(5)
        with contextlib.suppress(OSError):
            self._stdin.close()
        if self._reader is not threading.current_thread():
            self._reader.join(5)
        self._close_slots()

    @property
    def alive(self) -> bool:
        """Whether the process is running and has not reported its end."""
        return self._process.poll() is None and not self.ended.is_set()

    def exit_status(self) -> str:
        """How the process ended, in words ("running" while it runs)."""
        code = self._process.poll()
        if code is None:
            return "running"
        if code < 0:
            return f"the encoder process was killed by signal {-code}"
        return f"the encoder process exited with status {code}"


class EncoderSession(FrameProcess):
    """SpyGlass's encoder process and the thread that reads its reports.

    Args:
        settings: the VideoWriter settings (``uri`` included), JSON-ready.
        on_event: called on the reader thread with each report (a dict);
            a ``free`` report is handled here and then passed on too.
        name: names the reader thread.
        process: the child, already started with ``spawn(ENCODER_MODULE)``.
    """

    def __init__(
        self,
        settings: dict[str, Any],
        on_event: Callable[[dict[str, Any]], None],
        name: str,
        *,
        process: subprocess.Popen[bytes] | None = None,
    ) -> None:
        self._on_event = on_event
        size = settings.get("width", 0) * settings.get("height", 0) * 3
        super().__init__(
            ENCODER_MODULE, settings, f"{name}-reports", frame_bytes=size, process=process
        )

    def read(self, stdout: IO[bytes]) -> None:
        """Hand each JSON report to ``on_event`` until the process fails or closes."""
        for line in stdout:
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if event.get("event") == "free":
                self.slot_free(int(event.get("slot", -1)))
            self._on_event(event)
            if event.get("event") in ("error", "closed"):
                break
