"""The WHEP endpoint on loopback, pulled by a real WHEP player (aiortc): answers, refusals,
one encoder for many viewers, and nothing left running."""

from __future__ import annotations

import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

pytest.importorskip("aiortc", reason="the WebRTC video needs framescope[webrtc]")

from framescope import Pipeline
from framescope.live import LiveView
from tests import polling

from .camera import Camera, camera_view, striped
from .whep_client import WhepClient

pytestmark = pytest.mark.integration

VP8_OFFER = b"v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\na=rtpmap:96 VP8/90000\r\n"


def picture(index: int) -> np.ndarray:
    return striped(index, 120, 160, channel=2)  # red, as BGR


@pytest.fixture
def served() -> Iterator[tuple[LiveView, Camera]]:
    with camera_view(picture, refresh=0.1, max_viewers=3) as view_and_camera:
        yield view_and_camera
    assert not [t.name for t in threading.enumerate() if t.name.startswith("framescope-live")]


def post(url: str, body: bytes, kind: str = "application/sdp", **headers: str) -> Any:
    request = urllib.request.Request(
        url, data=body, headers={"Content-Type": kind, **headers}, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=15) as response:
            return response.status, response.read(), response.headers
    except urllib.error.HTTPError as error:
        with error:
            return error.code, error.read(), error.headers


def test_a_whep_player_gets_the_video_and_leaves(served: tuple[LiveView, Camera]) -> None:
    view, _ = served
    url = f"http://127.0.0.1:{view.port}/whep/main"
    with WhepClient(url).start() as player:
        assert player.location is not None and player.location.startswith("/whep/main/")
        candidates = [line for line in player.answer.splitlines() if "candidate:" in line]
        assert candidates and all(" 127.0.0.1 " in line for line in candidates)  # loopback only
        assert all(" typ host" in line for line in candidates)  # no STUN or TURN asked
        polling.wait_for(lambda: player.frames >= 10, what="frames at the player")
        assert player.last.shape == (120, 160, 3)
        assert player.last[60, 20, 2] > 150 and player.last[60, 20, 0] < 60  # red came as red
        viewers = view.snapshot().viewers
        assert [v.viewer for v in viewers] == [player.location.rsplit("/", 1)[1]]
        assert viewers[0].codec == "H264" and viewers[0].frames_sent >= 10
        assert player.leave() == 200
        polling.wait_for(lambda: not view.snapshot().viewers, what="the viewer gone")
        assert player.leave() == 404  # gone already
    assert not view._webrtc.streams()  # the last viewer left: the encoder stopped


def test_three_viewers_share_one_encoder_and_a_fourth_is_refused(
    served: tuple[LiveView, Camera],
) -> None:
    view, _ = served
    url = f"http://127.0.0.1:{view.port}/whep/main"
    players = [WhepClient(url) for _ in range(3)]
    try:
        for player in players:
            player.start()
        polling.wait_for(lambda: all(p.frames >= 5 for p in players), what="frames at all three")
        streams = view._webrtc.streams()["main"]
        assert len(streams) == 1  # encoded once, whatever the number of viewers
        status, body, headers = post(url, VP8_OFFER)
        assert status == 503 and b"3 viewers are watching already" in body
        assert headers["Retry-After"] == "5"
        assert view._webrtc.refused == 1
    finally:
        for player in players:
            player.close()


def test_refusals_say_why(served: tuple[LiveView, Camera]) -> None:
    view, _ = served
    base = f"http://127.0.0.1:{view.port}"
    assert post(base + "/whep/main", b"v=0", kind="text/plain")[0] == 415
    assert post(base + "/whep/nothing", VP8_OFFER)[0] == 404
    status, body, _ = post(base + "/whep/main", b"v=0\r\nm=audio 9 x 111\r\n")
    assert status == 400 and b"H.264" in body
    request = urllib.request.Request(base + "/whep/main/x", data=b"", method="PATCH")
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=10)
    with refused.value:
        assert refused.value.code == 405


def test_a_whep_request_without_the_token_gets_401() -> None:
    pipeline = Pipeline(name="Cam").add(picture, "Draw")
    with LiveView(pipeline, token="a-long-token") as view:
        view.preview("main", stage=None)
        url = f"http://127.0.0.1:{view.port}/whep/main"
        assert post(url, b"v=0")[0] == 401
        assert post(url + "?token=wrong-token", b"v=0")[0] == 401
        # With the token (as WHEP players send it) the request is served: a bad offer, 400.
        assert post(url, b"v=0", Authorization="Bearer a-long-token")[0] == 400


def test_a_player_without_h264_gets_vp8_at_the_size_asked_for() -> None:
    pipeline = Pipeline(name="Cam").add(picture, "Draw")
    view = LiveView(pipeline, refresh=0.1)
    view.preview("small", stage="Draw", size=(96, 64))
    with view:
        feeder = Camera(pipeline)
        try:
            url = f"http://127.0.0.1:{view.port}/whep/small"
            with WhepClient(url, codec="VP8").start() as player:
                assert "VP8/90000" in player.answer and "H264" not in player.answer
                polling.wait_for(lambda: player.frames >= 5, what="VP8 frames at the player")
                assert player.last.shape == (64, 96, 3)
                assert player.last[32, 10, 2] > 150  # red, scaled down
                assert view.snapshot().viewers[0].codec == "VP8"
        finally:
            feeder.close()
    assert view.close()
    names = [t.name for t in threading.enumerate()]
    assert not [name for name in names if name.startswith(("framescope-live", "asyncio"))]


def test_offers_that_fail_give_their_slot_back_once(served: tuple[LiveView, Camera]) -> None:
    view, _ = served
    url = f"http://127.0.0.1:{view.port}/whep/main"
    broken = VP8_OFFER + b"a=fingerprint:nonsense\r\n"  # passes the codec check, then fails
    for _ in range(3):
        assert post(url, broken)[0] == 400
    assert not view._webrtc.viewers() and view._webrtc.served == 0
    players = [WhepClient(url) for _ in range(3)]
    try:
        for player in players:
            player.start()
        assert post(url, VP8_OFFER)[0] == 503  # max_viewers=3 still holds
    finally:
        for player in players:
            player.close()


def test_an_offer_without_a_length_gets_411(served: tuple[LiveView, Camera]) -> None:
    view, _ = served
    import socket

    with socket.create_connection(("127.0.0.1", view.port), timeout=10) as connection:
        connection.sendall(
            b"POST /whep/main HTTP/1.0\r\nContent-Type: application/sdp\r\n"
            b"Content-Length: \xc2\xb2\r\n\r\n"
        )
        answer = connection.makefile("rb").readline()
    assert answer.startswith(b"HTTP/1.0 411")
