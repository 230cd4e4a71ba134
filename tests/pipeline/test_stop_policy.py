"""Stopping: the ``stop`` error policy keeps the work ahead of the failure; cleanup names only
what really did not stop."""

from __future__ import annotations

import threading

from framescope import Pipeline

from .helpers import Gate


def identity(item: int) -> int:
    return item


def test_cleanup_with_a_hung_stage_names_only_that_stage_not_the_aggregator() -> None:
    hang = Gate("Hang")
    pipeline = Pipeline(debug=True).add(identity, "Before").add(hang).parallelize()
    pipeline.forward(1)
    assert hang.entered.wait(10)
    aggregators = [t for t in threading.enumerate() if t.name.endswith(":aggregator")]
    try:
        hung = pipeline.cleanup(timeout=0.5)
        assert hung == ["MainPipeline__Hang"]
        ours = [t for t in aggregators if t.name == "framescope:MainPipeline:aggregator"]
        assert len(ours) == 1 and not ours[0].is_alive()
    finally:
        hang.release.set()  # let the hung thread end
