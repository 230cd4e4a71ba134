"""Picking the image to preview out of what a stage returns, and encoding every new result."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from framescope.clock import FakeClock
from framescope.live.preview import PreviewTap, pick_image
from framescope.video import Frame

BGR = np.zeros((4, 6, 3), np.uint8)
GREY = np.zeros((4, 6), np.uint8)


def test_an_image_a_frame_and_a_grey_image_are_taken_as_they_are() -> None:
    assert pick_image(BGR) == (BGR, None)
    assert pick_image(GREY) == (GREY, None)
    image, why = pick_image(Frame(BGR, 3))
    assert image is BGR and why is None


def test_a_frame_that_is_not_bgr_is_no_image_to_preview() -> None:
    for pixel_format in ("rgb24", "yuv420p"):
        image, why = pick_image(Frame(BGR, 3, pixel_format=pixel_format))
        assert (
            image is None
            and why == f"returns Frame in {pixel_format!r}: the preview shows BGR frames"
        )


def test_the_single_image_in_a_dict_tuple_or_list_is_found() -> None:
    assert pick_image({"frame": BGR, "index": 3, "boxes": [(1, 2, 3, 4)]})[0] is BGR
    assert pick_image((0.5, BGR))[0] is BGR
    assert pick_image([Frame(GREY, 1), "label"])[0] is GREY


def test_image_picks_among_several_by_key_index_attribute_or_function() -> None:
    mask = np.ones((4, 6), np.uint8)
    both = {"frame": BGR, "mask": mask}
    image, why = pick_image(both)
    assert image is None
    assert why == "returns dict with 2 images ('frame', 'mask'): pass image=..."
    assert pick_image(both, "mask")[0] is mask
    assert pick_image((BGR, mask), 1)[0] is mask
    assert pick_image(Frame(BGR, 0), "image")[0] is BGR
    assert pick_image(both, lambda result: result["frame"])[0] is BGR


def test_no_image_is_said_plainly() -> None:
    assert pick_image({"score": 0.9}) == (
        None,
        "returns dict without an image in it: pass image=...",
    )
    assert pick_image(3.5) == (None, "returns float, not an image: pass image=...")
    assert pick_image(np.zeros((4, 6, 3), np.float32))[0] is None  # not uint8
    assert pick_image(np.zeros((4, 6, 4), np.uint8))[0] is None  # not 3 channels
    assert pick_image({"frame": BGR}, "nope") == (
        None,
        "returns dict, and image='nope' picks no uint8 image in it",
    )
    with pytest.raises(TypeError, match="image must be a key or attribute name"):
        PreviewTap("p", image=2.5)  # type: ignore[arg-type]


def until(check: Callable[[], Any], tap: PreviewTap, clock: FakeClock) -> Any:
    """Move the encoder's fake clock on until ``check()`` holds (polled, with a deadline)."""
    deadline = time.monotonic() + 10
    pause = threading.Event()
    while not (value := check()):
        assert time.monotonic() < deadline, "the encoder never got there"
        clock.advance(1 / tap.fps)
        pause.wait(0.005)  # a short real pause for the encoder (tap.latest waits on the clock)
    return value


def test_a_result_without_an_image_sets_the_problem_and_logs_it_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = FakeClock()
    tap = PreviewTap("annotated", clock=clock, source="Annotate")
    tap.start()
    try:
        with caplog.at_level(logging.WARNING, logger="framescope.live.preview"):
            for _ in range(3):
                tap({"score": 0.9})
                until(lambda: tap.problem, tap, clock)
                until(lambda: tap._encoded_seen == tap.frames_seen, tap, clock)
        assert tap.problem == "Annotate returns dict without an image in it: pass image=..."
        assert tap.status() == {"frames": 0, "problem": tap.problem, "cameras": []}
        assert [r.getMessage() for r in caplog.records] == [
            "preview 'annotated' shows nothing: " + tap.problem
        ]
        tap({"frame": BGR})
        until(lambda: tap.sequence, tap, clock)
        assert tap.problem is None and tap.sequence == 1
    finally:
        tap.stop()


def test_a_buffer_drawn_into_again_is_encoded_again() -> None:
    pytest.importorskip("av")
    clock = FakeClock()
    tap = PreviewTap("annotated", clock=clock)
    buffer = np.zeros((32, 48, 3), np.uint8)
    jpegs: list[Any] = []
    tap.start()
    try:
        for value in (0, 120, 250):
            buffer[:] = value  # the same object, new pixels
            tap(buffer)
            made = len(jpegs)
            latest = until(lambda: tap.latest(after=made, timeout=0), tap, clock)  # noqa: B023
            jpegs.append(latest[1])
        assert tap.sequence == 3 and len(set(jpegs)) == 3
    finally:
        tap.stop()


def test_an_image_function_that_raises_is_a_problem_not_the_end_of_the_preview() -> None:
    clock = FakeClock()
    tap = PreviewTap("annotated", clock=clock, source="Annotate", image=lambda r: r["nope"])
    tap.start()
    try:
        tap({"frame": BGR})
        until(lambda: tap.problem, tap, clock)
        assert tap.problem == "Annotate returns dict, and image= raised KeyError('nope')"
        tap.image = lambda result: result["frame"]
        tap({"frame": BGR})
        until(lambda: tap.sequence, tap, clock)
        assert tap.problem is None
    finally:
        tap.stop()


def test_a_tap_added_as_a_stage_names_itself_in_the_problem() -> None:
    clock = FakeClock()
    tap = PreviewTap("annotated", clock=clock)
    tap.start()
    try:
        tap(("label", 0.5))
        until(lambda: tap.problem, tap, clock)
        assert tap.problem == (
            "what reaches preview 'annotated' is a tuple without an image in it: pass image=..."
        )
    finally:
        tap.stop()
