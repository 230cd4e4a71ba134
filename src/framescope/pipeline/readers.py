"""What a pipeline tells about itself, each computed from one :meth:`snapshot`.

:class:`SnapshotReaders` holds the PyStream and DepthAI read calls
(``get_profiles``, ``get_pipeline_state``, ``diagnose`` ...). Each takes one
snapshot and renders it, so every reader shows the numbers of one instant.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from framescope.pipeline.diagnosis import Diagnosis, diagnose_snapshot
from framescope.pipeline.query import PipelineStateQuery
from framescope.pipeline.runtime import Runtime
from framescope.pipeline.snapshot import PipelineSnapshot
from framescope.pipeline.tree import StageTree
from framescope.stats import StatsSnapshot
from framescope.trace import FrameTrace, chrome_trace, write_trace

__all__ = ["SnapshotReaders"]


class SnapshotReaders:
    """The read calls of a pipeline, on top of its :meth:`snapshot`."""

    name: str
    debug: bool
    _tree: StageTree
    _runtime: Runtime

    def snapshot(self) -> PipelineSnapshot:
        """Read every number at one instant (implemented by the pipeline)."""
        raise NotImplementedError

    def get_pipeline_state(self) -> PipelineStateQuery:
        """Every node's live state, to query: ``.nodes()``, ``.nodes(id).inputs("in")`` ...

        Node ids are the profile keys. With debugging on (``debug=True`` or
        ``FRAMESCOPE_DEBUG=1``) the state is current, aggregated from the
        nodes' events; before the pipeline starts every node is IDLE with
        invalid timings. With debugging off only the main loop timings (from
        the profiles) are filled in.
        """
        return PipelineStateQuery(self.snapshot().state)

    def frame_traces(self) -> list[FrameTrace]:
        """The sampled per-frame traces kept so far (needs debugging on), oldest first.

        Each tells, per stage, how long the frame waited in the queue and was
        processed, and its end-to-end latency.
        """
        return list(self._traced_snapshot("frame_traces").traces)

    def export_trace(self, path: str | os.PathLike[str], *, overwrite: bool = False) -> Path:
        """Write the sampled frame traces as Chrome Trace Event JSON (opens in Perfetto).

        One track per stage thread with a slice per stage call and custom
        blocks nested inside, flow arrows following each frame across the
        stages, a track of whole frames, and counter tracks for queue depth,
        fps and each stage's (and replica's) recent time on a CPU, waiting for
        one and blocked (``"<stage> cpu"``, in percent). The file is
        gzip-compressed when ``path`` ends in ``.gz``. It is written whole or
        not at all; an existing file at ``path`` is replaced only with
        ``overwrite=True`` (otherwise ``FileExistsError``).
        """
        if not isinstance(overwrite, bool):
            raise TypeError(f"overwrite must be True or False, got {type(overwrite).__name__}")
        if not overwrite and os.path.lexists(path):
            raise FileExistsError(
                f"path: {os.fspath(path)!r} exists; pass overwrite=True to replace it"
            )
        snapshot = self._traced_snapshot("export_trace")
        cpu = {stage.key: stage.cpu.series for stage in snapshot.stages if stage.cpu is not None}
        document = chrome_trace(snapshot.traces, snapshot.node_ids, title=self.name, cpu=cpu)
        return write_trace(path, document)

    def _traced_snapshot(self, what: str) -> PipelineSnapshot:
        if not self.debug:
            raise RuntimeError(
                f"{what} needs debugging on: Pipeline(debug=True) or FRAMESCOPE_DEBUG=1"
            )
        snapshot = self.snapshot()
        if not snapshot.debug:
            raise RuntimeError(f"{what}: pipeline {self.name!r} has not started yet")
        return snapshot

    def serve(self, port: int = 0, host: str = "127.0.0.1", **options: Any) -> Any:
        """Show this pipeline live in a browser: a started :class:`~framescope.live.LiveView`.

        ``view.url`` is the address to open; ``view.close()`` stops it.
        ``options`` go to LiveView (``token``, ``refresh``, ...).
        """
        from framescope.live.server import LiveView  # noqa: PLC0415 - the view renders pipelines

        return LiveView(self, host=host, port=port, **options).start()

    def tap(self, stage: str, callback: Callable[[Any], None]) -> None:
        """Call ``callback(result)`` with every result of ``stage``, in the stage's own thread.

        For quick looks at the items (a live preview keeps a reference): the
        callback runs inside the stage's time, and an exception from it fails
        the item as the stage's would. ``stage`` is a stage name or profile
        key; taps are set before the pipeline starts.
        """
        if self._runtime.running:
            raise RuntimeError(f"tap: pipeline {self.name!r} is running; tap before it starts")
        self._tree.tap(stage, callback)

    def diagnose(self, *, baseline: PipelineSnapshot | None = None) -> Diagnosis:
        """What holds the pipeline back, and why (``str()`` is a report).

        One verdict with its evidence: ``source failed`` (the source raised;
        the input ended there), ``stalled`` (no item out for 5 s while
        items are inside), ``failing``, ``dropping`` (by policy, or results
        nobody read), ``stage-bound`` (a stage busy nearly all the time,
        with a suggestion where the numbers support one), ``source-bound``
        (the pipeline keeps up, with its headroom) or ``not enough data``.
        Busy is processing time over wall time in the recent window; where
        the scheduler's accounting was read, the pace-setting stage is also
        compute-bound, CPU-starved or blocked, and replicas are suggested
        only where the whole machine has idle cores. It also gives
        end-to-end latency p50/p90/p99 and every loss counted.

        ``baseline``: a snapshot of an earlier run of the same stages (e.g.
        with fewer replicas): a replicated stage's gain is then also given as
        measured, its rate now against its rate then.
        """
        return diagnose_snapshot(self.snapshot(), baseline=baseline)

    def statistics(self) -> dict[str, StatsSnapshot]:
        """Return the timing statistics of the pipeline and of every stage, by profile key.

        The pipeline's entry is end-to-end latency (``forward`` to result); a
        stage's entry is its processing latency; a nested pipeline's entry spans
        its stages. Each snapshot's ``rate()`` is the throughput.
        """
        return self.snapshot().statistics()

    def get_profiles(self) -> tuple[dict[str, float], dict[str, float]]:
        """Return ``(latency_s, throughput_per_s)``, two dicts keyed like ``MainPipeline__Stage1``.

        Latency is the mean over the recent window in seconds; throughput is
        items per second over the same window, (n-1)/(t_last-t_first).
        """
        return self.snapshot().get_profiles()

    def counters(self) -> dict[str, int]:
        """Counts of what happened to items, including every drop and failure.

        ``forwarded`` items accepted, ``completed`` results, ``failed`` stage
        errors, ``dropped_oldest`` queued items dropped for newer ones
        (``drop_oldest``), ``discarded`` items still inside at cleanup, and
        ``in_flight`` the items inside now. Every accepted item is in exactly
        one of these: ``forwarded == completed + failed + dropped_oldest +
        discarded + in_flight`` at every instant and after shutdown.

        Items ``forward`` did not accept (it returned False): ``rejected`` by
        a full queue (``block``) and ``dropped_newest`` (``drop_newest``);
        ``dropped`` is both drop policies together. An item a waiting
        ``forward`` gave up on because the pipeline stopped raised an error to
        its caller and is not counted. Parts of the outcomes above:
        ``results_dropped`` results lost because nobody read them (past
        ``results_size`` or ``results_bytes``), ``results_not_kept`` results
        let go at once because ``results_size=0``, ``results_held_bytes`` the
        bytes of the results waiting now (a gauge, not a count),
        ``results_skipped`` results passed over by :meth:`get_results`,
        ``errors_dropped`` stage errors nobody read (only when nothing but
        errors waited). And ``loop_overruns``/``loop_errors`` of the input loop,
        ``source_errors`` (1 when the source raised and the input ended there;
        the snapshot's ``source_error`` says why),
        ``blocks_folded``: CUSTOM blocks timed as ``other`` past the
        ``block_names`` bound; for replicated stages, ``replica_restarts``
        (workers started again after they died), ``replica_recycles`` (workers
        replaced at ``ProcessExecutor``'s ``max_items``/``max_memory``) and ``reorder_waits`` (times
        a replica waited for a slow item at the head of the line).
        ``framescope.pipeline.accounting.COUNTERS`` lists them all, and
        ``snapshot.count(name)`` reads one (a misspelt name is a KeyError).
        """
        return dict(self.snapshot().counters)

    def stage_failures(self) -> dict[str, int]:
        """How many items each stage failed on, by profile key."""
        return {stage.key: stage.failures for stage in self.snapshot().stages}
