"""The pipeline's counters: their names, what each counts, and the invariant they keep.

Every item a pipeline accepts ends in exactly one outcome, so at every
instant and after shutdown::

    forwarded == completed + failed + dropped_oldest + discarded + in_flight

``completed`` items may since have been dropped unread from the results
(``results_dropped``, a part of ``completed``) or not kept at all
(``results_not_kept``, with ``results_size=0``) and failed items' errors may
have been dropped unread (``errors_dropped``, a part of ``failed``). Items
that ``forward`` did not accept (it returned False: ``rejected`` by a full
queue, or ``dropped_newest``) never entered; an item a blocked ``forward``
gave up on because the pipeline stopped was refused with an exception and is
not counted at all.
"""

from __future__ import annotations

__all__ = ["BATCH_REASONS", "COUNTERS", "DROP_REASONS", "OUTCOMES", "check_counter"]

#: Every pipeline counter and what it counts: the one home of their names
#: (``Pipeline.counters()`` has exactly these keys).
COUNTERS: dict[str, str] = {
    "forwarded": "items forward() accepted",
    "completed": "items every stage processed (their results delivered)",
    "failed": "items a stage failed on",
    "rejected": "items forward() refused: the input queue was full (block policy)",
    "dropped_oldest": "queued items dropped for newer ones (drop_oldest)",
    "dropped_newest": "new items dropped: the input queue was full (drop_newest)",
    "dropped": "dropped_oldest and dropped_newest together",
    "discarded": "items still inside when the pipeline stopped",
    "in_flight": "items inside the pipeline now",
    "replica_restarts": "replica workers started again after they died",
    "replica_recycles": "process replica workers replaced at max_items or max_memory",
    "reorder_waits": "times a replica waited for a slow item at the head of the line",
    "blocks_folded": "CUSTOM blocks timed as 'other' past the block_names bound",
    "results_dropped": "results dropped unread (past results_size or results_bytes)",
    "results_not_kept": "results let go at once (results_size=0)",
    "results_held_bytes": "bytes of the results waiting now (a gauge)",
    "results_skipped": "results get_results() passed over for a newer one",
    "errors_dropped": "stage errors dropped unread",
    "loop_overruns": "input-loop periods that started late",
    "loop_errors": "input-loop calls that raised",
    "source_errors": "1 when the source raised and the input ended there",
}

#: The counters an accepted item ends in (besides ``in_flight``).
OUTCOMES = ("completed", "failed", "dropped_oldest", "discarded")


def check_counter(name: str) -> str:
    """``name`` if it is a pipeline counter; a KeyError naming the counters there are."""
    if name not in COUNTERS:
        known = ", ".join(COUNTERS)
        raise KeyError(f"no pipeline counter {name!r}; the counters are: {known}")
    return name


#: Pipeline counters that count lost items, and the reason each stands for.
DROP_REASONS: dict[str, str] = {
    "rejected": "queue_full",
    "dropped": "overflow",
    "results_dropped": "result_unread",
    "discarded": "cleanup",
}


#: Why a batched stage's batch left, and what each reason counts (the one home of
#: their names: ``BatchSnapshot.reasons``, the tables and the exporters use these).
BATCH_REASONS: dict[str, str] = {
    "full": "batches that left full (batch items taken)",
    "timeout": "batches that left when their oldest item had waited batch_timeout",
    "flush": "batches that left at once, part full: the input ended or no more could be taken",
}
