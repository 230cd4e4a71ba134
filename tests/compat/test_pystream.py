"""Code written against pystream-pipeline 0.2.0 runs unchanged."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from framescope import Pipeline, Stage
from framescope.pipeline import (
    MAIN_PIPELINE_NAME,
    PipelineUndefined,
    functional,
    get_profiler_db_folder,
    logger,
    set_profiler_db_folder,
)
from framescope.pipeline.functional import func_parallel_thread, func_serial


@pytest.fixture(autouse=True)
def _shared_pool_ended() -> Any:
    """The process-wide pool func_parallel_thread makes lives until exit; end it after a test."""
    yield
    pool, functional._shared = functional._shared, None
    if pool is not None:
        pool.shutdown(wait=True)


def test_nested_pipelines_as_stages_are_keyed_stage_n_as_in_pystreams_docs() -> None:
    sub = Pipeline()
    sub.add(lambda x: x + 1, "S31")
    sub.add(lambda x: x * 2, "S32")
    other = Pipeline()
    other.add(lambda x: x - 1, "S41")
    main = Pipeline()
    main.add(sub.as_stage())
    main.add(other.as_stage())  # a second unnamed sub-pipeline is fine
    main.serialize()
    main.forward(3)
    assert main.get_results() == 7
    latency, _ = main.get_profiles()
    assert "MainPipeline__Stage_1__S31" in latency
    assert "MainPipeline__Stage_2__S41" in latency
    main.cleanup()


def test_a_pipeline_without_stages_passes_data_through() -> None:
    for start in (Pipeline.serialize, Pipeline.parallelize):
        pipeline = Pipeline()
        start(pipeline)
        assert pipeline.forward({"frame": 1})
        assert pipeline.get_results() == {"frame": 1}
        pipeline.cleanup()


def test_module_level_names() -> None:
    assert MAIN_PIPELINE_NAME == "MainPipeline" == Pipeline().name
    assert logger.name == "framescope.pipeline"
    before = get_profiler_db_folder()
    set_profiler_db_folder("/tmp/profiles")
    assert get_profiler_db_folder() == "/tmp/profiles"
    set_profiler_db_folder(before)
    assert issubclass(PipelineUndefined, Exception)
    try:  # a pipeline used before serialize()/parallelize() runs serially instead
        pipeline = Pipeline().add(lambda x: x + 1)
        assert pipeline.forward(1) and pipeline.get_results() == 2
    except PipelineUndefined:  # what PyStream code catches
        pytest.fail("framescope starts the pipeline serially")
    pipeline.cleanup()


class Unnamed(Stage):
    def __call__(self, data: Any) -> Any:
        return data


def test_stage_name_is_empty_at_class_level() -> None:
    assert Stage.name == "" and Unnamed().name == ""
    pipeline = Pipeline().add(Unnamed())
    assert pipeline.stage_names == ["Unnamed"]


def test_functional_helpers() -> None:
    serial = func_serial([lambda x: x + 1, lambda x: x * 10])
    assert serial(1) == 20

    both = threading.Barrier(2, timeout=10)  # passes only when the two run at the same time

    def mark(key: str) -> Any:
        def set_key(data: dict[str, int]) -> None:
            data[key] = both.wait()

        return set_key

    with ThreadPoolExecutor(2) as executor:
        parallel = func_parallel_thread([mark("a"), mark("b")], executor)
        data: dict[str, int] = {}
        assert parallel(data) is data
        assert sorted(data.values()) == [0, 1]
    shared = func_parallel_thread([lambda d: d.append(1), lambda d: d.append(2)])
    assert sorted(shared([])) == [1, 2]

    def broken(_: Any) -> None:
        raise RuntimeError("one failed")

    with pytest.raises(RuntimeError, match="one failed"):
        func_parallel_thread([broken, lambda d: d])({})
    with pytest.raises(TypeError, match="funcs must hold functions"):
        func_serial([1])  # type: ignore[list-item]


class Passing(Stage):
    def __call__(self, data: Any) -> Any:
        return data


def test_stages_sequence_lists_the_stages_added_in_order() -> None:
    """PyStream's own test: an empty list, then one entry per add()."""
    pipeline = Pipeline()
    assert pipeline.stages_sequence == []
    stages = [Passing() for _ in range(5)]
    for stage in stages:
        pipeline.add(stage)
    assert len(pipeline.stages_sequence) == 5
    assert all(a is b for a, b in zip(pipeline.stages_sequence, stages, strict=True))
    pipeline.stages_sequence.clear()  # a copy: the pipeline keeps its stages
    assert len(pipeline.stages_sequence) == 5


def test_get_profiles_before_any_item_is_empty_as_in_pystream() -> None:
    pipeline = Pipeline(use_profiler=True).add(lambda x: x, "S1").serialize()
    assert pipeline.get_profiles() == ({}, {})
    pipeline.forward(1)
    latency, throughput = pipeline.get_profiles()
    assert set(latency) == set(throughput) == {"MainPipeline", "MainPipeline__S1"}
    pipeline.cleanup()
