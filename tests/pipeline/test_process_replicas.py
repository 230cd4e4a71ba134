"""Process replicas: frames through shared memory, failures and dead workers counted, nothing left."""

from __future__ import annotations

import importlib
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

import framescope
from framescope import Pipeline
from framescope.pipeline import StageError
from framescope.pipeline.replicas.base import ReplicaLostError
from framescope.pipeline.replicas.process import ProcessExecutor
from framescope.pipeline.replicas.shared_items import SharedBlock, pack, unpack
from tests.polling import wait_for

from . import replica_stages
from .replica_stages import (
    Brighten,
    Echo,
    EchoNotes,
    Leak,
    Lineage,
    NotesCleanup,
    RaisesUnpicklable,
    ReadsMark,
    Refuses,
    Stall,
    error_of_killed_worker,
    run_killing_one_worker,
    stalled_worker,
)

pytestmark = pytest.mark.integration


def blocks_made(monkeypatch: pytest.MonkeyPatch) -> set[str]:
    """The names of the shared-memory blocks this process makes from now on (filled as made).

    Other programs on the machine make and free blocks of their own meanwhile,
    so what is left over is checked by name, not by listing /dev/shm.
    """
    made: set[str] = set()
    room = SharedBlock.room

    def recording(block: SharedBlock, size: int) -> memoryview | None:
        view = room(block, size)
        if block.name is not None:
            made.add(block.name.lstrip("/"))
        return view

    monkeypatch.setattr(SharedBlock, "room", recording)
    return made


def left_over(made: set[str]) -> set[str]:
    return made & set(os.listdir("/dev/shm"))


def _processes() -> dict[int, tuple[int, bytes]]:
    """Every running process: its parent's id and its command line (zombies left out)."""
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            command = Path(f"/proc/{entry}/cmdline").read_bytes()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if fields[0] != "Z":
            found[int(entry)] = (int(fields[1]), command)
    return found


def children() -> set[int]:
    """Process ids descended from this process (but multiprocessing's resource tracker).

    Workers are forked by their stage's worker server, so they are this
    process's grandchildren: every generation is looked at. The tracker is
    the standard library's one helper per interpreter: it unlinks shared
    memory a crashed process leaves, and ends with the interpreter.
    """
    processes = _processes()
    found: set[int] = set()
    parents = {os.getpid()}
    while parents:
        below = {pid for pid, (parent, _) in processes.items() if parent in parents}
        below -= found
        found |= below
        parents = below
    return {pid for pid in found if b"resource_tracker" not in processes[pid][1]}


def parent_of(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


def test_frames_go_through_worker_processes_in_order(monkeypatch: pytest.MonkeyPatch) -> None:
    made, before_children = blocks_made(monkeypatch), children()
    frames = [(i, np.full((480, 640, 3), i, np.uint8)) for i in range(20)]
    with Pipeline() as pipeline:
        pipeline.add(Brighten(3), "Brighten", replicas=2, executor="process")
        pipeline.parallelize(queue_size=2)
        results = list(pipeline.run(frames))
        snapshot = pipeline.snapshot()
    assert [r["index"] for r in results] == list(range(20))
    for index, result in enumerate(results):
        assert result["frame"].shape == (480, 640, 3)
        assert result["frame"].flags.writeable
        assert int(result["frame"][0, 0, 0]) == index + 3
    assert int(frames[0][1][0, 0, 0]) == 0  # the caller's frame was not touched
    pids = {r["pid"] for r in results}
    assert len(pids) == 2 and os.getpid() not in pids
    entry = snapshot.stage("MainPipeline__Brighten")
    assert entry.replicas == 2 and entry.latency.count == 20
    assert sum(r.latency.count for r in snapshot.replicas_of(entry.key)) == 20
    assert children() - before_children == set()  # cleanup ended both workers
    assert made and left_over(made) == set()  # and freed their blocks


def test_items_without_arrays_and_with_small_ones_are_pickled() -> None:
    items = [None, "text", {"n": 1}, np.arange(4), (np.zeros(3), [np.ones(2)])]
    with Pipeline() as pipeline:
        pipeline.add(Echo(), "Echo", replicas=1, executor="process").parallelize()
        results = [item for item, _pid in pipeline.run(items)]
    assert results[:3] == [None, "text", {"n": 1}]
    assert results[3].tolist() == [0, 1, 2, 3]
    assert results[4][0].tolist() == [0, 0, 0] and results[4][1][0].tolist() == [1, 1]


def test_shared_blocks_carry_large_buffers_and_grow() -> None:
    block = SharedBlock()
    try:
        frame = np.arange(300_000, dtype=np.uint8).reshape(1000, 300)
        payload, layout, total = pack({"f": frame}, block.room)
        assert layout is not None and layout[0] == "shared" and total >= frame.nbytes
        assert (unpack(payload, layout, block.buffer)["f"] == frame).all()
        bigger = np.ones((2000, 300), np.uint8)
        payload, layout, _ = pack(bigger, block.room)
        assert block.size >= bigger.nbytes
        assert (unpack(payload, layout, block.buffer) == bigger).all()
        payload, layout, _ = pack(np.ones(10), block.room)  # small: inline
        assert layout is not None and layout[0] == "inline"
    finally:
        block.close()


def test_a_stage_error_in_a_worker_keeps_its_type_and_the_workers_traceback() -> None:
    with Pipeline() as pipeline:
        pipeline.add(Refuses(), "Refuses", replicas=2, executor="process", on_error="skip")
        pipeline.parallelize()
        assert list(pipeline.run(range(10))) == [0, 2, 4, 6, 8]
        assert pipeline.counters()["failed"] == 5
    with Pipeline() as pipeline:
        pipeline.add(Refuses(), "Refuses", executor="process").parallelize()
        with pytest.raises(StageError) as raised:
            list(pipeline.run([1]))
    error = raised.value.error
    assert isinstance(error, KeyError)
    assert "worker process of MainPipeline__Refuses#0" in "".join(error.__notes__)
    assert "replica_stages.py" in "".join(error.__notes__)


def test_an_exception_that_cannot_travel_back_arrives_as_its_text() -> None:
    with Pipeline() as pipeline:
        pipeline.add(RaisesUnpicklable(), "Bad", executor="process").parallelize()
        with pytest.raises(StageError) as raised:
            list(pipeline.run([1]))
    assert type(raised.value.error).__name__ == "RemoteStageError"
    assert "UnpicklableError: 1/2" in str(raised.value.error)


def test_a_worker_killed_mid_item_fails_that_item_and_is_restarted(tmp_path: Path) -> None:
    results, counts = run_killing_one_worker("process", tmp_path / "pid", 3, before=6, after=9)
    assert results == [0, 1, 2, 4, 5, 6, 7, 8]  # item 3 died with its worker
    assert counts["failed"] == 1 and counts["replica_restarts"] == 1
    assert counts["forwarded"] == counts["completed"] + counts["failed"]


def test_a_lost_worker_is_a_stage_error_under_the_raise_policy(tmp_path: Path) -> None:
    error = error_of_killed_worker("process", tmp_path / "pid")
    assert isinstance(error, ReplicaLostError)
    assert "exit code -9" in str(error)


def test_cleanup_ends_busy_workers_and_runs_each_copys_cleanup(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    made, before_children = blocks_made(monkeypatch), children()
    notes = tmp_path / "cleanups"
    with Pipeline() as pipeline:
        pipeline.add(NotesCleanup(str(notes)), "Notes", replicas=2, executor="process")
        pipeline.parallelize()
        assert list(pipeline.run(range(4))) == [0, 1, 2, 3]
    pids = [int(pid) for pid in notes.read_text().split()]
    # each worker's copy cleaned up in its worker, and the pipeline's own object here
    assert len(pids) == 3 and len(set(pids)) == 3 and os.getpid() in pids
    marker = tmp_path / "pid"
    pipeline = Pipeline().add(Stall(str(marker), 0), "Stall", replicas=2, executor="process")
    pipeline.parallelize()
    assert pipeline.forward(0)
    stalled_worker(marker)
    started = time.monotonic()
    assert pipeline.cleanup(timeout=10) == []
    assert time.monotonic() - started < 10  # the stalled worker was ended, not waited for
    assert children() - before_children == set()
    assert left_over(made) == set()


def test_a_stage_that_cannot_be_pickled_is_refused_at_add() -> None:
    with pytest.raises(TypeError, match="must be picklable") as raised:
        Pipeline().add(lambda x: x, "Inline", executor="process")
    assert "'Inline'" in str(raised.value) and "module level" in str(raised.value)


MIB = 1 << 20


def test_max_items_replaces_the_worker_between_items_and_loses_none(tmp_path: Path) -> None:
    before_children = children()
    notes = tmp_path / "cleanups"
    executor = ProcessExecutor(max_items=3)
    with Pipeline() as pipeline:
        pipeline.add(EchoNotes(str(notes)), "Echo", executor=executor).parallelize()
        results = list(pipeline.run(range(10)))
        counts = pipeline.counters()
    assert [item for item, _pid in results] == list(range(10))
    pids = [pid for _item, pid in results]
    workers = list(dict.fromkeys(pids))  # in the order they served
    assert len(workers) == 4 and os.getpid() not in workers
    assert pids == [worker for worker in workers for _ in range(3)][:10]  # 3 items each, in a row
    assert executor.recycles == 3
    assert counts["failed"] == 0 and counts["replica_restarts"] == 0
    cleaned = [int(pid) for pid in notes.read_text().split()]
    assert sorted(cleaned) == sorted([*workers, os.getpid()])  # each copy's cleanup() ran
    assert children() - before_children == set()


def test_recycled_workers_are_counted_as_replica_recycles(tmp_path: Path) -> None:
    executor = ProcessExecutor(max_items=2)
    with Pipeline() as pipeline:
        pipeline.add(EchoNotes(str(tmp_path / "cleanups")), "Echo", executor=executor)
        pipeline.parallelize()
        results = list(pipeline.run(range(7)))
        counts = pipeline.counters()
        snapshot = pipeline.snapshot()
    assert [item for item, _pid in results] == list(range(7))
    # 2 items a worker: replaced after items 1, 3 and 5; the fourth worker ends with the pipeline
    assert executor.recycles == 3
    assert counts["replica_recycles"] == 3 and counts["replica_restarts"] == 0
    assert snapshot.counters["replica_recycles"] == 3


def test_max_memory_replaces_a_leaking_worker_before_it_grows_past_the_bound() -> None:
    bound = 128 * MIB
    executor = ProcessExecutor(max_memory=bound)
    with Pipeline() as pipeline:
        pipeline.add(Leak(8), "Leak", replicas=2, executor=executor).parallelize()
        results = list(pipeline.run(range(40)))  # 320 MiB leaked in all
        counts = pipeline.counters()
    assert [item for item, _pid, _rss in results] == list(range(40))
    measured = [rss for _item, _pid, rss in results]
    assert all(rss is not None for rss in measured)
    # a worker is replaced once it passes the bound, so it holds at most one item's more
    assert max(measured) <= bound + 8 * MIB + 4 * MIB
    assert bound < executor.peak_memory <= bound + 12 * MIB
    assert executor.recycles >= 2 and len({pid for _item, pid, _rss in results}) >= 4
    assert counts["failed"] == 0 and counts["replica_restarts"] == 0
    assert counts["replica_recycles"] == executor.recycles


def test_process_executor_bounds_are_checked() -> None:
    with pytest.raises(ValueError, match="max_items must be a positive integer"):
        ProcessExecutor(max_items=0)
    with pytest.raises(TypeError, match="max_items must be a positive integer or None"):
        ProcessExecutor(max_items=2.5)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="max_memory"):
        ProcessExecutor(max_memory="1G")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="max_memory"):
        ProcessExecutor(max_memory=-1)
    with pytest.raises(TypeError, match="max_items"):
        ProcessExecutor(max_items=True)  # type: ignore[arg-type]


UNGUARDED_SCRIPT = """
import sys
sys.path.insert(0, {src!r})
from framescope import Pipeline
from framescope.pipeline import StageError


class Double:
    def __call__(self, item):
        return item * 2


pipeline = Pipeline().add(Double(), "Double", executor="process").parallelize()
try:
    print(list(pipeline.run([1, 2])))
except StageError as error:
    print("FAILED:", error.error)
"""


def test_a_script_without_the_main_guard_is_told_how_to_fix_it(tmp_path: Path) -> None:
    script = tmp_path / "unguarded.py"
    src = str(Path(framescope.__file__).resolve().parents[1])  # the framescope tested here
    script.write_text(UNGUARDED_SCRIPT.format(src=src))
    done = subprocess.run(
        [sys.executable, str(script)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        check=False,
    )
    failure = done.stdout.split("FAILED:", 1)[-1]
    assert "FAILED:" in done.stdout, done.stdout + done.stderr
    assert "the worker process could not start (exit code 1)" in failure
    assert "bootstrapping phase" in failure  # the last lines of what failed in the worker
    assert "guard the script's entry point with `if __name__ == '__main__':`" in failure
    assert "define the stage in an importable module" in failure


def test_a_stage_whose_module_does_not_import_in_the_worker_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "vanishing_stage.py").write_text(
        "class Triple:\n    def __call__(self, item):\n        return item * 3\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "vanishing_stage", raising=False)  # gone again at undo()
    module = importlib.import_module("vanishing_stage")
    with Pipeline() as pipeline:
        pipeline.add(module.Triple(), "Triple", executor="process")
        monkeypatch.undo()  # the worker gets this sys.path: without the stage's folder
        pipeline.parallelize()
        with pytest.raises(StageError) as raised:
            list(pipeline.run([1]))
    error = raised.value.error
    assert isinstance(error, ReplicaLostError)
    assert "the worker process could not start" in str(error)
    assert "No module named 'vanishing_stage'" in str(error)
    assert "define the stage in an importable module" in str(error)


def servers(before: set[int]) -> set[int]:
    """The processes this process started since ``before`` was read (its workers' servers)."""
    return {pid for pid in children() - before if _processes()[pid][0] == os.getpid()}


def test_parallelize_starts_the_worker_server_and_cleanup_before_start_ends_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    made, before = blocks_made(monkeypatch), children()
    pipeline = Pipeline().add(Echo(), "Echo", replicas=2, executor="process").parallelize()
    try:
        # started at parallelize(), before any item: it imports the stage meanwhile
        wait_for(lambda: servers(before), 60, "the stage's worker server")
        assert len(servers(before)) == 1
    finally:
        assert pipeline.cleanup() == []
    assert children() - before == set()  # never started: nothing left either
    assert left_over(made) == set()


def test_workers_and_their_replacements_are_forked_from_the_stage_server() -> None:
    before = children()
    executor = ProcessExecutor(max_items=2)
    with Pipeline() as pipeline:
        pipeline.add(Lineage(), "Lineage", replicas=2, executor=executor).parallelize()
        wait_for(lambda: servers(before), 60, "the stage's worker server")
        (server,) = servers(before)
        results = list(pipeline.run(range(8)))
    assert [item for item, _pid, _parent in results] == list(range(8))
    assert {parent for _item, _pid, parent in results} == {server}
    workers = {pid for _item, pid, _parent in results}
    assert len(workers) >= 4 and executor.recycles >= 2  # at most 2 items a worker
    assert children() - before == set()


def test_a_worker_server_that_ended_is_replaced_for_the_next_worker() -> None:
    before = children()
    with Pipeline() as pipeline:
        pipeline.add(Lineage(), "Lineage", executor="process").parallelize()
        wait_for(lambda: servers(before), 60, "the stage's worker server")
        (server,) = servers(before)
        os.kill(server, signal.SIGKILL)
        wait_for(lambda: server not in children(), 60, "the killed server ended")
        results = list(pipeline.run(range(3)))
        counts = pipeline.counters()
    assert [item for item, _pid, _parent in results] == [0, 1, 2]
    parents = {parent for _item, _pid, parent in results}
    assert len(parents) == 1 and server not in parents and os.getpid() not in parents
    assert counts["failed"] == 0
    assert children() - before == set()


def test_a_pipeline_cleaned_up_while_its_workers_start_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "slow_stage.py").write_text(
        "import os, time\n"
        "if os.environ.get('SLOW_STAGE_IMPORT'):\n"
        "    time.sleep(30)\n"
        "class Slow:\n"
        "    def __call__(self, item):\n"
        "        return item\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "slow_stage", raising=False)
    module = importlib.import_module("slow_stage")
    monkeypatch.setenv("SLOW_STAGE_IMPORT", "1")  # the server takes 30 s to import it
    made, before = blocks_made(monkeypatch), children()
    pipeline = Pipeline().add(module.Slow(), "Slow", replicas=2, executor="process")
    pipeline.parallelize(input_timeout=60)
    assert pipeline.forward(1) and pipeline.forward(2)
    wait_for(lambda: servers(before), 60, "the stage's worker server")
    assert pipeline.cleanup(timeout=10) == []
    counts = pipeline.counters()
    assert children() - before == set()
    assert left_over(made) == set()
    assert counts["forwarded"] == 2
    assert counts["completed"] + counts["failed"] + counts["discarded"] == 2


MAIN_MARKED_SCRIPT = """
import os, sys
sys.path.insert(0, {src!r})
with open({marker!r}, "a") as marker:
    marker.write(f"{{os.getpid()}}\\n")  # runs wherever this script is run

from framescope import Pipeline
from framescope.pipeline import ProcessExecutor
from lineage_stage import Lineage


class InMain:
    def __call__(self, item):
        return item, os.getpid(), os.getppid()


if __name__ == "__main__":
    stage = InMain() if sys.argv[1] == "main" else Lineage()
    with Pipeline() as pipeline:
        pipeline.add(stage, "S", replicas=2, executor=ProcessExecutor(max_items=1)).parallelize()
        print(sorted(item for item, _pid, _parent in pipeline.run(range(4))))
"""


@pytest.mark.parametrize(("defined_in", "runs"), [("module", 1), ("main", 2)])
def test_the_main_script_runs_once_for_the_workers_and_only_when_the_stage_is_there(
    tmp_path: Path, defined_in: str, runs: int
) -> None:
    (tmp_path / "lineage_stage.py").write_text(
        "import os\n"
        "class Lineage:\n"
        "    def __call__(self, item):\n"
        "        return item, os.getpid(), os.getppid()\n"
    )
    marker = tmp_path / "runs"
    script = tmp_path / "marked.py"
    src = str(Path(framescope.__file__).resolve().parents[1])
    script.write_text(MAIN_MARKED_SCRIPT.format(src=src, marker=str(marker)))
    done = subprocess.run(
        [sys.executable, str(script), defined_in],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        check=False,
    )
    assert done.stdout.strip() == "[0, 1, 2, 3]", done.stdout + done.stderr
    # 4 workers (one item each): the script ran here, and in their server only for a stage in it
    assert len(marker.read_text().split()) == runs


def marks_seen(start_method: str) -> set[str | None]:
    with Pipeline() as pipeline:
        executor = ProcessExecutor(start_method=start_method)
        pipeline.add(ReadsMark(), "Mark", replicas=2, executor=executor).parallelize()
        return {mark for _item, mark in pipeline.run(range(4))}


FORK_MARKS = """
import sys
sys.path.insert(0, {root!r})
from framescope import Pipeline
from framescope.pipeline import ProcessExecutor
from tests.pipeline import replica_stages

def marks_seen(start_method):
    with Pipeline() as pipeline:
        executor = ProcessExecutor(start_method=start_method)
        stage = replica_stages.ReadsMark()
        pipeline.add(stage, "Mark", replicas=2, executor=executor).parallelize()
        return sorted({{str(mark) for _item, mark in pipeline.run(range(4))}})

if __name__ == "__main__":
    import threading
    assert threading.active_count() == 1, threading.enumerate()
    replica_stages.MARK = "set here at run time"
    print(marks_seen("fork"), marks_seen("forkserver"), marks_seen("spawn"))
"""


def test_start_method_fork_forks_the_worker_server_from_this_process(tmp_path: Path) -> None:
    # fork needs a process where no other thread runs: a fresh one, not this test run
    root = str(Path(__file__).resolve().parents[2])
    script = tmp_path / "fork_marks.py"
    script.write_text(FORK_MARKS.format(root=root))
    src = str(Path(framescope.__file__).resolve().parents[1])
    done = subprocess.run(
        [sys.executable, str(script)],
        capture_output=True,
        text=True,
        timeout=180,
        cwd=tmp_path,
        check=False,
        env={**os.environ, "PYTHONPATH": src},
    )
    # a copy of this process sees the mark; a fresh interpreter imported the module
    assert done.stdout.strip() == "['set here at run time'] ['None'] ['None']", (
        done.stdout + done.stderr
    )


def test_start_method_fork_spawns_the_server_while_another_thread_runs(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(replica_stages, "MARK", "set here at run time")
    stop = threading.Event()
    other = threading.Thread(target=stop.wait, name="other")
    other.start()
    try:
        with caplog.at_level(logging.WARNING, "framescope.pipeline.replicas.server"):
            assert marks_seen("fork") == {None}
    finally:
        stop.set()
        other.join()
    assert "other threads run in this process" in caplog.text


def test_start_method_is_checked() -> None:
    with pytest.raises(ValueError, match="start_method must be one of 'forkserver', 'fork'"):
        ProcessExecutor(start_method="threads")
    with pytest.raises(TypeError, match="start_method must be one of"):
        ProcessExecutor(start_method=None)  # type: ignore[arg-type]
