"""Timeline: the stream time a source gives its frames, across gaps in what the stream says."""

from __future__ import annotations

import itertools

import pytest

from framescope.clock import FakeClock
from framescope.video.timeline import Timeline


def stamps(timeline: Timeline, times: list[float | None], base: float = 1 / 90_000) -> list[float]:
    return [timeline.stamp(t, None if t is None else round(t / base), base)[0] for t in times]


def test_the_first_run_keeps_the_streams_own_times() -> None:
    timeline = Timeline(FakeClock())
    timeline.set_rate(25)
    assert stamps(timeline, [0.5, 0.54, 0.58]) == pytest.approx([0.5, 0.54, 0.58])


def test_frames_without_timestamps_follow_at_the_frame_rate() -> None:
    timeline = Timeline(FakeClock())
    timeline.set_rate(25)
    stamped = [timeline.stamp(None, None, 1 / 90_000) for _ in range(3)]
    assert stamped == [(0.0, 0), (0.04, 3600), (0.08, 7200)]
    assert timeline.stamp(0.12, 10_800, 1 / 90_000) == (pytest.approx(0.12), 10_800)
    unknown_base = Timeline(FakeClock())
    assert [unknown_base.stamp(None, None, None)[1] for _ in range(3)] == [0, 1, 2]


def test_a_loop_follows_on_one_frame_after_the_last() -> None:
    timeline = Timeline(FakeClock())
    timeline.set_rate(10)
    first = stamps(timeline, [0.0, 0.1, 0.2])
    timeline.restart(reconnect=False)
    second = stamps(timeline, [0.0, 0.1, 0.2])
    assert first + second == pytest.approx([0.0, 0.1, 0.2, 0.3, 0.4, 0.5])


def test_a_variable_rate_loop_joins_with_the_files_own_last_interval() -> None:
    timeline = Timeline(FakeClock())
    timeline.set_rate(19.5)  # the mean rate of a file whose frames come 20 to 66 ms apart
    first = stamps(timeline, [0.0, 0.066, 0.1, 3.933])
    timeline.restart(reconnect=False, length=3.966)  # its last frame lasts 33 ms
    second = stamps(timeline, [0.0, 0.066])
    assert second == pytest.approx([3.966, 4.032])
    assert second[0] - first[-1] == pytest.approx(0.033)
    # A stated length shorter than what was read (a wrong header) still moves on a frame.
    timeline.restart(reconnect=False, length=0.05)
    assert stamps(timeline, [0.0]) == pytest.approx([4.032 + 1 / 19.5])


def test_a_reconnect_resumes_after_the_outage_on_the_clock() -> None:
    clock = FakeClock()
    timeline = Timeline(clock)
    timeline.set_rate(30)
    before = stamps(timeline, [5.0, 5.0 + 1 / 30])
    clock.advance(2.5)  # the outage
    timeline.restart(reconnect=True)
    after = stamps(timeline, [None, 0.0333, 0.0667])  # the new stream starts again, untimed
    assert before[-1] + 2.5 == pytest.approx(after[0])
    assert after[1] - after[0] == pytest.approx(1 / 30, abs=1e-3)
    assert all(b > a for a, b in itertools.pairwise(before + after))


def test_a_reconnect_at_once_still_moves_on_a_frame() -> None:
    timeline = Timeline(FakeClock())
    timeline.set_rate(30)
    stamps(timeline, [1.0])
    timeline.restart(reconnect=True)
    assert stamps(timeline, [0.0]) == pytest.approx([1.0 + 1 / 30])


def test_time_that_goes_back_is_moved_forward() -> None:
    timeline = Timeline(FakeClock())
    timeline.set_rate(10)
    assert stamps(timeline, [3.0, 3.1, 0.0, 0.1]) == pytest.approx([3.0, 3.1, 3.2, 3.3])


def test_a_timestamp_out_of_order_keeps_the_clock() -> None:
    timeline = Timeline(FakeClock())
    timeline.set_rate(10)
    stamped = stamps(timeline, [0.0, 0.1, 0.3, 0.2, 0.4, 0.5])
    assert stamped == pytest.approx([0.0, 0.1, 0.3, 0.300001, 0.4, 0.5], abs=1e-9)
    assert all(b > a for a, b in itertools.pairwise(stamped))
