"""A camera for the live view's tests: frames into a pipeline at about 30 a second, on a thread."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from framescope import Pipeline


class Camera:
    """Frames into ``pipeline`` at about 30 a second until closed; ``items`` makes each."""

    def __init__(self, pipeline: Pipeline, items: Callable[[int], Any] = int) -> None:
        self.pipeline, self.items = pipeline, items
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name="camera")
        self.thread.start()

    def _run(self) -> None:
        index = 0
        while not self.stop.wait(1 / 30):
            self.pipeline.forward(self.items(index))
            index += 1

    def close(self) -> None:
        self.stop.set()
        self.thread.join(10)
