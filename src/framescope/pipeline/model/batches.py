"""A batched stage's batches as data: :class:`BatchSnapshot` in ``StageSnapshot.batch``.

How many batches of each size left the stage, why each left (full, at its
timeout, or flushed), and how long items waited in a forming batch before
its call started (``wait``: time in the batch only; the time an item spent
in the stage's input queue before it joined is not part of it).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from framescope._snapshotformat import Fields, SnapshotFormatError, check_integer
from framescope._views import text
from framescope.pipeline.model.counters import BATCH_REASONS
from framescope.stats import StatsSnapshot
from framescope.statsnapshot import read_stats

__all__ = ["BatchSnapshot"]


@dataclass(frozen=True, slots=True)
class BatchSnapshot:
    """One batched stage's batches, all time.

    Attributes:
        size: the most items a batch holds (``add(batch=...)``).
        timeout_s: how long the oldest item of a forming batch may wait (seconds).
        sizes: how many batches left with each number of items (only sizes seen).
        reasons: how many batches left for each reason of
            :data:`~framescope.pipeline.model.counters.BATCH_REASONS`
            (``full``, ``timeout``, ``flush``).
        wait: seconds each item waited in its forming batch, from joining it
            to the start of the batch's call (p50/p99 over the recent window,
            exact maximum over all time).
    """

    size: int
    timeout_s: float
    sizes: Mapping[int, int] = field(default_factory=dict)
    reasons: Mapping[str, int] = field(default_factory=dict)
    wait: StatsSnapshot = field(default_factory=lambda: StatsSnapshot(window=1))

    @property
    def batches(self) -> int:
        """Batches that left the stage."""
        return sum(self.sizes.values())

    @property
    def items(self) -> int:
        """Items those batches held."""
        return sum(size * count for size, count in self.sizes.items())

    @property
    def mean_size(self) -> float:
        """Items per batch on average (0.0 before the first batch)."""
        batches = self.batches
        return self.items / batches if batches else 0.0

    def __str__(self) -> str:
        """One line: size, timeout, batches by size and reason, the items' wait."""
        return text(self)

    def reason(self, name: str) -> int:
        """Batches that left for ``name`` (a KeyError naming the reasons for another name)."""
        if name not in BATCH_REASONS:
            raise KeyError(f"no batch reason {name!r}; the reasons are: {', '.join(BATCH_REASONS)}")
        return self.reasons.get(name, 0)

    def to_dict(self) -> dict[str, Any]:
        """The batches as a JSON-ready dict (sizes as ``[[size, count], ...]``)."""
        return {
            "size": self.size,
            "timeout_s": self.timeout_s,
            "sizes": [[size, count] for size, count in sorted(self.sizes.items())],
            "reasons": {name: self.reasons.get(name, 0) for name in BATCH_REASONS},
            "wait": self.wait.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], path: str = "batch") -> BatchSnapshot:
        """Rebuild from :meth:`to_dict` output (checked; see SnapshotFormatError)."""
        return read_batch(Fields(data, path))


def read_batch(fields: Fields) -> BatchSnapshot:
    """A :class:`BatchSnapshot` from checked fields (errors name the field's path)."""
    size = fields.integer("size", minimum=1)
    sizes: dict[int, int] = {}
    for index, pair in enumerate(fields.items("sizes", ())):
        at = f"{fields.at('sizes')}[{index}]"
        if not isinstance(pair, (list, tuple)) or len(pair) != 2:
            raise SnapshotFormatError(f"{at}: expected [size, count], got {pair!r}")
        batch_size = check_integer(pair[0], f"{at}[0]", 1)
        if batch_size > size:
            raise SnapshotFormatError(f"{at}[0]: a batch of {batch_size} is over size {size}")
        sizes[batch_size] = check_integer(pair[1], f"{at}[1]")
    reasons_fields = fields.child("reasons", {})
    reasons = {name: reasons_fields.integer(name, 0) for name in BATCH_REASONS}
    return BatchSnapshot(
        size=size,
        timeout_s=fields.number("timeout_s", positive=True),
        sizes=sizes,
        reasons=reasons,
        wait=read_stats(fields.child("wait")),
    )
