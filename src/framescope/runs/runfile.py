"""The ``.fsrun`` file: a recorded run, one compressed JSON record after another.

A run file is a sequence of gzip members, each holding one or more records,
one JSON object a line (so ``zcat run.fsrun`` shows it, and any gzip reader
reads it whole). The recorder appends a member per interval and flushes it:
a process that dies leaves every interval written so far readable, and a
member cut short by the crash is skipped (:attr:`RunFile.torn`). Records:

- ``{"kind": "header", ...}``, first: the format (``"format":
  "framescope-run"``, ``"version": 1``), framescope's and Python's versions,
  the host (cores, load average), the pipeline's name, structure and
  settings, the label, the interval, when it started (wall clock, UTC).
- ``{"kind": "interval", ...}``, one per interval: ``t`` (seconds since the
  start, the interval's end), ``span`` (seconds it covers; older intervals
  merged two by two cover more), ``probe_ns`` and ``probe_cpu_ns`` (the
  machine probe: how long a fixed piece of Python work took, wall and on
  its thread's CPU, see ``framescope.runs.recorder``), the pipeline's items
  completed, failed and dropped in it and its end-to-end latency samples
  (ns), and per stage (by profile key) its items, failures,
  processing-time samples (ns), queue depth, the CPU split of its thread
  (shares of its recent window) and ``on_cpu_s``, the seconds its threads
  ran on a CPU in this interval (where the system tells).
- ``{"kind": "end", ...}``, when the recording closes: the final
  snapshot (``PipelineSnapshot.to_dict()``, frame traces included).
- ``{"kind": "segment", ...}``: a later recording appended to the run
  (``record(..., append=True)``), described as the header describes the
  first, with ``t``, the run's time where it starts; its intervals and end
  follow it, their ``t`` going on from there.

A file stays bounded on runs of days: past ``max_intervals`` records the
oldest half is merged two by two (spans add, counts add, samples are
thinned to the per-interval bound), written to a new file that replaces the
old one in one rename, so a crash while compacting leaves the old file.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["FORMAT", "VERSION", "RunFile", "existing_run", "merge_intervals", "read_records"]

FORMAT = "framescope-run"
"""The ``format`` field of every run file's header."""

VERSION = 1
"""The version of the format this framescope writes and reads."""

_KEPT_ENDS = 8  # superseded end records a run appended to keeps before they are dropped


def read_records(path: str | os.PathLike[str]) -> tuple[list[dict[str, Any]], bool]:
    """Every record of the file at ``path``, and whether its last member was cut short."""
    data = Path(path).read_bytes()
    records: list[dict[str, Any]] = []
    torn = False
    while data:
        decompressor = zlib.decompressobj(wbits=31)  # one gzip member
        try:
            text = decompressor.decompress(data)
        except zlib.error:
            torn = True
            break
        if not decompressor.eof:
            torn = True  # the writer died inside this member
            break
        data = decompressor.unused_data
        for line in text.decode("utf-8").splitlines():
            if line.strip():
                records.append(json.loads(line))
    return records, torn


def _member(records: Any) -> bytes:
    """``records`` as one gzip member of JSON lines."""
    text = "".join(json.dumps(record, separators=(",", ":")) + "\n" for record in records)
    return gzip.compress(text.encode("utf-8"), compresslevel=6, mtime=0)


def merge_intervals(first: dict[str, Any], second: dict[str, Any], keep: int) -> dict[str, Any]:
    """Two consecutive intervals as one: spans and counts add, samples thinned to ``keep``."""
    merged = {
        "kind": "interval",
        "t": second["t"],
        "span": first["span"] + second["span"],
        "probe_ns": _mean(first.get("probe_ns"), second.get("probe_ns")),
        "probe_cpu_ns": _mean(first.get("probe_cpu_ns"), second.get("probe_cpu_ns")),
        "wall": second.get("wall"),
        "pipeline": _merged_part(first["pipeline"], second["pipeline"], keep),
        "stages": {},
    }
    stages: dict[str, Any] = merged["stages"]
    for key in {**first["stages"], **second["stages"]}:
        one, two = first["stages"].get(key), second["stages"].get(key)
        stages[key] = _merged_part(one or {}, two or {}, keep) if one and two else one or two
    return merged


def _mean(one: int | None, two: int | None) -> int | None:
    known = [value for value in (one, two) if value is not None]
    return round(sum(known) / len(known)) if known else None


def _merged_part(one: dict[str, Any], two: dict[str, Any], keep: int) -> dict[str, Any]:
    part: dict[str, Any] = dict(two)  # gauges (queue depth, CPU shares): the later reading
    for name in ("count", "completed", "failed", "dropped", "failures"):
        if name in one or name in two:
            part[name] = one.get(name, 0) + two.get(name, 0)
    if "on_cpu_s" in one and "on_cpu_s" in two:
        part["on_cpu_s"] = one["on_cpu_s"] + two["on_cpu_s"]
    else:  # a part of the span unmeasured: no work per item for the whole
        part.pop("on_cpu_s", None)
    samples = one.get("samples_ns", []) + two.get("samples_ns", [])
    if len(samples) > keep:
        step = len(samples) / keep
        samples = [samples[int(i * step)] for i in range(keep)]
    part["samples_ns"] = samples
    return part


@dataclass
class RunFile:
    """A run file being written: a member per record batch, flushed, compacted when long.

    Args:
        path: where to write (made anew, an existing file replaced; or appended to, see
            :meth:`open`).
        header: the header record (``kind`` is set to ``header``).
        max_intervals: interval records kept before the oldest half is merged.
        keep_samples: samples kept per stage and interval when intervals merge.
    """

    path: Path
    header: dict[str, Any]
    max_intervals: int = 3600
    keep_samples: int = 256
    intervals: int = 0
    compactions: int = 0
    torn: bool = False
    offset_s: float = 0.0
    """Where this recording's time starts in the file: the last interval's ``t`` before it."""
    _file: io.BufferedWriter | None = field(default=None, repr=False)

    def open(self, *, append: bool = False) -> None:
        """Create the file and write the header; ``append``: add a segment to the run there.

        Appending to a file that is empty or absent starts it; one that is not
        a run raises ValueError; one cut short by a crash loses its torn end.
        """
        self.path.parent.mkdir(parents=True, exist_ok=True)
        records, torn = existing_run(self.path) if append else ([], False)
        if not records:
            self._file = open(self.path, "wb")  # noqa: SIM115 - kept open while recording
            self.write({**self.header, "kind": "header"})
            return
        ends = sum(record.get("kind") == "end" for record in records)
        # Appended members after a torn one would never be read; and each recording's end
        # (its final snapshot, traces and all) is superseded by the next one's.
        if torn or ends > _KEPT_ENDS:
            records = _without_superseded_ends(records)
            _rewrite(self.path, records)
        intervals = list(iter_intervals(records))
        self.intervals = len(intervals)
        self.offset_s = float(intervals[-1]["t"]) if intervals else 0.0
        segment = {**self.header, "kind": "segment", "t": self.offset_s}
        self.header = records[0]  # the run's: what a compaction writes first
        self._file = open(self.path, "ab")  # noqa: SIM115 - kept open while recording
        self.write(segment)

    def write(self, *records: dict[str, Any]) -> None:
        """Append ``records`` as one gzip member, and flush it to the file."""
        if self._file is None:
            raise ValueError(f"the run file {str(self.path)!r} is closed")
        self._file.write(_member(records))
        self._file.flush()
        self.intervals += sum(record.get("kind") == "interval" for record in records)
        if self.intervals > self.max_intervals:
            self._compact()

    def close(self, *records: dict[str, Any]) -> None:
        """Write ``records`` (the end), flush to disk and close."""
        if self._file is None:
            return
        if records:
            self.write(*records)
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()
        self._file = None

    def _compact(self) -> None:
        """Merge the oldest half of the intervals two by two, in a new file renamed over this.

        Pairs are merged across the start of an appended recording too (its
        segment record follows the pair), so turns shorter than two intervals
        still shrink the file; an end superseded by a later one is dropped.
        """
        assert self._file is not None
        self._file.close()
        records, _ = read_records(self.path)
        half = self.intervals // 2 - self.intervals // 2 % 2
        kept: list[dict[str, Any]] = []
        held: dict[str, Any] | None = None  # an interval waiting for the next to merge with
        pending: list[dict[str, Any]] = []  # records that came between the two
        seen = 0
        for record in _without_superseded_ends(records)[1:]:
            if record.get("kind") == "interval" and seen < half:
                seen += 1
                if held is None:
                    held = record
                    continue
                kept.append(merge_intervals(held, record, self.keep_samples))
                kept.extend(pending)
                held, pending = None, []
            elif held is not None:
                pending.append(record)
            else:
                kept.append(record)
        kept.extend([held] if held is not None else [])
        kept.extend(pending)
        _rewrite(self.path, [{**self.header, "kind": "header"}, *kept])
        self.intervals = sum(record.get("kind") == "interval" for record in kept)
        self.compactions += 1
        self._file = open(self.path, "ab")  # noqa: SIM115 - kept open while recording


def _without_superseded_ends(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``records`` less every end record but the last (earlier recordings' final snapshots)."""
    ends = [i for i, record in enumerate(records) if record.get("kind") == "end"]
    superseded = set(ends[:-1])
    return [record for i, record in enumerate(records) if i not in superseded]


def _rewrite(path: Path, records: list[dict[str, Any]]) -> None:
    """``records`` as the whole file, written beside it and renamed over it."""
    spare = path.with_name(path.name + ".compacting")
    with open(spare, "wb") as out:
        out.write(_member(records[:1]))
        if records[1:]:
            out.write(_member(records[1:]))
        out.flush()
        os.fsync(out.fileno())
    os.replace(spare, path)


def existing_run(path: Path) -> tuple[list[dict[str, Any]], bool]:
    """The records of the run at ``path`` to append to, and whether it was cut short.

    ``[]`` for no file, or an empty one.

    ValueError when the file holds something else (or another format version).
    """
    try:
        if path.stat().st_size == 0:
            return [], False
        records, torn = read_records(path)
    except FileNotFoundError:
        return [], False
    except ValueError as error:  # what cannot be read as JSON records (OSError: as it is)
        raise ValueError(f"append: {str(path)!r} is not a framescope run: {error}") from error
    first = records[0] if records else {}
    if first.get("kind") != "header" or first.get("format") != FORMAT:
        raise ValueError(f"append: {str(path)!r} is not a framescope run (no run header)")
    if first.get("version") != VERSION:
        raise ValueError(
            f"append: {str(path)!r} is a run of format version {first.get('version')!r}; "
            f"this framescope appends to version {VERSION}"
        )
    return records, torn


def iter_intervals(records: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """The interval records, oldest first."""
    return (record for record in records if record.get("kind") == "interval")
