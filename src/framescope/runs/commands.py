"""The ``framescope compare`` and ``framescope report`` commands."""

from __future__ import annotations

import argparse
import sys
from typing import Any

__all__ = ["add_commands", "compare_command", "report_command"]


def _fraction(text: str) -> float:
    try:
        value = float(text.rstrip("%")) / (100 if text.endswith("%") else 1)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a fraction or a percentage, got {text!r}"
        ) from None
    return value


def add_commands(commands: Any) -> None:
    """Add ``compare`` and ``report`` to the ``framescope`` command's subcommands."""
    compare = commands.add_parser(
        "compare",
        help="compare two recorded runs stage by stage (and fail a CI job on a regression)",
        description=(
            "Compare two runs recorded with framescope.record (or Pipeline(record=...), "
            "framescope demo --record): per stage and end to end, throughput, a stage's work "
            "per item (cpu: its threads' on-CPU time per item) and processing time "
            "p50/p90/p99/p99.9 with the change and its confidence interval (a block "
            "bootstrap over the runs' intervals), the max, failures, drops, queue depth and "
            "CPU split, and a verdict (a stage's by its work where recorded, else its p50): "
            "slower, faster, or no change detectable. On a shared machine, record the two "
            "versions in turns (record(..., append=True))."
        ),
        epilog=(
            "Exit status: 0, or 1 when a --fail-on rule is broken with confidence (the whole "
            "interval past its limit), 2 for a bad option or a file that is not a run."
        ),
    )
    compare.add_argument("before", metavar="BEFORE", help="the earlier run (.fsrun)")
    compare.add_argument("after", metavar="AFTER", help="the later run (.fsrun)")
    compare.add_argument(
        "--fail-on",
        default="",
        metavar="RULES",
        help="e.g. 'p99>+10%%,throughput<-5%%' (STAGE:p50>+5%% for one stage)",
    )
    compare.add_argument(
        "--format", choices=("table", "markdown", "json"), default="table", help="output format"
    )
    compare.add_argument(
        "--confidence", type=_fraction, default=0.95, help="of each interval (default 0.95)"
    )
    compare.add_argument(
        "--min-change",
        type=_fraction,
        default=0.05,
        help="smallest change called slower or faster (default 5%%)",
    )
    compare.add_argument(
        "--adjust",
        nargs="?",
        const="probe",
        choices=("probe", "stages"),
        help="compare times at equal machine speed: by the runs' machine probe (a Python loop "
        "on the recorder's CPU time) or by the stages' median change (3 stages or more; a "
        "change to every stage reads as the machine); default: as measured (on a noisy "
        "machine, record the two versions in turns: record(..., append=True))",
    )
    report = commands.add_parser(
        "report",
        help="a recorded run (or two, compared) as one self-contained HTML page",
        description="Render a run recorded with framescope.record as an HTML page with plots.",
        epilog="Exit status: 0, 2 for a bad option or a file that is not a run.",
    )
    report.add_argument("run", metavar="RUN", help="the run (.fsrun)")
    report.add_argument("--against", metavar="OTHER", help="an earlier run to compare with")
    report.add_argument("-o", "--output", default="report.html", help="the page to write")
    report.add_argument("--title", help="the page's title (default: the run's label)")


def compare_command(args: Any) -> int:
    """``framescope compare``: print the comparison; 1 when a rule is broken."""
    from framescope.runs.compare import compare, parse_fail_rules  # noqa: PLC0415 - numpy
    from framescope.runs.run import RunFormatError  # noqa: PLC0415

    try:
        rules = parse_fail_rules(args.fail_on)
        comparison = compare(
            args.before,
            args.after,
            confidence=args.confidence,
            min_change=args.min_change,
            adjust=args.adjust or False,
        )
    except (ValueError, RunFormatError, OSError) as error:
        print(f"framescope compare: {error}", file=sys.stderr)
        return 2
    if args.format == "json":
        print(comparison.to_json())
    elif args.format == "markdown":
        print(comparison.markdown())
    else:
        _print_table(comparison)
    try:
        broken = comparison.broken(rules)
    except ValueError as error:
        print(f"framescope compare: {error}", file=sys.stderr)
        return 2
    for line in broken:
        print(f"framescope compare: regression: {line}", file=sys.stderr)
    return 1 if broken else 0


def _print_table(comparison: Any) -> None:
    try:
        import rich  # noqa: PLC0415 - a nicer table where installed
    except ImportError:
        print(comparison)
        return
    if sys.stdout.isatty():
        rich.print(comparison)
    else:
        print(comparison)


def report_command(args: Any) -> int:
    """``framescope report``: write the page; prints where."""
    from framescope.runs.report import write_report  # noqa: PLC0415 - matplotlib
    from framescope.runs.run import RunFormatError  # noqa: PLC0415

    try:
        path = write_report(args.run, args.output, against=args.against, title=args.title)
    except (RunFormatError, OSError) as error:
        print(f"framescope report: {error}", file=sys.stderr)
        return 2
    except ImportError as error:
        print(f"framescope report: {error}", file=sys.stderr)
        return 2
    print(f"framescope report: wrote {path}")
    return 0
