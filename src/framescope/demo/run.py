"""Running the demo: the live tables, then the verdict, the frame summary and the trace."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from framescope._validation import check_number
from framescope.demo.inputs import DemoError, DemoInput, default_out_dir, demo_clip
from framescope.demo.phases import (
    DemoPhase,
    PhaseInput,
    ShownPipeline,
    compare_phases,
    replica_claims,
)
from framescope.demo.stages import build_demo_pipeline, render_state
from framescope.pipeline import Pipeline, PipelineSnapshot
from framescope.pipeline.views.diagnosis import Diagnosis, diagnose_snapshot
from framescope.trace import chrome_trace, write_trace

__all__ = ["DemoReport", "run_demo"]

_CLEAR = "\x1b[H\x1b[2J"


@dataclass
class DemoReport:
    """What a demo run did: where it wrote, and what became of every frame read.

    ``frames_read`` frames were decoded from the input; each was either
    ``frames_written`` (sent to the annotated video or the restream) or
    ``frames_failed`` (failed in a stage, refused by a failing output, or
    dropped by the output), except those still unaccounted for
    (``frames_read - frames_written - frames_failed``, 0 on a clean end).
    ``input_size`` and ``output_size`` are (width, height): the output is
    cut to even sides, as H.264 needs. ``input_problem``, ``output_problem``,
    ``pipeline_problem`` and ``trace_problem`` say what went wrong where
    (None: nothing). With ``replicas`` N > 1 the run has two phases, Infer
    on 1 replica and then on N (:class:`DemoPhase` each, in ``phases``; one
    phase otherwise); the frame counts above cover both. ``diagnosis`` is that
    of the last phase, and ``claims`` its lines about the replicas.
    """

    trace: Path
    output: str
    frames_read: int = 0
    frames_written: int = 0
    frames_failed: int = 0
    interrupted: bool = False
    input_problem: str | None = None
    output_problem: str | None = None
    pipeline_problem: str | None = None
    trace_problem: str | None = None
    failures: dict[str, int] = field(default_factory=dict)
    input_size: tuple[int, int] | None = None
    output_size: tuple[int, int] | None = None
    phases: list[DemoPhase] = field(default_factory=list)
    diagnosis: Diagnosis | None = None
    claims: tuple[str, ...] = ()


def _preview_tap() -> Any:
    from framescope.live import PreviewTap  # noqa: PLC0415 - the live view loads on demand

    return PreviewTap("annotated")


def _serve(pipeline: ShownPipeline, preview: Any, refresh: float) -> Any:
    """Start a live view of ``pipeline`` showing ``preview``; returns it."""
    from framescope.live import LiveView  # noqa: PLC0415

    view = LiveView(pipeline, refresh=refresh)
    view.previews[preview.name] = preview
    return view.start()


def _spyglass(target: str, video: DemoInput) -> Any:
    from framescope.video import SpyGlass  # noqa: PLC0415 - needs PyAV

    width, height = video.width - video.width % 2, video.height - video.height % 2
    if width < 2 or height < 2:
        raise DemoError(f"--video {video.path!r}: {video.width}x{video.height} is too small")
    # A second of frames may queue while the encoder process starts.
    return SpyGlass(target, video.fps, width, height, queue_size=48, name="Output")


_WRITTEN = ("input.mp4", "annotated.mp4", "trace.json.gz")
"""What a run writes into its folder (each only when this run writes it)."""
_MARK = ".framescope-demo"
"""A file that marks a folder as the demo's: only there are earlier runs' files removed."""


def _make_folder(folder: Path) -> Path:
    """Make the output folder, or say in one line why it cannot be."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        reason = error.strerror or type(error).__name__
        raise DemoError(f"--out {str(folder)!r}: cannot make the folder ({reason})") from None
    return folder


def _check_trace_path(trace_path: str | Path | None) -> None:
    """A --trace in a folder that is not there is one line before the run, not a lost report."""
    if trace_path is None:
        return
    path = Path(trace_path)
    if path.is_dir():
        raise DemoError(f"--trace {str(path)!r}: is a folder (give a file name)")
    if not path.parent.is_dir():
        raise DemoError(f"--trace {str(path)!r}: no such folder {str(path.parent)!r}")
    if not os.access(path.parent, os.W_OK):
        raise DemoError(f"--trace {str(path)!r}: cannot write in {str(path.parent)!r}")


def _check_not_written_over(video: str | Path, writes: dict[str, Path]) -> None:
    """The video read must not be a file this run writes (it would be cut while read)."""
    read = Path(video).resolve()
    for what, path in writes.items():
        if path.resolve() == read:
            raise DemoError(
                f"--video {str(video)!r}: this run writes its {what} there "
                "(copy the video elsewhere, or give another --out or --trace)"
            )


def _clear_last_run(folder: Path, keep: set[Path]) -> None:
    """Remove what the last run wrote into ``folder``, so nothing stale passes for this run's.

    Only in a folder the demo marked as its own: a file of the same name that
    the demo did not write is never removed or written over.
    """
    found = [folder / name for name in _WRITTEN if (folder / name).exists()]
    if found and not (folder / _MARK).exists():
        raise DemoError(
            f"--out {str(folder)!r}: it holds {found[0].name}, which framescope demo did not "
            "write (give an empty or a new folder)"
        )
    for path in found:
        if path.resolve() not in keep:
            path.unlink()
    (folder / _MARK).write_text("framescope demo writes here; each run replaces its files\n")


def _open_input(
    video: str | Path | None, folder: Path, writes: dict[str, Path]
) -> tuple[DemoInput, Path]:
    """Open ``video`` (or write the test clip), then make the output folder."""
    if video is not None:
        _check_not_written_over(video, writes)
        opened = DemoInput(video)  # before anything is written
        _clear_last_run(_make_folder(folder), keep={Path(video).resolve()})
        return opened, folder
    _clear_last_run(_make_folder(folder), keep=set())
    return DemoInput(demo_clip(folder)), folder


def _finished(pipeline: Pipeline, timeout: float) -> bool:
    """Whether the pipeline is done with every item (the input ended), waiting ``timeout`` s."""
    try:
        return pipeline.join(max(0.0, timeout))
    except Exception:  # it ended on an error: the drain reads it and says where
        return True


def _drain(pipeline: Pipeline, source: DemoInput, report: DemoReport, inputs: PhaseInput) -> None:
    """Close the input and carry every frame inside through to the output.

    An error that ends the pipeline is the input's when the video failed
    (said under "Input:"), otherwise the pipeline's own.
    """
    pipeline.stop_loop()
    inputs.close()  # even a loop that did not stop takes no frame of the next phase
    pipeline.close()  # what is inside goes through to the output
    try:
        if not pipeline.join(timeout=10):
            report.pipeline_problem = "frames were still inside after 10 s (counted discarded)"
    except Exception as error:  # said in the summary, not raised
        if source.error is None and report.pipeline_problem is None:
            report.pipeline_problem = f"{type(error).__name__}: {error}"


@dataclass(frozen=True)
class _Settings:
    seconds: float
    refresh: float
    fps: float
    live: bool
    restream: bool
    serve: bool
    replicas: int
    options: str = ""  # the user's --video/--out, repeated in the closing hints
    record: Path | None = None  # the run file of the (last) phase


def _phases(settings: _Settings) -> list[tuple[int, float]]:
    """(replicas, seconds) of each phase: N > 1 replicas runs 1 first, each for half the time."""
    if settings.replicas == 1:
        return [(1, settings.seconds)]
    return [(1, settings.seconds / 2), (settings.replicas, settings.seconds / 2)]


def _watch(
    out: TextIO, pipeline: Pipeline, settings: _Settings, seconds: float, header: str
) -> bool:
    """Show the live state every ``refresh`` s until ``seconds`` or the input's end.

    Returns True when interrupted (Ctrl-C): the caller still reports.
    """
    import time  # noqa: PLC0415

    start = time.monotonic()
    shown = 0
    try:
        refresh = settings.refresh
        ended = False
        while not ended and shown * refresh < seconds:
            shown += 1
            due = start + min(shown * refresh, seconds)
            ended = _finished(pipeline, due - time.monotonic())  # early at the input's end
            view = render_state(pipeline.snapshot())
            elapsed = time.monotonic() - start
            top = _CLEAR + header if settings.live else "\n"  # a redraw keeps the header
            out.write(f"{top}t = {elapsed:4.1f} s\n{view}\n")
            out.flush()
    except KeyboardInterrupt:
        out.write("\nInterrupted: stopping the pipeline.\n")
        return True
    return False


def _account(report: DemoReport, finals: list[PipelineSnapshot], spyglass: Any) -> None:
    """Fill in what became of the frames, from the phases' pipelines' and the output's counters."""
    from framescope.pipeline.views.diagnosis import LOSS_COUNTERS  # noqa: PLC0415

    counts = spyglass.counters()
    report.frames_written = counts["sent"]
    report.frames_failed = counts["dropped"]
    report.failures = {}
    for final in finals:
        report.frames_failed += sum(final.count(name) for name in LOSS_COUNTERS)
        for stage in final.stages:
            if stage.failures:
                report.failures[stage.key] = report.failures.get(stage.key, 0) + stage.failures
        for name in LOSS_COUNTERS:  # losses that are not a stage's failure
            if name != "failed" and final.count(name):
                report.failures[name] = report.failures.get(name, 0) + final.count(name)
    if counts["dropped"]:
        report.failures["dropped by the output"] = counts["dropped"]
    if counts["failures"] or spyglass.last_error:
        report.output_problem = (
            f"{spyglass.uri}: {spyglass.last_error or 'failed'} "
            f"(sessions failed: {counts['failures']})"
        )


def _summary(report: DemoReport, restream: bool, source: str) -> str:
    lost = ", ".join(f"{where} {count}" for where, count in report.failures.items())
    lines = [
        f"Frames: {report.frames_read} read from {source}, {report.frames_written} written, "
        f"{report.frames_failed} failed" + (f" ({lost})" if lost else "")
    ]
    dropped_out = report.failures.get("dropped by the output", 0)
    if dropped_out:  # the diagnosis's "Losses" are the pipeline's; these were after it
        lines.append(
            f"  the output dropped {dropped_out} frames: its encoder did not keep up "
            "(it keeps the newest 48 waiting); the diagnosis above counts the stages' losses only"
        )
    unaccounted = report.frames_read - report.frames_written - report.frames_failed
    if unaccounted:
        lines.append(f"  {unaccounted} frames read were neither written nor counted as failed")
    if report.input_problem:
        lines.append(f"Input: {report.input_problem}")
    if report.output_problem:
        lines.append(f"Output failed: {report.output_problem}")
    if report.pipeline_problem:
        lines.append(f"Pipeline failed: {report.pipeline_problem}")
    if restream and report.frames_written:
        lines.append(f"Restreamed to {report.output} ({report.frames_written} frames sent)")
    elif restream:
        lines.append(f"Nothing was restreamed (no frame reached {report.output})")
    elif report.frames_written:
        lines.append(
            f"Annotated video written to {report.output} ({report.frames_written} frames"
            f"{_cropped(report)})"
        )
    else:
        lines.append(f"No annotated video was written (no frame reached {report.output})")
    return "\n".join(lines)


def _cropped(report: DemoReport) -> str:
    """Say so when the output is smaller than the input (H.264 needs even sides)."""
    if report.output_size is None or report.output_size == report.input_size:
        return ""
    (width, height), (was_width, was_height) = report.output_size, report.input_size or (0, 0)
    return f", {width}x{height}: cut from {was_width}x{was_height}, H.264 needs even sides"


def _intro(source: DemoInput, settings: _Settings) -> str:
    fps, seconds, replicas = settings.fps, settings.seconds, settings.replicas
    on = ""
    if replicas > 1:
        on = f" (Infer on 1 replica, then on {replicas}: {seconds / 2:g} s each)"
    return (
        f"framescope demo: {source.path} ({source.width}x{source.height}, {source.fps:g} fps) "
        f"decoded at up to {fps:g} fps through 4 stages{on} and an output for {seconds:g} s.\n"
        "The input is deliberately faster than the pipeline can go: "
        "watch which stage holds the others back.\n"
    )


def _options(video: str | Path | None, out_dir: str | Path | None) -> str:
    """The user's input and folder as command options, for hints that run the same video."""
    import shlex  # noqa: PLC0415

    given = (("--video", video), ("--out", out_dir))
    return "".join(f" {flag} {shlex.quote(str(value))}" for flag, value in given if value)


def run_demo(
    out: TextIO,
    seconds: float = 6.0,
    *,
    refresh: float = 0.5,
    fps: float = 400.0,
    trace_path: str | Path | None = None,
    live: bool | None = None,
    video: str | Path | None = None,
    restream: str | None = None,
    serve: bool = False,
    replicas: int = 1,
    out_dir: str | Path | None = None,
    record: str | Path | None = None,
) -> DemoReport:
    """Run the demo for ``seconds``, showing live state every ``refresh`` s; returns its report.

    ``out_dir``: the folder it writes into (default :func:`default_out_dir`),
    overwritten per run: the test clip (``input.mp4``, unless ``video`` is
    given), the annotated video (``annotated.mp4``, unless ``restream``) and
    the trace (``trace.json.gz``, unless ``trace_path``).
    ``live`` redraws the view in place (default: when ``out`` is a terminal);
    otherwise each refresh prints a new block. ``video``: the clip to decode
    (default: one it writes); it is opened first, and one it cannot read
    raises :class:`DemoError` before anything is written. ``restream``: a
    URL to send the annotated video to; ``serve``: show it live in a browser
    too (a LiveView on 127.0.0.1, with the annotated preview); ``replicas``:
    run Infer on that many threads: for N > 1, first on 1 for half of
    ``seconds``, then on N for the other half, on the same input, and the
    report sets the two phases' measured throughput and their ratio beside
    what the diagnosis of the N-replica phase claims. ``record``: a run
    file to record the run into (the N-replica phase's, with ``replicas``),
    for ``framescope compare`` and ``framescope report``. Ctrl-C
    ends the run early: the report still comes, with ``interrupted`` set.
    """
    for name, value in (("seconds", seconds), ("refresh", refresh), ("fps", fps)):
        check_number(value, name, positive=True)
    _check_trace_path(trace_path)
    folder = default_out_dir() if out_dir is None else Path(out_dir)
    trace = Path(trace_path) if trace_path is not None else folder / "trace.json.gz"
    writes = {"trace": trace}
    if restream is None:
        writes["annotated video"] = folder / "annotated.mp4"
    source, folder = _open_input(video, folder, writes)
    try:
        target = restream if restream is not None else str(writes["annotated video"])
        report = DemoReport(trace=trace, output=target)
        settings = _Settings(
            seconds,
            refresh,
            fps,
            out.isatty() if live is None else live,
            restream is not None,
            serve,
            replicas,
            _options(video, out_dir),
            None if record is None else Path(record),
        )
        _run(out, source, report, settings)
        return report
    finally:
        source.close()


def _run(out: TextIO, source: DemoInput, report: DemoReport, settings: _Settings) -> None:
    spyglass = _spyglass(report.output, source)
    report.input_size = (source.width, source.height)
    report.output_size = (spyglass.width, spyglass.height)
    preview = _preview_tap() if settings.serve else None
    frames = source.items()
    plan = _phases(settings)
    inputs = PhaseInput(frames)
    wait = not settings.restream  # a file loses no frame: a lagging encoder holds it back
    shown = ShownPipeline(_pipeline(inputs, spyglass, preview, plan[0][0], wait))
    finals: list[PipelineSnapshot] = []
    live_view = None
    try:
        live_view = _serve(shown, preview, settings.refresh) if preview is not None else None
        header = _intro(source, settings)
        if live_view is not None:
            header += f"Live view: open {live_view.url}\n"
        out.write(header)
        spyglass.start_streaming()
        for index, (replicas, seconds) in enumerate(plan):
            if index:  # the next phase takes the frames where the last one stopped
                inputs = PhaseInput(frames)
                shown.pipeline = _pipeline(inputs, spyglass, preview, replicas, wait)
            title = _phase_line(index, plan)
            phase = _Phase(shown.pipeline, inputs, replicas, seconds, header + title, title)
            recording = _recording(shown.pipeline, settings, replicas, last=index == len(plan) - 1)
            try:
                final = _phase(out, phase, source, report, settings)
            finally:
                if recording is not None:
                    recording.close()
            finals.append(final)
            report.phases.append(DemoPhase.measured(final, inputs.taken, phase.took, replicas))
            if report.interrupted or inputs.ended:
                break
    finally:  # also when Ctrl-C or an error comes before the pipeline ran
        spyglass.stop_streaming()
        if live_view is not None:
            live_view.close()
    final = finals[-1]
    _write_trace(report, final)
    report.frames_read = source.frames_read
    _account(report, finals, spyglass)
    report.input_problem = source.problems()
    _report(out, report, final, source, settings)


def _recording(pipeline: Pipeline, settings: _Settings, replicas: int, *, last: bool) -> Any:
    """A recording of the last phase's ``pipeline`` into ``settings.record`` (None: none)."""
    if settings.record is None or not last:
        return None
    from framescope.runs.recorder import record  # noqa: PLC0415 - only when asked

    label = f"demo, Infer on {replicas} replica{'s' * (replicas > 1)}"
    return record(pipeline, settings.record, interval=min(1.0, settings.refresh), label=label)


def _pipeline(
    inputs: PhaseInput, spyglass: Any, preview: Any, replicas: int, wait: bool
) -> Pipeline:
    """One phase's pipeline; the SpyGlass outlives it (the run stops it after the last phase).

    ``wait``: Output waits for room in the SpyGlass's queue (a file) rather
    than let it drop a frame (a restream).
    """
    return build_demo_pipeline(
        inputs,
        spyglass,
        preview=preview,
        replicas=replicas,
        stop_output=False,
        wait_for_output=wait,
    )


def _phase_line(index: int, plan: list[tuple[int, float]]) -> str:
    if len(plan) == 1:
        return ""
    replicas = plan[index][0]
    return f"Phase {index + 1} of {len(plan)}: Infer on {replicas} replica{'s' * (replicas > 1)}\n"


@dataclass
class _Phase:
    pipeline: Pipeline
    inputs: PhaseInput
    replicas: int
    seconds: float
    header: str
    title: str  # "Phase 2 of 2: ..." (empty for a run of one phase)
    took: float = 0.0  # seconds from its start to its drained end


def _phase(
    out: TextIO,
    phase: _Phase,
    source: DemoInput,
    report: DemoReport,
    settings: _Settings,
) -> PipelineSnapshot:
    """Run one phase: watch it, drain it; returns its pipeline's last snapshot."""
    import time  # noqa: PLC0415

    pipeline = phase.pipeline
    if phase.title and not settings.live:  # no redraw carries the header: say it once
        out.write(f"\n{phase.title}")
    with pipeline:
        start = time.monotonic()
        pipeline.start_loop(1 / settings.fps)
        report.interrupted = _watch(out, pipeline, settings, phase.seconds, phase.header)
        _drain(pipeline, source, report, phase.inputs)
        phase.took = time.monotonic() - start
        # Drained, before the output stops (its encoder may take a moment to
        # finish the file): every frame's end, slice and failure is known, and
        # the busy shares are those of the run, not of the shutdown.
        return pipeline.snapshot()


def _write_trace(report: DemoReport, final: PipelineSnapshot) -> None:
    """Write the trace; a trace that cannot be written is said in the summary, not raised."""
    try:
        write_trace(report.trace, chrome_trace(final.traces, final.node_ids, title="Demo"))
    except OSError as error:
        report.trace_problem = f"{report.trace}: {error.strerror or error}"


def _report(
    out: TextIO, report: DemoReport, final: PipelineSnapshot, source: DemoInput, settings: _Settings
) -> None:
    summary = _summary(report, settings.restream, source.path)
    diagnosis = report.diagnosis = diagnose_snapshot(final)
    report.claims = replica_claims(diagnosis)
    out.write("\n")
    if settings.replicas > 1:
        replicas = report.phases[-1].replicas
        out.write(
            f"Diagnosis of the last phase (Infer on {replicas} replica{'s' * (replicas > 1)}):\n"
        )
    out.write(f"{diagnosis.report()}\n\n")
    if settings.replicas > 1:
        out.write(f"{compare_phases(report.phases, report.claims, settings.replicas)}\n\n")
    out.write(f"{summary}\n")
    of = "" if len(report.phases) < 2 else f"of the {settings.replicas}-replica phase; "
    if report.trace_problem is None:
        out.write(f"\nTrace written to {report.trace} ({of}open it at https://ui.perfetto.dev)\n")
    else:
        out.write(f"\nTrace not written: {report.trace_problem}\n")
    again = f"framescope demo{settings.options}"
    if settings.record is not None:
        out.write(
            f"Run recorded in {settings.record}: framescope report {settings.record} "
            f"(pip install 'framescope[report]'); framescope compare {settings.record} "
            "OTHER.fsrun\n"
        )
    if not settings.serve:
        out.write(f"To watch it live in a browser: {again} --serve\n")
    if settings.replicas == 1:
        out.write(f"To compare Infer on one thread and on two, measured: {again} --replicas 2\n")
