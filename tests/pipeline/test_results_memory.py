"""What waits in the results is bounded in bytes too; results_size=0 keeps none."""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
import pytest

from framescope import Pipeline
from framescope._buffers import held_bytes
from framescope.pipeline import StageError
from framescope.video.frame import Frame

MiB = 2**20
MODES = ["serial", "parallel"]


def build(mode: str, stage: Any = None, **options: Any) -> Pipeline:
    pipeline = Pipeline(**options).add(stage or (lambda x: x), "Sink")
    return pipeline.serialize() if mode == "serial" else pipeline.parallelize(queue_size=2)


def mib_block(index: int) -> np.ndarray:
    # np.empty: the pages are never touched, so a test of bytes held costs no memory
    return np.empty(MiB, dtype=np.uint8)


def test_held_bytes_counts_arrays_frames_and_what_items_carry() -> None:
    image = np.zeros((72, 128, 3), np.uint8)
    size = image.nbytes
    assert held_bytes(image) == size
    assert held_bytes(image[:10]) == size  # a view keeps its whole base alive
    assert held_bytes(Frame(image, 0)) == size
    assert held_bytes({"frame": Frame(image.copy(), 1), "boxes": [image.copy()]}) == 2 * size
    assert held_bytes((image, image, [image])) == size  # counted once
    assert held_bytes(b"abcd") == 4 and held_bytes(bytearray(3)) == 3
    assert held_bytes(memoryview(b"abcdef")) == 6
    assert held_bytes([[[image]]]) == 0  # deeper than one level of nesting: not walked
    assert held_bytes([0] * 64 + [image]) == 0  # only the first 64 entries are looked at
    assert held_bytes(None) == held_bytes(7) == held_bytes("text") == held_bytes(object()) == 0


@pytest.mark.parametrize("mode", MODES)
def test_unread_results_are_bounded_in_bytes_and_counted(mode: str) -> None:
    pipeline = build(mode, results_bytes=10 * MiB)
    for index in range(100):
        pipeline.forward(mib_block(index))
        assert pipeline.counters()["results_held_bytes"] <= 10 * MiB
    pipeline.close()
    assert pipeline.join(30)
    counts = pipeline.counters()
    assert counts["completed"] == 100
    assert counts["results_dropped"] == 90 and counts["results_held_bytes"] == 10 * MiB
    diagnosis = pipeline.diagnose()
    assert diagnosis.verdict == "dropping"
    assert "90 results dropped unread: read results() or pass results_size=0" in diagnosis.reasons
    assert len(list(pipeline.results(timeout=0))) == 10  # the newest ten waited
    assert pipeline.counters()["results_held_bytes"] == 0
    assert pipeline.cleanup() == []


def test_the_default_bound_is_256_mib() -> None:
    pipeline = build("serial")
    for index in range(300):
        pipeline.forward(mib_block(index))
    counts = pipeline.counters()
    assert counts["results_dropped"] == 300 - 256
    assert counts["results_held_bytes"] == 256 * MiB
    pipeline.cleanup()


def test_frames_inside_dicts_count_and_results_size_still_bounds_items() -> None:
    image = np.zeros((120, 160, 3), np.uint8)
    pipeline = build("serial", results_bytes=3 * image.nbytes, results_size=1024)
    for index in range(10):
        pipeline.forward({"frame": Frame(image.copy(), index), "label": "cat"})
    assert pipeline.counters()["results_dropped"] == 7
    assert [r["frame"].index for r in pipeline.results(timeout=0)] == [7, 8, 9]
    small = build("serial", results_size=2)  # items without buffers: only the count bounds
    for index in range(10):
        small.forward(index)
    assert small.counters()["results_dropped"] == 8
    unbounded = build("serial", results_bytes=None, results_size=50)
    for index in range(40):
        unbounded.forward(mib_block(index))
    assert unbounded.counters()["results_dropped"] == 0  # None: the count alone bounds
    for each in (pipeline, small, unbounded):
        each.cleanup()


def test_a_result_larger_than_the_bound_is_still_delivered() -> None:
    pipeline = build("serial", results_bytes=MiB)
    pipeline.forward(np.empty(4 * MiB, np.uint8))
    assert pipeline.get_results().nbytes == 4 * MiB
    pipeline.cleanup()


@pytest.mark.parametrize("mode", MODES)
def test_run_waits_for_a_slow_reader_within_the_byte_bound(mode: str) -> None:
    pipeline = build(mode, results_bytes=3 * MiB)
    got = 0
    for result in pipeline.run(mib_block(index) for index in range(40)):
        assert result.nbytes == MiB
        assert pipeline.counters()["results_held_bytes"] <= 3 * MiB
        got += 1
    assert got == 40 and pipeline.counters()["results_dropped"] == 0
    assert pipeline.cleanup() == []


@pytest.mark.parametrize("mode", MODES)
def test_results_size_0_runs_every_item_and_keeps_no_result(mode: str) -> None:
    written: list[int] = []
    lock = threading.Lock()

    def write(block: np.ndarray) -> np.ndarray:  # the last stage is the output
        with lock:
            written.append(block.nbytes)
        return block

    pipeline = build(mode, write, results_size=0)
    assert list(pipeline.run(mib_block(index) for index in range(30))) == []
    assert len(written) == 30
    counts = pipeline.counters()
    assert counts["completed"] == counts["results_not_kept"] == 30
    assert counts["results_dropped"] == 0 and counts["results_held_bytes"] == 0
    assert counts["forwarded"] == 30 and counts["in_flight"] == 0
    assert pipeline.diagnose().verdict != "dropping"
    assert pipeline.get_results() is None
    assert pipeline.cleanup() == []


@pytest.mark.parametrize("mode", MODES)
def test_results_size_0_still_raises_stage_errors(mode: str) -> None:
    def fail_on_three(x: int) -> int:
        if x == 3:
            raise ValueError("three")
        return x

    pipeline = build(mode, fail_on_three, results_size=0)
    with pytest.raises(StageError, match="three"):
        list(pipeline.run(range(6)))
    assert pipeline.counters()["failed"] == 1
    pipeline.cleanup()


@pytest.mark.parametrize(
    ("options", "error", "message"),
    [
        ({"results_bytes": 0}, ValueError, "results_bytes must be a positive integer"),
        ({"results_bytes": "1G"}, TypeError, "results_bytes must be a positive integer or None"),
        ({"results_bytes": True}, TypeError, "results_bytes must be a positive integer or None"),
        ({"results_size": -1}, ValueError, "results_size must be a non-negative integer"),
        ({"results_size": 2.0}, TypeError, "results_size must be a non-negative integer"),
    ],
)
def test_bad_result_bounds_are_refused(options: dict[str, Any], error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        Pipeline(**options)


def test_results_size_0_get_results_does_not_wait_for_a_result_that_cannot_come() -> None:
    pipeline = Pipeline(results_size=0).add(lambda x: x, "Sink")
    pipeline.parallelize(queue_size=2, block_output=True, output_timeout=600)
    pipeline.forward(1)
    answers: list[Any] = []
    asking = threading.Thread(target=lambda: answers.append(pipeline.get_results()), daemon=True)
    asking.start()
    asking.join(30)
    assert answers == [None]  # it answered, without waiting out output_timeout
    pipeline.close()
    assert pipeline.join(30)
    assert pipeline.counters()["results_not_kept"] == 1
    assert pipeline.cleanup() == []
