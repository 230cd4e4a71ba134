"""Taps: a callback sees every result of one stage, in serial, threaded and nested runs."""

from __future__ import annotations

from typing import Any

import pytest

from framescope import Pipeline


def double(x: int) -> int:
    return x * 2


def plus_one(x: int) -> int:
    return x + 1


@pytest.mark.parametrize("threaded", [False, True])
def test_a_tap_sees_every_result_of_its_stage(threaded: bool) -> None:
    seen: list[int] = []
    pipeline = Pipeline(name="P").add(double, "Double").add(plus_one, "PlusOne")
    pipeline.tap("Double", seen.append)
    if threaded:
        pipeline.parallelize(queue_size=2)
    assert list(pipeline.run(range(5))) == [1, 3, 5, 7, 9]
    pipeline.cleanup()
    assert seen == [0, 2, 4, 6, 8]  # the stage's results, not the pipeline's


def test_a_tap_finds_a_stage_of_a_nested_pipeline_by_name_or_profile_key() -> None:
    inner = Pipeline(name="Inner").add(double, "Double")
    outer = Pipeline(name="Outer").add(plus_one, "First").add(inner)
    by_name: list[int] = []
    by_key: list[int] = []
    outer.tap("Double", by_name.append)
    outer.tap("Outer__Inner__Double", by_key.append)
    assert list(outer.run([1, 2])) == [4, 6]
    outer.cleanup()
    assert by_name == by_key == [4, 6]


def test_a_failing_tap_fails_the_item_as_the_stage_would() -> None:
    def broken(_: Any) -> None:
        raise RuntimeError("tap broke")

    pipeline = Pipeline(name="P").add(double, "Double", on_error="skip")
    pipeline.tap("Double", broken)
    assert list(pipeline.run(range(3))) == []
    assert pipeline.counters()["failed"] == 3
    assert pipeline.stage_failures() == {"P__Double": 3}
    pipeline.cleanup()


def test_tap_refuses_unknown_stages_bad_callbacks_and_a_running_pipeline() -> None:
    pipeline = Pipeline(name="P").add(double, "Double")
    with pytest.raises(ValueError, match=r"no stage named 'Nope'; stages are \['P__Double'\]"):
        pipeline.tap("Nope", print)
    with pytest.raises(TypeError, match="callback must be callable, got int"):
        pipeline.tap("Double", 3)  # type: ignore[arg-type]
    pipeline.start()
    with pytest.raises(RuntimeError, match="running; tap before it starts"):
        pipeline.tap("Double", print)
    pipeline.cleanup()
