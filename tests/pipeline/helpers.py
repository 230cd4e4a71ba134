"""Stages for pipeline tests: deterministic, gated by events, never sleeping."""

from __future__ import annotations

import threading
from typing import Any

from framescope import Stage
from framescope.clock import FakeClock


class Counter(Stage):
    """Adds ``add`` to the item and counts calls; cleanup resets and counts itself."""

    def __init__(self, name: str, add: int = 1) -> None:
        self.name = name
        self.add = add
        self.count = 0
        self.cleanups = 0

    def __call__(self, data: int) -> int:
        self.count += 1
        return data + self.add

    def cleanup(self) -> None:
        self.count = 0
        self.cleanups += 1


class Gate(Stage):
    """Blocks every call until ``release`` is set; ``entered`` tells a call is inside."""

    def __init__(self, name: str = "Gate") -> None:
        self.name = name
        self.release = threading.Event()
        self.entered = threading.Event()
        self.cleanups = 0

    def __call__(self, data: Any) -> Any:
        self.entered.set()
        self.release.wait(timeout=30)
        return data

    def cleanup(self) -> None:
        self.cleanups += 1


class FailOn(Stage):
    """Raises ValueError for the listed items, passes the others through."""

    def __init__(self, bad: set[int], name: str = "FailOn") -> None:
        self.name = name
        self.bad = bad

    def __call__(self, data: int) -> int:
        if data in self.bad:
            raise ValueError(f"bad item {data}")
        return data


class Busy(Stage):
    """Advances a fake clock by ``seconds`` per call: a stage of known duration."""

    def __init__(self, name: str, clock: FakeClock, seconds: float) -> None:
        self.name = name
        self.clock = clock
        self.seconds = seconds

    def __call__(self, data: Any) -> Any:
        self.clock.advance(self.seconds)
        return data


class HoldOn(Stage):
    """A :class:`Gate` for one item: blocks on ``item`` until ``release`` is set, passes others."""

    def __init__(self, item: Any, name: str = "HoldOn") -> None:
        self.name = name
        self.item = item
        self.release = threading.Event()
        self.entered = threading.Event()
        self.seen: list[Any] = []

    def __call__(self, data: Any) -> Any:
        self.seen.append(data)
        if data == self.item:
            self.entered.set()
            self.release.wait(timeout=30)
        return data


class FailWhenReleased(Stage):
    """Passes items through; on ``item`` it waits for ``release``, then raises ValueError."""

    def __init__(self, item: Any, name: str = "FailWhenReleased") -> None:
        self.name = name
        self.item = item
        self.release = threading.Event()
        self.entered = threading.Event()

    def __call__(self, data: Any) -> Any:
        if data == self.item:
            self.entered.set()
            self.release.wait(timeout=30)
            raise ValueError(f"bad item {data}")
        return data
