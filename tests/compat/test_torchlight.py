"""Code written against torchlight's ModelTiming runs unchanged."""

from __future__ import annotations

from typing import Any

import pytest

torch = pytest.importorskip("torch")
nn = torch.nn

from framescope.clock import FakeClock  # noqa: E402
from framescope.modeltiming import ModelTiming  # noqa: E402


class Slow(nn.Module):
    def __init__(self, clock: FakeClock, seconds: float) -> None:
        super().__init__()
        self.clock, self.seconds = clock, seconds

    def forward(self, x: Any) -> Any:
        self.clock.advance(self.seconds)
        return x


class Net(nn.Module):
    def __init__(self, clock: FakeClock) -> None:
        super().__init__()
        self.conv1 = Slow(clock, 0.004)
        self.fc = Slow(clock, 0.001)

    def forward(self, x: Any) -> Any:
        return self.fc(self.conv1(x))


def resize(x: Any) -> Any:
    return x


def test_torchlight_names_for_sorting_nodes_and_transforms() -> None:
    clock = FakeClock()
    model = Net(clock)
    pre, post = [resize], [lambda x: x]
    with ModelTiming(model, pre, post, clock=clock) as timing:
        for _ in range(3):
            model(resize(torch.zeros(1)))
    assert timing.pre_transforms == pre and timing.post_transforms == post
    table = timing.summarize_table(sort_by="self_mean_time[ms]")
    rows = [line.split()[0] for line in table.splitlines()[2:]]
    assert rows[:2] == ["conv1", "fc"]  # by self time, as with sort_by="self"
    assert timing.summarize_table(sort_by="total_mean_time[ms]") == timing.summarize_table(
        sort_by="total"
    )
    assert timing.summarize_table(sort_by="times_run")
    with pytest.raises(ValueError, match="self_mean_time"):
        timing.summarize_table(sort_by="nope")
    root = timing.timing_data
    conv = root.find("conv1")
    assert conv.class_ == "Slow" == conv.class_name
    assert root.level == 0
    levels = {node.qualified_name: node.level for _, node in root.walk()}
    assert levels["conv1"] == levels["fc"] == 2  # Pipeline > Model (Net) > conv1
    assert conv.times == pytest.approx((0.004, 0.004, 0.004))


def test_forward_timers_and_module_timing_atom_as_torchlight_names_them() -> None:
    from framescope.modeltiming import ModuleTimingAtom

    clock = FakeClock()
    model = Net(clock)
    pre = [resize]
    timing = ModelTiming(model, pre, [], clock=clock)
    # torchlight: one timer per submodule and per transform, the model itself aside.
    assert [t.qualified_name for t in timing.forward_timers] == ["resize", "conv1", "fc"]
    assert [t.module for t in timing.forward_timers] == [resize, model.conv1, model.fc]
    with timing:
        for _ in range(2):
            model(pre[0](torch.zeros(1)))
    times = {t.name: t.times for t in timing.forward_timers}
    assert times["conv1"] == pytest.approx((0.004, 0.004))
    assert times["fc"] == pytest.approx((0.001, 0.001))
    assert len(times["resize"]) == 2
    root = timing.timing_data
    assert isinstance(root, ModuleTimingAtom)
    assert all(isinstance(node, ModuleTimingAtom) for _, node in root.walk())
    conv = root.find("conv1")
    assert (conv.name, conv.class_, conv.level) == ("conv1", "Slow", 2)  # torchlight's fields
    assert conv.total_time == pytest.approx(0.004) and conv.self_time == pytest.approx(0.004)
    assert isinstance(conv.children, tuple) and conv.child_time == 0.0
