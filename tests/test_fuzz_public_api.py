"""Hostile arguments at the public boundary: a call works, or it is one error naming the argument.

Every public constructor and entry function is called with valid arguments, one
or two of them replaced by a hostile value (None, bools, huge or negative
numbers, NaN, infinities, odd strings, bytes, containers, arbitrary objects).
The call either succeeds (what it built is then closed) or raises a TypeError
or ValueError whose message names one of the replaced arguments. Nothing it
starts may be left behind: no thread, no child process.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import math
import multiprocessing
import os
import subprocess
import tempfile
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from framescope import Pipeline, PipelineSnapshot, RollingStats, StopWatch, Ticker
from framescope.annotation import (
    BoundingBoxAnnotation,
    Color,
    LabelAnnotation,
    Line,
    LineAnnotation,
    MarkerAnnotation,
    Point,
    PolyLine,
    PolyLineAnnotation,
    Rectangle,
    RectAnnotation,
    TimestampAnnotation,
)
from framescope.clock import FakeClock
from framescope.cwadapter import (
    CloudWatchSender,
    CloudWatchTimerAdapter,
    CWTachometer,
    MetricDelivery,
    PipelineMetricsExporter,
)
from framescope.exporters import MetricSources
from framescope.exporters.opentelemetry import OpenTelemetryExporter
from framescope.exporters.prometheus import MetricsServer, PrometheusExporter
from framescope.histogram import Distribution, Histogram, check_bounds
from framescope.kvs import AckParser, KVSInlineCredentialsHandler, KVSSpyGlass
from framescope.live import LiveView, PreviewTap
from framescope.modeltiming import ModelTiming, format_table, format_tree
from framescope.pipeline import StageError, merge_snapshots
from framescope.pipeline.model.traces import FrameTrace, StageSpan
from framescope.pipeline.replicas.process import ProcessExecutor
from framescope.pipeline.replicas.ray import RayExecutor
from framescope.stats import percentile
from framescope.timepiece import (
    AlarmClock,
    AtSchedule,
    IntervalSchedule,
    OrdinalSchedule,
    StopWatchTachometer,
    TickerTachometer,
)
from framescope.trace import chrome_trace, write_trace
from framescope.video import SpyGlass, SyntheticSource, VideoSource, VideoWriter
from tests.polling import holds_within

# One fixed, database-less profile: the same examples on every run and every machine.
FUZZ = settings(
    max_examples=int(os.environ.get("FRAMESCOPE_FUZZ_EXAMPLES", "50")),
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


class Odd:
    """An arbitrary object: no number, no string, no container."""

    def __repr__(self) -> str:
        return "Odd()"


HOSTILE = st.one_of(
    st.sampled_from(
        [
            None,
            True,
            False,
            0,
            -1,
            2**64,
            -(2**64),
            10**400,
            math.nan,
            math.inf,
            -math.inf,
            1e300,
            -1e300,
            0.0,
            -0.0,
            1e-300,
            "",
            " ",
            "\x00",
            "é\u202e",
            "../..",
            b"",
            b"\xff",
            [],
            [None],
            (),
            {},
            {None: 1},
            {1: "x"},
            {"k": Odd()},
            Odd(),
            object,
            datetime.timedelta(days=-1),
        ]
    ),
    st.integers(),
    st.floats(),
    st.text(max_size=8),
)


def _nothing(*_: Any) -> None:
    return None


def _close(obj: Any) -> None:
    obj.close()


def _cleanup(obj: Any) -> None:
    obj.cleanup()


def _no_cleanup(_: Any) -> None:
    return None


@dataclass(frozen=True)
class Call:
    """A public callable, its valid arguments, and how to release what it returns."""

    name: str
    target: Callable[..., Any]
    valid: dict[str, Any]
    release: Callable[[Any], None] = _no_cleanup
    positional: tuple[Any, ...] = ()
    fixed: dict[str, Any] = field(default_factory=dict)

    def __call__(self, arguments: dict[str, Any]) -> Any:
        return self.target(*self.positional, **self.fixed, **arguments)


def _snapshot() -> Any:
    pipeline = Pipeline(name="Fuzz", clock=FakeClock()).add(_nothing, "Keep")
    pipeline.forward(1)
    snapshot = pipeline.snapshot()
    pipeline.cleanup()
    return snapshot


SNAPSHOT = _snapshot()


class Source:
    """A snapshot source that is a snapshot source (the SnapshotSource protocol)."""

    def snapshot(self) -> Any:
        return SNAPSHOT


def _pipeline_method(method: str, *, started: bool = False) -> Callable[..., Any]:
    def call(**arguments: Any) -> Any:
        pipeline = Pipeline([1, 2], name="P", clock=FakeClock()).add(_nothing, "Keep")
        if started:
            pipeline.start()
        if method == "join":
            pipeline.close()
        try:
            result = getattr(pipeline, method)(**arguments)
            if method == "run":
                list(result)
        finally:
            pipeline.cleanup()
        return None

    return call


def _model() -> Any:
    import torch

    return torch.nn.Sequential(torch.nn.Linear(2, 2))


def _timed_tree() -> Any:
    import torch

    model = _model()
    with ModelTiming(model, device="cpu") as timing:
        model(torch.zeros(1, 2))
    return timing.timing_data


TREE = _timed_tree()
TRACE_DIR = Path(tempfile.mkdtemp(prefix="framescope-fuzz-"))
CLIP = TRACE_DIR / "clip.mp4"
subprocess.run(
    [
        "ffmpeg",
        "-v",
        "error",
        "-f",
        "lavfi",
        "-i",
        "testsrc2=size=32x24",
        "-frames:v",
        "2",
        str(CLIP),
    ],
    check=True,
)


def _calls() -> list[Call]:
    clock = FakeClock()
    fixed_clock = {"clock": clock}
    point = Point(0.1, 0.2)
    rect = Rectangle(Point(0.1, 0.1), Point(0.5, 0.5))
    span = StageSpan("A", 1, 2, 3, 4, 0)
    return [
        # the ground floor
        Call("RollingStats", RollingStats, {"window": 10, "divisor": 1.0}),
        Call("Histogram", Histogram, {"bounds": [1.0, 2.0], "divisor": 1.0}),
        Call("Distribution", Distribution, {"divisor": 1e9}),
        # ``name`` is what its errors name: kept valid.
        Call("check_bounds", check_bounds, {"bounds": [1.0, 2.0]}, fixed={"name": "bounds"}),
        Call("percentile", percentile, {"sorted_values": [1.0, 2.0], "q": 0.5}),
        # timepiece
        Call("Ticker", Ticker, {"max_intervals": 10}, fixed=fixed_clock),
        Call("StopWatch", StopWatch, {"name": "w", "max_intervals": 10}, fixed=fixed_clock),
        Call(
            "TickerTachometer",
            TickerTachometer,
            {"stats_callback": _nothing, "stats_interval": 5.0, "max_intervals": 10},
            fixed=fixed_clock,
        ),
        Call(
            "StopWatchTachometer",
            StopWatchTachometer,
            {"stats_callback": _nothing, "stats_interval": 5.0, "max_intervals": 10},
            fixed=fixed_clock,
        ),
        Call(
            "IntervalSchedule",
            IntervalSchedule,
            {"interval": 1.0, "callback": _nothing, "cbargs": (), "cbkwargs": {}},
            fixed=fixed_clock,
        ),
        Call(
            "OrdinalSchedule",
            OrdinalSchedule,
            {"ordinal": 3, "callback": _nothing, "cbargs": (), "cbkwargs": {}},
            fixed=fixed_clock,
        ),
        Call(
            "AtSchedule",
            AtSchedule,
            {
                "at": datetime.datetime(2030, 1, 1, tzinfo=datetime.timezone.utc),
                "callback": _nothing,
            },
            fixed=fixed_clock,
        ),
        Call("AlarmClock", AlarmClock, {"schedules": []}),
        # annotation geometry and annotations
        Call("Point", Point, {"x": 0.1, "y": 0.2}),
        Call("Rectangle", Rectangle, {"pt1": Point(0.1, 0.1), "pt2": Point(0.5, 0.5)}),
        Call("Line", Line, {"pt1": Point(0.1, 0.1), "pt2": Point(0.5, 0.5)}),
        Call("PolyLine", PolyLine, {"points": (point, Point(0.3, 0.4)), "closed": True}),
        Call("Color", Color, {"r": 1, "g": 2, "b": 3, "alpha": 1.0}),
        Call("LabelAnnotation", LabelAnnotation, {"point": point, "text": "t", "size": 1.0}),
        Call("MarkerAnnotation", MarkerAnnotation, {"point": point, "size": 1.0}),
        Call("BoundingBoxAnnotation", BoundingBoxAnnotation, {"rectangle": rect, "top_label": "a"}),
        Call("RectAnnotation", RectAnnotation, {"rect": rect, "thickness": 2}),
        Call("LineAnnotation", LineAnnotation, {"line": Line(point, point), "thickness": 1}),
        Call(
            "PolyLineAnnotation",
            PolyLineAnnotation,
            {"polyline": PolyLine((point, Point(0.3, 0.4))), "thickness": 1},
        ),
        Call("TimestampAnnotation", TimestampAnnotation, {"point": point, "size": 1.0}),
        # pipeline: the constructor and the public methods
        Call(
            "Pipeline",
            Pipeline,
            {
                "name": "P",
                "debug_interval": 0.1,
                "trace_every": 1,
                "trace_frames": 10,
                "window": 10,
                "results_size": 8,
                "results_bytes": 1 << 20,
                "block_names": 8,
            },
            release=_cleanup,
            fixed=fixed_clock,
        ),
        Call(
            "Pipeline.add",
            _pipeline_method("add"),
            {
                "stage": _nothing,
                "name": "S",
                "on_error": "skip",
                "queue_size": 2,
                "replicas": 1,
                "ordered": True,
            },
        ),
        Call(
            "Pipeline.parallelize",
            _pipeline_method("parallelize"),
            {"input_timeout": 1.0, "output_timeout": 1.0, "queue_size": 2, "overflow": "block"},
        ),
        Call("Pipeline.run", _pipeline_method("run"), {"source": [1, 2]}),
        Call("Pipeline.join", _pipeline_method("join"), {"timeout": 1.0}),
        Call("Pipeline.cleanup", _pipeline_method("cleanup"), {"timeout": 1.0, "drain": False}),
        Call("Pipeline.results", _pipeline_method("results", started=True), {"timeout": 0.01}),
        Call("Pipeline.start_loop", _pipeline_method("start_loop"), {"period": 0.5}),
        Call("Pipeline.tap", _pipeline_method("tap"), {"stage": "Keep", "callback": _nothing}),
        Call("ProcessExecutor", ProcessExecutor, {"max_items": 10, "max_memory": 1 << 30}),
        Call("RayExecutor", RayExecutor, {"actor_options": {"num_cpus": 1}}),
        Call(
            "merge_snapshots",
            merge_snapshots,
            {"prefixes": ["a"], "name": "m"},
            positional=(SNAPSHOT,),
        ),
        # trace
        Call(
            "chrome_trace",
            chrome_trace,
            {"frames": [FrameTrace(1, 0, (span,))], "node_ids": ["A"], "title": "t"},
        ),
        Call(
            "write_trace",
            write_trace,
            {"document": {"traceEvents": []}},
            fixed={"path": TRACE_DIR / "fuzz.json"},
            release=lambda path: path.unlink(),
        ),
        # exporters
        Call("MetricSources", MetricSources, {"buckets": (0.1, 1.0)}),
        Call(
            "PrometheusExporter",
            PrometheusExporter,
            {"namespace": "fs", "buckets": (0.1, 1.0), "labels": {"a": "b"}},
        ),
        Call(
            "MetricsServer",
            MetricsServer,
            {
                "port": 0,
                "host": "127.0.0.1",
                "max_connections": 2,
                "request_timeout": 1.0,
                "header_timeout": 1.0,
            },
            release=_close,
            positional=(None,),
        ),
        # CloudWatch: constructors only, with a client that is never called
        Call(
            "CloudWatchSender",
            CloudWatchSender,
            {"namespace": "ns", "max_buffer": 10, "retry_initial": 1.0, "retry_max": 2.0},
            release=_close,
            fixed={"client": Odd(), "clock": clock},
        ),
        Call(
            "CloudWatchTimerAdapter",
            CloudWatchTimerAdapter,
            {"namespace": "ns", "metric_name": "m", "dimensions": {"a": "b"}, "max_buffer": 10},
            release=_close,
            fixed={"client": Odd(), "clock": clock},
        ),
        Call(
            "CWTachometer",
            CWTachometer,
            {
                "namespace": "ns",
                "metric_name": "m",
                "dimensions": {"a": "b"},
                "stats_interval": 5.0,
            },
            release=_close,
            fixed={"client": Odd(), "clock": clock},
        ),
        Call(
            "PipelineMetricsExporter",
            PipelineMetricsExporter,
            {"namespace": "ns", "dimensions": {"a": "b"}, "interval": 5.0, "max_buffer": 10},
            release=_close,
            positional=(Source(),),
            fixed={"client": Odd(), "clock": clock},
        ),
        Call(
            "MetricDelivery",
            MetricDelivery,
            {
                "name": "d",
                "max_buffer": 10,
                "batch_size": 5,
                "retry_initial": 1.0,
                "retry_max": 2.0,
            },
            release=_close,
            positional=(_nothing, _nothing),
            fixed=fixed_clock,
        ),
        # live view: loopback only
        Call(
            "OpenTelemetryExporter",
            OpenTelemetryExporter,
            {"trace_interval": 5.0, "clock": clock},
            release=lambda exporter: exporter.close(2.0),
        ),
        Call(
            "LiveView",
            LiveView,
            {
                "port": 0,
                "token": "token-12345",
                "refresh": 0.5,
                "max_connections": 2,
                "request_timeout": 1.0,
                "header_timeout": 1.0,
            },
            release=_close,
            positional=(Source(),),
        ),
        Call(
            "PreviewTap", PreviewTap, {"name": "p", "fps": 5.0, "source": None}, fixed=fixed_clock
        ),
        # video: constructors only, nothing is encoded or sent
        Call(
            "SyntheticSource",
            SyntheticSource,
            {"width": 32, "height": 24, "fps": 10.0, "frames": 2},
            fixed=fixed_clock,
        ),
        Call(
            "VideoSource",
            VideoSource,
            {
                "uri": str(CLIP),
                "options": {"a": "b"},
                "reconnect_initial": 0.5,
                "reconnect_max": 1.0,
                "max_reconnects": 2,
                "timeout": 1.0,
                "stall_timeout": 1.0,
            },
            release=_close,
        ),
        Call(
            "VideoWriter",
            VideoWriter,
            {
                "uri": "unused.mp4",
                "fps": 10.0,
                "width": 32,
                "height": 24,
                "gop": 10,
                "bitrate": 1000,
                "timeout": 1.0,
            },
            release=_close,
        ),
        Call(
            "SpyGlass",
            SpyGlass,
            {
                "uri": "rtmp://127.0.0.1:9/none",
                "fps": 10.0,
                "width": 32,
                "height": 24,
                "warmup_frames": 2,
                "queue_size": 2,
                "reconnect_initial": 0.5,
                "reconnect_max": 1.0,
                "stall_timeout": 1.0,
            },
            release=_cleanup,
        ),
        # KVS: constructors only
        Call("AckParser", AckParser, {"max_object": 1024}),
        Call(
            "KVSInlineCredentialsHandler",
            KVSInlineCredentialsHandler,
            {"aws_access_key_id": "AK", "aws_secret_access_key": "SK", "aws_session_token": None},
        ),
        Call(
            "KVSSpyGlass",
            KVSSpyGlass,
            {
                "stream_region": "us-east-1",
                "stream_name": "s",
                "fps": 10.0,
                "width": 32,
                "height": 24,
                "fragment_s": 2.0,
                "max_connection_s": 60.0,
                "credentials_margin_s": 10.0,
                "timeout": 1.0,
                "ack_timeout": 1.0,
                "queue_size": 2,
                "warmup_frames": 2,
            },
            release=_cleanup,
            fixed={"credentials_handler": KVSInlineCredentialsHandler("AK", "SK")},
        ),
        # model timing
        Call(
            "ModelTiming",
            ModelTiming,
            {"warmup": 0, "window": 10, "device": "cpu", "cuda_timing": "events"},
            positional=(_model(),),
        ),
        Call("format_table", format_table, {"sort_by": "self", "limit": 5}, positional=(TREE,)),
        Call("format_tree", format_tree, {"max_depth": 3, "min_share": 0.0}, positional=(TREE,)),
    ]


CALLS = _calls()


def _arguments(data: st.DataObject, call: Call) -> tuple[dict[str, Any], list[str]]:
    arguments = dict(call.valid)
    names = sorted(arguments)
    count = data.draw(st.integers(1, min(2, len(names))), label="how many")
    replaced = data.draw(
        st.lists(st.sampled_from(names), min_size=count, max_size=count, unique=True)
    )
    for name in replaced:
        arguments[name] = data.draw(HOSTILE, label=name)
    return arguments, replaced


@pytest.mark.parametrize("call", CALLS, ids=[call.name for call in CALLS])
def test_the_valid_arguments_are_valid(call: Call) -> None:
    call.release(call(dict(call.valid)))


@pytest.mark.parametrize("call", CALLS, ids=[call.name for call in CALLS])
@FUZZ
@given(data=st.data())
def test_a_hostile_argument_is_accepted_or_refused_by_name(call: Call, data: st.DataObject) -> None:
    arguments, replaced = _arguments(data, call)
    try:
        made = call(arguments)
    except (TypeError, ValueError, FileNotFoundError) as error:  # a missing file: an OSError
        message = str(error)
        assert any(name in message for name in replaced), (  # noqa: PT017
            f"{call.name}({arguments!r}): {type(error).__name__} names none of {replaced}: {message}"
        )
        return
    call.release(made)


@pytest.fixture(scope="module", autouse=True)
def nothing_left_running() -> Iterator[None]:
    """After the whole module: no thread and no child process it started is still running."""
    threads = set(threading.enumerate())
    yield

    def running() -> tuple[list[str], list[Any]]:
        left = [t.name for t in threading.enumerate() if t not in threads and t.is_alive()]
        return left, multiprocessing.active_children()

    holds_within(lambda: running() == ([], []), 10.0, every=0.05)
    left, children = running()
    assert not left and not children, f"left running: threads {left}, children {children}"


def _fail_on_odd(item: int) -> int:
    if item % 2:
        raise ValueError(f"odd item {item}")
    return item


@FUZZ
@given(
    stages=st.integers(1, 3),
    items=st.integers(0, 6),
    debug=st.booleans(),
    threaded=st.booleans(),
    on_error=st.sampled_from(["skip", "raise"]),
)
def test_a_generated_snapshot_reads_back_as_itself(
    stages: int, items: int, debug: bool, threaded: bool, on_error: str
) -> None:
    pipeline = Pipeline(name="Gen", clock=FakeClock(), debug=debug)
    for index in range(stages):
        pipeline.add(_nothing if index else _fail_on_odd, f"S{index}", on_error=on_error)
    if threaded:
        pipeline.parallelize(queue_size=2)
    try:
        with contextlib.suppress(StageError):  # the raise policy: the first odd item ends it
            list(pipeline.run(range(items)))
        document = pipeline.snapshot().to_dict()
    finally:
        pipeline.cleanup()
    again = PipelineSnapshot.from_dict(json.loads(json.dumps(document)))
    assert again.to_dict() == document
