"""ModelTiming: per-module timing of a PyTorch model with its pre- and post-processing."""

from __future__ import annotations

import threading
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from framescope._optional import require
from framescope._validation import check_int_at_least, check_positive_int
from framescope.clock import SYSTEM_CLOCK, Clock
from framescope.modeltiming.calls import (
    CallLog,
    CallTimer,
    CudaEventTimer,
    HostTimer,
    SyncedHostTimer,
)
from framescope.modeltiming.instrument import NodeInfo, install, plan_nodes
from framescope.modeltiming.report import TimingNode, format_table, format_tree

__all__ = ["ForwardTimer", "ModelTiming", "ModuleTimingAtom"]

ModuleTimingAtom = TimingNode
"""torchlight's name for a node of the timing tree (:class:`TimingNode`)."""


@dataclass(frozen=True)
class ForwardTimer:
    """What :attr:`ModelTiming.forward_timers` lists: one timed submodule or transform.

    Attributes:
        name: the node's name (``conv1``, a transform's name).
        qualified_name: its path in the model (``backbone.body.conv1``).
        module: the submodule or transform that is timed.
        times: its recent per-call times in seconds, oldest first (the
            ``window`` newest calls).
    """

    name: str
    qualified_name: str
    module: Any
    times: tuple[float, ...]


_GROUPS = (
    ("Preprocessing", "PREPROCESSING"),
    ("Model", ""),
    ("Postprocessing", "POSTPROCESSING"),
)
_DEVICES = ("auto", "cpu", "cuda")
_CUDA_TIMINGS = ("events", "synchronize")


def _import_torch() -> Any:
    return require("torch", "torch", "ModelTiming")


class ModelTiming:
    """Time every submodule of a model, and its transforms, inside a ``with`` block.

    ::

        with ModelTiming(model, pre_transforms, [post_transform]) as timing:
            for images, paths in dataloader:
                predictions = model(images)
                outputs = post_transform(images, paths, predictions)
        print(f"Pipeline time: {timing.timing_data.total_time * 1000:.2f}ms")
        print(timing.summarize_table())
        print(timing.summarize_tree())

    The block runs your code; ModelTiming only watches. Every submodule (and
    every transform that is a module) gets a timed ``forward`` as an instance
    attribute; objects with ``__call__`` get a timed subclass for the block's
    duration, and plain functions are timed through their slot in the list
    you passed. On leaving the block, even by an exception, all of it is
    removed: the model has the same hooks, class and ``forward`` as before.
    Entering the same ModelTiming again while inside it instruments nothing
    more; leaving and entering again keeps adding to the same figures.

    Times are per call: each call's total, the time in instrumented children
    during that call, and self = total - children (never negative). A module
    reached from two parents is one node with the calls from both.

    Args:
        model: a ``torch.nn.Module``.
        pre_transforms: callables applied before the model (timed under
            ``Preprocessing``).
        post_transforms: callables applied after it (``Postprocessing``).
        warmup: leave out the first ``warmup`` top-level calls of the model and
            of each transform (and everything inside them).
        window: recent calls per node kept for percentiles.
        device: ``"auto"`` (CUDA timing when the model's parameters are on a
            CUDA device), ``"cpu"`` or ``"cuda"``.
        cuda_timing: on CUDA, ``"events"`` (CUDA events around each module:
            device time, no stalls) or ``"synchronize"`` (synchronise, then read
            the host clock at every module boundary: exact but slower).
            Transforms are timed on the host clock unless they are modules on
            a CUDA device. The nested slices in a pipeline trace are always
            host time.
        clock: host clock (tests pass a FakeClock).
    """

    def __init__(
        self,
        model: Any,
        pre_transforms: Sequence[Callable[..., Any]] = (),
        post_transforms: Sequence[Callable[..., Any]] = (),
        *,
        warmup: int = 0,
        window: int = 100,
        device: str = "auto",
        cuda_timing: str = "events",
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self._depth = 0
        torch = _import_torch()
        if not isinstance(model, torch.nn.Module):
            raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
        for argument, value in (
            ("pre_transforms", pre_transforms),
            ("post_transforms", post_transforms),
        ):
            if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
                raise TypeError(
                    f"{argument} must be a list of callables, got {type(value).__name__}"
                )
        check_int_at_least(warmup, "warmup", 0)
        self._warmup = warmup
        check_positive_int(window, "window")
        if device not in _DEVICES:
            raise ValueError(f"device must be one of {', '.join(_DEVICES)}; got {device!r}")
        if cuda_timing not in _CUDA_TIMINGS:
            raise ValueError(
                f"cuda_timing must be one of {', '.join(_CUDA_TIMINGS)}; got {cuda_timing!r}"
            )
        self.model = model
        self.pre_transforms = list(pre_transforms)  # torchlight's attribute names
        self.post_transforms = list(post_transforms)
        self._plan = plan_nodes(model, pre_transforms, post_transforms)
        self._targets = [info.target for info in self._plan.nodes]
        for node, container, position in self._plan.transform_slots:
            self._targets[node] = container[position]  # a plain callable, not yet wrapped
        self._timer = self._choose_timer(torch, model, device, cuda_timing, clock)
        host = HostTimer(clock)
        # Transforms run on the host unless they are modules living on a CUDA device.
        self._node_timers: list[CallTimer | None] = [
            host if info.group != "Model" and not _on_cuda(info.target) else None
            for info in self._plan.nodes
        ]
        labels = [info.qualified_name for info in self._plan.nodes]
        self._log = CallLog(
            len(self._plan.nodes), self._timer, window=window, warmup=warmup, labels=labels
        )
        self._undo: list[Callable[[], None]] = []
        self._lock = threading.Lock()

    @staticmethod
    def _choose_timer(
        torch: Any, model: Any, device: str, cuda_timing: str, clock: Clock
    ) -> CallTimer:
        if device == "auto":
            device = "cuda" if _on_cuda(model) else "cpu"
        if device == "cpu":
            return HostTimer(clock)
        if not torch.cuda.is_available():
            raise ValueError("device='cuda' but torch.cuda.is_available() is False")
        if cuda_timing == "synchronize":
            return SyncedHostTimer(clock, torch.cuda.synchronize)
        return CudaEventTimer(torch.cuda.Event)

    @property
    def device_timing(self) -> str:
        """How module times are read: ``host``, ``cuda-events`` or ``cuda-synchronize``."""
        if isinstance(self._timer, CudaEventTimer):
            return "cuda-events"
        if isinstance(self._timer, SyncedHostTimer):
            return "cuda-synchronize"
        return "host"

    def __enter__(self) -> ModelTiming:
        with self._lock:
            if self._depth == 0:
                self._undo = install(self._plan, self._log, self._node_timers)
            self._depth += 1
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        with self._lock:
            self._depth -= 1
            if self._depth == 0:
                undo, self._undo = self._undo, []
                for action in reversed(undo):
                    action()

    @property
    def active(self) -> bool:
        """True while inside the ``with`` block (instrumentation installed)."""
        return self._depth > 0

    @property
    def timing_data(self) -> TimingNode:
        """The whole timing tree now: ``Pipeline`` -> groups -> transforms and modules.

        ``timing_data.total_time`` is the mean time of one pass (seconds): the
        sum of the mean per-call times of the transforms and the model.
        """
        self._log.fold()
        nodes = self._plan.nodes
        built: list[TimingNode | None] = [None] * len(nodes)
        children: dict[int, list[int]] = {}
        for index, info in enumerate(nodes):
            children.setdefault(info.parent, []).append(index)
        for index in reversed(range(len(nodes))):  # children come after their parent
            built[index] = self._node(
                nodes[index],
                index,
                tuple(built[i] for i in children.get(index, ())),  # type: ignore[misc]
            )
        groups: list[TimingNode] = []
        for group, class_name in _GROUPS:
            members = tuple(
                node
                for index, node in enumerate(built)
                if node is not None and nodes[index].parent == -1 and nodes[index].group == group
            )
            if group == "Model":
                groups.extend(members)
                continue
            groups.append(_group(group, class_name, "group", members))
        return _group("Pipeline", "PIPELINE", "pipeline", tuple(groups)).at_level(0)

    def _node(self, info: NodeInfo, index: int, children: tuple[TimingNode, ...]) -> TimingNode:
        total, child, self_ = self._log.stats[index].snapshots()
        summary = total.summary()
        return TimingNode(
            name=info.name,
            qualified_name=info.qualified_name,
            class_name=info.class_name,
            kind=info.kind,
            times_run=total.count,
            total_time=total.mean(),
            child_time=child.mean(),
            self_time=self_.mean(),
            p50_time=summary.median,
            p90_time=summary.p90,
            p99_time=summary.p99,
            children=children,
            times=total.recent,
        )

    @property
    def forward_timers(self) -> list[ForwardTimer]:
        """Every timed submodule and transform (the model itself aside), in tree order.

        torchlight's list of its per-module timers. Here each entry is a
        reading taken now (:class:`ForwardTimer`: the module and its recent
        times); the ``with`` block turns all of them on and off together.
        """
        self._log.fold()
        return [
            ForwardTimer(
                info.name,
                info.qualified_name,
                self._targets[index],
                self._log.stats[index].snapshots()[0].recent,
            )
            for index, info in enumerate(self._plan.nodes)
            if info.kind != "model"
        ]

    def summarize_table(self, sort_by: str = "self", limit: int | None = 20) -> str:
        """A table of the timed nodes, sorted by ``sort_by`` (default: self time), ``limit`` rows.

        ``sort_by`` is one of ``self``, ``total``, ``child``, ``calls``, ``p90``, a
        column name of the table (torchlight's: ``self_mean_time[ms]`` ...),
        ``name``; ``limit=None`` shows every row. While every call so far was
        in the warm-up, it warns and says so instead of a table of zeros.
        """
        note = self._still_warming_up()
        return note or format_table(self.timing_data, sort_by=sort_by, limit=limit)

    def summarize_tree(self, max_depth: int | None = None, min_share: float = 0.0) -> str:
        """The timing tree, one line per node: ``name (class) took X.XXms (self: Y.YYms)``."""
        note = self._still_warming_up()
        return note or format_tree(self.timing_data, max_depth=max_depth, min_share=min_share)

    def _still_warming_up(self) -> str | None:
        """A note (and a warning) when calls were made but all were left out as warm-up."""
        calls = self._log.root_calls()
        if not self._warmup or not calls or calls > self._warmup:
            return None
        note = (
            f"ModelTiming: nothing measured yet: the model ran {calls} time(s), all in the "
            f"warm-up (warmup={self._warmup}); run it more times"
        )
        warnings.warn(note, UserWarning, stacklevel=3)
        return note

    def to_dict(self) -> dict[str, Any]:
        """The timing tree as JSON-ready data (see :meth:`TimingNode.from_dict`)."""
        return self.timing_data.to_dict()

    def to_json(self, indent: int | None = None) -> str:
        """The timing tree as JSON text (see :meth:`TimingNode.from_json`)."""
        return self.timing_data.to_json(indent=indent)

    def __rich__(self) -> Any:
        """The timing tree as a rich renderable (needs the ``rich`` package)."""
        return self.timing_data.__rich__()

    def __repr__(self) -> str:
        state = "active" if self.active else "inactive"
        return (
            f"<ModelTiming {type(self.model).__name__} {state}, "
            f"{len(self._plan.nodes)} nodes, {self.device_timing} timing>"
        )


def _on_cuda(target: Any) -> bool:
    """True for a module with a parameter or buffer on a CUDA device."""
    if target is None:
        return False
    return any(p.is_cuda for p in target.parameters()) or any(b.is_cuda for b in target.buffers())


def _group(name: str, class_name: str, kind: str, members: tuple[TimingNode, ...]) -> TimingNode:
    """A node that only groups others: its time is the sum of theirs, its self time 0.

    A sum of percentiles is no percentile, so a group has none (0.0).
    """
    total = sum(member.total_time for member in members)
    return TimingNode(
        name=name,
        qualified_name=name,
        class_name=class_name,
        kind=kind,
        times_run=max((member.times_run for member in members), default=0),
        total_time=total,
        child_time=total,
        self_time=0.0,
        children=members,
    )
