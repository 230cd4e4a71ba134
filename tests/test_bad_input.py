"""Bad arguments get a TypeError/ValueError naming the argument, at the public boundary."""

from __future__ import annotations

import datetime
import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from framescope.annotation import (
    LabelAnnotation,
    MarkerAnnotation,
    OpenCVImageAnnotationDriver,
    PillowImageAnnotationDriver,
    Point,
    Rectangle,
    RectAnnotation,
)
from framescope.histogram import Distribution, Histogram
from framescope.pipeline import Pipeline
from framescope.pipeline.replicas.ray import RayExecutor
from framescope.stats import RollingStats
from framescope.timepiece import IntervalSchedule, StopWatch, Ticker, TickerTachometer
from framescope.video import VideoSource


def _nothing() -> None:
    return None


@pytest.mark.parametrize("make", [Ticker, lambda n: StopWatch("w", n), RollingStats])
def test_a_window_too_large_to_hold_is_a_value_error(make: object) -> None:
    with pytest.raises(ValueError, match=r"(max_intervals|window) must be at most"):
        make(2**64)  # type: ignore[operator]


@pytest.mark.parametrize("interval", [1e300, 2**64, -1e300])
def test_an_interval_too_long_for_a_timedelta_is_a_value_error(interval: float) -> None:
    with pytest.raises(ValueError, match="interval must be"):
        IntervalSchedule(interval, _nothing)
    with pytest.raises(ValueError, match="stats_interval must be"):
        TickerTachometer(_nothing, stats_interval=interval)


@pytest.mark.parametrize("divisor", [0, -1.0, math.nan, math.inf])
def test_a_histogram_divisor_must_be_finite_and_positive(divisor: float) -> None:
    with pytest.raises(ValueError, match="divisor"):
        Histogram([1.0, 2.0], divisor)
    with pytest.raises(ValueError, match="divisor"):
        Distribution(divisor)


def test_a_histogram_divisor_of_the_wrong_type_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="divisor"):
        Histogram([1.0], "1e9")  # type: ignore[arg-type]


@pytest.mark.parametrize("options", [3, "num_cpus", [("num_cpus", 1)], {1: 2}])
def test_ray_actor_options_must_be_a_dict_with_str_keys(options: object) -> None:
    with pytest.raises(TypeError, match="actor_options"):
        RayExecutor(options)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("keyword", "value", "error"),
    [
        ("options", ["-rtsp_transport", "tcp"], TypeError),
        ("options", {1: "x"}, TypeError),
        ("options", {"probesize": [1]}, TypeError),
        ("realtime", "no", TypeError),
        ("loop", 1.5, TypeError),
        ("reconnect", "yes", TypeError),
        ("pixel_format", 3, TypeError),
        ("pixel_format", "", ValueError),
        ("format", b"mp4", TypeError),
        ("clock", 3, TypeError),
        ("timeout", 1e300, ValueError),
        ("stall_timeout", math.nan, ValueError),
    ],
)
def test_video_source_names_a_bad_argument_before_it_looks_for_the_file(
    tmp_path: Path, keyword: str, value: object, error: type[Exception]
) -> None:
    missing = tmp_path / "missing.mp4"  # checked first: not a FileNotFoundError
    with pytest.raises(error, match=keyword):
        VideoSource(missing, **{keyword: value})  # type: ignore[arg-type]


def test_video_source_options_take_numbers_as_text(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):  # the options were accepted
        VideoSource(tmp_path / "missing.mp4", options={"probesize": 32, "tcp": "1"})


@pytest.mark.parametrize(
    ("value", "error"),
    [("x", TypeError), (-1, ValueError), (math.nan, ValueError), (1e300, ValueError)],
)
def test_pipeline_timeouts_are_checked(value: object, error: type[Exception]) -> None:
    pipeline = Pipeline()
    pipeline.add(lambda item: item)
    try:
        with pytest.raises(error, match="timeout"):
            pipeline.join(timeout=value)  # type: ignore[arg-type]
        with pytest.raises(error, match="timeout"):
            pipeline.results(timeout=value)  # type: ignore[arg-type]
        with pytest.raises(error, match="timeout"):
            pipeline.stop_loop(timeout=value)  # type: ignore[arg-type]
        with pytest.raises(error, match="timeout"):
            pipeline.cleanup(timeout=value)  # type: ignore[arg-type]
    finally:
        pipeline.cleanup()


@pytest.mark.parametrize("size", [1e300, 1e6, 2**64])
def test_a_label_or_marker_size_beyond_the_frame_is_a_value_error(size: float) -> None:
    with pytest.raises(ValueError, match="size must be"):
        LabelAnnotation(Point(0.5, 0.5), "x", size=size)
    with pytest.raises(ValueError, match="size must be"):
        MarkerAnnotation(Point(0.5, 0.5), size=size)


def test_a_thickness_beyond_any_frame_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="thickness must be at most"):
        RectAnnotation(Rectangle(Point(0.1, 0.1), Point(0.5, 0.5)), thickness=2**64)


@pytest.mark.parametrize("size", [(0, 0), (0, 5), (5, 0)])
def test_pillow_refuses_an_empty_image(size: tuple[int, int]) -> None:
    driver = PillowImageAnnotationDriver()
    label = LabelAnnotation(Point(0.5, 0.5), "x")
    with pytest.raises(ValueError, match="context must be a non-empty image"):
        driver.render([label], Image.new("RGB", size))


def test_opencv_refuses_an_empty_image() -> None:
    driver = OpenCVImageAnnotationDriver()
    with pytest.raises(ValueError, match="context must be a non-empty image"):
        driver.render([MarkerAnnotation(Point(0.5, 0.5))], np.zeros((0, 0, 3), np.uint8))


def test_a_timedelta_interval_still_works() -> None:
    schedule = IntervalSchedule(datetime.timedelta(days=365), _nothing)
    assert schedule.interval == datetime.timedelta(days=365)


@pytest.mark.parametrize("keyword", ["use_profiler", "debug"])
@pytest.mark.parametrize("value", ["no", 2, 1.0, [True]])
def test_pipeline_flags_must_be_bools(keyword: str, value: object) -> None:
    with pytest.raises(TypeError, match=keyword):
        Pipeline(**{keyword: value})  # type: ignore[arg-type]


def test_pipeline_trace_frames_is_bounded() -> None:
    with pytest.raises(ValueError, match="trace_frames must be at most"):
        Pipeline(trace_frames=2**64)


@pytest.mark.parametrize(
    ("keyword", "value", "error"),
    [("replicas", 1025, ValueError), ("ordered", "no", TypeError)],
)
def test_add_refuses_what_it_cannot_run(
    keyword: str, value: object, error: type[Exception]
) -> None:
    pipeline = Pipeline()
    with pytest.raises(error, match=keyword):
        pipeline.add(lambda item: item, **{keyword: value})  # type: ignore[arg-type]
    assert pipeline.stage_names == []


@pytest.mark.parametrize("keyword", ["block_input", "block_output"])
def test_parallelize_flags_must_be_bools(keyword: str) -> None:
    pipeline = Pipeline().add(lambda item: item)
    with pytest.raises(TypeError, match=keyword):
        pipeline.parallelize(**{keyword: "false"})  # type: ignore[arg-type]
    pipeline.cleanup()


def test_flags_take_the_integers_older_code_passes_for_true_and_false() -> None:
    from framescope import Pipeline

    pipeline = Pipeline(use_profiler=1, debug=0)  # as PyStream-era code writes them
    assert pipeline.use_profiler is True
    with pytest.raises(TypeError, match="use_profiler must be True or False, got int"):
        Pipeline(use_profiler=2)
