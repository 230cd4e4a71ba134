"""Installing and removing ModelTiming's instrumentation, leaving no trace behind.

- ``torch.nn.Module`` (the model, its submodules, module transforms): a timed
  ``forward`` set as an instance attribute, deleted afterwards (or the
  module's own instance attribute put back), so the class's ``forward`` is
  what remains. Hooks would do the same job, but a module with any hook takes
  torch's slow call path, which costs 5 us per module and call on its own.
- An object whose class defines ``__call__``: its ``__class__`` is swapped for a
  generated subclass whose ``__call__`` is timed, and swapped back afterwards
  (an instance attribute would not work: ``obj()`` looks ``__call__`` up on
  the type).
- A plain function (or any callable whose class cannot be swapped) inside a
  list: the list slot holds a timed wrapper until the block ends.
"""

from __future__ import annotations

import functools
import types
from collections.abc import Callable, MutableSequence, Sequence
from dataclasses import dataclass
from typing import Any

from framescope._optional import require
from framescope.modeltiming.calls import CallLog, CallTimer

__all__ = ["NodeInfo", "Plan", "install", "plan_nodes"]


@dataclass(frozen=True)
class NodeInfo:
    """A timed node: its names, class, kind and parent (index, or -1 for a group)."""

    name: str
    qualified_name: str
    class_name: str
    kind: str  # "model", "module" or "transform"
    group: str  # "Preprocessing", "Model" or "Postprocessing"
    parent: int
    target: Any


@dataclass(frozen=True)
class Plan:
    """Every node to time, in tree order, and where each transform sits."""

    nodes: tuple[NodeInfo, ...]
    transform_slots: tuple[tuple[int, Sequence[Any], int], ...]  # (node, container, position)


def _is_module(value: Any) -> bool:
    return isinstance(value, require("torch", "torch", "ModelTiming").nn.Module)


def _transform_name(transform: Any) -> str:
    if isinstance(transform, (types.FunctionType, types.BuiltinFunctionType, types.MethodType)):
        return str(getattr(transform, "__name__", type(transform).__name__))
    if isinstance(transform, functools.partial):
        return str(getattr(transform.func, "__name__", "partial"))
    return type(transform).__name__


def _module_nodes(
    module: Any, root_name: str, root_kind: str, group: str, *, start: int
) -> list[NodeInfo]:
    """The module and its submodules (each once, under its first path) as nodes."""
    nodes: list[NodeInfo] = []
    index_of: dict[str, int] = {}
    for path, sub in module.named_modules():
        if path:
            owner = path.rpartition(".")[0]
            node_parent = index_of.get(owner, start)
            name, qualified, kind = path.rpartition(".")[2], path, "module"
            if root_kind == "transform":
                qualified = f"{root_name}.{path}"
        else:
            node_parent, name, qualified, kind = -1, root_name, root_name, root_kind
        index_of[path] = start + len(nodes)
        nodes.append(NodeInfo(name, qualified, type(sub).__name__, kind, group, node_parent, sub))
    return nodes


def plan_nodes(
    model: Any,
    pre_transforms: Sequence[Any],
    post_transforms: Sequence[Any],
) -> Plan:
    """Number every node to time: preprocessing, then the model's modules, then postprocessing."""
    nodes: list[NodeInfo] = []
    slots: list[tuple[int, Sequence[Any], int]] = []
    seen: set[int] = set()
    used_names: dict[str, int] = {}

    def add_transforms(transforms: Sequence[Any], group: str, argument: str) -> None:
        for position, transform in enumerate(transforms):
            if not callable(transform):
                raise TypeError(
                    f"{argument}[{position}] must be callable (a torch.nn.Module, a function "
                    f"or an object with __call__), got {type(transform).__name__}"
                )
            if id(transform) in seen:
                continue
            seen.add(id(transform))
            name = _transform_name(transform)
            used_names[name] = used_names.get(name, 0) + 1
            if used_names[name] > 1:
                name = f"{name}#{used_names[name]}"
            start = len(nodes)
            if _is_module(transform):
                nodes.extend(_module_nodes(transform, name, "transform", group, start=start))
            else:
                nodes.append(
                    NodeInfo(name, name, type(transform).__name__, "transform", group, -1, None)
                )
                slots.append((start, transforms, position))

    model_modules = {id(module) for module in model.modules()}
    for transform in (*pre_transforms, *post_transforms):
        inside = transform.modules() if _is_module(transform) else (transform,)
        if any(id(module) in model_modules for module in inside):
            raise ValueError("a transform must not be the model or one of its submodules")
    add_transforms(pre_transforms, "Preprocessing", "pre_transforms")
    nodes.extend(_module_nodes(model, "Model", "model", "Model", start=len(nodes)))
    add_transforms(post_transforms, "Postprocessing", "post_transforms")
    return Plan(tuple(nodes), tuple(slots))


def _replace_forward(
    module: Any, node: int, log: CallLog, timer: CallTimer | None
) -> Callable[[], None]:
    """Give ``module`` a timed ``forward`` as an instance attribute; return the undo."""
    had_own = "forward" in module.__dict__
    original = module.__dict__.get("forward")
    module.forward = functools.wraps(module.forward)(log.wrap(module.forward, node, timer))

    def restore() -> None:
        if had_own:
            module.__dict__["forward"] = original
        else:
            del module.__dict__["forward"]

    return restore


def _swap_class(
    target: Any, node: int, log: CallLog, timer: CallTimer | None
) -> Callable[[], None] | None:
    """Give ``target`` a timed ``__call__`` by swapping its class; None if impossible."""
    original = type(target)
    if isinstance(target, (types.FunctionType, types.BuiltinFunctionType, types.MethodType)):
        return None
    timed = log.wrap(original.__call__, node, timer)

    def timed_call(self: Any, *args: Any, **kwargs: Any) -> Any:
        return timed(self, *args, **kwargs)

    namespace = {"__call__": timed_call, "__slots__": (), "__module__": original.__module__}
    try:
        timed_class = type(original.__name__, (original,), namespace)
        target.__class__ = timed_class
    except TypeError:
        return None

    def restore() -> None:
        target.__class__ = original

    return restore


def install(
    plan: Plan, log: CallLog, timers: Sequence[CallTimer | None] = ()
) -> list[Callable[[], None]]:
    """Instrument every node of ``plan``; return the undo actions (run them in reverse).

    ``timers`` gives a node its own timer (None: the log's).
    """
    undo: list[Callable[[], None]] = []
    node_timers = list(timers) or [None] * len(plan.nodes)
    try:
        for index, info in enumerate(plan.nodes):
            if info.target is not None:
                undo.append(_replace_forward(info.target, index, log, node_timers[index]))
        for node, container, position in plan.transform_slots:
            transform = container[position]
            timer = node_timers[node]
            restore = _swap_class(transform, node, log, timer)
            if restore is not None:
                undo.append(restore)
                continue
            if not isinstance(container, MutableSequence):
                raise TypeError(
                    f"cannot time {plan.nodes[node].name!r}: a plain function can only be timed "
                    "inside a list (its slot holds a timed wrapper during the block); pass the "
                    "transforms as a list"
                )
            container[position] = functools.wraps(transform)(log.wrap(transform, node, timer))
            undo.append(functools.partial(container.__setitem__, position, transform))
    except BaseException:
        for action in reversed(undo):
            action()
        raise
    return undo
