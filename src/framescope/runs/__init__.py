"""Recorded runs: record a pipeline into a file, compare two runs, report one as a page.

- :func:`record` (or ``Pipeline(record="run.fsrun")``, ``framescope demo
  --record``) writes a run file while the pipeline runs
  (:mod:`framescope.runs.runfile` documents the format);
- :func:`load_run` reads one back (:class:`Run`);
- :func:`compare` compares two, stage by stage, with an interval and a
  verdict per change (:class:`Comparison`; ``framescope compare A B``);
- :func:`write_report` renders a run, or a comparison, as one
  self-contained HTML page (``framescope report RUN``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from framescope._lazy import lazy_names

if TYPE_CHECKING:
    from framescope.runs.compare import (
        Change,
        Comparison,
        FailRule,
        PartComparison,
        compare,
        parse_fail_rules,
    )
    from framescope.runs.recorder import Recording, record
    from framescope.runs.report import write_report
    from framescope.runs.run import Run, RunFormatError, load_run

_LAZY = {
    "Recording": "framescope.runs.recorder",
    "record": "framescope.runs.recorder",
    "Run": "framescope.runs.run",
    "RunFormatError": "framescope.runs.run",
    "load_run": "framescope.runs.run",
    "Change": "framescope.runs.compare",
    "Comparison": "framescope.runs.compare",
    "FailRule": "framescope.runs.compare",
    "PartComparison": "framescope.runs.compare",
    "compare": "framescope.runs.compare",
    "parse_fail_rules": "framescope.runs.compare",
    "write_report": "framescope.runs.report",
}

__all__ = [
    "Change",
    "Comparison",
    "FailRule",
    "PartComparison",
    "Recording",
    "Run",
    "RunFormatError",
    "compare",
    "load_run",
    "parse_fail_rules",
    "record",
    "write_report",
]

__getattr__, __dir__ = lazy_names(__name__, _LAZY, globals())
