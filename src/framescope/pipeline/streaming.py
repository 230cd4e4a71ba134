"""Streams that end: closing a pipeline's input, waiting for it to drain, running a source."""

from __future__ import annotations

import datetime
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from framescope._validation import check_seconds_or_none
from framescope.clock import to_nanoseconds
from framescope.pipeline.results import ResultBuffer
from framescope.pipeline.runtime import Runtime

__all__ = ["StreamControls"]


class StreamControls:
    """The input side of a pipeline facade: the input loop, and streams that end."""

    _runtime: Runtime
    _results: ResultBuffer
    input_generator: Callable[[], Any] | Iterator[Any] | None

    def _ensure_running(self) -> None:
        raise NotImplementedError

    def results(self, timeout: float | None = None) -> Iterator[Any]:
        """Every result in order (implemented by the pipeline)."""
        raise NotImplementedError

    def start_loop(self, period: float | datetime.timedelta = 0.01) -> None:
        """Pull an item from ``input_generator`` every ``period`` and forward it.

        The period is kept on the monotonic clock without drift; a cycle that
        overruns starts the next one at once and is counted (``counters()``).
        A period of 0 feeds as fast as the first stage accepts. When the input
        ends, the pipeline closes itself (see :meth:`close`). When it raises
        (a file that cannot be read, a generator that fails part-way), that is
        the end of the input too: the items already inside are carried
        through, then :meth:`results` and :meth:`join` raise the source's
        exception, and the snapshot's ``source_error`` and the diagnosis say so.
        """
        if self.input_generator is None:
            raise ValueError("start_loop needs the pipeline's input_generator; none was given")
        self._runtime.start_loop(to_nanoseconds(period, "period"), self._produce())

    def stop_loop(self, timeout: float = 5.0) -> bool:
        """Stop the loop started by :meth:`start_loop`; a no-op returning False if none runs.

        Waits up to ``timeout`` seconds (a number >= 0) for it to end.
        """
        seconds = check_seconds_or_none(timeout, "timeout")
        if seconds is None:
            raise TypeError("timeout must be a number of seconds >= 0, got None")
        return self._runtime.stop_loop(seconds)

    def _produce(self) -> Callable[[], Any]:
        source = self.input_generator
        if source is None:
            raise ValueError("no data given and the pipeline has no input_generator")
        return source.__next__ if isinstance(source, Iterator) else source

    def close(self) -> None:
        """No more input: every item already in is carried through all stages.

        Then :meth:`results` iteration ends (it does not wait out its timeout)
        and ``get_results()`` returns the last result. A later ``forward``
        raises :class:`~framescope.pipeline.PipelineClosedError`. Threads keep
        running until :meth:`cleanup`; see :meth:`join` to wait for the end.
        """
        self._runtime.close_input()

    def join(self, timeout: float | None = None) -> bool:
        """Wait until every item given before :meth:`close` is out (or the pipeline stopped).

        Returns False when ``timeout`` seconds (None: no limit) passed first.
        Raises the source's exception when the input ended because its source
        raised (see :meth:`start_loop`), once every item before it is out.
        ``timeout`` is a number of seconds >= 0, or None.
        """
        return self._runtime.join(check_seconds_or_none(timeout, "timeout"))

    def run(self, source: Iterable[Any]) -> Iterator[Any]:
        """Feed ``source`` as fast as the stages accept it, and yield every result in order.

        The one-liner for a file or a finite stream: ``for frame in
        pipeline.run(frames): ...``. Feeding follows the first stage
        (back-pressure, not a timer), and results wait for you (none is
        dropped while you iterate); iteration ends after the last result. A
        serial pipeline runs each item in the calling thread between yields;
        a threaded one is fed by its input-loop thread. A stage error
        (``raise`` policy) is raised in its item's place. When ``source``
        raises, its exception is raised after the results of the items it
        gave before it (and the snapshot and diagnosis say the source failed).
        """
        if not isinstance(source, Iterable):
            raise TypeError(f"source must be an iterable of items, got {type(source).__name__}")
        iterator = iter(source)
        runtime = self._runtime
        self._ensure_running()
        if runtime.tree.mode != "parallel":
            while True:
                try:
                    item = next(iterator)
                except StopIteration:
                    break
                except Exception as error:
                    runtime.source_failed(error)
                    break
                runtime.submit(item, raise_now=False)
                yield from self.results(timeout=0)
            runtime.close_input()
            yield from self.results(timeout=0)
            return
        self._results.set_blocking(True)
        try:
            runtime.start_loop(0, iterator.__next__)
            yield from self.results()
        finally:
            self._results.set_blocking(False)
            runtime.stop_loop(5.0)
