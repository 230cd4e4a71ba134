"""The ``framescope`` command line."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit

from framescope._version import __version__

__all__ = ["build_parser", "main"]


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {text}")
    return value


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, got {text}")
    return value


def _restream_url(text: str) -> str:
    from framescope.video.targets import NETWORK_SCHEMES, resolve_target  # noqa: PLC0415

    if urlsplit(text).scheme.lower() not in NETWORK_SCHEMES:
        schemes = ", ".join(f"{name}://" for name in NETWORK_SCHEMES)
        raise argparse.ArgumentTypeError(
            f"expected a URL starting {schemes}, got {text!r} "
            "(the annotated file goes to the --out folder)"
        )
    try:
        resolve_target(text, None, None)
    except (ValueError, ImportError) as error:  # ImportError: a PyAV without WHIP
        raise argparse.ArgumentTypeError(str(error)) from None
    return text


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser of the ``framescope`` command."""
    parser = argparse.ArgumentParser(
        prog="framescope",
        description="Build, time, watch and ship real-time video pipelines.",
    )
    parser.add_argument("--version", action="version", version=f"framescope {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    _add_demo_command(commands)
    _add_timepiece_command(commands)
    _add_health_command(commands)
    from framescope.runs.commands import add_commands  # noqa: PLC0415 - argparse only

    add_commands(commands)
    return parser


def _add_health_command(commands: Any) -> None:
    """``framescope health FILE --max-age S``: the check a container's HEALTHCHECK runs."""
    health = commands.add_parser(
        "health",
        help="check a heartbeat file: exit 0 when fresh and healthy, 1 when not",
        description=(
            "Read the heartbeat file a framescope.health.Heartbeat writes and print one line: "
            "ok, or why not (stale, unreadable, not a heartbeat file, or unhealthy, naming "
            "each stalled or failed source and stalled stage)."
        ),
        epilog="Exit status: 0 fresh and healthy, 1 not, 2 for a bad option.",
    )
    health.add_argument("file", metavar="FILE", help="the heartbeat file")
    health.add_argument(
        "--max-age",
        type=_positive_float,
        required=True,
        metavar="S",
        help="seconds the file may be old (give it a few of the heartbeat's intervals)",
    )


def _add_demo_command(commands: Any) -> None:
    """``framescope demo``: a video through a pipeline, watched live, then diagnosed."""
    demo = commands.add_parser(
        "demo",
        help="run a video through a pipeline, watch it live, then see its bottleneck",
        description=(
            "Decode a video in a loop (a test clip it writes, or --video FILE) through four "
            "stages, one of them a deliberately slow stand-in model, and write the annotated "
            "frames to a video (or restream them). A live table of every stage refreshes "
            "while it runs; at the end come the diagnosis (the bottleneck), what became of "
            "every frame read, and a trace to open in Perfetto. Ctrl-C ends it early, "
            "with the same report."
        ),
        epilog=(
            "Exit status: 0 when it ran (damage in the video is named in the summary), 1 when "
            "the video cannot be read, a folder or the trace cannot be written or the output "
            "failed (a restream that cannot connect), 2 for a bad option, 130 when "
            "interrupted (Ctrl-C)."
        ),
    )
    demo.add_argument(
        "--seconds", type=_positive_float, default=6.0, help="how long to run (default 6)"
    )
    demo.add_argument(
        "--fps",
        type=_positive_float,
        default=400.0,
        help="the most frames per second read from the video (default 400: faster than "
        "the pipeline, so that its slowest stage shows)",
    )
    demo.add_argument(
        "--refresh",
        type=_positive_float,
        default=0.5,
        help="seconds between live tables (default 0.5)",
    )
    _add_demo_files(demo)
    demo.add_argument(
        "--serve",
        action="store_true",
        help="also show it live in a browser, on 127.0.0.1 (prints the address)",
    )
    demo.add_argument(
        "--replicas",
        type=_positive_int,
        default=1,
        help="threads that run the slow stage, Infer (default 1). With N > 1 the run has "
        "two phases on the same input, each half of --seconds: Infer on 1 replica, then on N; "
        "the report prints the throughput each phase measured and their ratio (the fact) "
        "beside what the diagnosis of the N-replica phase claims",
    )


def _add_demo_files(demo: argparse.ArgumentParser) -> None:
    """The demo's input and outputs: --video, --out, --trace, --restream."""
    demo.add_argument(
        "--video",
        default=None,
        metavar="FILE",
        help="the video to decode, in a loop: any size, codec and pixel format FFmpeg "
        "reads (default: a 640x480 test clip written to the --out folder)",
    )
    demo.add_argument(
        "--out",
        default=None,
        metavar="DIR",
        help="the folder it writes into, overwritten by each run: input.mp4 (the test "
        "clip), annotated.mp4 and trace.json.gz (default: ~/.cache/framescope/demo, "
        "or $XDG_CACHE_HOME/framescope/demo)",
    )
    demo.add_argument(
        "--trace",
        default=None,
        metavar="FILE",
        help="write the trace here instead (.json or .json.gz)",
    )
    demo.add_argument(
        "--record",
        default=None,
        metavar="FILE",
        help="record the run into this run file (.fsrun; with --replicas N, the N-replica "
        "phase) for framescope report and framescope compare",
    )
    demo.add_argument(
        "--restream",
        type=_restream_url,
        default=None,
        metavar="URL",
        help="send the annotated video to this URL (rtmp://, rtsp://, udp://, tcp://, "
        "http(s)://) instead of writing annotated.mp4",
    )


def _add_timepiece_command(commands: Any) -> None:
    """``framescope timepiece-demo``: a simulated frame loop timed with the timepiece tools."""
    timepiece = commands.add_parser(
        "timepiece-demo", help="run a short simulated frame loop timed with the timepiece tools"
    )
    timepiece.add_argument(
        "--seconds", type=_positive_float, default=3.0, help="how long (default 3)"
    )
    timepiece.add_argument(
        "--fps", type=_positive_float, default=25.0, help="target rate (default 25)"
    )
    timepiece.add_argument(
        "--report-interval",
        type=_positive_float,
        default=1.0,
        help="seconds between tachometer reports (default 1)",
    )
    timepiece.add_argument("--seed", type=int, default=None, help="seed of the simulated workload")


@contextmanager
def _warnings_on_stderr(*filters: logging.Filter) -> Iterator[None]:
    """Show framescope's warnings on stderr while the command runs (the library logs only)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setLevel(logging.WARNING)
    for log_filter in filters:
        handler.addFilter(log_filter)
    handler.setFormatter(logging.Formatter("framescope: %(levelname)s: %(message)s"))
    logger = logging.getLogger("framescope")
    logger.addHandler(handler)
    try:
        yield
    finally:
        logger.removeHandler(handler)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``framescope`` command; returns the exit status."""
    # The demo's stand-in model: its matrix products take one core per call, as a
    # small model's do on an edge box, so that --replicas shows what replicas add.
    # NumPy reads these once, when it first loads, and checking --restream's URL
    # loads PyAV, which loads NumPy: they are set before the arguments are parsed.
    if "demo" in (sys.argv[1:] if argv is None else argv):
        for variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ.setdefault(variable, "1")
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "demo":
        return _demo(args)
    if args.command == "health":
        return _health(args)
    if args.command in ("compare", "report"):
        from framescope.runs import commands  # noqa: PLC0415

        run = commands.compare_command if args.command == "compare" else commands.report_command
        return run(args)
    with _warnings_on_stderr():
        if args.command == "timepiece-demo":
            from framescope.timepiece_demo import run_timepiece_demo  # noqa: PLC0415

            run_timepiece_demo(
                sys.stdout,
                seconds=args.seconds,
                fps=args.fps,
                report_interval=args.report_interval,
                seed=args.seed,
            )
            return 0
    parser.print_help()
    return 2


def _health(args: Any) -> int:
    import time  # noqa: PLC0415

    from framescope.health import check_heartbeat  # noqa: PLC0415 - loads the pipeline model

    healthy, line = check_heartbeat(args.file, args.max_age, now=time.time())
    print(f"framescope health: {line}", file=sys.stdout if healthy else sys.stderr)
    return 0 if healthy else 1


def _demo(args: Any) -> int:
    try:
        from framescope.demo import (  # noqa: PLC0415 - needs numpy and PyAV
            DemoError,
            QuietOutputFailures,
            run_demo,
        )
    except ImportError as error:  # one line, as every demo error: what to install
        print(
            f"framescope demo: error: {error} (the demo needs: pip install 'framescope[demo]')",
            file=sys.stderr,
        )
        return 1
    try:
        with _warnings_on_stderr(QuietOutputFailures()):
            report = run_demo(
                sys.stdout,
                seconds=args.seconds,
                fps=args.fps,
                refresh=args.refresh,
                trace_path=args.trace,
                video=args.video,
                restream=args.restream,
                serve=args.serve,
                replicas=args.replicas,
                out_dir=args.out,
                record=args.record,
            )
    except DemoError as error:
        print(f"framescope demo: error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # before the pipeline ran: nothing to report
        print("framescope demo: interrupted", file=sys.stderr)
        return 130
    if report.interrupted:
        return 130
    failed = (report.output_problem, report.pipeline_problem, report.trace_problem)
    return 1 if any(problem is not None for problem in failed) else 0


if __name__ == "__main__":
    raise SystemExit(main())
