"""The ``framescope`` command line."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

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


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser of the ``framescope`` command."""
    parser = argparse.ArgumentParser(
        prog="framescope",
        description="Build, time, watch and ship real-time video pipelines.",
    )
    parser.add_argument("--version", action="version", version=f"framescope {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    demo = commands.add_parser(
        "demo", help="run a synthetic video pipeline, watch it live, then see its bottleneck"
    )
    demo.add_argument("--seconds", type=_positive_float, default=6.0, help="how long (default 6)")
    demo.add_argument(
        "--fps", type=_positive_float, default=400.0, help="camera rate (default 400)"
    )
    demo.add_argument(
        "--refresh", type=_positive_float, default=0.5, help="seconds between live views"
    )
    demo.add_argument("--trace", default=None, help="where to write the trace (.json or .json.gz)")
    demo.add_argument("--video", default=None, help="a video file to decode (default: a test clip)")
    demo.add_argument(
        "--restream", default=None, help="send the annotated video to this URL (rtmp://...)"
    )
    demo.add_argument(
        "--serve", action="store_true", help="show it live in a browser (prints the address)"
    )
    demo.add_argument(
        "--replicas", type=_positive_int, default=1, help="threads that run Infer (default 1)"
    )
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
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``framescope`` command; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "demo":
        # The stand-in model's matrix products take one core per call, as a small
        # model's do on an edge box, so that --replicas shows what replicas add.
        # (NumPy reads these when it loads, which is below.)
        for variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ.setdefault(variable, "1")
        from framescope.demo import run_demo  # noqa: PLC0415 - needs numpy, loads the pipeline

        run_demo(
            sys.stdout,
            seconds=args.seconds,
            fps=args.fps,
            refresh=args.refresh,
            trace_path=args.trace,
            video=args.video,
            restream=args.restream,
            serve=args.serve,
            replicas=args.replicas,
        )
        return 0
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


if __name__ == "__main__":
    raise SystemExit(main())
