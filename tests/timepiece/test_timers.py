from __future__ import annotations

import threading

import pytest

from framescope.clock import FakeClock
from framescope.timepiece import BaseTimer, StopWatch, Ticker, TimerSnapshot
from framescope.timepiece.timers import FOLD_AT


def tick_every(ticker: Ticker, clock: FakeClock, seconds: list[float]) -> None:
    ticker.tick()
    for s in seconds:
        clock.advance(s)
        ticker.tick()


def test_empty_timer_reports_zeros_and_bare_repr(clock: FakeClock) -> None:
    ticker = Ticker(clock=clock)
    assert repr(ticker) == "<Ticker>"
    assert ticker.intervals == ()
    assert (ticker.min(), ticker.max(), ticker.mean(), ticker.sum()) == (0.0, 0.0, 0.0, 0.0)
    assert (ticker.freq(), ticker.median(), ticker.stddev(), ticker.percentile(99)) == (0, 0, 0, 0)
    assert ticker.len() == 0
    assert repr(StopWatch("root", clock=clock)) == "<StopWatch name=root>"


def test_first_tick_records_nothing(clock: FakeClock) -> None:
    ticker = Ticker(clock=clock)
    ticker.tick()
    assert ticker.len() == 0
    clock.advance(0.25)
    ticker.tick()
    assert ticker.intervals == (0.25,)


def test_ticker_repr_matches_the_backpack_format(clock: FakeClock) -> None:
    ticker = Ticker(max_intervals=5, clock=clock)
    tick_every(ticker, clock, [0.0899, 0.0632, 0.0543, 0.0713, 0.0681])
    assert repr(ticker) == (
        "<Ticker intervals=[0.0899, 0.0632, 0.0543, 0.0713, 0.0681] "
        "min=0.0543 mean=0.0694 max=0.0899>"
    )


def test_repr_shows_at_most_five_intervals(clock: FakeClock) -> None:
    ticker = Ticker(max_intervals=10, clock=clock)
    tick_every(ticker, clock, [0.01 * i for i in range(1, 8)])
    assert repr(ticker).startswith(
        "<Ticker intervals=[0.0100, 0.0200, 0.0300, 0.0400, 0.0500, ...] min=0.0100"
    )


def test_ticker_keeps_the_most_recent_intervals_last(clock: FakeClock) -> None:
    ticker = Ticker(max_intervals=3, clock=clock)
    tick_every(ticker, clock, [0.1, 0.2, 0.3, 0.4, 0.5])
    assert ticker.intervals == pytest.approx((0.3, 0.4, 0.5))
    assert ticker.len() == 3
    assert ticker.min() == pytest.approx(0.3)
    assert ticker.max() == pytest.approx(0.5)
    assert ticker.sum() == pytest.approx(1.2)
    assert ticker.mean() == pytest.approx(0.4)
    assert ticker.median() == pytest.approx(0.4)
    assert ticker.stddev() == pytest.approx(0.1)
    assert ticker.percentile(50) == pytest.approx(0.4)
    # All-time aggregates live in statistics().
    stats = ticker.statistics()
    assert stats.count == 5
    assert stats.minimum == pytest.approx(0.1)
    assert stats.total == pytest.approx(1.5)


def test_ticker_freq_is_the_event_rate(clock: FakeClock) -> None:
    ticker = Ticker(max_intervals=100, clock=clock)
    tick_every(ticker, clock, [0.04] * 25)
    assert ticker.freq() == pytest.approx(25.0)


def test_ticker_counts_stay_exact_across_folds(clock: FakeClock) -> None:
    ticker = Ticker(max_intervals=10, clock=clock)
    total_ticks = FOLD_AT * 3 + 17
    for _ in range(total_ticks):
        ticker.tick()
        clock.advance_ns(1_000)
    stats = ticker.statistics()
    assert stats.count == total_ticks - 1
    assert stats.total == pytest.approx((total_ticks - 1) * 1e-6)
    assert stats.minimum == stats.maximum == pytest.approx(1e-6)
    assert ticker.intervals == pytest.approx((1e-6,) * 10)


def test_ticks_stay_bounded_and_exact_with_reads_between_folds(clock: FakeClock) -> None:
    ticker = Ticker(max_intervals=3, clock=clock)
    gaps = [1_000 + (i * 7919) % 5_000 for i in range(FOLD_AT * 2 + 50)]
    ticker.tick()
    longest_pending = 0
    for i, gap in enumerate(gaps):
        clock.advance_ns(gap)
        ticker.tick()
        longest_pending = max(longest_pending, len(ticker._pending))
        if i % 1_000 == 999:  # a reader folds part of a batch
            assert ticker.statistics().count == i + 1
    stats = ticker.statistics()
    assert longest_pending <= FOLD_AT
    assert stats.count == len(gaps) and stats.total == pytest.approx(sum(gaps) / 1e9)
    assert stats.minimum == min(gaps) / 1e9 and stats.maximum == max(gaps) / 1e9
    assert ticker.intervals == pytest.approx([g / 1e9 for g in gaps[-3:]])


def test_a_subclass_tick_stays_in_charge(clock: FakeClock) -> None:
    class CountingTicker(Ticker):
        calls = 0

        def tick(self) -> None:
            self.calls += 1
            super().tick()

    ticker = CountingTicker(clock=clock)
    tick_every(ticker, clock, [0.5, 0.25])
    assert ticker.calls == 3 and ticker.intervals == pytest.approx((0.5, 0.25))


def test_ticker_reset_keeps_last_tick(clock: FakeClock) -> None:
    ticker = Ticker(clock=clock)
    tick_every(ticker, clock, [0.1, 0.1])
    ticker.reset()
    assert ticker.len() == 0
    assert ticker.statistics().count == 0
    clock.advance(0.3)
    ticker.tick()
    assert ticker.intervals == pytest.approx((0.3,))


def test_tick_at_uses_given_timestamps(clock: FakeClock) -> None:
    ticker = Ticker(clock=clock)
    for t in (0, 40_000_000, 70_000_000):
        ticker.tick_at(t)
    assert ticker.intervals == pytest.approx((0.04, 0.03))


def test_snapshot_is_immutable_and_detached(clock: FakeClock) -> None:
    ticker = Ticker(max_intervals=5, clock=clock)
    tick_every(ticker, clock, [0.1, 0.2])
    snap = ticker.snapshot()
    tick_every(ticker, clock, [0.5, 0.5])
    assert isinstance(snap, TimerSnapshot)
    assert snap.intervals == pytest.approx((0.1, 0.2))
    assert (snap.len(), snap.min(), snap.max()) == (2, pytest.approx(0.1), pytest.approx(0.2))
    assert snap.sum() == pytest.approx(0.3)
    assert snap.mean() == pytest.approx(0.15)
    assert snap.median() == pytest.approx(0.15)
    assert snap.percentile(100) == pytest.approx(0.2)
    assert repr(snap) == "<Ticker intervals=[0.1000, 0.2000] min=0.1000 mean=0.1500 max=0.2000>"
    with pytest.raises(AttributeError):
        snap.count = 3  # type: ignore[misc]


@pytest.mark.usefixtures("fast_thread_switching")
def test_reading_from_another_thread_loses_no_tick() -> None:
    ticker = Ticker(max_intervals=10)
    n_ticks = 200_000
    started = threading.Event()
    done = threading.Event()
    counts: list[int] = []

    def reader() -> None:
        started.set()
        while not done.is_set():
            counts.append(ticker.statistics().count)

    thread = threading.Thread(target=reader, name="test-reader")
    thread.start()
    started.wait()
    for _ in range(n_ticks):
        ticker.tick()
    done.set()
    thread.join(timeout=10)
    assert not thread.is_alive()
    assert ticker.statistics().count == n_ticks - 1
    assert counts == sorted(counts)  # never went backwards, never over-counted
    assert counts[-1] <= n_ticks - 1


def test_stopwatch_measures_blocks_and_is_reusable(clock: FakeClock) -> None:
    watch = StopWatch("work", clock=clock)
    for seconds in (0.1, 0.3, 0.2):
        with watch as entered:
            assert entered is watch
            clock.advance(seconds)
        clock.advance(1.0)  # time outside the block is not counted
    assert watch.intervals == pytest.approx((0.1, 0.3, 0.2))
    assert repr(watch) == (
        "<StopWatch name=work intervals=[0.1000, 0.3000, 0.2000] min=0.1000 mean=0.2000 max=0.3000>"
    )


def test_stopwatch_can_nest_in_itself(clock: FakeClock) -> None:
    watch = StopWatch("recursive", clock=clock)
    with watch:
        clock.advance(0.1)
        with watch:
            clock.advance(0.2)
        clock.advance(0.3)
    assert watch.intervals == pytest.approx((0.2, 0.6))


def test_stopwatch_records_the_block_when_it_raises(clock: FakeClock) -> None:
    watch = StopWatch("boom", clock=clock)
    with pytest.raises(KeyError), watch:
        clock.advance(0.05)
        raise KeyError("x")
    assert watch.intervals == pytest.approx((0.05,))


def test_exit_without_enter_is_a_clear_error(clock: FakeClock) -> None:
    watch = StopWatch("w", clock=clock)
    with pytest.raises(RuntimeError, match="exited more times than it was entered"):
        watch.__exit__(None, None, None)


def test_measure_returns_result_and_is_exception_safe(clock: FakeClock) -> None:
    watch = StopWatch("fn", clock=clock)

    @watch.measure
    def work(x: int, *, y: int) -> int:
        """Docstring kept."""
        clock.advance(0.01 * x)
        if y < 0:
            raise ValueError("negative")
        return x + y

    assert work(2, y=3) == 5
    with pytest.raises(ValueError, match="negative"):
        work(1, y=-1)
    assert work.__doc__ == "Docstring kept."
    assert work.__name__ == "work"
    assert watch.intervals == pytest.approx((0.02, 0.01))
    with pytest.raises(TypeError, match="measure expects a callable"):
        watch.measure(42)  # type: ignore[type-var]


def test_stopwatch_tree(clock: FakeClock) -> None:
    with StopWatch("root", clock=clock) as root:
        with root.child("task1", max_intervals=5) as task1:
            clock.advance(0.01)
            with task1.child("subtask1_1") as subtask1_1:
                clock.advance(0.03)
            with task1.child("subtask1_2"):
                clock.advance(0.07)
            with subtask1_1:
                clock.advance(0.05)
        for i in range(5):
            with root.child("task2"):
                clock.advance(0.01 * (i + 1))
    assert repr(root) == (
        "<StopWatch name=root intervals=[0.3100] min=0.3100 mean=0.3100 max=0.3100 children=[\n"
        "    <StopWatch name=task1 intervals=[0.1600] min=0.1600 mean=0.1600 max=0.1600 children=[\n"
        "        <StopWatch name=subtask1_1 intervals=[0.0300, 0.0500] min=0.0300 mean=0.0400 "
        "max=0.0500>,\n"
        "        <StopWatch name=subtask1_2 intervals=[0.0700] min=0.0700 mean=0.0700 max=0.0700>\n"
        "    ]>,\n"
        "    <StopWatch name=task2 intervals=[0.0100, 0.0200, 0.0300, 0.0400, 0.0500] "
        "min=0.0100 mean=0.0300 max=0.0500>\n"
        "]>"
    )
    assert subtask1_1.full_name == "root.task1.subtask1_1"
    assert subtask1_1.full_name() == "root.task1.subtask1_1"
    assert f"{subtask1_1.full_name}" == "root.task1.subtask1_1"
    assert subtask1_1.level == 2
    assert root.level == 0
    assert subtask1_1.parent is task1
    assert list(task1.children) == ["subtask1_1", "subtask1_2"]
    assert [w.name for w in root.walk()] == ["root", "task1", "subtask1_1", "subtask1_2", "task2"]
    assert list(subtask1_1.parents()) == [task1, root]


def test_child_returns_existing_and_inherits_settings(clock: FakeClock) -> None:
    root = StopWatch("root", max_intervals=7, clock=clock)
    first = root.child("a")
    assert root.child("a") is first
    assert root.child("a", max_intervals=3) is first
    assert first.max_intervals == 7
    assert root.child("b", max_intervals=3).max_intervals == 3
    assert first.clock is clock
    assert root.child("with.dot").full_name == "root.with.dot"


@pytest.mark.parametrize(
    ("factory", "error", "message"),
    [
        (
            lambda: Ticker(max_intervals=0),
            ValueError,
            "max_intervals must be a positive integer \\(>= 1\\)",
        ),
        (
            lambda: Ticker(max_intervals=-3),
            ValueError,
            "max_intervals must be a positive integer \\(>= 1\\)",
        ),
        (lambda: Ticker(max_intervals=2.0), TypeError, "max_intervals must be a positive int"),
        (lambda: Ticker(clock=object()), TypeError, "clock must provide monotonic_ns"),
        (lambda: StopWatch(""), ValueError, "name must be a non-empty str"),
        (lambda: StopWatch(3), TypeError, "name must be a str"),
        (lambda: StopWatch("a", max_intervals=None), TypeError, "max_intervals"),
    ],
)
def test_bad_arguments(factory: object, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        factory()  # type: ignore[operator]


def test_base_timer_is_usable_as_a_common_type(clock: FakeClock) -> None:
    timers: list[BaseTimer] = [Ticker(clock=clock), StopWatch("w", clock=clock)]
    assert all(t.max_intervals == 10 for t in timers)


@pytest.mark.usefixtures("fast_thread_switching")
def test_reader_thread_never_splits_a_stopwatch_record() -> None:
    clock = FakeClock()
    watch = StopWatch("w", max_intervals=50, clock=clock)
    done = threading.Event()
    snapshots = []

    def reader() -> None:
        while not done.is_set():
            snapshots.append(watch.statistics())

    thread = threading.Thread(target=reader, name="test-reader")
    thread.start()
    n_blocks = 50_000
    try:
        for _ in range(n_blocks):
            with watch:
                clock.advance_ns(1_000)  # every block lasts exactly 1 us
            clock.advance_ns(5_000)
    finally:
        done.set()
        thread.join(timeout=10)
    assert not thread.is_alive()
    final = watch.statistics()
    assert final.count == n_blocks
    assert final.minimum == final.maximum == 1e-6  # a split pair would show up here
    assert all(s.maximum in (0.0, 1e-6) for s in snapshots)
    assert len(snapshots) > 1


def test_repr_uses_the_subclass_name(clock: FakeClock) -> None:
    class FrameTicker(Ticker):
        pass

    ticker = FrameTicker(clock=clock)
    assert repr(ticker) == "<FrameTicker>"
    ticker.tick()
    clock.advance(0.5)
    ticker.tick()
    assert repr(ticker) == "<FrameTicker intervals=[0.5000] min=0.5000 mean=0.5000 max=0.5000>"
    assert repr(ticker.snapshot()).startswith("<FrameTicker intervals=")


def test_freq_counts_every_remembered_interval(clock: FakeClock) -> None:
    one = Ticker(max_intervals=1, clock=clock)
    one.tick()
    clock.advance(0.5)
    one.tick()
    assert one.freq() == pytest.approx(2.0)  # Backpack: two ticks 0.5 s apart are 2 Hz
    ticker = Ticker(max_intervals=10, clock=clock)
    for _ in range(11):
        ticker.tick()
        clock.advance(0.1)
    assert ticker.len() == 10
    assert ticker.freq() == pytest.approx(10.0)  # n / sum, not (n - 1) / n of it
    assert Ticker(clock=clock).freq() == 0.0


def test_freq_is_one_over_the_mean_on_a_timer_and_its_snapshot(clock: FakeClock) -> None:
    watch = StopWatch("infer", clock=clock)
    ticker = Ticker(clock=clock)
    for _ in range(10):  # a 10 ms block every 100 ms
        ticker.tick()
        with watch:
            clock.advance(0.010)
        clock.advance(0.090)
    ticker.tick()
    assert watch.freq() == pytest.approx(100.0)  # Backpack: 1 / mean duration
    assert watch.snapshot().freq() == pytest.approx(100.0)
    assert watch.snapshot().rate == pytest.approx(10.0)  # how often the blocks ran
    assert ticker.freq() == ticker.snapshot().freq() == pytest.approx(10.0)
    assert StopWatch("idle", clock=clock).snapshot().freq() == 0.0


def test_readings_far_apart_fold_exactly_with_numpy() -> None:
    import numpy  # noqa: F401 - the fold uses it when loaded

    from framescope.clock import FakeClock

    watch = StopWatch("w", max_intervals=3, clock=FakeClock())
    for _ in range(3000):  # past NUMPY_FROM: a NumPy fold, whose differences would wrap
        watch.record(-(2**62) - 10, 2**62 + 10)
    stats = watch.statistics()
    assert stats.count == 3000 and stats.minimum == (2**63 + 20) / 1e9
