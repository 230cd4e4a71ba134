"""The bounded queue between pipeline threads: waits, wakes, timeouts, close and cut."""

from __future__ import annotations

import threading
from collections import deque
from typing import Any

import pytest

from framescope.pipeline.runtime import waitline
from framescope.pipeline.runtime.channel import CLOSED, END, Channel
from framescope.pipeline.runtime.item import Envelope
from tests.polling import wait_for


def started(target: Any, *args: Any) -> tuple[threading.Thread, list[Any]]:
    """Run ``target(*args)`` in a thread; its return value lands in the list."""
    out: list[Any] = []
    thread = threading.Thread(target=lambda: out.append(target(*args)), daemon=True)
    thread.start()
    return thread, out


def test_first_in_first_out_within_the_capacity() -> None:
    channel = Channel(2)
    assert channel.put(1) and channel.put(2)
    assert channel.put(3, timeout=0) is False  # full
    assert channel.get() == 1
    assert channel.put(3, timeout=0)
    assert [channel.get(), channel.get()] == [2, 3]
    assert channel.intake() == (3, 0)


def test_a_waiting_get_is_woken_by_a_put_and_leaves_the_line() -> None:
    channel = Channel(1)
    thread, out = started(channel.get)
    wait_for(lambda: len(channel._getting) == 1)
    assert channel.put("item")
    thread.join(5)
    assert out == ["item"] and not channel._getting


def test_a_waiting_put_is_woken_by_a_get() -> None:
    channel = Channel(1)
    channel.put("first")
    thread, out = started(channel.put, "second")
    wait_for(lambda: len(channel._putting) == 1)
    assert channel.get() == "first"
    thread.join(5)
    assert out == [True] and channel.get() == "second" and not channel._putting


def test_timeouts_give_up_and_leave_no_waiter_behind() -> None:
    channel = Channel(1)
    with pytest.raises(TimeoutError):
        channel.get(timeout=0.01)
    with pytest.raises(TimeoutError):
        channel.get(timeout=0)
    assert not channel._getting
    channel.put(1)
    assert channel.put(2, timeout=0.01) is False
    assert not channel._putting and len(channel) == 1


def test_close_wakes_every_waiter_and_counts_what_it_discards() -> None:
    full, empty = Channel(1), Channel(1)
    full.put(Envelope("x", 0, 1))
    putters = [started(full.put, Envelope("y", 0, 2)) for _ in range(2)]
    getters = [started(empty.get) for _ in range(3)]
    wait_for(lambda: len(full._putting) == 2 and len(empty._getting) == 3)
    full.close()
    empty.close()
    for thread, _ in putters + getters:
        thread.join(5)
    assert [out for _, out in putters] == [[False], [False]]
    assert [out for _, out in getters] == [[CLOSED]] * 3
    assert full.discarded == 1 and full.get() is CLOSED and full.put(1) is False


def test_cut_keeps_what_came_before_ends_the_input_and_refuses_a_waiting_put() -> None:
    channel = Channel(2)
    channel.put(Envelope("a", 0, 1))
    channel.put(Envelope("b", 0, 2))
    thread, out = started(channel.put, Envelope("c", 0, 3))
    wait_for(lambda: len(channel._putting) == 1)
    channel.cut(1)
    thread.join(5)
    assert out == [False]
    assert channel.get().frame_id == 1 and channel.get() is END
    assert channel.discarded == 1


def test_many_threads_on_a_small_queue_pass_every_item_exactly_once() -> None:
    channel = Channel(2)
    producers, items_each = 4, 2000
    received: list[int] = []
    lock = threading.Lock()

    def produce(base: int) -> None:
        for i in range(items_each):
            assert channel.put(base + i)

    def consume() -> None:
        while (item := channel.get()) is not CLOSED:
            with lock:
                received.append(item)

    consumers = [threading.Thread(target=consume, daemon=True) for _ in range(3)]
    feeders = [
        threading.Thread(target=produce, args=(n * items_each,), daemon=True)
        for n in range(producers)
    ]
    for thread in consumers + feeders:
        thread.start()
    for thread in feeders:
        thread.join(60)
    wait_for(lambda: len(received) == producers * items_each, 60)
    channel.close()
    for thread in consumers:
        thread.join(5)
    assert sorted(received) == list(range(producers * items_each))
    assert not any(thread.is_alive() for thread in consumers + feeders)


def test_drop_oldest_counts_what_it_evicts() -> None:
    channel = Channel(1)
    assert channel.put_drop_oldest(1) is CLOSED
    assert channel.put_drop_oldest(2) == 1
    assert channel.intake() == (2, 1) and channel.get() == 2


class _TakenAsItTimesOut:
    """A waiter lock whose timed wait fails just as a waker takes it off the line."""

    def __init__(self, line: deque[Any]) -> None:
        self.line = line

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        if timeout == -1 and blocking:  # the initial acquire before waiting
            return True
        self.line.remove(self)  # a waker took it off the line ...
        return False  # ... as the wait timed out

    def release(self) -> None:
        pass


def test_a_wake_that_meets_a_timeout_counts_as_a_wake(monkeypatch: pytest.MonkeyPatch) -> None:
    channel = Channel(1)
    monkeypatch.setattr(
        waitline, "allocate_lock", lambda: _TakenAsItTimesOut(channel._getting.waiters)
    )
    with channel._lock:
        assert channel._getting.wait(0.5) is True
    assert not channel._getting


class _Interrupted:
    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        if timeout == -1 and blocking and not hasattr(self, "held"):
            self.held = True
            return True
        raise KeyboardInterrupt

    def release(self) -> None:
        pass


def test_an_interrupted_wait_leaves_the_line(monkeypatch: pytest.MonkeyPatch) -> None:
    channel = Channel(1)
    channel.put(1)
    monkeypatch.setattr(waitline, "allocate_lock", _Interrupted)
    with pytest.raises(KeyboardInterrupt):
        channel.put(2)
    assert not channel._putting and not channel._lock.locked()
    assert channel.get() == 1 and len(channel) == 0
