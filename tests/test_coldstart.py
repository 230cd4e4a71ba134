"""Cold start: a fresh interpreter loads what a feature needs when it is used, not before.

Each test runs its code in a new interpreter and reads the module names it
ended with, so what other tests imported into this process cannot hide a
module that loads too early.
"""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

HEAVY = frozenset(
    {
        "multiprocessing",
        "subprocess",
        "socket",
        "http.server",
        "gzip",
        "bz2",
        "lzma",
        "tempfile",
        "decimal",
        "pickle",
        "ray",
        "torch",
        "av",
        "numpy",
    }
)
"""Modules a thread-only pipeline does not need: each loads with the feature that uses it."""

THREAD_PIPELINE = """
from framescope import Pipeline

def double(item):
    return item * 2

pipeline = Pipeline()
pipeline.add(lambda item: item + 1, "Inc").add(double, "Double", replicas=2)
pipeline.parallelize()
results = list(pipeline.run(range(50)))
assert sorted(results) == [(i + 1) * 2 for i in range(50)], results
snapshot = pipeline.snapshot()
assert snapshot.counters["completed"] == 50, snapshot.counters
text = str(snapshot)
assert text.startswith("MainPipeline (parallel): 50 completed"), text[:200]
pipeline.get_profiles()
pipeline.cleanup()

serial = Pipeline()
serial.add(double)
assert list(serial.run([1, 2])) == [2, 4]
serial.cleanup()
"""


def clean_env() -> dict[str, str]:
    """This process's environment, with its search path for an interpreter run with -S.

    ``-S`` skips ``site`` and the ``.pth`` hooks an environment may install
    (one that loads ``certifi`` loads ``tempfile``, ``bz2`` and ``lzma`` into
    every interpreter), so what is loaded is what the code loaded.
    """
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
    return env


def modules_after(code: str) -> set[str]:
    """The modules a fresh interpreter has loaded after running ``code`` (less a bare one's)."""
    probe = "import json as _j, sys as _s\n" + code
    probe += "\nprint(_j.dumps(sorted(_s.modules)))\n"
    loaded = [
        subprocess.run(
            [sys.executable, "-S", "-c", text],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
            env=clean_env(),
        )
        for text in (probe, "import json, sys\nprint(json.dumps(sorted(sys.modules)))")
    ]
    for done in loaded:
        assert done.returncode == 0, done.stderr
    after, bare = (set(json.loads(done.stdout.splitlines()[-1])) for done in loaded)
    return after - bare


def heavy_in(modules: set[str]) -> set[str]:
    """The heavy modules among ``modules`` (a package's submodules count as the package)."""
    return {h for h in HEAVY for m in modules if m == h or m.startswith(h + ".")}


def test_importing_pipeline_loads_nothing_heavy() -> None:
    modules = modules_after("from framescope import Pipeline")
    assert "framescope.pipeline.pipeline" in modules  # the probe saw the real import
    assert heavy_in(modules) == set()
    replicas = {m for m in modules if m.startswith("framescope.pipeline.replicas.")}
    assert replicas == {"framescope.pipeline.replicas.base", "framescope.pipeline.replicas.choice"}
    assert "framescope.trace" not in modules
    assert "framescope.pipeline.views.diagnosis" not in modules


def test_a_thread_pipeline_runs_and_prints_without_anything_heavy() -> None:
    modules = modules_after(THREAD_PIPELINE)
    assert "framescope.pipeline.views.tables" in modules  # printed through its table
    assert heavy_in(modules) == set()
    assert "statistics" not in modules


def test_process_replicas_load_multiprocessing_when_asked_for() -> None:
    before = modules_after("from framescope import Pipeline\nPipeline().add(abs)")
    after = modules_after(
        "from framescope import Pipeline\nPipeline().add(abs, executor='process')"
    )
    assert "multiprocessing" not in before
    assert {"multiprocessing", "pickle", "framescope.pipeline.replicas.process"} <= after
    assert "ray" not in after


def test_the_executor_names_stay_importable_from_the_package() -> None:
    modules = modules_after(
        "import framescope.pipeline as p\n"
        "assert 'ProcessExecutor' in dir(p) and 'RayExecutor' in p.__all__\n"
        "from framescope.pipeline import ProcessExecutor, RayExecutor, Diagnosis\n"
        "from framescope.pipeline.replicas.process import ProcessExecutor as Same\n"
        "assert ProcessExecutor is Same and p.ProcessExecutor is Same\n"
    )
    assert "multiprocessing" in modules
    with pytest.raises(AssertionError, match="no attribute 'Nonesuch'"):
        modules_after("import framescope.pipeline as p\np.Nonesuch")


def test_writing_a_trace_loads_gzip_and_tempfile_then(tmp_path: Path) -> None:
    target = tmp_path / "run.json.gz"
    modules = modules_after(
        "import sys\n"
        "from framescope import Pipeline\n"
        "pipeline = Pipeline(debug=True)\n"
        "pipeline.add(abs)\n"
        "assert list(pipeline.run([-1, -2])) == [1, 2]\n"
        "assert 'gzip' not in sys.modules and 'tempfile' not in sys.modules\n"
        f"pipeline.export_trace({str(target)!r})\n"
        "pipeline.cleanup()\n"
    )
    assert {"gzip", "tempfile", "framescope.trace"} <= modules
    document = json.loads(gzip.decompress(target.read_bytes()))
    assert document["traceEvents"]


def test_importing_video_adds_nothing_heavy_to_pyav_and_numpy() -> None:
    pytest.importorskip("av")
    pytest.importorskip("numpy")
    baseline = modules_after("import av, numpy")
    modules = modules_after(
        "import av, numpy, framescope.video\nfrom framescope.video import SpyGlass"
    )
    assert {"av", "numpy"} <= baseline
    assert "framescope.video.spyglass" in modules
    assert heavy_in(modules - baseline) == set()
    assert not {m for m in modules if m.startswith("framescope.pipeline.runtime")}
    assert "framescope.pipeline.pipeline" not in modules
