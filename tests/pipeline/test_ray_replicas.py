"""Ray replicas on a local cluster on loopback: order, read-only frames, a dead actor replaced."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from framescope import Pipeline
from framescope.pipeline import StageError
from framescope.pipeline.replicas.base import ReplicaLostError

from .replica_stages import (
    BatchEcho,
    Draw,
    Echo,
    Refuses,
    error_of_killed_worker,
    run_killing_one_worker,
)

pytestmark = pytest.mark.integration

ray: Any = pytest.importorskip("ray", reason="Ray is not installed (pip install framescope[ray])")


@pytest.fixture(scope="module", autouse=True)
def local_cluster() -> Iterator[None]:
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    ray.init(
        num_cpus=2,
        include_dashboard=False,
        log_to_driver=False,
        _node_ip_address="127.0.0.1",
    )
    try:
        yield
    finally:
        ray.shutdown()


def test_actors_keep_the_order_and_report_their_timing() -> None:
    with Pipeline() as pipeline:
        pipeline.add(Echo(), "Echo", replicas=2, executor="ray").parallelize(queue_size=2)
        results = list(pipeline.run(range(30)))
        snapshot = pipeline.snapshot()
    assert [item for item, _pid in results] == list(range(30))
    assert len({pid for _item, pid in results}) == 2 and os.getpid() not in {p for _, p in results}
    entry = snapshot.stage("MainPipeline__Echo")
    assert entry.replicas == 2 and entry.latency.count == 30
    assert sum(r.latency.count for r in snapshot.replicas_of(entry.key)) == 30


def test_a_frame_arrives_read_only_and_the_error_says_to_copy() -> None:
    with Pipeline() as pipeline:
        pipeline.add(Draw(), "Draw", executor="ray").parallelize()
        with pytest.raises(StageError) as raised:
            list(pipeline.run([np.zeros((480, 640, 3), np.uint8)]))
    assert "frame = frame.copy()" in str(raised.value.error)


def test_a_stage_error_in_an_actor_is_counted_under_its_policy() -> None:
    with Pipeline() as pipeline:
        pipeline.add(Refuses(), "Refuses", replicas=2, executor="ray", on_error="skip")
        pipeline.parallelize()
        assert list(pipeline.run(range(6))) == [0, 2, 4]
        assert pipeline.counters()["failed"] == 3


def test_an_actor_that_dies_mid_item_fails_it_and_is_replaced(tmp_path: Path) -> None:
    results, counts = run_killing_one_worker("ray", tmp_path / "pid", 2, before=5, after=5)
    assert results == [0, 1, 3, 4]
    assert counts["failed"] == 1 and counts["replica_restarts"] == 1


def test_a_lost_actor_is_a_replica_lost_error(tmp_path: Path) -> None:
    assert isinstance(error_of_killed_worker("ray", tmp_path / "pid"), ReplicaLostError)


def test_a_batched_stage_on_two_actors_sends_each_batch_as_one_call() -> None:
    with Pipeline(name="Cams") as pipeline:
        pipeline.add(BatchEcho(), "Detect", batch=4, replicas=2, executor="ray")
        pipeline.parallelize(queue_size=4)
        results = list(pipeline.run(range(20)))
        snapshot = pipeline.snapshot()
    assert [item for item, _, _ in results] == list(range(20))
    # One call per batch: the items of a batch share its actor and its call number.
    calls: dict[tuple[int, int], list[int]] = {}
    for item, pid, call in results:
        calls.setdefault((pid, call), []).append(item)
    assert all(1 <= len(items) <= 4 for items in calls.values())
    assert os.getpid() not in {pid for pid, _ in calls}
    batch = snapshot.stage("Cams__Detect").batch
    assert batch is not None and batch.items == 20 and batch.batches == len(calls)
    counters = snapshot.counters
    assert counters["completed"] == 20 and counters["forwarded"] == 20
