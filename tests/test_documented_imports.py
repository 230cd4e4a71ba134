"""Every import path the README and the docs show works: modules, and names in them."""

from __future__ import annotations

import ast
import importlib
import importlib.util
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"```(?:python|py)\n(.*?)```", re.S)
DOTTED = re.compile(r"`(framescope(?:\.[A-Za-z_][A-Za-z0-9_]*)+)")
IMPORT = re.compile(
    r"^\s*(from\s+framescope[\w.]*\s+import\s+(?:\([^)]*\)|[^\n]*)|import\s+framescope[\w.]*)", re.M
)


def documented_imports() -> set[tuple[str, str | None]]:
    """(module, name) pairs the documents import; name None for ``import module``."""
    found: set[tuple[str, str | None]] = set()
    for document in DOCUMENTS:
        text = document.read_text()
        blocks = [*FENCE.findall(text), text]  # prose shows imports in inline code too
        for block in blocks:
            for statement in IMPORT.findall(block):
                tree = ast.parse(statement.strip())
                node = tree.body[0]
                if isinstance(node, ast.ImportFrom) and node.module:
                    found.update((node.module, alias.name) for alias in node.names)
                elif isinstance(node, ast.Import):
                    found.update((alias.name, None) for alias in node.names)
    return found


def documented_paths() -> set[str]:
    """Dotted paths in inline code: ``framescope.pipeline.functional``, ``...MAIN_PIPELINE_NAME``.

    Only paths into a module of the package (metric names such as
    ``framescope.stage.cpu`` are names, not paths).
    """
    package = ROOT / "src" / "framescope"
    return {
        match
        for doc in DOCUMENTS
        for match in DOTTED.findall(doc.read_text())
        if (package / match.split(".")[1]).is_dir()
        or (package / f"{match.split('.')[1]}.py").is_file()
    }


def resolve(path: str) -> object:
    """The module or attribute ``path`` names (the longest importable module, then attributes)."""
    parts = path.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            value: object = importlib.import_module(".".join(parts[:cut]))
        except ModuleNotFoundError as error:
            if error.name is None or not path.startswith(error.name):
                raise
            continue
        for attribute in parts[cut:]:
            value = getattr(value, attribute)
        return value
    raise ImportError(path)


def test_the_documents_show_imports() -> None:
    # the collector reads real documents: these are in the README today
    imports = documented_imports()
    assert ("framescope", "Pipeline") in imports
    assert ("framescope.video", "VideoSource") in imports
    assert "framescope.pipeline.functional" in documented_paths()


@pytest.mark.parametrize(("module", "name"), sorted(documented_imports(), key=str))
def test_a_documented_import_works(module: str, name: str | None) -> None:
    if module.startswith("framescope.modeltiming"):
        pytest.importorskip("torch")
    imported = importlib.import_module(module)
    if name is not None and name != "*":
        assert hasattr(imported, name) or importlib.util.find_spec(f"{module}.{name}"), (
            f"from {module} import {name}"
        )


@pytest.mark.parametrize("path", sorted(documented_paths()))
def test_a_documented_dotted_path_resolves(path: str) -> None:
    resolve(path)


@pytest.mark.parametrize("module", ["framescope.pipeline", "framescope.pipeline.lowlevel"])
def test_every_public_name_of_the_pipeline_is_there(module: str) -> None:
    imported = importlib.import_module(module)
    for name in imported.__all__:
        assert getattr(imported, name).__doc__ or isinstance(getattr(imported, name), (str, dict))


def script_imports() -> set[tuple[str, str]]:
    """(module, name) pairs the benchmarks and examples import from framescope."""
    found = set()
    for script in sorted((ROOT / "benchmarks").glob("*.py")) + sorted(
        (ROOT / "examples").glob("*.py")
    ):
        for node in ast.walk(ast.parse(script.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("framescope"):
                found.update((str(node.module), alias.name) for alias in node.names)
    return found


@pytest.mark.parametrize(("module", "name"), sorted(script_imports()))
def test_what_the_benchmarks_and_examples_import_is_there(module: str, name: str) -> None:
    if module.startswith("framescope.modeltiming"):
        pytest.importorskip("torch")
    imported = importlib.import_module(module)
    assert hasattr(imported, name) or importlib.util.find_spec(f"{module}.{name}"), (
        f"from {module} import {name}"
    )


def every_module() -> list[str]:
    package = ROOT / "src" / "framescope"
    names = []
    for path in sorted(package.rglob("*.py")):
        parts = list(path.relative_to(package.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        if parts[-1] != "__main__":
            names.append(".".join(parts))
    return names


@pytest.mark.integration
def test_every_module_imports_first_in_a_fresh_interpreter() -> None:
    # An import cycle through a package's __init__ only shows when the module
    # is the first one imported (e.g. `import framescope.trace` alone).
    import subprocess
    import sys
    from concurrent.futures import ThreadPoolExecutor

    optional = ("framescope.modeltiming", "framescope.pipeline.replicas.ray")

    def first_import(module: str) -> str | None:
        done = subprocess.run(
            [sys.executable, "-c", f"import {module}"],
            capture_output=True,
            check=False,
            text=True,
            timeout=120,
        )
        if done.returncode == 0:
            return None
        if module.startswith(optional) and "No module named" in done.stderr:
            return None  # its extra is not installed
        return f"{module}: {done.stderr.strip().splitlines()[-1]}"

    with ThreadPoolExecutor(max_workers=4) as pool:
        failures = [f for f in pool.map(first_import, every_module()) if f]
    assert failures == []
