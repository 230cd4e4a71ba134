"""SpyGlass publishing with WHIP to a real WebRTC receiver (aiortc) on loopback."""

from __future__ import annotations

import ssl
import tempfile
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest

av = pytest.importorskip("av")
pytest.importorskip("aiortc")
pytest.importorskip("cryptography")

from cryptography import x509  # noqa: E402
from cryptography.hazmat.primitives import hashes, serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec  # noqa: E402
from cryptography.x509.oid import NameOID  # noqa: E402

from framescope.video import SpyGlass, SpyGlassState  # noqa: E402
from tests.polling import holds_within, wait_for  # noqa: E402

from .whip_server import WhipServer, mean_colour, whip_server  # noqa: E402

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif("whip" not in av.formats_available, reason="no WHIP muxer in this PyAV"),
]

RED, BLUE = (0, 0, 255), (255, 0, 0)  # BGR


def _picture(index: int) -> np.ndarray:
    """Red left half, blue right half, and a grey strip on top whose level is ``4 * index``."""
    image = np.zeros((240, 320, 3), np.uint8)
    image[:, :160] = RED
    image[:, 160:] = BLUE
    image[:40] = 4 * index
    return image


def _level(image: np.ndarray) -> float:
    return mean_colour(image, slice(8, 32), slice(8, 312))[1]


def _close(actual: list[float], expected: tuple[int, int, int]) -> bool:
    return all(abs(a - e) < 12 for a, e in zip(actual, expected, strict=True))


def _certificates() -> set[Path]:
    return set(Path(tempfile.gettempdir()).glob("framescope-whip-*"))


def test_frames_arrive_whole_in_order_and_recognisable() -> None:
    frames = 60
    threads_before = set(threading.enumerate())
    certificates_before = _certificates()
    with whip_server(token="s3cret") as server:
        spyglass = SpyGlass(server.url("s3cret"), 30, 320, 240, queue_size=frames)
        spyglass.start_streaming()
        assert spyglass.state is SpyGlassState.STREAMING, spyglass.last_error
        assert _certificates() - certificates_before  # this session's, while it runs
        for index in range(frames):
            spyglass.put(_picture(index), time=index / 30)
        # aiortc hands a frame on when the next one starts: the last is never decoded.
        # Wait for the rest before the stop: its DELETE ends the session, and with it
        # the frames aiortc is still decoding.
        holds_within(lambda: server.frames >= frames - 1, 20)
        assert spyglass.stop_streaming()
        counts = spyglass.counters()
        assert (counts["sent"], counts["dropped"], counts["failures"]) == (frames, 0, 0)
        assert server.frames == frames - 1
        assert server.sizes == {(320, 240)}
        assert (server.posts, server.deletes, server.refused) == (1, 1, 0)
        first, last = server.first_image, server.last_image()
    assert round(_level(first) / 4) == 0  # no start-up loss: the first frame is frame 0
    assert round(_level(last) / 4) == frames - 2  # the last decoded: the one before the last
    assert _close(mean_colour(last, slice(48, 240), slice(0, 150)), RED)
    assert _close(mean_colour(last, slice(48, 240), slice(170, 320)), BLUE)
    assert _certificates() <= certificates_before  # the session's certificate is deleted
    left = [thread.name for thread in set(threading.enumerate()) - threads_before]
    assert left == []  # SpyGlass's, the receiver's and aiortc's threads all ended


def test_a_wrong_token_is_a_failure_with_its_reason() -> None:
    with whip_server(token="s3cret") as server:
        spyglass = SpyGlass(
            server.url(), 30, 160, 120, options={"authorization": "wrong"}, reconnect_initial=0.05
        )
        spyglass.start_streaming()
        assert spyglass.state is SpyGlassState.ERROR  # known when start_streaming returns
        assert spyglass.last_error is not None
        assert "401 Unauthorized" in spyglass.last_error, spyglass.last_error
        assert "\n" not in spyglass.last_error  # one line, not FFmpeg's whole SDP offer
        image = np.zeros((120, 160, 3), np.uint8)
        assert holds_within(lambda: spyglass.put(image) and spyglass.counters()["failures"] >= 2)
        assert spyglass.stop_streaming()
        counts = spyglass.counters()
        assert counts["sent"] == 0 and counts["dropped"] == counts["queued"] > 0
        assert server.refused >= 2 and server.posts == 0 and server.frames == 0


def test_a_receiver_that_goes_away_and_comes_back() -> None:
    server = WhipServer()
    port = server.port
    spyglass = SpyGlass(server.url(), 30, 160, 120, reconnect_initial=0.2, reconnect_max=0.5)
    image = np.zeros((120, 160, 3), np.uint8)
    slowest = 0.0
    stop = threading.Event()

    def put_until_stopped() -> None:
        nonlocal slowest
        while not stop.wait(1 / 30):
            started = time.monotonic()
            spyglass.put(image)
            slowest = max(slowest, time.monotonic() - started)

    spyglass.start_streaming()
    feeder = threading.Thread(target=put_until_stopped, name="whip-test-feeder")
    feeder.start()
    again = None
    try:
        wait_for(lambda: server.frames >= 10, 20, "frames at the first receiver")
        server.close()  # its sessions end (DTLS close_notify) and its UDP ports close
        wait_for(lambda: spyglass.counters()["failures"] >= 1, 20, "the failure seen")
        assert spyglass.last_error is not None
        assert spyglass.state is SpyGlassState.ERROR or spyglass.counters()["reconnects"] >= 1
        again = WhipServer(port=port)
        wait_for(lambda: again is not None and again.frames >= 10, 30, "frames at the second")
    finally:
        stop.set()
        feeder.join(10)
        clean = spyglass.stop_streaming()
        server.close()
        if again is not None:
            again.close()
    assert clean
    counts = spyglass.counters()
    assert counts["reconnects"] >= 1 and counts["failures"] >= 1
    assert counts["put"] == counts["queued"]
    assert counts["sent"] + counts["dropped"] == counts["queued"]  # every frame accounted for
    assert slowest < 0.5, slowest  # the loop never waited on the network


def test_a_dtls_handshake_the_receiver_refuses_is_a_failure_with_its_reason(
    tmp_path: Path,
) -> None:
    # FFmpeg's own certificate is ECDSA P-224: given one like it, aiortc refuses the handshake.
    cert_file, key_file = _certificate_on(ec.SECP224R1(), tmp_path)
    options = {"cert_file": str(cert_file), "key_file": str(key_file)}  # the caller's win
    with whip_server() as server:
        spyglass = SpyGlass(server.url(), 30, 160, 120, options=options, reconnect_initial=0.05)
        spyglass.start_streaming()
        assert spyglass.state is SpyGlassState.ERROR
        assert spyglass.last_error is not None
        assert "DTLS" in spyglass.last_error, spyglass.last_error
        assert spyglass.stop_streaming()
        assert server.posts >= 1 and server.frames == 0
        assert "failed" in server.states
    assert spyglass.counters()["failures"] >= 1


def _certificate_on(curve: ec.EllipticCurve, folder: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(curve)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "p224")])
    now = datetime.now(timezone.utc)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    key_file, cert_file = folder / "key.pem", folder / "cert.pem"
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    return cert_file, key_file


def test_a_receiver_whose_ice_never_answers_is_a_stall_not_a_silent_stream() -> None:
    with whip_server(silent_ice=True) as server:
        spyglass = SpyGlass(
            server.url(), 30, 160, 120, stall_timeout=1.0, reconnect_initial=0.2, reconnect_max=0.5
        )
        spyglass.start_streaming(timeout=60)  # returns when the stall watch gives up
        assert spyglass.state is SpyGlassState.ERROR
        assert spyglass.last_error is not None
        assert "did not complete the connection" in spyglass.last_error, spyglass.last_error
        assert server.posts >= 1 and server.frames == 0  # the offer was answered, then nothing
        assert spyglass.stop_streaming(timeout=1.0) in (True, False)
    assert spyglass.counters()["failures"] >= 1


def test_whips_posts_the_offer_over_https(tmp_path: Path) -> None:
    cert_file, key_file = _certificate_on(ec.SECP256R1(), tmp_path)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_file, key_file)
    with whip_server(token="s3cret", ssl_context=context) as server:
        assert server.url().startswith("whips://")
        spyglass = SpyGlass(server.url("s3cret"), 30, 160, 120, queue_size=30)
        spyglass.start_streaming()
        assert spyglass.state is SpyGlassState.STREAMING, spyglass.last_error
        for index in range(30):
            spyglass.put(np.full((120, 160, 3), 4 * index, np.uint8), time=index / 30)
        holds_within(lambda: server.frames >= 29, 20)
        assert spyglass.stop_streaming()
        assert spyglass.counters()["sent"] == 30
        assert server.frames == 29 and server.sizes == {(160, 120)}
        assert (server.posts, server.deletes) == (1, 1)  # the DELETE went over HTTPS too
