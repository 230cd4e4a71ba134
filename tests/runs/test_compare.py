"""Two runs compared: the change of each figure, its interval, the verdict, the CI rules."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from framescope import compare, load_run
from framescope.cli import main
from framescope.runs import parse_fail_rules
from framescope.runs.runfile import RunFile


def write_run(
    path: Path,
    medians_ms: dict[str, float],
    *,
    seed: int,
    intervals: int = 30,
    rate: int = 60,
    spread: float = 0.05,
    label: str | None = None,
    probe_ns: int | None = None,
    cpu_ms: dict[str, float] | None = None,
    probe_cpu_ns: int | None = None,
    cpu_missing_every: int = 0,
    pipeline: str | None = None,
) -> Path:
    """A run of ``intervals`` 1 s intervals: each stage's times log-normal around its median.

    ``cpu_ms``: a stage's on-CPU time per item (its interval's ``on_cpu_s``, 2% noise),
    left out of every ``cpu_missing_every``-th interval (0: never).
    """
    rng = np.random.default_rng(seed)
    stages = [{"key": key, "stage": key, "working": True} for key in medians_ms]
    header = {"format": "framescope-run", "version": 1, "label": label, "stages": stages,
              "pipeline": pipeline}  # fmt: skip
    runfile = RunFile(path, header)
    runfile.open()
    for n in range(intervals):
        parts = {}
        total = np.zeros(rate)
        for key, median in medians_ms.items():
            times = median * 1e6 * np.exp(rng.normal(0, spread, rate))
            total += times
            parts[key] = {"count": rate, "failures": 0, "samples_ns": times.astype(int).tolist()}
            missing = cpu_missing_every and n % cpu_missing_every == 0
            if cpu_ms is not None and key in cpu_ms and not missing:
                work = rate * cpu_ms[key] / 1e3 * np.exp(rng.normal(0, 0.02))
                parts[key]["on_cpu_s"] = float(work)
        pipeline = {"completed": rate, "failed": 0, "dropped": 0,
                    "samples_ns": total.astype(int).tolist()}  # fmt: skip
        interval = {"kind": "interval", "t": n + 1.0, "span": 1.0, "pipeline": pipeline,
                    "stages": parts}  # fmt: skip
        if probe_ns is not None:  # the machine probe, with a little noise of its own
            interval["probe_ns"] = round(probe_ns * np.exp(rng.normal(0, 0.02)))
        if probe_cpu_ns is not None:
            interval["probe_cpu_ns"] = probe_cpu_ns
        runfile.write(interval)
    runfile.close()
    return path


def test_a_stage_made_10_percent_slower_is_named_and_no_other(tmp_path: Path) -> None:
    a = write_run(tmp_path / "a.fsrun", {"Decode": 4.0, "Detect": 10.0}, seed=1, label="main")
    b = write_run(tmp_path / "b.fsrun", {"Decode": 4.0, "Detect": 11.0}, seed=2, label="branch")
    comparison = compare(a, b)
    assert comparison.part("Detect").verdict == "slower"
    assert comparison.part("Decode").verdict == "no change"
    change = comparison.part("Detect").changes["p50"]
    assert change.change == pytest.approx(0.10, abs=0.02)
    assert change.low < 0.10 < change.high and change.low > 0.05  # the interval holds the truth
    assert comparison.slower == ("pipeline", "Detect")  # and end to end, which it slows
    assert comparison.headline() == "main -> branch: slower: pipeline, Detect"


def test_two_runs_of_the_same_code_show_no_change(tmp_path: Path) -> None:
    a = write_run(tmp_path / "a.fsrun", {"Decode": 4.0, "Detect": 10.0}, seed=3)
    b = write_run(tmp_path / "b.fsrun", {"Decode": 4.0, "Detect": 10.0}, seed=4)
    comparison = compare(a, b)
    assert comparison.slower == ()
    assert all(p.verdict == "no change" for p in comparison.parts)
    for part in comparison.parts:
        for name in ("p50", "p90", "throughput"):
            change = part.changes[name]
            assert change.low <= 0 <= change.high or abs(change.change) < 0.05, (part.key, name)


def test_added_and_removed_stages_are_listed(tmp_path: Path) -> None:
    a = write_run(tmp_path / "a.fsrun", {"Decode": 4.0, "Resize": 1.0}, seed=5)
    b = write_run(tmp_path / "b.fsrun", {"Decode": 4.0, "Track": 2.0}, seed=6)
    comparison = compare(a, b)
    assert [(p.key, p.verdict) for p in comparison.parts[1:]] == [
        ("Decode", "no change"),
        ("Resize", "removed"),
        ("Track", "added"),
    ]


def test_fail_rules_break_only_with_confidence(tmp_path: Path) -> None:
    a = write_run(tmp_path / "a.fsrun", {"Detect": 10.0}, seed=7)
    b = write_run(tmp_path / "b.fsrun", {"Detect": 11.0}, seed=8)
    comparison = compare(a, b)
    broken = comparison.broken(parse_fail_rules("Detect:p50>+5%, p50>+20%"))
    assert len(broken) == 1 and broken[0].startswith("Detect: p50 +")
    assert broken[0].endswith("breaks Detect:p50>+5%")
    assert comparison.broken(parse_fail_rules("throughput<-5%")) == []  # same rate


@pytest.mark.parametrize("rule", ["p50>10%%", "latency>+5%", "p50=+5%", "p50>+five%"])
def test_a_rule_that_cannot_be_read_says_what_is_allowed(rule: str) -> None:
    with pytest.raises(ValueError, match=r"fail-on: cannot read .* METRIC one of throughput"):
        parse_fail_rules(rule)


def test_the_command_exits_1_on_a_regression_and_prints_markdown_or_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a = str(write_run(tmp_path / "a.fsrun", {"Detect": 10.0}, seed=9))
    b = str(write_run(tmp_path / "b.fsrun", {"Detect": 12.0}, seed=10))
    assert main(["compare", a, b, "--fail-on", "p50>+10%", "--format", "markdown"]) == 1
    out, err = capsys.readouterr()
    assert out.startswith("**a.fsrun -> b.fsrun: slower: pipeline, Detect**")
    assert "| Detect | p50 |" in out and "regression: Detect: p50 +" in err
    assert main(["compare", a, a, "--fail-on", "p50>+10%", "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["parts"][1]["key"] == "Detect" and data["parts"][1]["verdict"] == "no change"
    assert main(["compare", a, str(tmp_path / "missing.fsrun")]) == 2
    assert "no run file" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"confidence": 0.3}, "confidence must be from 0.5"),
        ({"min_change": 1.5}, "min_change must be from 0"),
        ({"resamples": 10}, "resamples must be an int of at least 100"),
    ],
)
def test_bad_comparison_options_name_the_argument(
    tmp_path: Path, options: dict[str, float], message: str
) -> None:
    a = write_run(tmp_path / "a.fsrun", {"Detect": 10.0}, seed=11, intervals=3)
    with pytest.raises(ValueError, match=message):
        compare(a, a, **options)  # type: ignore[arg-type]


def test_a_machine_slower_throughout_does_not_read_as_slower_code(tmp_path: Path) -> None:
    stages = {"Decode": 4.0, "Detect": 10.0, "Track": 3.0}
    a = write_run(tmp_path / "a.fsrun", stages, seed=12, probe_ns=300_000)
    # The same code on a machine 15% slower: every stage, and the probe, take 15% longer.
    slow = {name: ms * 1.15 for name, ms in stages.items()}
    b = write_run(tmp_path / "b.fsrun", slow, seed=13, probe_ns=345_000, label="busy")
    comparison = compare(a, b, adjust=True)
    assert comparison.machine == pytest.approx(1.15, abs=0.01)
    assert comparison.slower == () and comparison.headline().endswith(
        "(the machine ran 15% slower in busy: times compared at equal speed)"
    )
    assert comparison.part("Detect").changes["p50"].change == pytest.approx(0.0, abs=0.02)
    raw = compare(a, b)  # as measured (the default): everything slower
    assert raw.machine is None and raw.slower == ("pipeline", "Decode", "Detect", "Track")
    # And the code made slower on that machine is still found, and only there.
    slow["Detect"] = 10.0 * 1.15 * 1.1
    c = write_run(tmp_path / "c.fsrun", slow, seed=14, probe_ns=345_000)
    assert compare(a, c, adjust=True).slower == ("pipeline", "Detect")


def test_the_command_adjusts_only_when_asked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a = str(write_run(tmp_path / "a.fsrun", {"Detect": 10.0}, seed=15, probe_ns=300_000))
    b = str(write_run(tmp_path / "b.fsrun", {"Detect": 11.5}, seed=16, probe_ns=345_000))
    assert main(["compare", a, b, "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["machine"] is None
    assert main(["compare", a, b, "--format", "json", "--adjust"]) == 0
    assert json.loads(capsys.readouterr().out)["machine"] == pytest.approx(1.15, abs=0.01)


def test_against_the_stages_a_machine_that_slowed_is_told_from_a_stage_that_did(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stages = {"Decode": 4.0, "Detect": 10.0, "Track": 3.0}
    a = write_run(tmp_path / "a.fsrun", stages, seed=21)
    # Every stage 15% slower (the machine), and Detect 10% slower still (the code).
    slow = {name: ms * 1.15 for name, ms in stages.items()}
    slow["Detect"] *= 1.1
    b = write_run(tmp_path / "b.fsrun", slow, seed=22, label="busy")
    assert compare(a, b).slower == ("pipeline", "Decode", "Detect", "Track")  # as measured
    comparison = compare(a, b, adjust="stages")
    assert comparison.adjusted_by == "stages"
    assert comparison.machine == pytest.approx(1.15, abs=0.02)
    assert comparison.part("Detect").changes["p50"].change == pytest.approx(0.10, abs=0.03)
    assert [p.key for p in comparison.parts if p.verdict != "no change"] == ["pipeline", "Detect"]
    assert "the stages ran 15% slower together in busy" in comparison.headline()
    assert main(["compare", str(a), str(b), "--adjust", "stages", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["adjusted_by"] == "stages"
    two = write_run(tmp_path / "two.fsrun", {"Decode": 4.0, "Detect": 10.0}, seed=23)
    with pytest.raises(ValueError, match="adjust='stages' needs at least 3 stages"):
        compare(two, two, adjust="stages")
    with pytest.raises(ValueError, match="adjust must be"):
        compare(a, b, adjust="machine")


def test_a_stage_is_judged_by_its_work_when_both_runs_have_it(tmp_path: Path) -> None:
    """Detect does 10% more work; Decode waits longer for the lock it holds, doing the same."""
    a = write_run(
        tmp_path / "a.fsrun", {"Decode": 4.0, "Detect": 10.0}, seed=21,
        cpu_ms={"Decode": 3.0, "Detect": 9.0}, label="main",
    )  # fmt: skip
    b = write_run(
        tmp_path / "b.fsrun", {"Decode": 4.6, "Detect": 11.0}, seed=22,
        cpu_ms={"Decode": 3.0, "Detect": 9.9}, label="branch",
    )  # fmt: skip
    comparison = compare(a, b)
    detect, decode = comparison.part("Detect"), comparison.part("Decode")
    work = detect.changes["cpu"]
    assert work.before == pytest.approx(0.009, rel=0.02)
    assert work.after == pytest.approx(0.0099, rel=0.02)
    assert work.low < 0.10 < work.high and work.verdict == "slower"
    assert detect.verdict == "slower"
    assert decode.changes["p50"].verdict == "slower"  # its wall time grew 15%...
    assert decode.changes["cpu"].verdict == "no change"  # ...its work did not
    assert decode.verdict == "no change"
    assert comparison.headline() == (
        "main -> branch: slower: pipeline, Detect; waited longer, same work: Decode"
    )
    row = next(r for r in comparison.rows() if r[:2] == ("Detect", "cpu"))
    assert row[2].endswith(" ms") and row[-1] == "slower"
    rules = parse_fail_rules("cpu>+5%")
    assert [line.split(":")[0] for line in comparison.broken(rules)] == ["Detect"]


def test_without_cpu_seconds_in_one_run_the_median_judges(tmp_path: Path) -> None:
    a = write_run(tmp_path / "a.fsrun", {"Detect": 10.0}, seed=23, cpu_ms={"Detect": 9.0})
    b = write_run(tmp_path / "b.fsrun", {"Detect": 11.0}, seed=24)  # an older recording
    part = compare(a, b).part("Detect")
    assert "cpu" not in part.changes
    assert part.verdict == part.changes["p50"].verdict == "slower"


def test_a_cpu_probe_of_zero_is_not_known_and_the_wall_probe_serves(tmp_path: Path) -> None:
    """A CPU clock too coarse for the probe's loop reads 0: the wall probe is used instead."""
    a = write_run(tmp_path / "a.fsrun", {"Detect": 10.0}, seed=31, probe_ns=300_000,
                  probe_cpu_ns=0)  # fmt: skip
    b = write_run(tmp_path / "b.fsrun", {"Detect": 11.5}, seed=32, probe_ns=345_000,
                  probe_cpu_ns=0)  # fmt: skip
    comparison = compare(a, b, adjust=True)
    assert comparison.machine == pytest.approx(1.15, abs=0.01)
    assert comparison.part("Detect").verdict == "no change"


def test_against_the_stages_work_is_measured_against_the_stages_work(tmp_path: Path) -> None:
    """Every stage waits 20% longer (contention) but only Detect does more work (+10%)."""
    stages = {"Decode": 4.0, "Detect": 10.0, "Track": 3.0}
    work = {"Decode": 3.0, "Detect": 9.0, "Track": 2.5}
    a = write_run(tmp_path / "a.fsrun", stages, seed=33, cpu_ms=work)
    waited = {name: ms * 1.2 for name, ms in stages.items()}
    b = write_run(tmp_path / "b.fsrun", waited, seed=34, cpu_ms=dict(work, Detect=9.9))
    comparison = compare(a, b, adjust="stages")
    assert comparison.machine == pytest.approx(1.0, abs=0.02)  # the stages' work did not move
    verdicts = {part.key: part.verdict for part in comparison.parts if part.key != "pipeline"}
    assert verdicts == {"Decode": "no change", "Detect": "slower", "Track": "no change"}


def test_work_per_item_is_told_from_the_intervals_that_have_it(tmp_path: Path) -> None:
    a = write_run(tmp_path / "a.fsrun", {"Detect": 10.0}, seed=35, cpu_ms={"Detect": 9.0},
                  cpu_missing_every=3)  # fmt: skip
    b = write_run(tmp_path / "b.fsrun", {"Detect": 10.0}, seed=36, cpu_ms={"Detect": 9.9})
    work = compare(a, b).part("Detect").changes["cpu"]
    assert work.before == pytest.approx(0.009, rel=0.02)  # not diluted by the unread thirds
    assert work.change == pytest.approx(0.10, abs=0.02) and work.verdict == "slower"
    c = write_run(
        tmp_path / "c.fsrun", {"Detect": 10.0}, seed=37, cpu_ms={"Detect": 9.0}, cpu_missing_every=1
    )  # never read: the median judges
    assert "cpu" not in compare(a, c).part("Detect").changes


def test_a_rule_naming_no_stage_of_the_runs_is_an_error_not_a_pass(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a = str(write_run(tmp_path / "a.fsrun", {"Detect": 10.0}, seed=41))
    b = str(write_run(tmp_path / "b.fsrun", {"Detect": 10.0}, seed=42))
    assert main(["compare", a, b, "--fail-on", "Detcet:p50>+5%"]) == 2  # a typo
    assert "no stage 'Detcet' in these runs" in capsys.readouterr().err
    assert main(["compare", a, b, "--fail-on", "Detect:p50>+5%"]) == 0
    assert main(["compare", a, str(tmp_path / "missing.fsrun")]) == 2
    assert "no run file" in capsys.readouterr().err


def test_runs_of_different_pipelines_say_so(tmp_path: Path) -> None:
    a = write_run(tmp_path / "a.fsrun", {"Detect": 10.0}, seed=43, pipeline="Cam")
    b = write_run(tmp_path / "b.fsrun", {"Detect": 10.0}, seed=44, pipeline="Door")
    comparison = compare(a, b)
    assert comparison.headline().endswith("(runs of different pipelines: 'Cam' and 'Door')")
    assert comparison.to_dict()["pipelines"] == ["Cam", "Door"]
    assert compare(a, a).headline().endswith("confidence)")  # the same: nothing said
    run = load_run(a)
    assert repr(run) == (
        f"Run({str(a)!r}, label='a.fsrun', intervals=30, seconds=30.0, segments=0, torn=False)"
    )
