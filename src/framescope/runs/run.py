"""A recorded run, read back: its header, its intervals and its final snapshot."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from framescope.pipeline.model.snapshot import PipelineSnapshot
from framescope.runs.runfile import FORMAT, VERSION, read_records

__all__ = ["Run", "RunFormatError", "load_run"]

PIPELINE = "pipeline"
"""The key of the end-to-end figures among a run's parts (stages are keyed by profile key)."""


class RunFormatError(ValueError):
    """A file that is not a framescope run (or a version this framescope cannot read)."""


@dataclass(frozen=True)
class Run:
    """A run read from a ``.fsrun`` file (see :func:`load_run`).

    Attributes:
        path: where it was read from.
        header: what describes it: versions, host, pipeline, label, settings.
        intervals: the interval records, oldest first.
        end: the final snapshot of its last recording (None when that one did not close:
            a crash).
        torn: whether the file ended in the middle of a record (the rest was read).
        segments: the recordings appended to it (``record(..., append=True)``), each
            described as a header is, with ``t``, where its intervals start; the
            first recording is the header itself.
    """

    path: Path
    header: dict[str, Any]
    intervals: tuple[dict[str, Any], ...]
    end: PipelineSnapshot | None = None
    torn: bool = False
    segments: tuple[dict[str, Any], ...] = ()
    _parts: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    def __repr__(self) -> str:
        return (
            f"Run({str(self.path)!r}, label={self.label!r}, intervals={len(self.intervals)}, "
            f"seconds={self.seconds:.1f}, segments={len(self.segments)}, torn={self.torn})"
        )

    @property
    def label(self) -> str:
        """The run's label, else its file's name."""
        label = self.header.get("label")
        return str(label) if label else self.path.name

    @property
    def stage_keys(self) -> tuple[str, ...]:
        """The working stages' profile keys, in pipeline order."""
        return tuple(s["key"] for s in self.header.get("stages", ()) if s.get("working", True))

    @property
    def seconds(self) -> float:
        """The time its intervals cover."""
        return float(sum(i["span"] for i in self.intervals))

    def part(self, key: str) -> list[dict[str, Any]]:
        """Each interval's figures of stage ``key`` (or of the whole pipeline: ``"pipeline"``)."""
        if key == PIPELINE:
            return [i["pipeline"] for i in self.intervals]
        return [i["stages"].get(key, {}) for i in self.intervals]

    def spans(self) -> list[float]:
        """Each interval's length in seconds."""
        return [float(i["span"]) for i in self.intervals]


def load_run(path: str | os.PathLike[str]) -> Run:
    """Read the run file at ``path`` (a file cut short by a crash is read up to the cut).

    Raises :class:`RunFormatError` when it is not a framescope run.
    """
    where = Path(path)
    try:
        records, torn = read_records(where)
    except FileNotFoundError as error:
        raise RunFormatError(f"no run file {str(where)!r}: {error.strerror}") from error
    except (OSError, ValueError) as error:
        raise RunFormatError(f"{str(where)!r} is not a framescope run: {error}") from error
    if not records or records[0].get("kind") != "header" or records[0].get("format") != FORMAT:
        raise RunFormatError(f"{str(where)!r} is not a framescope run (no run header)")
    header = records[0]
    if header.get("version") != VERSION:
        raise RunFormatError(
            f"{str(where)!r} is a run of format version {header.get('version')!r}; "
            f"this framescope reads version {VERSION}"
        )
    intervals = tuple(r for r in records if r.get("kind") == "interval" and r.get("span", 0) > 0)
    # The last recording's end: None when it did not close (an earlier turn's is not its).
    last = next((r for r in reversed(records) if r.get("kind") in ("end", "segment")), None)
    end = last if last is not None and last.get("kind") == "end" else None
    snapshot = None if end is None else PipelineSnapshot.from_dict(end["snapshot"])
    segments = tuple(r for r in records if r.get("kind") == "segment")
    return Run(where, header, intervals, snapshot, torn, segments)
