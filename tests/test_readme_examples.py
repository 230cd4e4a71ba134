"""Every Python block of README.md runs, with only the fixtures it says it needs.

A block is preceded by ``<!-- readme-test: needs a, b -->`` naming what it
uses without defining (data, a model, a file in the working folder); this
test supplies those, runs the block in a fresh namespace in a temporary
folder, and checks that it did what its text says.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from framescope import Pipeline, Stage
from framescope.timepiece import Ticker

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parent.parent
_BLOCK = re.compile(r"(?:<!-- readme-test: needs ([^>]*?) -->\n)?```python\n(.+?)\n```", re.S)


def readme_blocks() -> list[tuple[int, list[str], str]]:
    text = (ROOT / "README.md").read_text()
    blocks = []
    for match in _BLOCK.finditer(text):
        needs = [name.strip() for name in (match.group(1) or "").split(",") if name.strip()]
        line = text[: match.start(2)].count("\n") + 1
        blocks.append((line, needs, match.group(2)))
    return blocks


class Decode(Stage):
    def __call__(self, frame: Any) -> Any:
        return frame


class Detect(Stage):
    name = "Detect"

    def __call__(self, frame: Any) -> Any:
        with self.events.block("nms"):
            return frame


class Track(Stage):
    def __call__(self, frame: Any) -> Any:
        return frame


def replica_infer() -> Any:
    from tests.pipeline.replica_stages import Infer  # importable by a worker process

    return Infer


def debug_pipeline() -> Pipeline:
    pipeline = Pipeline(debug=True).add(Detect()).parallelize(queue_size=4)
    for _ in pipeline.run(range(10)):
        pass
    return pipeline


def paced_images(count: int, fps: float) -> Any:
    """Frames as a camera gives them: ``fps`` a second, not all at once."""

    for index in range(count):
        time.sleep(1 / fps)
        yield np.full((480, 640, 3), index * 4, np.uint8)


def normalize(images: Any) -> Any:
    return images / 2


def decode_boxes(predictions: Any) -> Any:
    return predictions.argmax(dim=1)


def tiny_model() -> Any:
    torch = pytest.importorskip("torch")
    return torch.nn.Sequential(torch.nn.Linear(8, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))


def _fixtures(tmp_path: Path, request: pytest.FixtureRequest) -> dict[str, Callable[[], Any]]:
    def clip() -> None:
        from framescope.video import SyntheticSource, VideoWriter

        with VideoWriter(str(tmp_path / "clip.mp4"), fps=30) as writer:
            for frame in SyntheticSource(160, 120, 30, frames=20):
                writer.write(frame)

    def moto_for(service_variable: str) -> tuple[Any, Any]:
        """The moto server, as the endpoint of one service, with test credentials."""
        moto = request.getfixturevalue("moto")
        monkeypatch = request.getfixturevalue("monkeypatch")
        monkeypatch.setenv(service_variable, moto.url)
        for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
            monkeypatch.setenv(name, "testing")
        return moto, monkeypatch

    def aws() -> None:
        moto_for("AWS_ENDPOINT_URL_CLOUDWATCH")

    def kvs() -> None:
        from tests.kvs.receiver import Key, KVSReceiver

        moto, monkeypatch = moto_for("AWS_ENDPOINT_URL_KINESIS_VIDEO")
        moto.session().client(
            "kinesisvideo", region_name="us-east-1", endpoint_url=moto.url
        ).create_stream(StreamName="panorama-video")
        receiver = KVSReceiver({"testing": Key("testing")}, "panorama-video", "us-east-1")
        request.addfinalizer(receiver.close)
        monkeypatch.setenv("FRAMESCOPE_KVS_DATA_ENDPOINT_URL", receiver.url)
        _receivers.append(receiver)

    return {
        "frames": lambda: list(range(6)),
        "Track": lambda: Track,
        "Infer": replica_infer,
        "grab_frame": lambda: lambda: np.zeros((4, 4, 3), np.uint8),
        "Decode": lambda: Decode,
        "detect": lambda: lambda frame: frame,
        "draw": lambda: lambda frame: frame,
        "pipeline": debug_pipeline,
        "model": tiny_model,
        "normalize": lambda: normalize,
        "decode_boxes": lambda: decode_boxes,
        "batches": lambda: [pytest.importorskip("torch").ones(4, 8) for _ in range(5)],
        "annotated_image": lambda: np.zeros((120, 160, 3), np.uint8),
        "class_id": lambda: 3,
        "frame": lambda: np.zeros((120, 160, 3), np.uint8),
        "frame_ticker": Ticker,
        "clip.mp4": clip,
        "aws": aws,
        "kvs": kvs,
        "annotated_images": lambda: paced_images(60, fps=30),
    }


_receivers: list[Any] = []  # the PutMedia receiver of the block being checked


BLOCKS = readme_blocks()


def test_every_block_is_found() -> None:
    assert len(BLOCKS) >= 9


@pytest.fixture
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.mark.parametrize("block", BLOCKS, ids=[f"line{b[0]}" for b in BLOCKS])
def test_readme_block_runs(
    block: tuple[int, list[str], str],
    in_tmp: Path,
    request: pytest.FixtureRequest,
    capsys: pytest.CaptureFixture[str],
) -> None:
    line, needs, code = block
    known = _fixtures(in_tmp, request)
    unknown = [name for name in needs if name not in known]
    assert not unknown, f"README line {line}: no fixture for {unknown}"
    namespace: dict[str, Any] = {"__name__": f"readme_line_{line}"}
    for name in needs:
        value = known[name]()
        if value is not None:
            namespace[name] = value
    try:
        exec(compile(code, f"README.md:{line}", "exec"), namespace)  # the README's own code
        check_block(code, namespace, in_tmp, capsys.readouterr().out)
    finally:
        for name, method in (
            ("exporter", "close"),
            ("spyglass", "stop_streaming"),
            ("pipeline", "cleanup"),
        ):
            thing = namespace.get(name)
            if thing is not None:
                getattr(thing, method)()


def check_block(code: str, namespace: dict[str, Any], folder: Path, printed: str) -> None:
    """What each block's text promises."""
    if "ModelTiming" in code:
        timing = namespace["timing"].timing_data
        assert timing.find("decode_boxes").times_run == 3  # 5 batches, 2 of them warm-up
        assert timing.find("normalize").times_run == 3
    if "VideoWriter(" in code:
        from framescope.video import VideoSource

        assert sum(1 for _ in VideoSource(folder / "annotated.mp4")) == 20
    if "KVSSpyGlass" in code:
        receiver = _receivers.pop()
        assert receiver.problems == []
        counts = namespace["spyglass"].counters()
        # Every frame is accounted for: received, or counted as dropped (the first ones
        # may wait longer than the queue holds while the encoder process starts).
        assert receiver.decoded_frames() == counts["sent"] >= 30
        assert counts["sent"] + counts["dropped"] == 60
        assert "'PERSISTED': " in printed
    if "CWTachometer" in code:
        assert "'sent': 1" in printed  # the period was reported and delivered on leaving
    if "diagnose()" in code and "export_trace(" in code:
        assert (folder / "trace.json.gz").exists()
        assert "Stage-bound" in printed or "Source-bound" in printed
    if "snapshot.machine" in code:  # where a stage's time goes
        assert printed.startswith("CpuSplit(window_s=")
        assert "MachineLoad(cores=" in printed
        assert "Stage-bound" in printed or "Source-bound" in printed
    if "replicas=2" in code:
        assert namespace["results"] == [item + 1 for item in range(6)]
        assert printed.splitlines()[:2] == ["6", "['Cam__Infer#0', 'Cam__Infer#1']"]
    if "render([box]" in code:
        assert namespace["rendered"].any()
    if "view.preview(" in code:
        preview = namespace["preview"]
        preview.latest(timeout=10)  # the encoder takes the newest result at its pace
        assert preview.sequence >= 1 and preview.problem is None
        namespace["view"].close()
    if "run(cameras" in code:  # many cameras: the snapshot has a row per camera
        rows = [line.split()[:2] for line in printed.splitlines()]
        assert ["cam1", "ended"] in rows and ["cam2", "ended"] in rows
    if "capture_clock" in code:  # capture to glass: every frame through the pipeline timed
        assert printed.startswith("LatencyFigures(count=30, p50=")
    if "Clips(" in code:  # the clip around the trigger: the whole 20-frame file
        assert printed.split() == [printed.split(maxsplit=1)[0], "person", "20"]
        assert (folder / "clips" / printed.split(maxsplit=1)[0]).exists()
    if "print(ticker)" in code:
        assert printed.startswith("<Ticker intervals=[")
