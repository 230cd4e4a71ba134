"""SpyGlass against a receiver that accepts the connection and then says and takes nothing."""

from __future__ import annotations

import socket
import threading
import time

import numpy as np
import pytest

pytest.importorskip("av")

from framescope.clock import FakeClock
from framescope.video import SpyGlass, SpyGlassState
from tests.polling import holds_within

pytestmark = pytest.mark.integration


class SilentServer:
    """Accepts TCP connections on 127.0.0.1 and never answers (an RTMP handshake never ends)."""

    def __init__(self) -> None:
        self._listener = socket.socket()
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(8)
        self._listener.settimeout(0.1)
        self.port: int = self._listener.getsockname()[1]
        self.accepted: list[socket.socket] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                connection, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.accepted.append(connection)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self._listener.close()
        for connection in self.accepted:
            connection.close()


@pytest.fixture
def silent() -> object:
    server = SilentServer()
    yield server
    server.close()


def test_a_handshake_that_never_completes_is_an_error_not_a_silent_stream(
    silent: SilentServer,
) -> None:
    url = f"rtmp://127.0.0.1:{silent.port}/live/cam"
    spyglass = SpyGlass(
        url, 30, 160, 120, stall_timeout=1.0, reconnect_initial=0.2, reconnect_max=0.5
    )
    spyglass.start_streaming(timeout=60)  # returns when the stall watch gives up, not at 60 s
    assert spyglass.state is SpyGlassState.ERROR
    assert spyglass.last_error is not None
    assert "did not complete the connection" in spyglass.last_error
    assert spyglass.counters()["failures"] >= 1
    assert silent.accepted  # the receiver did accept the connection
    image = np.zeros((120, 160, 3), np.uint8)
    for _ in range(20):
        assert spyglass.put(image)
    assert holds_within(
        lambda: spyglass.counters()["reconnects"] >= 1 and len(silent.accepted) >= 2
    )
    assert spyglass.stop_streaming(timeout=1.0) in (True, False)
    counts = spyglass.counters()
    assert counts["sent"] == 0
    assert counts["dropped"] == counts["queued"] == 20  # every frame accounted for, as lost
    assert counts["in_flight"] == 0


def test_the_stall_is_timed_on_the_clock_and_the_stuck_encoder_is_ended(
    silent: SilentServer,
) -> None:
    clock = FakeClock()
    url = f"rtmp://127.0.0.1:{silent.port}/live/cam"
    spyglass = SpyGlass(
        url, 30, 160, 120, stall_timeout=5.0, reconnect_initial=1.0, reconnect_max=1.0, clock=clock
    )
    spyglass.start_streaming(timeout=0.01)  # a fake clock: the stall comes only as it moves
    assert holds_within(lambda: len(silent.accepted) == 1)
    session = spyglass._session
    assert session is not None and session.alive
    started = clock.monotonic_ns()
    while spyglass.counters()["failures"] == 0:
        assert clock.monotonic_ns() - started < 7e9, "no stall after 7 s on the clock"
        clock.advance(0.1)
        time.sleep(0.01)
    assert clock.monotonic_ns() - started >= 5e9  # not before stall_timeout on the clock
    assert spyglass.state is SpyGlassState.ERROR
    error = spyglass.last_error
    assert error is not None
    prefix = "stalled: the receiver did not complete the connection in "
    assert error.startswith(prefix) and error.endswith(" s")
    assert float(error[len(prefix) : -2]) >= 5.0  # the time it waited, as measured
    assert holds_within(lambda: session._process.poll() is not None)  # the stuck encoder, ended
    assert spyglass.counters()["reconnects"] == 0  # the back-off waits on the clock
    while spyglass.counters()["reconnects"] == 0:
        assert clock.monotonic_ns() - started < 9e9, "no reconnect after the back-off"
        clock.advance(0.1)
        time.sleep(0.01)
    assert holds_within(lambda: len(silent.accepted) == 2)  # connected again
    spyglass.stop_streaming(timeout=1.0)
    assert spyglass.state is SpyGlassState.STOPPED
    names = [thread.name for thread in threading.enumerate()]
    assert not [name for name in names if "spyglass" in name.lower()]


def test_a_bad_stall_timeout_is_refused_by_name() -> None:
    url = "rtmp://127.0.0.1:1935/live/cam"
    with pytest.raises(ValueError, match="stall_timeout"):
        SpyGlass(url, stall_timeout=0)
    with pytest.raises(TypeError, match="stall_timeout"):
        SpyGlass(url, stall_timeout="5")
    assert SpyGlass(url, stall_timeout=None).stall_timeout is None  # no watch
