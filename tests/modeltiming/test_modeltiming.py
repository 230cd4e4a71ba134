from __future__ import annotations

import functools
import json
import threading
from itertools import islice
from pathlib import Path
from typing import Any

import pytest

torch = pytest.importorskip("torch")
nn = torch.nn

from framescope import Pipeline, Stage  # noqa: E402
from framescope.clock import FakeClock  # noqa: E402
from framescope.modeltiming import ModelTiming, TimingNode  # noqa: E402

MS = 0.001


class Cost(nn.Module):
    """A module that 'takes' ``seconds`` of fake time per call."""

    def __init__(self, clock: FakeClock, seconds: float) -> None:
        super().__init__()
        self.clock = clock
        self.seconds = seconds

    def forward(self, x: Any) -> Any:
        self.clock.advance(self.seconds)
        return x


class Thrice(nn.Module):
    """Calls its child three times per call and spends 0.5 ms itself."""

    def __init__(self, clock: FakeClock, child: nn.Module) -> None:
        super().__init__()
        self.clock = clock
        self.inner = child

    def forward(self, x: Any) -> Any:
        for _ in range(3):
            x = self.inner(x)
        self.clock.advance(0.5 * MS)
        return x


class Body(nn.Module):
    def __init__(self, clock: FakeClock) -> None:
        super().__init__()
        self.layer1 = nn.Sequential(Thrice(clock, Cost(clock, 1 * MS)), Cost(clock, 2 * MS))


class Backbone(nn.Module):
    def __init__(self, clock: FakeClock) -> None:
        super().__init__()
        self.body = Body(clock)

    def forward(self, x: Any) -> Any:
        return self.body.layer1(x)


class Detector(nn.Module):
    def __init__(self, clock: FakeClock) -> None:
        super().__init__()
        self.clock = clock
        self.backbone = Backbone(clock)
        self.head = Cost(clock, 4 * MS)

    def forward(self, x: Any) -> Any:
        self.clock.advance(0.25 * MS)
        return self.head(self.backbone(x))


class Scale:
    """A torchvision-style transform object with __call__."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock

    def __call__(self, x: Any) -> Any:
        self.clock.advance(3 * MS)
        return x


def run(model: nn.Module, times: int = 1) -> None:
    for _ in range(times):
        model(torch.zeros(1))


def test_tree_and_qualified_names(clock: FakeClock) -> None:
    model = Detector(clock)
    with ModelTiming(model, clock=clock) as timing:
        run(model, 2)
    names = [node.qualified_name for _, node in timing.timing_data.walk()]
    assert names == [
        "Pipeline",
        "Preprocessing",
        "Model",
        "backbone",
        "backbone.body",
        "backbone.body.layer1",
        "backbone.body.layer1.0",
        "backbone.body.layer1.0.inner",
        "backbone.body.layer1.1",
        "head",
        "Postprocessing",
    ]
    node = timing.timing_data.find("backbone.body.layer1.0.inner")
    assert (node.name, node.class_name, node.kind) == ("inner", "Cost", "module")
    assert timing.timing_data.find("Model").class_name == "Detector"


def test_per_call_times_with_a_child_run_three_times_per_parent_call(clock: FakeClock) -> None:
    model = Detector(clock)
    with ModelTiming(model, clock=clock) as timing:
        run(model, 4)
    data = timing.timing_data
    inner = data.find("backbone.body.layer1.0.inner")
    assert inner.times_run == 12
    assert inner.total_time == pytest.approx(1 * MS)
    thrice = data.find("backbone.body.layer1.0")
    assert thrice.times_run == 4
    assert thrice.total_time == pytest.approx(3.5 * MS)
    assert thrice.child_time == pytest.approx(3 * MS)
    assert thrice.self_time == pytest.approx(0.5 * MS)
    model_node = data.find("Model")
    assert model_node.total_time == pytest.approx(9.75 * MS)
    assert model_node.self_time == pytest.approx(0.25 * MS)
    assert data.total_time == pytest.approx(9.75 * MS)
    # "body" is never called itself (Backbone reaches into body.layer1): no calls, no time.
    assert data.find("backbone.body").times_run == 0
    for _, node in data.walk():
        assert node.self_time >= 0
        assert node.self_time + node.child_time == pytest.approx(node.total_time, abs=1e-9)


def test_self_plus_child_is_total_on_a_real_model() -> None:
    model = nn.Sequential(
        nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Sequential(nn.Conv2d(8, 8, 3), nn.ReLU())
    )
    with ModelTiming(model) as timing:
        for _ in range(5):
            model(torch.rand(1, 3, 24, 24))
    for _, node in timing.timing_data.walk():
        assert node.self_time >= 0
        assert node.self_time + node.child_time == pytest.approx(node.total_time, rel=1e-9)
        if node.kind in ("model", "module"):
            assert node.times_run == 5
            assert node.total_time > 0


def test_times_run_is_not_doubled_by_reentry_or_a_second_timing(clock: FakeClock) -> None:
    model = Detector(clock)
    first = ModelTiming(model, clock=clock)
    second = ModelTiming(model, clock=clock)
    with first, first, second:
        run(model, 3)
    with first:  # leaving and entering again keeps counting
        run(model, 2)
    assert first.timing_data.find("head").times_run == 5
    assert second.timing_data.find("head").times_run == 3
    assert first.timing_data.find("backbone.body.layer1.0.inner").times_run == 15
    assert first.timing_data.find("head").total_time == pytest.approx(4 * MS)
    run(model)  # outside the block: not counted
    assert first.timing_data.find("head").times_run == 5


def test_shared_module_is_one_node_with_calls_from_both_parents(clock: FakeClock) -> None:
    shared = Cost(clock, 1 * MS)

    class Twice(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.left = Thrice(clock, shared)
            self.right = nn.Sequential(shared)

        def forward(self, x: Any) -> Any:
            return self.right(self.left(x))

    model = Twice()
    with ModelTiming(model, clock=clock) as timing:
        run(model, 2)
    data = timing.timing_data
    names = [node.qualified_name for _, node in data.walk()]
    assert names.count("left.inner") == 1
    assert "right.0" not in names
    node = data.find("left.inner")
    assert node.times_run == 8  # 3 per call through left, 1 through right
    assert data.find("right").child_time == pytest.approx(1 * MS)
    assert data.find("left").child_time == pytest.approx(3 * MS)


def _hooks(module: nn.Module) -> list[tuple[int, int, int, int]]:
    return [
        (
            len(m._forward_pre_hooks),
            len(m._forward_hooks),
            len(m._forward_hooks_always_called),
            int("forward" in m.__dict__),
        )
        for m in module.modules()
    ]


def test_an_exception_inside_the_block_restores_everything(clock: FakeClock) -> None:
    model = Detector(clock)
    model.head.register_forward_hook(lambda *args: None)  # the user's own hook stays
    before = _hooks(model)
    scale = Scale(clock)
    post = [functools.partial(lambda x, k: x, k=1), str.strip]
    post_before = list(post)
    with pytest.raises(RuntimeError, match="boom"), ModelTiming(model, [scale], post, clock=clock):
        assert type(scale) is not Scale
        assert post[0] is not post_before[0]
        run(model)
        raise RuntimeError("boom")
    assert _hooks(model) == before
    assert type(model) is Detector
    assert type(scale) is Scale
    assert post == post_before
    assert all(a is b for a, b in zip(post, post_before, strict=True))


def test_an_exception_inside_a_module_keeps_the_books_balanced(clock: FakeClock) -> None:
    class Flaky(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.calls = 0
            self.leaf = Cost(clock, 1 * MS)

        def forward(self, x: Any) -> Any:
            self.calls += 1
            x = self.leaf(x)
            if self.calls == 1:
                raise ValueError("bad frame")
            return x

    model = Flaky()
    with ModelTiming(model, clock=clock) as timing:
        with pytest.raises(ValueError, match="bad frame"):
            run(model)
        run(model, 2)
    data = timing.timing_data
    assert data.find("Model").times_run == 3
    assert data.find("leaf").times_run == 3
    assert data.find("Model").total_time == pytest.approx(1 * MS)


def test_transforms_of_each_kind(clock: FakeClock) -> None:
    class Normalize(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.shift = Cost(clock, 1 * MS)

        def forward(self, x: Any) -> Any:
            clock.advance(0.5 * MS)
            return self.shift(x)

    def to_labels(x: Any) -> Any:
        clock.advance(2 * MS)
        return x

    scale, normalize = Scale(clock), Normalize()
    pre: list[Any] = [scale, normalize]
    post: list[Any] = [to_labels, functools.partial(to_labels)]
    model = Detector(clock)
    with ModelTiming(model, pre, post, clock=clock) as timing:
        for _ in range(2):
            x = torch.zeros(1)
            for transform in pre:
                x = transform(x)
            x = model(x)
            for transform in post:
                x = transform(x)
    data = timing.timing_data
    assert [c.name for c in data.children] == ["Preprocessing", "Model", "Postprocessing"]
    preprocessing, _, postprocessing = data.children
    assert [(c.name, c.class_name, c.times_run) for c in preprocessing.children] == [
        ("Scale", "Scale", 2),
        ("Normalize", "Normalize", 2),
    ]
    assert preprocessing.children[1].children[0].qualified_name == "Normalize.shift"
    assert preprocessing.total_time == pytest.approx(4.5 * MS)
    assert preprocessing.children[1].self_time == pytest.approx(0.5 * MS)
    assert [(c.name, c.class_name, c.times_run) for c in postprocessing.children] == [
        ("to_labels", "function", 2),
        ("to_labels#2", "partial", 2),
    ]
    assert postprocessing.total_time == pytest.approx(4 * MS)
    assert data.total_time == pytest.approx((4.5 + 9.75 + 4) * MS)
    assert data.children[1].name == "Model"


def test_a_plain_function_outside_a_list_is_a_clear_error(clock: FakeClock) -> None:
    model = Detector(clock)
    with pytest.raises(TypeError, match="pass the transforms as a list"):  # noqa: SIM117
        with ModelTiming(model, (len,), clock=clock):
            pass
    assert _hooks(model) == _hooks(Detector(clock))


def test_table_sorting_and_limit(clock: FakeClock) -> None:
    model = Detector(clock)
    with ModelTiming(model, [Scale(clock)], clock=clock) as timing:
        run(model, 3)  # Scale is never called: 0 calls, 0 ms
    table = timing.summarize_table()
    lines = table.splitlines()
    assert lines[0].split() == [
        "name",
        "class",
        "total_mean_time[ms]",
        "child_mean_time[ms]",
        "self_mean_time[ms]",
        "times_run",
        "total_p90_time[ms]",
    ]
    assert set(lines[1]) == {"-", " "}
    rows = [line.split() for line in lines[2:]]
    assert [r[0] for r in rows[:4]] == [
        "head",
        "backbone.body.layer1.1",
        "backbone.body.layer1.0.inner",
        "backbone.body.layer1.0",
    ]
    assert rows[0] == ["head", "Cost", "4", "0", "4", "3", "4"]
    self_times = [float(r[4]) for r in rows]
    assert self_times == sorted(self_times, reverse=True)
    assert len(rows) == 9  # every timed node, groups left out
    by_calls = [line.split() for line in timing.summarize_table("calls", limit=1).splitlines()[2:]]
    assert by_calls == [["backbone.body.layer1.0.inner", "Cost", "1", "0", "1", "9", "1"]]
    by_name = [line.split()[0] for line in timing.summarize_table("name", None).splitlines()[2:]]
    assert by_name == sorted(by_name)
    with pytest.raises(ValueError, match="sort_by must be one of self, total"):
        timing.summarize_table("fastest")
    with pytest.raises(ValueError, match="limit must be a positive integer"):
        timing.summarize_table(limit=0)


def test_table_numbers_line_up_on_the_decimal_point(clock: FakeClock) -> None:
    model = Detector(clock)
    with ModelTiming(model, clock=clock) as timing:
        run(model)
    lines = timing.summarize_table().splitlines()
    column = lines[0].index("total_mean_time[ms]")
    end = column + len("total_mean_time[ms]")
    cells = [line[column:end] for line in lines[2:]]
    dots = {cell.index(".") for cell in cells if "." in cell}
    assert len(dots) == 1


def test_tree_formatting(clock: FakeClock) -> None:
    model = Detector(clock)
    with ModelTiming(model, [Scale(clock)], clock=clock) as timing:
        run(model, 2)
    assert timing.summarize_tree() == "\n".join(
        [
            "Pipeline (PIPELINE) took 9.75ms (self: 0.00ms)",
            ". Preprocessing (PREPROCESSING) took 0.00ms (self: 0.00ms)",
            ". . Scale (Scale) took 0.00ms (self: 0.00ms)",
            ". Model (Detector) took 9.75ms (self: 0.25ms)",
            ". . backbone (Backbone) took 5.50ms (self: 0.00ms)",
            ". . . body (Body) took 0.00ms (self: 0.00ms)",
            ". . . . layer1 (Sequential) took 5.50ms (self: 0.00ms)",
            ". . . . . 0 (Thrice) took 3.50ms (self: 0.50ms)",
            ". . . . . . inner (Cost) took 1.00ms (self: 1.00ms)",
            ". . . . . 1 (Cost) took 2.00ms (self: 2.00ms)",
            ". . head (Cost) took 4.00ms (self: 4.00ms)",
            ". Postprocessing (POSTPROCESSING) took 0.00ms (self: 0.00ms)",
        ]
    )
    short = timing.summarize_tree(max_depth=2, min_share=0.3).splitlines()
    assert short == [
        "Pipeline (PIPELINE) took 9.75ms (self: 0.00ms)",
        ". Model (Detector) took 9.75ms (self: 0.25ms)",
        ". . backbone (Backbone) took 5.50ms (self: 0.00ms)",
        ". . head (Cost) took 4.00ms (self: 4.00ms)",
    ]
    with pytest.raises(ValueError, match="min_share must be a number between 0 and 1"):
        timing.summarize_tree(min_share=2)
    with pytest.raises(ValueError, match="max_depth must be a non-negative integer"):
        timing.summarize_tree(max_depth=-1)


def test_warmup_calls_are_left_out(clock: FakeClock) -> None:
    model = Detector(clock)
    model.head.seconds = 100 * MS  # a slow first call, like a cold cache
    with ModelTiming(model, warmup=2, clock=clock) as timing:
        run(model, 2)
        model.head.seconds = 4 * MS
        run(model, 3)
    data = timing.timing_data
    assert data.find("Model").times_run == 3
    assert data.find("head").times_run == 3
    assert data.find("head").total_time == pytest.approx(4 * MS)
    assert data.find("backbone.body.layer1.0.inner").times_run == 9


def test_a_summary_during_the_warm_up_says_so(clock: FakeClock) -> None:
    model = Detector(clock)
    with ModelTiming(model, warmup=5, clock=clock) as timing:
        run(model, 3)
    with pytest.warns(UserWarning, match=r"ran 3 time\(s\), all in the warm-up \(warmup=5\)"):
        table = timing.summarize_table()
    assert "nothing measured yet" in table and "0.00" not in table
    with pytest.warns(UserWarning, match="warm-up"):
        assert "nothing measured yet" in timing.summarize_tree()


def test_json_round_trip(clock: FakeClock) -> None:
    model = Detector(clock)
    with ModelTiming(model, [Scale(clock)], clock=clock) as timing:
        run(model, 3)
    text = timing.to_json()
    assert json.loads(text)["children"][1]["class_name"] == "Detector"
    again = TimingNode.from_json(text)
    assert again == timing.timing_data
    assert TimingNode.from_dict(timing.to_dict()) == again


def test_rich_renderable(clock: FakeClock) -> None:
    rich_console = pytest.importorskip("rich.console")
    model = Detector(clock)
    with ModelTiming(model, clock=clock) as timing:
        run(model)
    console = rich_console.Console(width=120, record=True, color_system=None)
    console.print(timing)
    text = console.export_text()
    assert "Model (Detector) 9.75ms" in text
    assert "inner (Cost) 1.00ms" in text


def test_calls_from_several_threads_are_each_counted_once() -> None:
    model = nn.Sequential(nn.Linear(4, 4), nn.ReLU())
    with ModelTiming(model) as timing:
        workers = [
            threading.Thread(target=lambda: [model(torch.rand(1, 4)) for _ in range(50)])
            for _ in range(4)
        ]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
    data = timing.timing_data
    assert data.find("Model").times_run == 200
    assert data.find("0").times_run == 200
    for _, node in data.walk():
        assert node.self_time >= 0


def test_bad_arguments(clock: FakeClock) -> None:
    model = Detector(clock)
    with pytest.raises(
        TypeError, match=r"model must be a torch.nn.Module, got builtin_function_or_method"
    ):
        ModelTiming(len)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"pre_transforms\[1\] must be callable"):
        ModelTiming(model, [Scale(clock), 3])
    with pytest.raises(TypeError, match="post_transforms must be a list of callables"):
        ModelTiming(model, [], Scale(clock))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="warmup must be a non-negative integer"):
        ModelTiming(model, warmup=-1)
    with pytest.raises(ValueError, match="device must be one of auto, cpu, cuda"):
        ModelTiming(model, device="tpu")
    with pytest.raises(ValueError, match="cuda_timing must be one of events, synchronize"):
        ModelTiming(model, cuda_timing="guess")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match=r"torch\.cuda\.is_available"):
            ModelTiming(model, device="cuda")


def test_module_calls_nest_under_the_stage_slice_in_the_pipeline_trace(tmp_path: Path) -> None:
    clock = FakeClock()
    model = Detector(clock)

    class Infer(Stage):
        name = "Infer"

        def __call__(self, data: Any) -> Any:
            return model(torch.zeros(1))

    pipeline = Pipeline(debug=True, clock=clock).add(Infer()).add(lambda d: d, "Draw")
    pipeline.parallelize(queue_size=4)
    with ModelTiming(model, clock=clock) as timing:
        for i in range(3):
            pipeline.forward(i)
        assert len(list(islice(pipeline.results(timeout=10), 3))) == 3
    path = pipeline.export_trace(tmp_path / "trace.json")
    events = json.loads(path.read_text())["traceEvents"]
    stages = {
        (e["tid"], e["args"]["frame"]): e
        for e in events
        if e.get("cat") == "stage" and e["name"] == "Infer"
    }
    blocks = [e for e in events if e.get("cat") == "custom"]
    assert {b["name"] for b in blocks} >= {"Model", "head", "backbone.body.layer1.0.inner"}
    assert len([b for b in blocks if b["name"] == "backbone.body.layer1.0.inner"]) == 9
    for block in blocks:
        parent = stages[(block["tid"], block["args"]["frame"])]
        assert parent["ts"] <= block["ts"]
        assert block["ts"] + block["dur"] <= parent["ts"] + parent["dur"] + 1e-6
    model_blocks = [b for b in blocks if b["name"] == "Model"]
    assert all(b["dur"] == pytest.approx(9_750) for b in model_blocks)
    state = pipeline.get_pipeline_state().nodes("MainPipeline__Infer").other_timings("head")
    assert state.duration_stats.average_micros_recent == pytest.approx(4_000)
    assert timing.timing_data.find("head").times_run == 3
    pipeline.cleanup()


def test_a_transform_that_is_part_of_the_model_is_refused(clock: FakeClock) -> None:
    model = Detector(clock)
    with pytest.raises(ValueError, match="must not be the model or one of its submodules"):
        ModelTiming(model, [model.head])
    with pytest.raises(ValueError, match="must not be the model or one of its submodules"):
        ModelTiming(model, [], [model])


def test_long_runs_fold_in_batches_and_count_every_call(clock: FakeClock) -> None:
    model = Detector(clock)
    with ModelTiming(model, clock=clock, window=50) as timing:
        run(model, 700)  # several folds on the way
        inner = timing.timing_data.find("backbone.body.layer1.0.inner")
        assert inner.times_run == 2100
        run(model, 5)
    data = timing.timing_data
    assert data.find("Model").times_run == 705
    assert data.find("backbone.body.layer1.0").child_time == pytest.approx(3 * MS)
    assert data.find("Model").p99_time == pytest.approx(9.75 * MS)


def fake_cuda_event(clock: FakeClock) -> Any:
    """A stand-in for torch.cuda.Event whose recorded times come from the fake clock."""

    class Event:
        created = 0

        def __init__(self, enable_timing: bool) -> None:
            assert enable_timing
            self.time: int | None = None
            Event.created += 1

        def record(self) -> None:
            self.time = clock.monotonic_ns()

        def synchronize(self) -> None:
            assert self.time is not None

        def elapsed_time(self, end: Event) -> float:
            assert self.time is not None and end.time is not None
            return (end.time - self.time) / 1e6  # milliseconds, as torch.cuda.Event

    return Event


def test_deferred_device_timer_resolves_nested_calls_when_folding(clock: FakeClock) -> None:
    """The CUDA-event path, with a stand-in event that reads the fake clock.

    No GPU is available to the test suite; the stand-in checks that readings
    are taken around each call and resolved, nested, only when the log folds.
    """
    from framescope.modeltiming.calls import CallLog, CudaEventTimer

    event_type = fake_cuda_event(clock)
    log = CallLog(2, CudaEventTimer(event_type), warmup=1)

    def leaf() -> None:
        clock.advance(1 * MS)

    timed_leaf = log.wrap(leaf, 1)

    def parent() -> None:
        for _ in range(3):
            timed_leaf()
        clock.advance(0.5 * MS)

    timed_parent = log.wrap(parent, 0)
    for _ in range(4):
        timed_parent()
    assert event_type.created == 32
    log.fold()
    total, child, self_ = log.stats[0].snapshots()
    assert total.count == 3  # the first call was warm-up
    assert total.mean() == pytest.approx(3.5 * MS)
    assert child.mean() == pytest.approx(3 * MS)
    assert self_.mean() == pytest.approx(0.5 * MS)
    assert log.stats[1].snapshots()[0].count == 9


@pytest.mark.integration
def test_the_example_runs() -> None:
    import subprocess
    import sys

    example = Path(__file__).resolve().parents[2] / "examples" / "model_timing.py"
    result = subprocess.run(
        [sys.executable, str(example), "--images", "6", "--batch", "2"],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert result.stdout.startswith("Pipeline time: ")
    assert "total_mean_time[ms]" in result.stdout
    assert ". . . . . . conv1 (Conv2d) took" in result.stdout  # backbone.body.layer1.0.conv1
    assert ". Model (TinyDetector) took" in result.stdout
    assert ". Postprocessing (POSTPROCESSING) took" in result.stdout


def test_deferred_device_timer_keeps_a_bounded_backlog(clock: FakeClock) -> None:
    from framescope.modeltiming.calls import CallLog, CudaEventTimer

    log = CallLog(1, CudaEventTimer(fake_cuda_event(clock)))

    def step() -> None:
        clock.advance(1 * MS)

    timed = log.wrap(step, 0)
    for _ in range(1500):
        timed()
        assert len(log._trees) < 512  # older trees are folded on the way
    log.fold()
    total = log.stats[0].snapshots()[0]
    assert total.count == 1500
    assert total.mean() == pytest.approx(1 * MS)
