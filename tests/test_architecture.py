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
    assert "framescope.pipeline.runtime" in graph  # the graph was built from the real tree
    assert "framescope.pipeline.tree" in graph["framescope.pipeline.runtime"]
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


def test_the_pipeline_facade_is_thin() -> None:
    # Pipeline only delegates (to the tree, the runtimes and the read-out):
    # logic that grows here belongs in a module of its own.
    facade = PACKAGE / "pipeline" / "pipeline.py"
    assert len(facade.read_text().splitlines()) < 400


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


@pytest.mark.parametrize(
    "data", ["framescope.pipeline.snapshot", "framescope.pipeline.state", "framescope.pipeline.cpu"]
)
def test_the_data_every_reader_renders_imports_none_of_its_renderers(data: str) -> None:
    renderers = {
        "framescope.pipeline.render",
        "framescope.pipeline.diagnosis",
        "framescope.pipeline.replica_advice",
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
