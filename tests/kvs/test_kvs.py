"""KVSSpyGlass against moto (control plane) and the local PutMedia receiver."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

pytest.importorskip("av")
pytest.importorskip("boto3")

from framescope.clock import FakeClock
from framescope.kvs import KVSInlineCredentialsHandler, KVSSpyGlass
from framescope.video import SpyGlassState
from tests.polling import holds_within

from ..moto_server import REGION, MotoEndpoint
from .receiver import Key, KVSReceiver

pytestmark = pytest.mark.integration

STREAM = "panorama-video"
KEY_ID, SECRET = "AKIDEXAMPLE12345", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"


@pytest.fixture
def stream(moto: MotoEndpoint) -> MotoEndpoint:
    moto.client("kinesisvideo").create_stream(StreamName=STREAM, DataRetentionInHours=1)  # type: ignore[attr-defined]
    return moto


@pytest.fixture
def receiver() -> Iterator[KVSReceiver]:
    server = KVSReceiver({KEY_ID: Key(SECRET)}, STREAM, REGION)
    yield server
    server.close()


_made: list[KVSSpyGlass] = []


@pytest.fixture(autouse=True)
def _stopped(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """Every KVSSpyGlass a test made is stopped, even when the test fails; no log shows a secret."""
    caplog.set_level(logging.DEBUG)
    yield
    while _made:
        _made.pop().stop_streaming(timeout=5)
    for secret in (SECRET, "role-secret-", "wrong-secret", "token-"):
        assert secret not in caplog.text


def glass(moto: MotoEndpoint, receiver: KVSReceiver, **options: Any) -> KVSSpyGlass:
    settings: dict[str, Any] = {
        "fps": 30,
        "width": 160,
        "height": 120,
        "fragment_s": 0.5,
        "endpoint_url": moto.url,
        "data_endpoint_url": receiver.url,
        "reconnect_initial": 0.05,
        "reconnect_max": 0.2,
        "queue_size": 240,  # frames wait while the encoder process starts, even on a slow machine
    }
    settings.update(options)
    handler = settings.pop("credentials_handler", KVSInlineCredentialsHandler(KEY_ID, SECRET))
    made = KVSSpyGlass(REGION, STREAM, handler, **settings)
    _made.append(made)
    return made


def frames(count: int) -> Iterator[Any]:
    for index in range(count):
        image = np.zeros((120, 160, 3), np.uint8)
        image[:, : (index * 3) % 160] = 200
        yield image


def put_all(spyglass: KVSSpyGlass, count: int, fps: float = 60.0) -> list[float]:
    """Put ``count`` frames about ``fps`` a second; the monotonic time of each put."""
    times = []
    for image in frames(count):
        times.append(time.monotonic())
        spyglass.put(image)
        time.sleep(1 / fps)
    return times


def test_frames_put_become_persisted_fragments(stream: MotoEndpoint, receiver: KVSReceiver) -> None:
    spyglass = glass(stream, receiver)
    spyglass.start_streaming()
    put_all(spyglass, 90)
    assert spyglass.stop_streaming(timeout=10)
    counts = spyglass.counters()
    assert not hasattr(spyglass, "counts")  # counters() is the one reading, as everywhere
    assert receiver.problems == []
    assert receiver.refused == []
    assert counts["put"] == 90
    assert counts["sent"] == receiver.decoded_frames() == 90 - counts["dropped"]
    assert counts["dropped"] == 0  # the queue kept up at this size
    assert counts["fragments_sent"] == len(receiver.fragments) >= 5  # 15 frames a fragment
    assert counts["acks"]["PERSISTED"] == counts["acks"]["RECEIVED"] == len(receiver.fragments)
    assert counts["errors"] == {}
    headers = receiver.headers[0]
    assert headers["x-amzn-fragment-timecode-type"] == "ABSOLUTE"
    assert headers["x-amzn-fragment-acknowledgment-required"] == "1"
    start = float(headers["x-amzn-producer-start-timestamp"])
    assert abs(start - time.time()) < 60
    first = receiver.fragments[0].timecode
    assert abs(first / 1000 - start) < 5  # absolute timecodes, in ms since the epoch
    assert spyglass.state is SpyGlassState.STOPPED


def test_an_injected_retryable_error_is_counted_and_recovered(
    stream: MotoEndpoint, receiver: KVSReceiver
) -> None:
    receiver.plan.error_after = [(2, 4002), (1, 5000)]
    spyglass = glass(stream, receiver)
    spyglass.start_streaming()
    put_all(spyglass, 150)
    assert spyglass.stop_streaming(timeout=10)
    counts = spyglass.counters()
    assert counts["errors"] == {4002: 1, 5000: 1}
    assert counts["acks"]["ERROR"] == 2
    assert counts["connections"] >= 3 and counts["reconnects"] >= 2
    assert receiver.problems == []
    # Every frame is accounted for: decoded at the receiver, or counted as dropped.
    assert counts["sent"] - receiver.decoded_frames() in (0,)  # fragments lost are not 'sent'
    assert counts["put"] == receiver.decoded_frames() + counts["dropped"]
    assert spyglass.state is SpyGlassState.STOPPED


def test_a_deleted_stream_stops_with_a_clear_state(
    stream: MotoEndpoint, receiver: KVSReceiver
) -> None:
    receiver.plan.error_after = [(1, 4008)]
    # The error comes as an acknowledgement: give it time on a busy machine (the
    # acknowledgement timeout is not what this test is about).
    spyglass = glass(stream, receiver, ack_timeout=120.0)
    spyglass.start_streaming()
    put_all(spyglass, 60)
    assert holds_within(lambda: spyglass.state is SpyGlassState.ERROR)
    assert "STREAM_NOT_ACTIVE (4008)" in (spyglass.last_error or "")
    assert receiver.connections == 1  # no reconnecting to a stream that is gone
    spyglass.stop_streaming(timeout=5)
    counts = spyglass.counters()
    assert counts["put"] == receiver.decoded_frames() + counts["dropped"]


def test_the_receiver_going_away_never_blocks_the_frame_loop(
    stream: MotoEndpoint, receiver: KVSReceiver
) -> None:
    receiver.plan.stall = True  # takes the connection, reads nothing, answers nothing
    spyglass = glass(stream, receiver, timeout=0.5)
    spyglass.start_streaming()
    gaps = []
    last = time.perf_counter()
    for image in frames(300):
        spyglass.put(image)
        now = time.perf_counter()
        gaps.append(now - last)
        last = now
    assert max(gaps) < 0.5  # put() never waited on the network (generous bound)
    assert spyglass.stop_streaming(timeout=10)  # the stalled upload does not hold the stop
    counts = spyglass.counters()
    assert counts["put"] == 300
    assert counts["put"] == counts["sent"] + counts["dropped"]


def test_no_secret_in_any_log(
    stream: MotoEndpoint, receiver: KVSReceiver, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    receiver.plan.statuses = [503]
    receiver.plan.error_after = [(1, 5000)]
    spyglass = glass(stream, receiver, dotenv_path="/panorama/.env")
    spyglass.start_streaming()
    put_all(spyglass, 60)
    spyglass.stop_streaming(timeout=5)
    text = caplog.text + repr(spyglass) + repr(spyglass.credentials_handler)
    text += repr(spyglass.credentials_handler.credentials())
    assert SECRET not in text and SECRET[:12] not in text
    assert "dotenv_path='/panorama/.env' is not needed" in caplog.text
    assert spyglass.counters()["errors"] == {5000: 1}


def rotating_handler(receiver: KVSReceiver, lifetime: float) -> Any:
    """A role whose temporary credentials last ``lifetime`` s, refreshed by botocore itself."""
    import datetime
    import itertools

    import boto3
    import botocore.session
    from botocore.credentials import RefreshableCredentials

    from framescope.kvs import KVSFileCredentialsHandler

    numbers = itertools.count(1)

    def fetch() -> dict[str, str]:
        number = next(numbers)
        key, secret, token = f"ASIAROLE{number:08d}", f"role-secret-{number}", f"token-{number}"
        expires = time.time() + lifetime
        receiver.keys[key] = Key(secret, token, expires)
        when = datetime.datetime.fromtimestamp(expires, datetime.timezone.utc)
        return {
            "access_key": key,
            "secret_key": secret,
            "token": token,
            "expiry_time": when.isoformat(),
        }

    credentials = RefreshableCredentials.create_from_metadata(fetch(), fetch, "test-role")
    core = botocore.session.Session()
    core._credentials = credentials  # what a container role provider would set up
    return KVSFileCredentialsHandler(
        session=boto3.Session(botocore_session=core, region_name=REGION)
    )


def test_credentials_that_expire_mid_stream_are_refreshed_and_the_stream_goes_on(
    stream: MotoEndpoint, receiver: KVSReceiver
) -> None:
    handler = rotating_handler(receiver, lifetime=2.0)
    spyglass = glass(stream, receiver, credentials_handler=handler, credentials_margin_s=1.0)
    spyglass.start_streaming()
    put_all(spyglass, 240)  # about 4 s: the credentials expire twice or more meanwhile
    assert spyglass.stop_streaming(timeout=10)
    counts = spyglass.counters()
    assert receiver.problems == []  # no connection outlived its credentials
    assert receiver.refused == []
    assert counts["rotations"] >= 2
    assert len({f.connection for f in receiver.fragments}) >= 3
    assert counts["dropped"] == 0 and counts["fragments_lost"] == 0  # rotation loses nothing
    assert receiver.decoded_frames() == counts["sent"] == 240


def test_a_connection_is_rotated_before_it_gets_too_old_without_losing_a_frame(
    stream: MotoEndpoint, receiver: KVSReceiver
) -> None:
    # Fragments of 15 frames put at 60/s: one every 0.25 s of real time. Frames
    # that queued while the encoder started go out in a burst on one connection,
    # so the age bound is short enough for the rest to rotate at least twice
    # even when a loaded machine takes a second to start the encoder.
    spyglass = glass(stream, receiver, max_connection_s=0.3)
    spyglass.start_streaming()
    put_all(spyglass, 180)
    assert spyglass.stop_streaming(timeout=10)
    counts = spyglass.counters()
    assert counts["rotations"] >= 2
    assert receiver.problems == []
    assert receiver.decoded_frames() == counts["sent"] == 180


def test_a_dropped_connection_loses_at_most_the_fragment_in_flight(
    stream: MotoEndpoint, receiver: KVSReceiver
) -> None:
    receiver.plan.drop_after = [2]
    spyglass = glass(stream, receiver)
    spyglass.start_streaming()
    put_all(spyglass, 150)
    assert spyglass.stop_streaming(timeout=10)
    counts = spyglass.counters()
    assert counts["reconnects"] >= 1 and counts["connections"] >= 2
    assert counts["fragments_lost"] <= 1
    assert counts["put"] == receiver.decoded_frames() + counts["dropped"]
    assert receiver.problems == []


def test_refused_credentials_end_in_error_after_one_retry(
    stream: MotoEndpoint, receiver: KVSReceiver
) -> None:
    spyglass = glass(
        stream, receiver, credentials_handler=KVSInlineCredentialsHandler(KEY_ID, "wrong-secret")
    )
    spyglass.start_streaming()
    put_all(spyglass, 60)
    assert holds_within(lambda: spyglass.state is SpyGlassState.ERROR)
    assert "NotAuthorizedException" in (spyglass.last_error or "")
    assert receiver.refused == ["the request signature does not match"] * 2
    spyglass.stop_streaming(timeout=5)
    assert spyglass.counters()["put"] == 60 == spyglass.counters()["dropped"]


def test_a_stream_that_does_not_exist_is_a_clear_error(
    moto: MotoEndpoint, receiver: KVSReceiver
) -> None:
    spyglass = glass(moto, receiver)  # no stream was created
    spyglass.start_streaming()
    put_all(spyglass, 40)
    assert holds_within(lambda: spyglass.state is SpyGlassState.ERROR)
    assert "ResourceNotFoundException" in (spyglass.last_error or "")
    assert receiver.connections == 0
    spyglass.stop_streaming(timeout=5)


def test_a_receiver_that_is_down_never_blocks_the_frame_loop(stream: MotoEndpoint) -> None:
    import socket

    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    spyglass = KVSSpyGlass(
        REGION,
        STREAM,
        KVSInlineCredentialsHandler(KEY_ID, SECRET),
        30,
        160,
        120,
        endpoint_url=stream.url,
        data_endpoint_url=f"http://127.0.0.1:{port}",
        fragment_s=0.5,
        reconnect_initial=0.05,
    )
    spyglass.start_streaming()
    started, ticks = time.perf_counter(), 0
    for image in frames(600):
        spyglass.put(image)
        ticks += 1
    elapsed = time.perf_counter() - started
    assert ticks / elapsed > 1000  # hundreds of thousands a second here; any wait would show
    assert holds_within(lambda: spyglass.counters()["connect_failures"] >= 1)
    assert spyglass.stop_streaming(timeout=5)
    counts = spyglass.counters()
    assert counts["put"] == 600 == counts["sent"] + counts["dropped"]
    assert counts["sent"] == 0


def test_warm_up_then_restart(stream: MotoEndpoint, receiver: KVSReceiver) -> None:
    spyglass = glass(stream, receiver, fps=None, width=None, height=None, warmup_frames=10)
    spyglass.start_streaming()
    times = put_all(spyglass, 40, fps=30)
    assert spyglass.stop_streaming(timeout=10)
    assert (spyglass.width, spyglass.height) == (160, 120)
    # The warm-up measures the rate the frames came at (slower than 30/s on a
    # busy machine, where the sleeps between them overrun).
    came_at = 9 / (times[9] - times[0])
    assert 0.75 * came_at <= spyglass.fps <= min(31, 1.25 * came_at), (spyglass.fps, came_at)
    first = receiver.decoded_frames()
    assert first == 30 == spyglass.counters()["sent"]  # 10 measured the input
    spyglass.start_streaming()  # the same settings, no warm-up this time
    put_all(spyglass, 30)
    assert spyglass.stop_streaming(timeout=10)
    assert receiver.decoded_frames() == 60 == spyglass.counters()["sent"]
    assert receiver.problems == []


def put_on(spyglass: KVSSpyGlass, clock: FakeClock, until: Any, limit: float = 60) -> bool:
    """Put frames, 30 a second on ``clock``, until ``until()`` holds (or ``limit`` real s)."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        for image in frames(15):
            spyglass.put(image)
            clock.advance(1 / 30)
            time.sleep(1 / 120)
        if until():
            return True
    return False


def test_an_endpoint_that_never_acknowledges_is_an_outage_not_a_stream(
    stream: MotoEndpoint, receiver: KVSReceiver
) -> None:
    receiver.plan.never_ack = True  # reads every fragment, answers none
    clock = FakeClock()
    spyglass = glass(stream, receiver, ack_timeout=1.0, clock=clock)
    spyglass.start_streaming()
    assert put_on(spyglass, clock, lambda: spyglass.state is SpyGlassState.ERROR)
    assert "no acknowledgement from PutMedia for" in (spyglass.last_error or "")
    assert spyglass.counters()["ack_timeouts"] >= 1
    # The silent connection is dropped and replaced, and the state stays ERROR.
    assert put_on(spyglass, clock, lambda: spyglass.counters()["reconnects"] >= 1)
    assert put_on(spyglass, clock, lambda: spyglass.counters()["ack_timeouts"] >= 2)
    assert spyglass.state is SpyGlassState.ERROR
    assert receiver.connections >= 2
    spyglass.stop_streaming(timeout=5)
    counts = spyglass.counters()
    assert receiver.unanswered >= 2 and receiver.fragments == []
    assert counts["sent"] == 0 and counts["put"] == counts["dropped"]  # every frame lost, counted
    assert counts["fragments_lost"] >= 2
    assert receiver.problems == []


def test_an_outage_shows_while_it_lasts_and_streaming_comes_back(
    stream: MotoEndpoint, receiver: KVSReceiver
) -> None:
    clock = FakeClock()
    spyglass = glass(stream, receiver, ack_timeout=2.0, clock=clock)
    spyglass.start_streaming()
    assert put_on(spyglass, clock, lambda: receiver.fragments)  # acknowledged: streaming
    assert spyglass.state is SpyGlassState.STREAMING and spyglass.last_error is None
    receiver.plan.outage.set()
    outage_began = clock.monotonic_ns()
    assert put_on(spyglass, clock, lambda: spyglass.state is SpyGlassState.ERROR)
    assert "no acknowledgement from PutMedia for" in (spyglass.last_error or "")
    assert spyglass.counters()["ack_timeouts"] >= 1
    # The outage lasts 5 s on the clock: the state says so all along, reconnections included.
    while clock.monotonic_ns() - outage_began < 5e9:
        assert put_on(spyglass, clock, lambda: True)
        assert spyglass.state is SpyGlassState.ERROR
    received = spyglass.counters()["acks"].get("RECEIVED", 0)
    receiver.plan.outage.clear()
    assert put_on(
        spyglass,
        clock,
        lambda: (
            spyglass.state is SpyGlassState.STREAMING
            and spyglass.counters()["acks"].get("RECEIVED", 0) > received
        ),
    )
    assert spyglass.stop_streaming(timeout=10)
    counts = spyglass.counters()
    assert counts["fragments_lost"] >= 1  # what the outage swallowed, counted
    assert counts["sent"] == receiver.decoded_frames()
    assert counts["put"] == receiver.decoded_frames() + counts["dropped"]
    assert receiver.problems == []


def test_a_bad_ack_timeout_is_refused_by_name() -> None:
    handler = KVSInlineCredentialsHandler(KEY_ID, SECRET)
    with pytest.raises(ValueError, match="ack_timeout"):
        KVSSpyGlass(REGION, STREAM, handler, ack_timeout=-1)
    with pytest.raises(TypeError, match="ack_timeout"):
        KVSSpyGlass(REGION, STREAM, handler, ack_timeout="10")
    assert KVSSpyGlass(REGION, STREAM, handler, ack_timeout=None).ack_timeout is None
