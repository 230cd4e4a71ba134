"""What :class:`~framescope.modeltiming.ModelTiming` measured, and its renderings.

A :class:`TimingNode` is an immutable snapshot of one node of the timing tree
(the whole pipeline, a processing group, a transform, the model or one of its
submodules). The table, the tree text, the dict/JSON form and the rich
renderable are pure functions of it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from framescope._optional import require
from framescope._validation import check_int_at_least, check_number

__all__ = ["SORT_KEYS", "TimingNode", "format_table", "format_tree"]

_MS = 1000.0


TABLE_HEADERS = (
    "name",
    "class",
    "total_mean_time[ms]",
    "child_mean_time[ms]",
    "self_mean_time[ms]",
    "times_run",
    "total_p90_time[ms]",
)


@dataclass(frozen=True)
class TimingNode:
    """One node of the timing tree; times are seconds per call.

    Attributes:
        name: the node's own name (``conv1``; ``Model``; a transform's name).
        qualified_name: the module path inside the model
            (``backbone.body.layer1.0.conv1``), or the name for other nodes.
        class_name: the module's or transform's class (``Conv2d``); the groups
            are ``PIPELINE``, ``PREPROCESSING`` and ``POSTPROCESSING``.
        kind: ``pipeline``, ``group``, ``transform``, ``model`` or ``module``.
        times_run: calls counted (after warm-up).
        total_time: mean time of one call, children included.
        child_time: mean time per call spent in instrumented children.
        self_time: mean ``total_time - child_time`` per call (never negative).
        p50_time, p90_time, p99_time: percentiles of the total time per call
            over the recent window.
        children: the child nodes, in model order.
        level: the depth in the tree (the ``Pipeline`` node is 0).
        times: the recent per-call total times (seconds), oldest first.

    torchlight's names answer too: ``class_`` is ``class_name``.
    """

    name: str
    qualified_name: str
    class_name: str
    kind: str
    times_run: int = 0
    total_time: float = 0.0
    child_time: float = 0.0
    self_time: float = 0.0
    p50_time: float = 0.0
    p90_time: float = 0.0
    p99_time: float = 0.0
    children: tuple[TimingNode, ...] = field(default=())
    level: int = 0
    times: tuple[float, ...] = field(default=(), repr=False, compare=False)

    @property
    def class_(self) -> str:
        """The class name (torchlight's attribute name)."""
        return self.class_name

    def at_level(self, level: int = 0) -> TimingNode:
        """This subtree with ``level`` set on every node (the root at ``level``)."""
        children = tuple(child.at_level(level + 1) for child in self.children)
        return replace(self, level=level, children=children)

    def walk(self, depth: int = 0) -> Iterator[tuple[int, TimingNode]]:
        """Yield (depth, node) for this node and every descendant, depth first."""
        yield depth, self
        for child in self.children:
            yield from child.walk(depth + 1)

    def find(self, qualified_name: str) -> TimingNode:
        """The node with this qualified name (KeyError when there is none)."""
        for _, node in self.walk():
            if node.qualified_name == qualified_name and node.kind != "group":
                return node
        raise KeyError(f"no timed node called {qualified_name!r}")

    def to_dict(self) -> dict[str, Any]:
        """The subtree as plain JSON-ready data."""
        data: dict[str, Any] = {
            "name": self.name,
            "qualified_name": self.qualified_name,
            "class_name": self.class_name,
            "kind": self.kind,
            "times_run": self.times_run,
            "total_time": self.total_time,
            "child_time": self.child_time,
            "self_time": self.self_time,
            "p50_time": self.p50_time,
            "p90_time": self.p90_time,
            "p99_time": self.p99_time,
            "level": self.level,
        }
        data["children"] = [child.to_dict() for child in self.children]
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TimingNode:
        """Rebuild a subtree from :meth:`to_dict` output."""
        return cls(
            name=str(data["name"]),
            qualified_name=str(data["qualified_name"]),
            class_name=str(data["class_name"]),
            kind=str(data["kind"]),
            times_run=int(data["times_run"]),
            total_time=float(data["total_time"]),
            child_time=float(data["child_time"]),
            self_time=float(data["self_time"]),
            p50_time=float(data["p50_time"]),
            p90_time=float(data["p90_time"]),
            p99_time=float(data["p99_time"]),
            children=tuple(cls.from_dict(child) for child in data.get("children", ())),
            level=int(data.get("level", 0)),
        )

    def to_json(self, indent: int | None = None) -> str:
        """The subtree as JSON text."""
        return json.dumps(self.to_dict(), indent=indent)

    @classmethod
    def from_json(cls, text: str) -> TimingNode:
        """Rebuild a subtree from :meth:`to_json` output."""
        return cls.from_dict(json.loads(text))

    def __rich__(self) -> Any:
        """A ``rich.tree.Tree`` of the subtree (needs the ``rich`` package)."""
        tree_type = require("rich.tree", "torch", "rendering with rich").Tree

        def label(node: TimingNode) -> str:
            return (
                f"[bold]{node.name}[/bold] [dim]({node.class_name})[/dim] "
                f"{node.total_time * _MS:.2f}ms [dim](self: {node.self_time * _MS:.2f}ms, "
                f"x{node.times_run})[/dim]"
            )

        def grow(branch: Any, node: TimingNode) -> None:
            for child in node.children:
                grow(branch.add(label(child)), child)

        tree = tree_type(label(self))
        grow(tree, self)
        return tree


_SORT_ORDER: dict[str, Callable[[TimingNode], Any]] = {
    "self": lambda node: -node.self_time,
    "total": lambda node: -node.total_time,
    "child": lambda node: -node.child_time,
    "calls": lambda node: -node.times_run,
    "p90": lambda node: -node.p90_time,
    "name": lambda node: node.qualified_name,
}
_SORT_ORDER.update(
    {  # torchlight's column names
        "total_mean_time[ms]": _SORT_ORDER["total"],
        "child_mean_time[ms]": _SORT_ORDER["child"],
        "self_mean_time[ms]": _SORT_ORDER["self"],
        "times_run": _SORT_ORDER["calls"],
        "total_p90_time[ms]": _SORT_ORDER["p90"],
        "class": lambda node: node.class_name,
    }
)
SORT_KEYS = tuple(_SORT_ORDER)
"""What :func:`format_table` can sort by: short keys, or the table's column names."""


def format_table(root: TimingNode, sort_by: str = "self", limit: int | None = 20) -> str:
    """A text table of every timed node (transforms, model and modules).

    Columns: name (qualified module path), class, total/child/self mean time
    per call in ms, times run, and the p90 of the total time per call.
    """
    if sort_by not in SORT_KEYS:
        raise ValueError(f"sort_by must be one of {', '.join(SORT_KEYS)}; got {sort_by!r}")
    check_int_at_least(limit, "limit", 1, or_none=True)
    rows = [node for _, node in root.walk() if node.kind not in ("pipeline", "group")]
    rows.sort(key=_SORT_ORDER[sort_by])
    if limit is not None:
        rows = rows[:limit]
    cells = [
        [
            node.qualified_name,
            node.class_name,
            _number(node.total_time * _MS),
            _number(node.child_time * _MS),
            _number(node.self_time * _MS),
            str(node.times_run),
            _number(node.p90_time * _MS),
        ]
        for node in rows
    ]
    return _render_columns(list(TABLE_HEADERS), cells, numeric_from=2)


def _number(value: float) -> str:
    """Six significant digits, like the tables users know."""
    return f"{value:g}"


def _render_columns(headers: list[str], cells: list[list[str]], numeric_from: int) -> str:
    """Left-aligned text columns, then numbers aligned on their decimal point."""
    columns = list(zip(headers, *cells, strict=True)) if cells else [(h,) for h in headers]
    rendered: list[list[str]] = []
    for index, column in enumerate(columns):
        header, values = column[0], list(column[1:])
        if index < numeric_from:
            width = max(len(v) for v in column)
            rendered.append([header.ljust(width), "-" * width] + [v.ljust(width) for v in values])
            continue
        whole = max((len(v.split(".")[0]) for v in values), default=0)
        fraction = max((len(v.partition(".")[2]) for v in values), default=0)
        aligned = []
        for value in values:
            integer, dot, decimals = value.partition(".")
            text = integer.rjust(whole)
            if fraction:
                text += (dot + decimals).ljust(fraction + 1)
            aligned.append(text)
        width = max([len(header), *(len(v) for v in aligned)])
        rendered.append([header.rjust(width), "-" * width] + [v.rjust(width) for v in aligned])
    lines = ["  ".join(row).rstrip() for row in zip(*rendered, strict=True)]
    return "\n".join(lines)


def format_tree(root: TimingNode, max_depth: int | None = None, min_share: float = 0.0) -> str:
    """One line per node, ``. `` per depth: ``name (class) took X.XXms (self: Y.YYms)``.

    Args:
        root: the tree.
        max_depth: leave out nodes deeper than this (the root is depth 0).
        min_share: leave out nodes (and their subtrees) whose total time is
            below this fraction (0-1) of the root's.
    """
    check_int_at_least(max_depth, "max_depth", 0, or_none=True)
    min_share = check_number(min_share, "min_share", low=0.0, high=1.0)
    floor = root.total_time * min_share
    lines: list[str] = []

    def emit(node: TimingNode, depth: int) -> None:
        if depth and node.total_time < floor:
            return
        lines.append(
            f"{'. ' * depth}{node.name} ({node.class_name}) took "
            f"{node.total_time * _MS:.2f}ms (self: {node.self_time * _MS:.2f}ms)"
        )
        if max_depth is None or depth < max_depth:
            for child in node.children:
                emit(child, depth + 1)

    emit(root, 0)
    return "\n".join(lines)
