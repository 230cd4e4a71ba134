"""A camera for the live view's tests: frames into a pipeline at about 30 a second, on a thread;
the picture it shows, and a started view of it."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from framescope import Pipeline
from framescope.live import LiveView


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


def striped(index: int, height: int, width: int, channel: int, level: int = 200) -> np.ndarray:
    """A picture of one colour (BGR ``channel`` at ``level``) with a white column that moves
    4 px a frame (``index``): a player can tell frames apart and check the colour."""
    image = np.zeros((height, width, 3), np.uint8)
    image[:, :, channel] = level
    image[:, (index * 4) % width] = 255
    return image


@contextlib.contextmanager
def camera_view(
    picture: Callable[[int], np.ndarray], **options: Any
) -> Iterator[tuple[LiveView, Camera]]:
    """A pipeline whose ``Draw`` stage makes ``picture(index)``, fed by a :class:`Camera`, and a
    started ``LiveView(pipeline, **options)`` with a preview ``main`` of Draw; on exit the
    camera stops, the view closes (asserted: everything stopped) and the pipeline is cleaned."""
    pipeline = Pipeline(name="Cam").add(picture, "Draw")
    view = LiveView(pipeline, **options)
    view.preview("main", stage="Draw")
    with view:
        camera = Camera(pipeline)
        try:
            yield view, camera
        finally:
            camera.close()
    assert view.close()
    pipeline.cleanup()
