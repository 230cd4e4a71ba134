"""Where a stage's time went, and how busy the machine was: :class:`CpuSplit`, :class:`MachineLoad`.

Plain data, read from and written to JSON (checked field by field); the
runtime's ``CpuAccounting`` (``runtime/cpu.py``) measures them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from framescope._snapshotformat import Fields, SnapshotFormatError

__all__ = ["CpuSplit", "MachineLoad"]


@dataclass(frozen=True, slots=True)
class CpuSplit:
    """Where a stage's (or replica's) time went over the recent window.

    Shares are of the window's wall time per thread (for a stage on several
    replicas, the average of those that were read; ``threads`` says how
    many): ``busy`` inside the stage's calls (0 to 1), ``on_cpu`` running on
    a CPU, ``waiting`` runnable but waiting for a CPU, ``blocked`` the rest
    of the busy time (sleeping: I/O, a lock, the interpreter lock). On-CPU
    and waiting cover the thread's whole time (its queue handling too); a
    process replica's cover its worker process, whose threads may keep more
    than one core busy (``on_cpu`` above 1). ``waiting`` and ``blocked`` are
    None where the system reports only CPU time. The ``*_s`` fields are
    all-time seconds, summed over the threads (blocked seconds only ever
    grow: a call's busy time arrives when it ends); ``series`` holds
    ``(taken_ns, on_cpu, waiting, blocked)`` per reading in the window.
    """

    window_s: float
    threads: int
    busy: float
    on_cpu: float
    waiting: float | None
    blocked: float | None
    on_cpu_s: float
    waiting_s: float | None
    blocked_s: float | None
    series: tuple[tuple[int, float, float | None, float | None], ...] = ()

    def share_of_busy(self, part: float | None) -> float | None:
        """``part`` (one of the shares) as a share of the busy time (None without busy time)."""
        if part is None or self.busy <= 0:
            return None
        return min(1.0, part / self.busy)

    @property
    def cores_on_cpu(self) -> float:
        """The cores its threads kept running, together, over the window."""
        return self.on_cpu * self.threads

    def to_dict(self) -> dict[str, Any]:
        """The split as a JSON-ready dict; :meth:`from_dict` reads it back."""
        return {
            "window_s": self.window_s,
            "threads": self.threads,
            "busy": self.busy,
            "on_cpu": self.on_cpu,
            "waiting": self.waiting,
            "blocked": self.blocked,
            "on_cpu_s": self.on_cpu_s,
            "waiting_s": self.waiting_s,
            "blocked_s": self.blocked_s,
            "series": [list(point) for point in self.series],
        }

    @classmethod
    def from_dict(cls, data: Any, path: str = "cpu") -> CpuSplit:
        """Rebuild a split from :meth:`to_dict` output (a SnapshotFormatError names a bad field)."""
        fields = Fields(data, path)
        shares = {
            "busy": _share(fields, "busy"),
            "on_cpu": _seconds(fields, "on_cpu", or_none=False),  # cores: a process may use more
            "waiting": _seconds(fields, "waiting"),
            "blocked": _share(fields, "blocked", or_none=True),
        }
        seconds = {name: _seconds(fields, name) for name in ("waiting_s", "blocked_s")}
        return cls(
            window_s=_seconds(fields, "window_s", or_none=False),
            threads=fields.integer("threads", minimum=1),
            on_cpu_s=_seconds(fields, "on_cpu_s", or_none=False),
            series=_read_series(fields),
            **shares,
            **seconds,
        )


@dataclass(frozen=True, slots=True)
class MachineLoad:
    """How busy the whole machine was over the recent window (every process, not only this one).

    ``cpu_busy`` is the share of all cores' time spent running anything
    (None where unknown); ``load1`` the one-minute load average;
    ``process_cores`` the cores this process kept busy.
    """

    cores: int | None
    window_s: float
    cpu_busy: float | None
    load1: float | None
    process_cores: float | None

    def to_dict(self) -> dict[str, Any]:
        """The load as a JSON-ready dict; :meth:`from_dict` reads it back."""
        return {
            "cores": self.cores,
            "window_s": self.window_s,
            "cpu_busy": self.cpu_busy,
            "load1": self.load1,
            "process_cores": self.process_cores,
        }

    @classmethod
    def from_dict(cls, data: Any, path: str = "machine") -> MachineLoad:
        """Rebuild a load from :meth:`to_dict` output (a SnapshotFormatError names a bad field)."""
        fields = Fields(data, path)
        return cls(
            cores=fields.integer("cores", None, minimum=1, or_none=True),
            window_s=_seconds(fields, "window_s", or_none=False),
            cpu_busy=_share(fields, "cpu_busy", or_none=True),
            load1=_seconds(fields, "load1"),
            process_cores=_seconds(fields, "process_cores"),
        )

    @property
    def idle_cores(self) -> float | None:
        """Cores nothing ran on, on average over the window (None where unknown)."""
        if self.cores is None or self.cpu_busy is None:
            return None
        return max(0.0, self.cores * (1.0 - self.cpu_busy))


def _share(fields: Fields, name: str, *, or_none: bool = False) -> Any:
    value = fields.number(name, None, or_none=True) if or_none else fields.number(name)
    if value is not None and not 0.0 <= value <= 1.0:
        raise fields.fail(name, "a share from 0 to 1", value)
    return value


def _seconds(fields: Fields, name: str, *, or_none: bool = True) -> Any:
    value = fields.number(name, None, or_none=True) if or_none else fields.number(name)
    if value is not None and value < 0:
        raise fields.fail(name, "a number >= 0", value)
    return value


_SERIES_FIELDS = ("taken_ns", "on_cpu", "waiting", "blocked")


def _read_series(fields: Fields) -> tuple[tuple[int, float, float | None, float | None], ...]:
    series = []
    for index, point in enumerate(fields.items("series", ())):
        at = f"{fields.at('series')}[{index}]"
        if not isinstance(point, (list, tuple)) or len(point) != 4:
            raise SnapshotFormatError(f"{at}: expected [taken_ns, on_cpu, waiting, blocked]")
        values = Fields(dict(zip(_SERIES_FIELDS, point, strict=True)), at)
        series.append(
            (
                values.integer("taken_ns"),
                _seconds(values, "on_cpu", or_none=False),
                _seconds(values, "waiting"),
                _share(values, "blocked", or_none=True),
            )
        )
    return tuple(series)
