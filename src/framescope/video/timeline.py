"""Stream time that never goes missing and never goes back, across loops and reconnects."""

from __future__ import annotations

from framescope.clock import TimeSource

__all__ = ["Timeline"]

_DEFAULT_STEP = 1 / 30  # a frame's interval when the stream states no rate
_OUT_OF_ORDER = 1.0  # a step back shorter than this is one odd timestamp, not a new clock
_TICK = 1e-6  # how far after the one before an out-of-order frame is placed


class Timeline:
    """Gives each decoded frame a ``time`` and a ``pts`` that are never None.

    A source reads its input in runs: the first opening, then each loop of a
    file and each reconnect of a stream, whose own timestamps start again.
    The first run keeps the stream's own times; a later run is shifted so that
    it follows on: for a loop, the file's length after the first frame of the
    last run (so a variable-rate file joins with its own last interval), or
    one frame interval after the last frame when the length is not known; and
    after the time that passed on the clock (at least one interval) for a
    reconnect, so the outage shows as a gap. A frame without a timestamp is
    placed one frame interval (1 / fps) after the one before. A timestamp that
    goes back less than a second (out of order) is placed a microsecond after
    the one before; one that goes back further (the stream's clock started
    again) starts a new run that follows on by one frame interval.

    Args:
        clock: measures the outage of a reconnect.
    """

    def __init__(self, clock: TimeSource) -> None:
        self._clock = clock
        self._step = _DEFAULT_STEP
        self._base: float | None = 0.0  # added to the stream's own time in this run
        self._target = 0.0  # where this run's first frame goes
        self._last: float | None = None  # the last time given
        self._last_ns = 0  # the clock when it was given
        self._run_frames = 0
        self._run_first = 0.0  # the time given to this run's first frame

    def set_rate(self, fps: float | None) -> None:
        """The stream's frame rate (None: unknown), for frames without a timestamp."""
        self._step = 1 / fps if fps else _DEFAULT_STEP

    def restart(self, *, reconnect: bool, length: float | None = None) -> None:
        """A new run begins: a loop of a file, or a reconnect (``reconnect=True``).

        ``length``: a looped file's duration in seconds, when it states one.
        """
        self._base, self._run_frames = None, 0
        if self._last is None:
            self._target = 0.0
            return
        gap = self._step
        if reconnect:
            gap = max(gap, (self._clock.monotonic_ns() - self._last_ns) / 1e9)
        elif length is not None and self._run_first + length > self._last:
            gap = self._run_first + length - self._last
        self._target = self._last + gap

    def stamp(
        self, time: float | None, pts: int | None, time_base: float | None
    ) -> tuple[float, int]:
        """The ``(time, pts)`` of the next frame, given its own (either may be None)."""
        if self._last is None or not self._run_frames:
            following = self._target
        else:
            following = self._last + self._step
        if time is None:
            stamped = following
        else:
            if self._base is None:
                self._base = following - time
            stamped = time + self._base
            if self._last is not None and stamped <= self._last:
                if self._last - stamped < _OUT_OF_ORDER:  # one timestamp out of order
                    stamped = self._last + _TICK
                else:  # the stream's clock started again: follow on from here
                    self._base = following - time
                    stamped = following
        if pts is None:
            own = stamped - (self._target if self._base is None else self._base)
            pts = round(own / time_base) if time_base else self._run_frames
        self._last, self._last_ns = stamped, self._clock.monotonic_ns()
        if not self._run_frames:
            self._run_first = stamped
        self._run_frames += 1
        return stamped, pts
