"""The threads of a parallel pipeline: each takes items, runs its stage, passes them on."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from framescope.pipeline.channel import CLOSED, Channel
from framescope.pipeline.events import EventRecorder, NodePhase
from framescope.pipeline.steps import ItemFailedError, Unit

if TYPE_CHECKING:
    from framescope.pipeline.pipeline import Pipeline

__all__ = ["Worker"]


class Worker:
    """One thread of a parallel pipeline: takes envelopes, runs a unit, passes them on."""

    def __init__(
        self,
        owner: Pipeline,
        unit: Unit,
        inbox: Channel,
        outbox: Channel | None,
        label: str,
        *,
        recorder: EventRecorder,
    ) -> None:
        self.label = label
        self.owner = owner
        self.unit = unit
        self.inbox = inbox
        self.outbox = outbox
        self.recorder = recorder
        target = self._run_debug if recorder.enabled else self._run
        self.thread = threading.Thread(target=target, name=f"framescope:{label}", daemon=True)

    def _run(self) -> None:
        get, unit, owner, outbox = self.inbox.get, self.unit, self.owner, self.outbox
        while True:
            envelope = get()
            if envelope is CLOSED:
                return
            if envelope.error is None:  # a failed item passes on, unprocessed, to keep order
                try:
                    envelope = unit(envelope)
                except ItemFailedError as failure:
                    if not owner._handle_failure(failure, raise_now=False):
                        continue
                    envelope.error = failure.error
            if outbox is None:
                owner._deliver(envelope)
            elif not outbox.put(envelope):
                return

    def _run_debug(self) -> None:
        """:meth:`_run` that also records what the node does, for the aggregator.

        Per item it appends one compact record to the node's own list (see
        :data:`~framescope.pipeline.events.IterationRecord`) and keeps its live
        phase in ``recorder.phase``; the aggregator expands records into LOOP,
        INPUT, OUTPUT, INPUT_BLOCK and OUTPUT_BLOCK events when asked.
        """
        get, unit, owner, inbox, outbox = (
            self.inbox.get,
            self.unit,
            self.owner,
            self.inbox,
            self.outbox,
        )
        recorder = self.recorder
        append, now = recorder.append_iteration, owner._clock.monotonic_ns
        getting, processing, sending = (
            NodePhase.GETTING_INPUTS,
            NodePhase.PROCESSING,
            NodePhase.SENDING_OUTPUTS,
        )
        inbox_length = inbox.length_function()
        outbox_length = outbox.length_function() if outbox is not None else int
        sequence = 0
        while True:
            t_get = now()
            recorder.phase = getting
            queued = inbox_length()
            envelope = get()
            t_got = now()
            if envelope is CLOSED:
                recorder.phase = NodePhase.IDLE
                return
            recorder.phase = processing
            frame = recorder.frame_id = envelope.frame_id
            t_in = envelope.t_in
            if envelope.error is None:
                try:
                    envelope = unit(envelope)
                except ItemFailedError as failure:
                    if not owner._handle_failure(failure, raise_now=False):
                        t = now()
                        append((sequence, frame, t_get, queued, t_got, t, None, t, False, t_in))
                        sequence += 1
                        continue
                    envelope.error = failure.error
            t_send = now()
            recorder.phase = sending
            if outbox is None:
                owner._deliver(envelope)
                sent, out_queued = True, None
            else:
                out_queued = outbox_length()
                sent = outbox.put(envelope)
            append((sequence, frame, t_get, queued, t_got, t_send, out_queued, now(), sent, t_in))
            if not sent:
                recorder.phase = NodePhase.IDLE
                return
            sequence += 1
