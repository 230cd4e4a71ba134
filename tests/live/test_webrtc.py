"""WebRTC video of the live view, in parts: codec choice, the shared encoder, a viewer's queue,
and the stage-to-screen arithmetic (a fake clock, no network)."""

from __future__ import annotations

import threading
from dataclasses import replace
from typing import Any

import numpy as np
import pytest

pytest.importorskip("av", reason="the WebRTC streams encode with PyAV")

from framescope import Pipeline
from framescope.clock import FakeClock
from framescope.live import LiveView
from framescope.live.placeholder import BACKGROUND, placeholder_image, placeholder_text
from framescope.live.preview import PreviewTap
from framescope.live.stream import PLACEHOLDER, EncodedFrame, VideoStream
from framescope.live.view import viewer_view
from framescope.live.webrtc import (
    WebRTCVideo,
    WhepError,
    _Viewer,
    candidate_hosts,
    offered_codec,
    without_mdns_candidates,
)
from framescope.pipeline import PipelineSnapshot
from framescope.stats import StatsSnapshot
from framescope.video import Frame
from tests import polling

H264_OFFER = """v=0
m=video 9 UDP/TLS/RTP/SAVPF 96 102 103
a=rtpmap:96 VP8/90000
a=rtpmap:102 H264/90000
a=fmtp:102 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f
a=rtpmap:103 H264/90000
a=fmtp:103 packetization-mode=0;profile-level-id=42e01f
"""


def test_h264_in_packetization_mode_1_is_chosen_before_vp8() -> None:
    assert offered_codec(H264_OFFER) == "H264"
    no_mode_1 = H264_OFFER.replace("packetization-mode=1", "packetization-mode=0")
    assert offered_codec(no_mode_1) == "VP8"
    with pytest.raises(WhepError, match=r"H.264 \(packetization-mode=1\) or VP8") as refused:
        offered_codec(no_mode_1.replace("VP8", "VP9"))
    assert refused.value.status == 400


def test_ice_offers_only_the_address_the_view_listens_on() -> None:
    assert candidate_hosts("127.0.0.1") == ("127.0.0.1",)
    assert candidate_hosts("localhost") == ("127.0.0.1",)
    assert candidate_hosts("::1") == ("::1",)
    assert candidate_hosts("192.168.1.20") == ("192.168.1.20",)
    assert candidate_hosts("0.0.0.0") is None  # every address, as the bind
    assert candidate_hosts("box.local") is None


@pytest.mark.parametrize(
    ("servers", "error", "message"),
    [
        ("stun:stun.example.org", TypeError, "ice_servers must be a list"),
        ([3], TypeError, "each must be a URL or a dict"),
        (["http://stun.example.org"], ValueError, "must start with stun:, turn: or turns:"),
        ([{"urls": "turn:t.example.org", "user": "x"}], ValueError, "unknown keys \\['user'\\]"),
    ],
)
def test_bad_ice_servers_are_refused_naming_the_argument(
    servers: Any, error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        LiveView(Pipeline(), ice_servers=servers)


def test_max_viewers_must_be_a_count() -> None:
    with pytest.raises(TypeError, match="max_viewers must be an int"):
        WebRTCVideo({}, host="127.0.0.1", max_viewers=2.5, clock=FakeClock(), name="x")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="max_viewers must be >= 0"):
        WebRTCVideo({}, host="127.0.0.1", max_viewers=-1, clock=FakeClock(), name="x")


def test_the_placeholder_says_since_when_nothing_came() -> None:
    clock = FakeClock()
    since = clock.wall()
    clock.advance(4.2)
    assert placeholder_text(since, clock.wall()) == (f"NO FRAME SINCE {since:%H:%M:%S} UTC (4 S)")
    assert placeholder_text(None, clock.wall()) == "WAITING FOR THE FIRST FRAME"
    image = placeholder_image(640, 360, "NO FRAME SINCE 12:00:00 UTC (4 S)")
    assert image.shape == (360, 640, 3)
    assert image[0, 0].tolist() == [BACKGROUND] * 3  # grey around the text
    assert (image == 255).any()  # and the text in white
    assert placeholder_image(16, 16, "X" * 40).shape == (16, 16, 3)  # too long: cut, no error


# -- the shared encoder -------------------------------------------------------------------


class Delivered:
    """What a stream delivered; ``hold`` blocks its encoder's thread in the delivery."""

    def __init__(self) -> None:
        self.frames: list[EncodedFrame] = []
        self.hold = threading.Event()
        self.hold.set()
        self.entered = threading.Event()

    def __call__(self, stream: VideoStream, frame: EncodedFrame) -> None:
        self.entered.set()
        self.hold.wait(30)
        self.frames.append(frame)


def picture(value: int) -> np.ndarray:
    return np.full((64, 96, 3), value, np.uint8)


@pytest.fixture
def stream_and_delivered() -> Any:
    clock = FakeClock()
    tap = PreviewTap("main", clock=clock)
    delivered = Delivered()
    stream = VideoStream(tap, None, "H264", deliver=delivered, clock=clock)
    stream.start("test-encode")
    yield tap, stream, delivered, clock
    delivered.hold.set()
    assert stream.stop()
    assert not tap._feeds


def test_every_frame_is_encoded_with_the_moment_it_left_the_stage(
    stream_and_delivered: Any,
) -> None:
    tap, stream, delivered, clock = stream_and_delivered
    sent: list[int] = []
    for value in range(5):
        clock.advance(0.033)
        sent.append(clock.monotonic_ns())
        tap(picture(value * 40))
        polling.wait_for(lambda n=value: stream.frames_encoded == n + 1, what="a frame encoded")
    assert [f.out_ns for f in delivered.frames] == sent
    assert delivered.frames[0].keyframe  # the first is a key frame
    assert not any(f.placeholder for f in delivered.frames)
    for frame in delivered.frames:  # a viewer's report is told back to the stage's moment
        assert stream.sent_at(frame.pts & 0xFFFFFFFF) == frame.out_ns
    pts = [f.pts for f in delivered.frames]
    assert pts == sorted(pts) and pts[1] - pts[0] == round(0.033 * 90_000)


def test_frames_that_come_while_the_encoder_is_busy_are_skipped_and_counted(
    stream_and_delivered: Any,
) -> None:
    tap, stream, delivered, _ = stream_and_delivered
    delivered.hold.clear()
    tap(picture(10))
    assert delivered.entered.wait(30)  # the encoder is inside the first frame's delivery
    for value in (20, 30, 40):  # the newest waits; the two before it are skipped
        tap(picture(value))
    delivered.hold.set()
    polling.wait_for(lambda: stream.frames_encoded == 2, what="the newest frame encoded")
    assert stream.frames_skipped == 2
    assert tap.frames_seen == 4  # the stage never waited


def test_the_placeholder_comes_a_second_after_the_last_frame_and_says_so(
    stream_and_delivered: Any,
) -> None:
    tap, stream, delivered, clock = stream_and_delivered
    tap(picture(200))
    polling.wait_for(lambda: stream.frames_encoded == 1, what="a frame encoded")
    clock.advance(0.9)
    assert polling.holds_within(lambda: not stream.placeholder_frames, limit=0.3)
    clock.advance(0.2)  # 1.1 s without a frame
    polling.wait_for(lambda: stream.placeholder_frames == 1, what="a placeholder")
    assert stream.showing_placeholder
    placeholder = delivered.frames[-1]
    assert placeholder.placeholder and stream.sent_at(placeholder.pts) == PLACEHOLDER
    clock.advance(0.2)  # then five a second
    polling.wait_for(lambda: stream.placeholder_frames == 2, what="the next placeholder")
    tap(picture(100))  # the stage is back: its frame takes over
    polling.wait_for(lambda: stream.frames_encoded == 2, what="the stage's frame")
    assert not stream.showing_placeholder


def test_a_camera_s_stream_takes_only_that_camera_s_frames() -> None:
    clock = FakeClock()
    tap = PreviewTap("main", clock=clock)
    delivered = Delivered()
    stream = VideoStream(tap, "door", "VP8", deliver=delivered, clock=clock)
    stream.start("test-encode")
    try:
        tap(Frame(picture(1), 0, source="gate"))
        tap(Frame(picture(2), 0, source="door"))
        polling.wait_for(lambda: stream.frames_encoded == 1, what="door's frame")
        assert polling.holds_within(lambda: stream.frames_encoded == 1, limit=0.2)
        assert tap.cameras == ("gate", "door")
    finally:
        assert stream.stop()


# -- a viewer's queue and its reports --------------------------------------------------------


class Stream:
    """A stream as a viewer sees it: key frame requests, and when frames left the stage."""

    def __init__(self, sent: dict[int, int]) -> None:
        self.sent = sent
        self.keyframes = 0

    def request_keyframe(self) -> None:
        self.keyframes += 1

    def sent_at(self, rtp_time: int) -> int | None:
        return self.sent.get(rtp_time)


def encoded(pts: int, *, key: bool = False) -> EncodedFrame:
    packet = b"\x00\x00\x00\x01\x65" + bytes(95)  # an H.264 NAL unit's worth
    return EncodedFrame(packet, pts, pts * 1000, key, False, 100)


def test_a_viewer_starts_at_a_key_frame_and_one_that_cannot_keep_up_drops_for_itself() -> None:
    viewer = _Viewer("v1", "main", None, "H264", FakeClock())
    stream = Stream({})
    viewer.stream = stream  # type: ignore[assignment]
    viewer.offer(encoded(1))  # not a key frame: a new viewer could not decode it
    assert viewer.frames_dropped == 1 and not viewer._queue
    viewer.offer(encoded(2, key=True))
    for pts in range(3, 10):
        viewer.offer(encoded(pts))
    assert len(viewer._queue) == 8 and viewer.frames_dropped == 1
    viewer.offer(encoded(10))  # the queue is full: all of it goes, counted
    assert viewer.frames_dropped == 1 + 9 and not viewer._queue
    assert stream.keyframes == 1  # and it asks for a key frame to start again
    viewer.offer(encoded(11))
    viewer.offer(encoded(12, key=True))
    assert [f.pts for f in viewer._queue] == [12] and viewer.frames_dropped == 11


def test_the_stage_to_screen_latency_comes_from_the_reports_and_the_round_trip() -> None:
    clock = FakeClock()
    viewer = _Viewer("v1", "main", None, "H264", clock)
    base = clock.monotonic_ns()
    origin = 4_000_000_000  # the sender's random origin: RTP timestamps wrap past 2**32
    out_ns = {3000 * n: base + n * 33_000_000 for n in range(1, 4)}
    viewer.stream = Stream(out_ns)  # type: ignore[assignment]
    viewer._origin = origin
    # Pinged at the view's `base`; the browser answers at its 2,000.0 ms (performance.now),
    # and the answer is back 0.8 ms later: the browser's 2,000.0 ms is the view's base + 0.4 ms.
    viewer._pings[1] = (base, 1_000.0)
    clock.advance_ns(800_000)
    viewer.on_message('{"pong": 1, "now": 2000.0, "wall": 1000000.0}')
    assert viewer._syncs[0][0] == 800_000
    rtp = [(origin + pts) % 2**32 for pts in out_ns]
    # Frame n is shown at the browser's 2,000 ms + n * 33 ms + 100 ms: 100.4 ms after it left.
    shown = [2100.0 + n * 33.0 for n in range(1, 4)]
    rows = ", ".join(f"[{r}, {t}]" for r, t in zip(rtp, shown, strict=True))
    viewer.on_message('{"presented": [' + rows + ", [5, 1.0]]}")
    snapshot = viewer.snapshot(clock.monotonic_ns())
    assert snapshot.stage_to_screen.recent == pytest.approx([0.1004] * 3)
    assert snapshot.presented == 4 and snapshot.unmatched == 1  # [5, 1.0] is no frame sent
    assert snapshot.clock_uncertainty == pytest.approx(0.0004)
    assert snapshot.clock_offset == pytest.approx(0.0004)  # wall clocks: the view's vs the page's
    assert viewer_view(snapshot)["p50_ms"] == pytest.approx(100.4)


def test_reports_before_the_first_round_trip_wait_for_it() -> None:
    clock = FakeClock()
    viewer = _Viewer("v1", "main", None, "H264", clock)
    viewer.stream = Stream({3000: 5_000_000})  # type: ignore[assignment]
    viewer._origin = 0
    viewer.on_message('{"presented": [[3000, 10.0]]}')
    assert viewer.presented == 0 and len(viewer._waiting_rows) == 1
    viewer._pings[1] = (clock.monotonic_ns(), 0.0)
    viewer.on_message('{"pong": 1, "now": 0.0, "wall": 0.0}')
    assert viewer.presented == 1 and viewer.snapshot(0).stage_to_screen.count == 1


@pytest.mark.parametrize(
    "message",
    ["not json", "[1, 2]", '{"presented": [[-1, 2.0], [1, "x"], [2**32, 1.0]]}', '{"pong": 9}'],
)
def test_a_page_s_malformed_messages_are_ignored(message: str) -> None:
    viewer = _Viewer("v1", "main", None, "H264", FakeClock())
    viewer.on_message(message)
    assert viewer.presented == 0 and not viewer._syncs and not viewer._waiting_rows


def test_a_snapshot_with_viewers_goes_through_json_and_back() -> None:
    viewer = _Viewer("v1", "main", "door", "VP8", FakeClock()).snapshot(2_000_000_000)
    viewer = replace(viewer, stage_to_screen=StatsSnapshot(window=4, count=1, total=0.05))
    snapshot = PipelineSnapshot(pipeline="p", latency=StatsSnapshot(window=1), viewers=(viewer,))
    again = PipelineSnapshot.from_dict(snapshot.to_dict())
    assert again.viewers == (viewer,)


def test_the_snapshot_s_text_has_a_row_a_viewer() -> None:
    viewer = _Viewer("v1", "main", "door", "H264", FakeClock())
    viewer._latency.extend([40_000_000, 60_000_000])
    viewer.frames_sent, viewer.frames_dropped = 12, 3
    snapshot = PipelineSnapshot(
        pipeline="p", latency=StatsSnapshot(window=1), viewers=(viewer.snapshot(0),)
    )
    text = str(snapshot).splitlines()
    assert text[-2].split() == [
        "viewer", "preview", "camera", "codec", "state", "sent", "dropped", "timed",
        "p50", "ms", "p90", "ms", "p99", "ms", "max", "ms", "clock", "+-", "ms",
    ]  # fmt: skip
    assert text[-1].split() == [
        "v1", "main", "door", "H264", "new", "12", "3", "2", "50.0", "58.0", "59.8", "60.0", "-",
    ]  # fmt: skip


def test_an_offer_for_a_camera_the_preview_never_saw_is_refused_naming_those_it_did() -> None:
    tap = PreviewTap("main")
    tap(Frame(picture(1), 0, source="gate"))
    video = WebRTCVideo({"main": tap}, host="127.0.0.1", clock=FakeClock(), name="x")
    with pytest.raises(WhepError, match=r"no camera 'door' in preview 'main' \(cameras: gate\)"):
        video.offer("main", "door", H264_OFFER, 1.0)
    with pytest.raises(WhepError, match="no preview called 'side'") as refused:
        video.offer("side", None, H264_OFFER, 1.0)
    assert refused.value.status == 404
    assert video.close()  # never started: nothing to stop


def test_a_preview_of_every_camera_keeps_the_first_size_and_one_encoder(
    stream_and_delivered: Any,
) -> None:
    tap, stream, delivered, clock = stream_and_delivered
    for index in range(6):  # two cameras of two sizes, in turn
        clock.advance(0.034)  # 29 frames a second: under the 30 a second sent
        size = (64, 96) if index % 2 == 0 else (32, 48)
        tap(np.full((*size, 3), 100, np.uint8))
        polling.wait_for(lambda n=index: stream.frames_encoded == n + 1, what="a frame encoded")
    assert [f.keyframe for f in delivered.frames] == [True] + [False] * 5  # no new encoder
    assert stream._size == (96, 64)


def test_a_page_s_bad_numbers_and_extra_channels_are_ignored_and_counted() -> None:
    viewer = _Viewer("v1", "main", None, "H264", FakeClock())
    viewer._pings[1] = (0, 0.0)
    viewer.on_message('{"pong": 1, "now": 1e308, "wall": 1.0}')  # would overflow as ns
    viewer._origin = 0
    viewer.on_message('{"presented": [[3000, 1e308]]}')  # left out, as the pong was
    viewer.on_message("[")  # not JSON: counted
    viewer.on_message("[1, 2]")  # not an object: counted
    assert viewer.bad_messages == 2 and not viewer._syncs and viewer.presented == 0

    class Channel:
        readyState = "open"  # noqa: N815 - aiortc's name
        closed = False

        def on(self, event: str, handler: Any) -> None:
            self.handler = handler

        def close(self) -> None:
            self.closed = True

        def send(self, message: str) -> None:
            pass

    first, second = Channel(), Channel()
    viewer.closed = True  # no ping loop in this test
    viewer.on_channel(first)
    viewer.on_channel(second)  # a page may open one channel: the next is closed
    assert viewer.channel is first and second.closed and not first.closed


def test_mdns_candidates_are_left_out_of_an_offer() -> None:
    offer = (
        "v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\n"
        "a=candidate:1 1 udp 2113937151 0b5c.local 45046 typ host generation 0\r\n"
        "a=candidate:2 1 udp 2113937151 192.168.1.9 45047 typ host generation 0\r\n"
    )
    kept = without_mdns_candidates(offer)
    assert ".local" not in kept and "192.168.1.9 45047" in kept and kept.endswith("\r\n")


def test_a_view_without_webrtc_says_so() -> None:
    tap = PreviewTap("main")
    video = WebRTCVideo({"main": tap}, host="127.0.0.1", max_viewers=0, clock=FakeClock(), name="x")
    with pytest.raises(WhepError, match=r"WebRTC video is off for this view \(max_viewers=0\)"):
        video.offer("main", None, H264_OFFER, 1.0)


def test_a_loop_that_falls_behind_gets_no_more_frames_and_its_viewers_restart_at_a_key() -> None:
    class StalledLoop:
        """An asyncio loop that runs nothing yet: what it was handed waits."""

        def __init__(self) -> None:
            self.waiting: list[tuple[Any, ...]] = []

        def call_soon_threadsafe(self, callback: Any, *args: Any) -> None:
            self.waiting.append((callback, *args))

    tap = PreviewTap("main")
    video = WebRTCVideo({"main": tap}, host="127.0.0.1", clock=FakeClock(), name="x")
    stream = VideoStream(tap, None, "H264", deliver=lambda s, f: None, clock=FakeClock())
    viewer = _Viewer("v1", "main", None, "H264", FakeClock())
    viewer.stream = stream
    video._viewers["v1"] = viewer
    loop = StalledLoop()
    video._deliver(loop, stream, encoded(0, key=True))  # type: ignore[arg-type]
    for pts in range(1, 35):
        video._deliver(loop, stream, encoded(pts))  # type: ignore[arg-type]
    assert len(loop.waiting) == 30 and stream.frames_skipped == 5  # no more than 30 wait
    for callback, *args in loop.waiting:  # the loop catches up; the track takes each frame
        callback(*args)
        viewer._queue.clear()
    assert viewer.frames_dropped == 0  # frames 0-29 decode: the gap comes after them
    video._deliver(loop, stream, encoded(35))  # type: ignore[arg-type]
    video._deliver(loop, stream, encoded(40, key=True))  # type: ignore[arg-type]
    for callback, *args in loop.waiting[30:]:
        callback(*args)
    assert viewer.frames_dropped == 1 and [f.pts for f in viewer._queue] == [40]
    assert not video._backlog


def test_a_stage_faster_than_webrtc_fps_is_skipped_down_to_it(stream_and_delivered: Any) -> None:
    tap, stream, delivered, clock = stream_and_delivered
    tap(picture(0))
    polling.wait_for(lambda: stream.frames_encoded == 1, what="the first frame")
    clock.advance(0.011)
    tap(picture(1))  # 11 ms later: one early frame is let through (a camera's jitter)
    polling.wait_for(lambda: stream.frames_encoded == 2, what="the early frame")
    clock.advance(0.011)
    tap(picture(2))  # 22 ms: too soon for 30 a second, it waits ...
    clock.advance(0.005)
    tap(picture(3))  # ... and the newer one takes its place
    assert polling.holds_within(lambda: stream.frames_encoded == 2, limit=0.2)
    clock.advance(0.01)  # 37 ms: a frame interval after the early one was due
    polling.wait_for(lambda: stream.frames_encoded == 3, what="the newest frame")
    assert stream.frames_skipped == 1
    assert delivered.frames[-1].out_ns == clock.monotonic_ns() - 10_000_000  # frame 3's
