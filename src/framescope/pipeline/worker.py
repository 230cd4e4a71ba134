"""The threads of a parallel pipeline: each takes items, runs its stage, passes them on."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from framescope.pipeline.channel import CLOSED, Channel
from framescope.pipeline.events import EventRecorder, NodePhase, bind_recorder
from framescope.pipeline.steps import Envelope, ItemFailedError, Step, Unit

if TYPE_CHECKING:
    from framescope.pipeline.pipeline import Pipeline

__all__ = ["Worker"]


class Worker:
    """One thread of a parallel pipeline: takes envelopes, runs a unit, passes them on.

    ``step`` is given when the unit is exactly that one plain stage (no nested
    pipeline); the debugging loop then calls the stage directly.
    """

    def __init__(
        self,
        owner: Pipeline,
        unit: Unit,
        inbox: Channel,
        outbox: Channel | None,
        label: str,
        *,
        recorder: EventRecorder,
        step: Step | None = None,
    ) -> None:
        self.label = label
        self.step = step  # set when the unit is this one plain stage
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

        Per item it adds one compact record to the node's own list (see
        :data:`~framescope.pipeline.events.IterationRecord`) and keeps its live
        phase in ``recorder.phase``; the aggregator expands records into LOOP,
        INPUT, OUTPUT, INPUT_BLOCK and OUTPUT_BLOCK events when asked.

        For a plain stage the loop calls the stage itself and hands its own
        clock readings to the stage's timer, so timing a node costs one clock
        read per phase boundary and no more. The end of one iteration is the
        start of the next.
        """
        unit, owner, inbox, outbox, recorder = (
            self.unit,
            self.owner,
            self.inbox,
            self.outbox,
            self.recorder,
        )
        get, step = inbox.get, self.step
        direct = step.fn if step is not None else None
        watch_record = step.watch.record if step is not None else None
        append, now = recorder.extend_iterations, owner._clock.monotonic_ns
        getting, processing, sending = (
            NodePhase.GETTING_INPUTS,
            NodePhase.PROCESSING,
            NodePhase.SENDING_OUTPUTS,
        )
        inbox_length = inbox.length_function()
        outbox_length = outbox.length_function() if outbox is not None else int
        bind_recorder(recorder)
        sequence, t_get = 0, now()
        while True:
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
                    if direct is None:
                        envelope = unit(envelope)
                    else:
                        envelope.data = direct(envelope.data)
                except Exception as error:
                    if not self._keep_failed(envelope, error):
                        t = now()
                        append((sequence, frame, t_get, queued, t_got, t, None, t, False, t_in))
                        sequence, t_get = sequence + 1, t
                        continue
                t_send = now()
                if watch_record is not None and envelope.error is None:
                    watch_record(t_got, t_send)
            else:
                t_send = now()
            recorder.phase = sending
            if outbox is None:
                owner._deliver(envelope)
                sent, out_queued = True, None
            else:
                out_queued = outbox_length()
                sent = outbox.put(envelope)
            t_sent = now()
            append((sequence, frame, t_get, queued, t_got, t_send, out_queued, t_sent, sent, t_in))
            if not sent:
                recorder.phase = NodePhase.IDLE
                return
            sequence, t_get = sequence + 1, t_sent

    def _keep_failed(self, envelope: Envelope, error: Exception) -> bool:
        """Handle a stage failure in the debugging loop; True to pass the item on, marked."""
        if isinstance(error, ItemFailedError):
            failure = error
        elif self.step is not None:  # the loop called the stage itself
            failure = self.step.failure(envelope.data, error)
            failure.__cause__ = error
        else:
            raise error
        if not self.owner._handle_failure(failure, raise_now=False):
            return False
        envelope.error = failure.error
        return True
