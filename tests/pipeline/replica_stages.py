"""Stages for process and Ray replica tests: defined at module level, so workers can import them."""

from __future__ import annotations

import os
import pathlib
import signal
import time
from typing import Any

import numpy as np
import pytest

from framescope import Pipeline, Stage
from framescope.pipeline import StageError
from framescope.pipeline.replicas.child import resident_bytes
from tests.polling import wait_for


class Brighten:
    """Adds ``amount`` to a frame in place and returns it with the worker's process id."""

    def __init__(self, amount: int) -> None:
        self.amount = amount

    def __call__(self, item: tuple[int, np.ndarray]) -> dict[str, Any]:
        index, frame = item
        frame += self.amount  # in place: the worker's copy is writable
        return {"index": index, "frame": frame, "pid": os.getpid()}


class Echo:
    """Returns what it got, with the worker's process id."""

    def __call__(self, item: Any) -> tuple[Any, int]:
        return item, os.getpid()


class BatchEcho:
    """A batched stage: each item back with the worker's process id and the call's number."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, items: list[Any]) -> list[tuple[Any, int, int]]:
        self.calls += 1
        return [(item, os.getpid(), self.calls) for item in items]


class Lineage:
    """Returns what it got with the worker's process id and its parent's."""

    def __call__(self, item: Any) -> tuple[Any, int, int]:
        return item, os.getpid(), os.getppid()


MARK: str | None = None
"""Set at run time by a test: a worker forked from the test's process sees it, others do not."""


class ReadsMark:
    """Returns what it got with :data:`MARK` as its worker sees it."""

    def __call__(self, item: Any) -> tuple[Any, str | None]:
        return item, MARK


class Refuses:
    """Raises KeyError for odd items."""

    def __call__(self, item: int) -> int:
        if item % 2:
            raise KeyError(f"odd item {item}")
        return item


class UnpicklableError(Exception):
    """An exception that cannot be rebuilt from its pickle."""

    def __init__(self, a: int, b: int) -> None:
        super().__init__(f"{a}/{b}")


class RaisesUnpicklable:
    def __call__(self, item: int) -> int:
        raise UnpicklableError(item, 2)


class Stall:
    """Writes its process id to ``marker`` and waits a long time on item ``stall_on``."""

    def __init__(self, marker: str, stall_on: int) -> None:
        self.marker = marker
        self.stall_on = stall_on

    def __call__(self, item: int) -> int:
        if item == self.stall_on:
            pathlib.Path(self.marker).write_text(str(os.getpid()))
            time.sleep(60)
        return item


def stalled_worker(marker: pathlib.Path, limit: float = 60) -> int:
    """The process id a :class:`Stall` wrote to ``marker`` once it stalled (waits for it)."""
    wait_for(lambda: marker.exists() and marker.read_text(), limit, "the stage stalling")
    return int(marker.read_text())


def kill_stalled_worker(marker: pathlib.Path) -> None:
    """SIGKILL the worker a :class:`Stall` stalled in, and forget its marker."""
    os.kill(stalled_worker(marker), signal.SIGKILL)
    marker.unlink()


def run_killing_one_worker(
    executor: str, marker: pathlib.Path, stall_on: int, before: int, after: int
) -> tuple[list[Any], dict[str, int]]:
    """Forward ``before`` items, kill the worker stalled on ``stall_on``, forward up to ``after``.

    The stage's policy is ``skip``; returns the results and the counters after the end.
    """
    pipeline = Pipeline(results_size=100)
    pipeline.add(Stall(str(marker), stall_on), "Stall", executor=executor, on_error="skip")
    # A worker or actor can take seconds to start on a loaded machine: forward waits for room.
    pipeline.parallelize(queue_size=2, input_timeout=60)
    try:
        for item in range(before):
            assert pipeline.forward(item)
        kill_stalled_worker(marker)
        for item in range(before, after):
            assert pipeline.forward(item)
        pipeline.close()
        assert pipeline.join(60)
        return list(pipeline.results(timeout=0)), pipeline.counters()
    finally:
        pipeline.cleanup()


def error_of_killed_worker(executor: str, marker: pathlib.Path) -> BaseException:
    """Kill the worker stalled on item 0 (``raise`` policy); return the error ``results()`` raises."""
    with Pipeline() as pipeline:
        pipeline.add(Stall(str(marker), stall_on=0), "Stall", executor=executor).parallelize()
        assert pipeline.forward(0)
        kill_stalled_worker(marker)
        pipeline.close()
        with pytest.raises(StageError) as raised:
            list(pipeline.results(timeout=60))
    return raised.value.error


class NotesCleanup:
    """Appends its process id to ``path`` when its ``cleanup()`` is called."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __call__(self, item: int) -> int:
        return item

    def cleanup(self) -> None:
        with open(self.path, "a") as file:
            file.write(f"{os.getpid()}\n")


class Spin:
    """Keeps the interpreter busy for ``seconds`` (pure Python: holds the GIL)."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def __call__(self, item: Any) -> Any:
        end = time.perf_counter() + self.seconds
        while time.perf_counter() < end:
            pass
        return item


class Draw:
    """Writes into its frame (fails on a read-only one)."""

    def __call__(self, frame: np.ndarray) -> np.ndarray:
        frame[0, 0] = 255
        return frame


class Infer(Stage):
    """A stand-in model for the README: adds one to its input (a number or a frame)."""

    name = "Infer"

    def __call__(self, frame: Any) -> Any:
        return frame + 1


class EchoNotes(NotesCleanup):
    """Returns its item with the worker's process id; notes its ``cleanup()`` in ``path``."""

    def __call__(self, item: int) -> tuple[int, int]:  # type: ignore[override]
        return item, os.getpid()


class Leak:
    """Keeps ``mib`` MiB (pages touched) per item; returns the item, its process id and RSS."""

    def __init__(self, mib: int) -> None:
        self.mib = mib
        self.kept: list[np.ndarray] = []

    def __call__(self, item: int) -> tuple[int, int, int | None]:
        self.kept.append(np.ones(self.mib << 20, np.uint8))
        return item, os.getpid(), resident_bytes()
