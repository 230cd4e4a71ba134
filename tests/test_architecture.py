"""The shape of the package: no import cycles, short functions, light vendor-free imports."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parent.parent / "src"
PACKAGE = SRC / "framescope"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def import_graph() -> dict[str, set[str]]:
    """Every framescope module and the framescope modules it imports, anywhere in the file.

    Imports under ``if TYPE_CHECKING:`` and inside functions count too: a
    cycle there is a cycle in the design, even if Python never trips on it.
    """
    modules = {module_name(path): path for path in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        targets: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                targets.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*anchor, base] if base else anchor)
                for alias in node.names:
                    submodule = f"{base}.{alias.name}"
                    targets.add(submodule if submodule in modules else base)
        graph[name] = {t for t in targets if t in modules and t != name}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle, as a path that starts and ends at the same module, or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for target in sorted(graph[node]):
            if state.get(target) == 1:
                return [*path[path.index(target) :], target]
            if target not in state:
                found = visit(target)
                if found:
                    return found
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def test_there_is_no_import_cycle() -> None:
    graph = import_graph()
    assert "framescope.pipeline.runtime.core" in graph  # the graph was built from the real tree
    assert "framescope.pipeline.runtime.tree" in graph["framescope.pipeline.runtime.core"]
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


MAX_FUNCTION_LINES = 60


def code_lines(function: ast.FunctionDef | ast.AsyncFunctionDef, lines: list[str]) -> int:
    """The lines of code in a function's body: no signature, docstring, blank or comment line.

    A nested function's lines count in the function around it too.
    """
    body = function.body
    first = body[0]
    if (
        isinstance(first, ast.Expr)
        and isinstance(first.value, ast.Constant)
        and isinstance(first.value.value, str)
    ):
        body = body[1:]
    if not body:
        return 0
    assert function.end_lineno is not None
    span = lines[body[0].lineno - 1 : function.end_lineno]
    return sum(1 for line in span if line.strip() and not line.strip().startswith("#"))


def long_functions(source: str, limit: int) -> dict[str, int]:
    """The functions and methods in ``source`` with more than ``limit`` lines of code."""
    lines = source.splitlines()
    found = {}
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            count = code_lines(node, lines)
            if count > limit:
                found[f"{node.name}:{node.lineno}"] = count
    return found


def test_no_function_is_over_60_lines_of_code() -> None:
    # Modules are cut by concept, whatever their length; functions stay short.
    too_long = {
        f"{module_name(path)}.{function}": count
        for path in sorted(PACKAGE.rglob("*.py"))
        for function, count in long_functions(path.read_text(), MAX_FUNCTION_LINES).items()
    }
    assert too_long == {}


def test_the_line_counter_skips_the_docstring_blank_lines_and_comments() -> None:
    source = '''
class A:
    def f(
        self,
    ) -> None:
        """Doc.

        More doc."""
        # a comment
        x = 1

        def g():
            return x  # counted
        return g
async def h():
    "Only a docstring."
'''
    assert long_functions(source, 0) == {"f:3": 4, "g:12": 1}
    assert long_functions(source, 3) == {"f:3": 4}
    assert long_functions(source, 4) == {}


@pytest.mark.parametrize("module", ["framescope.autoidentity", "framescope.modeltiming"])
def test_vendor_free_modules_load_neither_the_pipeline_nor_cloudwatch(module: str) -> None:
    pytest.importorskip("torch") if module == "framescope.modeltiming" else None
    probe = (
        f"import sys, {module}; "
        "print(sorted(m for m in sys.modules "
        "if m.startswith(('framescope.pipeline', 'framescope.cwadapter'))))"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=120
    ).stdout
    assert out.strip() == "[]"


#: What each part of the pipeline package may import from the others (besides the
#: ground floor, statistics and timing): the snapshot model at the bottom, the
#: recorder and the renderings on it, the runtime on those and on the executor
#: interface, the facade on top.
PIPELINE_LAYERS: dict[str, set[str]] = {
    "model": set(),
    "debug": {"model"},
    "views": {"model"},
    "replicas": {"model", "errors"},
    "stage": {"debug"},
    "errors": set(),
    "runtime": {"model", "debug", "errors", "stage", "replicas.base"},
}
OUTSIDE_THE_PIPELINE = (
    "framescope.trace",
    "framescope.live",
    "framescope.exporters",
    "framescope.demo",
    "framescope.cwadapter",
    "framescope.video",
    "framescope.kvs",
)


def pipeline_part(module: str) -> str | None:
    """``model``, ``runtime`` ... for a module of the pipeline package (None for others)."""
    parts = module.split(".")
    if parts[:2] != ["framescope", "pipeline"] or len(parts) < 3:
        return None
    return parts[2]


@pytest.mark.parametrize("part", sorted(PIPELINE_LAYERS))
def test_each_part_of_the_pipeline_imports_only_the_parts_below_it(part: str) -> None:
    graph = import_graph()
    modules = [m for m in graph if pipeline_part(m) == part]
    assert modules, f"no module in framescope.pipeline.{part}"
    allowed = PIPELINE_LAYERS[part] | {part}
    wrong = {
        f"{module} -> {target}"
        for module in modules
        for target in graph[module]
        if (
            (pipeline_part(target) is not None and pipeline_part(target) not in allowed)
            and not any(target.startswith(f"framescope.pipeline.{a}") for a in allowed)
        )
        or target.startswith(OUTSIDE_THE_PIPELINE)
    }
    assert not wrong, sorted(wrong)


def test_the_layer_check_sees_a_wrong_import() -> None:
    graph = import_graph()
    assert "framescope.pipeline.model.snapshot" in graph["framescope.pipeline.runtime.readout"]
    assert pipeline_part("framescope.pipeline.model.snapshot") == "model"
    assert pipeline_part("framescope.trace") is None


@pytest.mark.parametrize(
    "data",
    [
        "framescope.pipeline.model.snapshot",
        "framescope.pipeline.model.state",
        "framescope.pipeline.model.cpu",
        "framescope.pipeline.model.traces",
        "framescope.pipeline.model.events",
    ],
)
def test_the_data_every_reader_renders_imports_none_of_its_renderers(data: str) -> None:
    renderers = {
        "framescope.pipeline.views",
        "framescope.pipeline.runtime",
        "framescope.pipeline.debug",
        "framescope.pipeline.pipeline",
        "framescope.trace",
        "framescope.live",
        "framescope.exporters",
        "framescope.demo",
    }
    reached, todo = set(), [data]
    graph = import_graph()
    while todo:  # everything the data module loads, directly or through others
        for target in graph.get(todo.pop(), ()):
            if target not in reached:
                reached.add(target)
                todo.append(target)
    loaded = {m for m in reached if any(m == r or m.startswith(r + ".") for r in renderers)}
    assert not loaded, f"{data} loads {sorted(loaded)}"


def test_no_module_of_the_pipeline_imports_a_view_that_shows_it() -> None:
    # The live view, the exporters and the demo take a pipeline; the pipeline
    # knows none of them (LiveView(pipeline) is the one way to serve it).
    graph = import_graph()
    wrong = sorted(
        f"{module} -> {target}"
        for module, targets in graph.items()
        if module.startswith("framescope.pipeline")
        for target in targets
        if target.startswith(("framescope.live", "framescope.exporters", "framescope.demo"))
    )
    assert not wrong
