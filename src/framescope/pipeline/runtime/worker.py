"""The threads of a threaded pipeline: each takes items, runs its unit, passes them on."""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Callable
from typing import Any

from framescope.clock import Clock
from framescope.pipeline.debug.recorder import EventRecorder
from framescope.pipeline.model.events import NO_QUEUE, NodePhase, pack_iteration
from framescope.pipeline.runtime.channel import CLOSED, END, Channel
from framescope.pipeline.runtime.item import SETTLE_EVERY, Envelope, PlainStage, Process
from framescope.running import bind_recorder

logger = logging.getLogger(__name__)

__all__ = ["Worker", "is_sending"]


class Worker:
    """One thread of a threaded pipeline: takes envelopes, processes them, sends them on.

    It is given only the callables it needs: ``process`` (the per-item
    protocol, see :func:`~framescope.pipeline.runtime.item.item_processor`, given the
    reading taken when the item arrived) and
    ``send`` (put into the next queue, or deliver the result; False when the
    pipeline stopped taking items). With the recorder enabled it also
    records each iteration for the aggregator: one flat
    :class:`~framescope.pipeline.model.events.IterationRecord` per item, and the
    node's live phase in ``recorder.phase``.

    Args:
        label: the node id (profile key) of the unit it runs.
        process: runs the unit on an envelope from a start reading; returns the end
            reading, or None when the item ends here.
        inbox: the queue it takes items from.
        send: hands a processed envelope on.
        end: called when the end of the input arrives (after every item before it).
        crash: called with a BaseException that escaped the stage (the thread then ends).
        outbox_length: the length of the queue ``send`` puts into (None: it delivers).
        recorder: the node's event recorder.
        clock: the pipeline's clock.
        get: takes the next item (default: ``inbox.get``; a replica takes through its
            stage's :class:`~framescope.pipeline.runtime.sequencer.Sequencer`).
        skip: told of an item that ended in this stage (a replica's sequencer).
        stop_line: a one-element list holding the frame id of the last item to
            run (a stage stopped the pipeline on it); a later one is discarded,
            counted, when taken. Shared with the runtime, which lowers it.
        on_exit: called once in the thread as it ends (before it passes the
            END on): the CPU accounting's last reading of it.
        plain: the one plain stage ``process`` runs, when it is that: without
            the recorder the thread then calls it in its own loop (the same
            protocol, fewer Python calls an item).
    """

    def __init__(
        self,
        label: str,
        process: Process,
        inbox: Channel,
        send: Callable[[Envelope], bool],
        *,
        end: Callable[[], object],
        crash: Callable[[BaseException], object],
        outbox_length: Callable[[], int] | None,
        recorder: EventRecorder,
        clock: Clock,
        get: Callable[[], Any] | None = None,
        skip: Callable[[Envelope], None] | None = None,
        stop_line: list[int] | None = None,
        on_exit: Callable[[], object] | None = None,
        plain: PlainStage | None = None,
    ) -> None:
        self.label = label
        self.inbox = inbox
        self._get = inbox.get if get is None else get
        self._skip = _nothing if skip is None else skip
        self.recorder = recorder
        self._process = process
        self._send = send
        self._end = end
        self._crash = crash
        self._outbox_length = outbox_length
        self._now = clock.monotonic_ns
        self._stop_line = [sys.maxsize] if stop_line is None else stop_line
        self.discarded = 0  # items it held when the next queue closed (not failed ones)
        self._on_exit = on_exit
        self._plain = plain
        # A daemon thread: a user stage that never returns must not keep the
        # process alive at exit. cleanup() joins it with a bound and reports it.
        self.thread = threading.Thread(target=self._run, name=f"framescope:{label}", daemon=True)

    def _run(self) -> None:
        recorder, recording = self.recorder, self.recorder.enabled
        if recording:
            bind_recorder(recorder)
        try:
            held = self._loop(recording)
            if held is not None:  # the loop ends here only when it could not send
                self._lost(held)
        except BaseException as error:  # SystemExit, KeyboardInterrupt ... from a stage
            # Not lost in a dead thread: the runtime counts it, stops the
            # pipeline and raises it again in the caller's thread.
            self._crash(error)
        finally:
            self._leave()
            recorder.phase = NodePhase.IDLE
            if recording:
                bind_recorder(None)

    def _loop(self, recording: bool) -> Envelope | None:
        """Run the thread's loop (picked once: a loop asks nothing per item about recording)."""
        plain = self._plain
        if recording:
            return self._recorded_loop() if plain is None else self._recorded_stage_loop(plain)
        if plain is not None:
            return self._stage_loop(plain)
        return self._plain_loop()

    def _leave(self) -> None:
        """Tell ``on_exit`` once, before the END goes on (the thread's last readings)."""
        on_exit, self._on_exit = self._on_exit, None
        if on_exit is not None:
            try:
                on_exit()
            except Exception:  # a reading must not cost the pipeline its end
                logger.exception("reading %r's CPU accounting at its end failed", self.label)

    def _plain_loop(self) -> Envelope | None:
        """Pass items on until the input ends (None) or the next queue closes (the item held)."""
        get, process, send, now, skip = self._get, self._process, self._send, self._now, self._skip
        line = self._stop_line
        while True:
            envelope: Envelope = get()
            if envelope is CLOSED:
                return None
            if envelope is END:
                self._leave()
                self._end()
                return None
            if envelope.frame_id > line[0]:
                self._cut(envelope)
                continue
            if process(envelope, now()) is None:  # skipped, or the pipeline stopped
                skip(envelope)
                continue
            if not send(envelope):
                return envelope

    def _stage_loop(self, plain: PlainStage) -> Envelope | None:
        """:meth:`_plain_loop` with the one plain stage's protocol written in (see PlainStage)."""
        get, send, now, skip, line = self._get, self._send, self._now, self._skip, self._stop_line
        stage, failed = plain.call, plain.failed
        add, settle = plain.watch.raw_recording()
        left = SETTLE_EVERY  # items until the watch may fold
        while True:
            envelope: Envelope = get()
            if envelope is CLOSED:
                return None
            if envelope is END:
                self._leave()
                self._end()
                return None
            if envelope.frame_id > line[0]:
                self._cut(envelope)
                continue
            if envelope.error is None:  # else an earlier stage failed on it: it passes through
                data = envelope.data
                start = now()
                try:
                    envelope.data = stage(data)
                except Exception as error:
                    if failed(envelope, data, error, now) is None:  # skipped, or it stopped
                        skip(envelope)
                        continue
                else:
                    end = now()
                    add((start, end))
                    left -= 1
                    if left <= 0:
                        left = SETTLE_EVERY
                        settle()
            if not send(envelope):
                return envelope

    def _recorded_loop(self) -> Envelope | None:
        """:meth:`_plain_loop`, recording each iteration and the node's live phase."""
        get, process, send, now = self._get, self._process, self._send, self._now
        skip, recorder, line = self._skip, self.recorder, self._stop_line
        append, inbox_length = recorder.extend_iterations, self.inbox.length_function()
        outbox_length = self._outbox_length
        getting, processing, sending = (
            NodePhase.GETTING_INPUTS,
            NodePhase.PROCESSING,
            NodePhase.SENDING_OUTPUTS,
        )
        sequence, t_get = 0, now()  # one iteration's end is the next one's start
        while True:
            recorder.phase = getting
            queued = inbox_length()
            envelope: Envelope = get()
            if envelope is CLOSED:
                return None
            if envelope is END:
                self._leave()
                self._end()
                return None
            if envelope.frame_id > line[0]:
                self._cut(envelope)
                continue
            t_got = now()
            recorder.phase = processing
            recorder.frame_id = envelope.frame_id
            frame, t_in = envelope.frame_id, envelope.t_in
            if (t_send := process(envelope, t_got)) is None:  # skipped, or the pipeline stopped
                skip(envelope)
                t_get = self._ended_here((sequence, frame, t_get, queued, t_got), t_in)
                sequence += 1
                continue
            recorder.phase = sending
            out_queued = outbox_length() if outbox_length is not None else NO_QUEUE
            sent = send(envelope)
            t_sent = now()
            append(
                pack_iteration(
                    sequence, frame, t_get, queued, t_got, t_send, out_queued, t_sent, sent, t_in
                )
            )
            if not sent:
                return envelope
            sequence, t_get = sequence + 1, t_sent

    def _recorded_stage_loop(self, plain: PlainStage) -> Envelope | None:
        """:meth:`_recorded_loop` with the one plain stage's protocol written in.

        The same steps and records as :meth:`_recorded_loop` running
        :func:`~framescope.pipeline.runtime.item.stage_processor`'s process,
        without its call per item (a share of an empty stage's cost worth a
        loop of its own: the debugging on/off ratio is a stated target).
        """
        get, send, now, skip = self._get, self._send, self._now, self._skip
        recorder, line, outbox_length = self.recorder, self._stop_line, self._outbox_length
        append, inbox_length = recorder.extend_iterations, self.inbox.length_function()
        stage, failed = plain.call, plain.failed
        add, settle = plain.watch.raw_recording()
        getting, processing, sending = (
            NodePhase.GETTING_INPUTS,
            NodePhase.PROCESSING,
            NodePhase.SENDING_OUTPUTS,
        )
        sequence, t_get, left = 0, now(), SETTLE_EVERY
        while True:
            recorder.phase = getting
            queued = inbox_length()
            envelope: Envelope = get()
            if envelope is CLOSED:
                return None
            if envelope is END:
                self._leave()
                self._end()
                return None
            frame, t_in = envelope.frame_id, envelope.t_in
            if frame > line[0]:
                self._cut(envelope)
                continue
            t_got = t_send = now()
            recorder.phase = processing
            recorder.frame_id = frame
            if envelope.error is None:  # else an earlier stage failed on it: it passes through
                data = envelope.data
                try:
                    envelope.data = stage(data)
                except Exception as error:
                    ended = failed(envelope, data, error, now)
                    if ended is None:  # skipped, or the pipeline stopped
                        skip(envelope)
                        t_get = self._ended_here((sequence, frame, t_get, queued, t_got), t_in)
                        sequence += 1
                        continue
                    t_send = ended
                else:
                    t_send = now()
                    add((t_got, t_send))
                    left -= 1
                    if left <= 0:
                        left = SETTLE_EVERY
                        settle()
            recorder.phase = sending
            out_queued = outbox_length() if outbox_length is not None else NO_QUEUE
            sent = send(envelope)
            t_sent = now()
            append(
                pack_iteration(
                    sequence, frame, t_get, queued, t_got, t_send, out_queued, t_sent, sent, t_in
                )
            )
            if not sent:
                return envelope
            sequence, t_get = sequence + 1, t_sent

    def _ended_here(self, head: tuple[int, int, int, int, int], t_in: int) -> int:
        """Record the iteration of an item that ended in this stage; the reading it ended on.

        ``head``: the iteration's sequence, frame id, get and got readings and queue length.
        """
        sequence, frame, t_get, queued, t_got = head
        t = self._now()
        self.recorder.extend_iterations(
            pack_iteration(sequence, frame, t_get, queued, t_got, t, NO_QUEUE, t, 0, t_in)
        )
        return t

    def _cut(self, envelope: Envelope) -> None:
        """``envelope`` came in after the item a stage stopped the pipeline on: discard it."""
        self._lost(envelope)
        self._skip(envelope)

    def _lost(self, envelope: Envelope) -> None:
        """The pipeline stopped while this thread held ``envelope``: count it discarded."""
        if envelope.error is None:  # a failed item is counted as failed already
            self.discarded += 1


def _nothing(envelope: Envelope) -> None:
    """What a stage that is not replicated does with an item that ended in it."""


def is_sending(recorder: EventRecorder) -> Callable[[], bool]:
    """Whether the node behind ``recorder`` is trying to send its output right now."""

    def is_sending() -> bool:
        return recorder.phase is NodePhase.SENDING_OUTPUTS

    return is_sending
