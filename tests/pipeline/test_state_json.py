"""PipelineState.from_json and merge_states check what they read and name the bad field."""

from __future__ import annotations

import json
from typing import Any

import pytest

from framescope import Pipeline
from framescope.pipeline.model.state import NodeState, PipelineState, merge_states


def recorded_state() -> dict[str, Any]:
    pipeline = Pipeline(debug=True).add(lambda x: x + 1, "A").add(lambda x: x, "B")
    pipeline.parallelize(queue_size=4)
    for item in pipeline.run(range(20)):
        assert item >= 1
    state = pipeline.get_pipeline_state()
    pipeline.cleanup()
    data: dict[str, Any] = json.loads(state.to_json())
    return data


def node_of(data: dict[str, Any]) -> dict[str, Any]:
    node: dict[str, Any] = data["node_states"]["MainPipeline__A"]
    return node


def test_a_recorded_state_reads_back_equal() -> None:
    data = recorded_state()
    state = PipelineState.from_json(json.dumps(data))
    assert json.loads(state.to_json()) == data


@pytest.mark.parametrize(
    ("change", "named"),
    [
        (lambda n: n.update(state="EXPLODED"), "node_states['MainPipeline__A'].state"),
        (lambda n: n.update(state=3), "node_states['MainPipeline__A'].state"),
        (
            lambda n: n["main_loop_timing"]["duration_stats"].update(min_micros="abc"),
            "main_loop_timing.duration_stats.min_micros",
        ),
        (lambda n: n["main_loop_timing"].update(fps=-1.0), "main_loop_timing.fps"),
        (lambda n: n["main_loop_timing"].update(fps=float("nan")), "main_loop_timing.fps"),
        (lambda n: n["main_loop_timing"].update(count=-5), "main_loop_timing.count"),
        (lambda n: n["main_loop_timing"].update(count=True), "main_loop_timing.count"),
        (lambda n: n["input_states"]["in"].update(num_queued=-1), "input_states.in.num_queued"),
        (lambda n: n["input_states"]["in"].update(state="FULL"), "input_states.in.state"),
        (lambda n: n["output_states"]["out"].update(state="BUSY"), "output_states.out.state"),
        (lambda n: n.update(input_states=[1, 2]), "input_states"),
        (lambda n: n.update(main_loop_timing="fast"), "main_loop_timing"),
        (lambda n: n.update(unpaired_events=-2), "unpaired_events"),
        (lambda n: n.update(events={"a": 1}), "events"),
        (lambda n: n.update(events=[{"type": "BOOM"}]), "events[0].type"),
    ],
)
def test_a_bad_field_is_a_value_error_naming_it(change: Any, named: str) -> None:
    data = recorded_state()
    change(node_of(data))
    with pytest.raises(ValueError, match=named.replace("[", r"\[").replace("]", r"\]")):
        PipelineState.from_json(json.dumps(data))


def test_a_bad_node_state_alone_names_its_field() -> None:
    node = node_of(recorded_state())
    node["outputs_send_timing"]["duration_stats"]["p99_micros_recent"] = [1]
    with pytest.raises(ValueError, match=r"outputs_send_timing\.duration_stats\.p99"):
        NodeState.from_json(json.dumps(node))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[]", "expected an object"),
        ('{"node_states": []}', "node_states: expected an object"),
        ('{"node_states": {"": {}}}', "node id"),
        ('{"node_states": {"A": 7}}', r"node_states\['A'\]: expected an object"),
        ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
        ("not json", "Expecting value"),
    ],
)
def test_malformed_documents_are_value_errors(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        PipelineState.from_json(text)


def test_missing_fields_take_their_defaults() -> None:
    state = PipelineState.from_json('{"node_states": {"P__A": {"state": "PROCESSING"}}}')
    node = state.node_states["P__A"]
    assert node.state == "PROCESSING" and node.main_loop_timing.count == 0
    assert not node.main_loop_timing.is_valid()


def test_merge_states_checks_its_inputs() -> None:
    state = PipelineState({"P__A": NodeState()})
    with pytest.raises(ValueError, match="prefixes"):
        merge_states(state, prefixes=[""])
    with pytest.raises(ValueError, match="prefixes"):
        merge_states(state, prefixes=[3])  # type: ignore[list-item]
    with pytest.raises(ValueError, match=r"node_states\['P__B'\]: expected a NodeState"):
        merge_states(PipelineState({"P__B": {"state": "IDLE"}}))  # type: ignore[dict-item]
    with pytest.raises(ValueError, match="node id"):
        merge_states(PipelineState({7: NodeState()}))  # type: ignore[dict-item]
    with pytest.raises(TypeError):
        merge_states("state")  # type: ignore[arg-type]
