from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

import framescope


def test_public_names() -> None:
    assert framescope.__version__
    for name in framescope.__all__:
        assert getattr(framescope, name) is not None
        if name != "__version__":
            assert getattr(framescope, name).__doc__, name


def test_only_a_null_handler_is_attached() -> None:
    handlers = logging.getLogger("framescope").handlers
    assert [type(h) for h in handlers] == [logging.NullHandler]


def test_core_imports_only_the_standard_library() -> None:
    code = (
        "import sys; before = set(sys.modules);"
        "import framescope, framescope.timepiece, framescope.stats, framescope.clock;"
        "added = {m.split('.')[0] for m in set(sys.modules) - before};"
        "bad = sorted(added - set(sys.stdlib_module_names) - {'framescope'});"
        "print(','.join(b for b in bad if not b.startswith('_')))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.strip() == ""


def test_py_typed_is_shipped() -> None:
    assert (Path(framescope.__file__).parent / "py.typed").exists()


def test_a_snapshot_prints_as_a_table_in_a_fresh_interpreter() -> None:
    # The snapshot imports no renderer: the tables register with it when the
    # pipeline package loads, so this must hold without importing them by hand.
    code = (
        "from framescope import Pipeline;"
        "p = Pipeline().add(lambda x: x, 'Only'); p.forward(1);"
        "s = p.snapshot(); print(str(s)); print(str(s.state)); p.cleanup()"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert "PipelineSnapshot(" not in done.stdout
    assert "MainPipeline__Only" in done.stdout
    assert "PipelineState(" not in done.stdout
