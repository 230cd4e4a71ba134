"""The terminal live view runs on a clock: a FakeClock drives ``watch(seconds=...)`` exactly."""

from __future__ import annotations

import io
import threading
from collections.abc import Iterator

import pytest

from framescope import Pipeline
from framescope.clock import FakeClock
from framescope.live import watch
from tests.polling import holds_within

HEADLINE = "Cam (parallel): 5 completed of 5 forwarded"


@pytest.fixture
def pipeline() -> Iterator[Pipeline]:
    pipeline = Pipeline(name="Cam").add(lambda x: x, "Detect").parallelize(queue_size=2)
    list(pipeline.run(range(5)))
    yield pipeline
    pipeline.cleanup()


def test_watch_for_seconds_draws_once_a_refresh_and_ends_at_seconds(pipeline: Pipeline) -> None:
    clock = FakeClock(autojump=True)  # every wait passes at once, on the clock
    start = clock.monotonic_ns()
    out = io.StringIO()
    watch(pipeline, seconds=30, refresh=0.5, out=out, use_rich=False, clock=clock)
    assert out.getvalue().count(HEADLINE) == 60  # at 0, 0.5, ..., 29.5 s
    assert clock.monotonic_ns() - start == 30_000_000_000  # it ended at 30 s, not later


def test_watch_follows_the_clock_step_by_step(pipeline: Pipeline) -> None:
    clock = FakeClock()
    out = io.StringIO()
    watching = threading.Thread(
        target=watch,
        args=(pipeline, 2.0),
        kwargs={"refresh": 0.7, "out": out, "use_rich": False, "clock": clock},
    )
    watching.start()
    try:
        assert holds_within(lambda: out.getvalue().count(HEADLINE) == 1)
        for views in (2, 3):  # at 0.7 and 1.4 s of the clock
            clock.advance(0.7)
            assert holds_within(lambda views=views: out.getvalue().count(HEADLINE) == views)
        clock.advance(0.5)  # 1.9 s: still watching
        assert watching.is_alive()
        clock.advance(0.1)  # 2.0 s: the end, with no view drawn at it
        watching.join(30)
        assert not watching.is_alive()
        assert out.getvalue().count(HEADLINE) == 3
    finally:
        clock.advance(10)
        watching.join(30)


def test_a_clock_that_is_not_one_is_refused(pipeline: Pipeline) -> None:
    with pytest.raises(TypeError, match="clock must be a framescope Clock"):
        watch(pipeline, 1.0, clock=object())  # type: ignore[arg-type]
