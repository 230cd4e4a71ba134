"""WHIP targets: which URLs are WHIP, the token, the checks at construction, the encoder."""

from __future__ import annotations

import importlib.util
import logging
import os
import stat
from pathlib import Path

import pytest

av = pytest.importorskip("av")

from framescope.video import SpyGlass, SpyGlassState, VideoWriter  # noqa: E402
from framescope.video import whip as whip_module  # noqa: E402
from framescope.video import writer as writer_module  # noqa: E402
from framescope.video.targets import resolve_target  # noqa: E402
from framescope.video.whip import DtlsCertificate  # noqa: E402
from tests.polling import holds_within  # noqa: E402

needs_whip = pytest.mark.skipif(
    "whip" not in av.formats_available, reason="this PyAV's FFmpeg has no WHIP muxer"
)
needs_cryptography = pytest.mark.skipif(
    importlib.util.find_spec("cryptography") is None, reason="cryptography is not installed"
)

# -- the URL rule -------------------------------------------------------------------------


@needs_whip
@pytest.mark.parametrize(
    ("uri", "format", "url"),
    [
        ("whip://127.0.0.1:8889/cam/whip", None, "http://127.0.0.1:8889/cam/whip"),
        (
            "whips://example.com/rtc/v1/whip/?app=live",
            None,
            "https://example.com/rtc/v1/whip/?app=live",
        ),
        ("WHIP://example.com/x", None, "http://example.com/x"),
        ("http://127.0.0.1:8080/whip", "whip", "http://127.0.0.1:8080/whip"),
        ("https://example.com/whip", "whip", "https://example.com/whip"),
    ],
)
def test_whip_urls_are_posted_over_http_with_the_whip_muxer(
    uri: str, format: str | None, url: str
) -> None:
    target = resolve_target(uri, format, None)
    assert (target.url, target.format, target.network) == (url, "whip", True)
    assert target.options == {}  # no token


def test_plain_http_stays_mpegts_over_http() -> None:
    target = resolve_target("http://127.0.0.1:8080/whip", None, None)
    assert (target.url, target.format) == ("http://127.0.0.1:8080/whip", "mpegts")


@needs_whip
def test_the_token_is_the_userinfo_and_is_hidden_where_the_url_is_shown() -> None:
    target = resolve_target("whip://ab%2Fc.d-e@127.0.0.1:8889/cam/whip", None, None)
    assert target.url == "http://127.0.0.1:8889/cam/whip"  # not in the URL FFmpeg requests
    assert target.options == {"authorization": "ab/c.d-e"}  # percent-decoded
    assert target.shown == "whip://***@127.0.0.1:8889/cam/whip"
    spyglass = SpyGlass("whip://s3cret@127.0.0.1:8889/cam/whip", 30, 64, 64)
    assert "s3cret" not in repr(spyglass)
    writer = VideoWriter("whip://s3cret@127.0.0.1:8889/cam/whip")
    assert "s3cret" not in repr(writer)


@needs_whip
def test_the_token_may_be_the_authorization_option_and_given_once() -> None:
    target = resolve_target("whip://127.0.0.1/whip", None, {"authorization": "tok"})
    assert target.options == {"authorization": "tok"}
    same = resolve_target("whip://tok@127.0.0.1/whip", None, {"authorization": "tok"})
    assert same.options == {"authorization": "tok"}
    with pytest.raises(ValueError, match=r"^options: 'authorization' and the token in the uri"):
        resolve_target("whip://one@127.0.0.1/whip", None, {"authorization": "two"})


@needs_whip
@pytest.mark.parametrize(
    ("uri", "format", "message"),
    [
        ("whip://user:pass@127.0.0.1/whip", None, r"^uri: a WHIP URL's userinfo is its bearer"),
        ("whip:///whip", None, r"^uri: a WHIP URL names its server"),
        ("whip://127.0.0.1/whip", "flv", r"^format: a whip:// URL is published with the 'whip'"),
        ("rtmp://127.0.0.1/live/x", "whip", r"^format: 'whip' publishes to a whip://.*https://"),
        ("out.mp4", "whip", r"^format: 'whip' publishes to a whip://"),
    ],
)
def test_what_cannot_be_whip_is_refused_by_name(uri: str, format: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        resolve_target(uri, format, None)
    with pytest.raises(ValueError, match=message):
        SpyGlass(uri, 30, 64, 64, format=format)


@needs_whip
def test_a_whip_output_takes_h264_only() -> None:
    with pytest.raises(ValueError, match=r"^codec: a WHIP output carries H.264 only; got 'mpeg4'"):
        SpyGlass("whip://127.0.0.1/whip", 30, 64, 64, codec="mpeg4")
    with pytest.raises(ValueError, match=r"^codec: a WHIP output carries H.264 only"):
        VideoWriter("whip://127.0.0.1/whip", codec="libvpx")
    SpyGlass("whip://127.0.0.1/whip", 30, 64, 64, codec="libx264")  # H.264: taken


# -- a PyAV without the muxer -----------------------------------------------------------------


def test_a_pyav_without_the_whip_muxer_is_an_error_at_construction(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(av, "formats_available", av.formats_available - {"whip"})
    expected = (
        r"^uri 'whip://\*\*\*@127.0.0.1:8889/cam': WHIP publishing needs FFmpeg's 'whip' "
        r"muxer .* has none: pip install --upgrade av$"
    )
    with pytest.raises(ImportError, match=expected):
        SpyGlass("whip://s3cret@127.0.0.1:8889/cam", 30, 64, 64)
    with pytest.raises(ImportError, match=r"^uri 'http://127.0.0.1/x': WHIP publishing needs"):
        VideoWriter("http://127.0.0.1/x", format="whip")
    SpyGlass("http://127.0.0.1/x", 30, 64, 64)  # MPEG-TS over HTTP needs no WHIP muxer


# -- the encoder and the certificate --------------------------------------------------------


@needs_whip
@needs_cryptography
def test_the_encoder_is_h264_baseline_without_b_frames_with_its_sps_in_the_header() -> None:
    writer = VideoWriter("whip://127.0.0.1:9/whip", fps=30, width=64, height=64, gop=10)
    writer.open()  # the muxer reaches the receiver only when the header is written
    try:
        context = writer._stream.codec_context  # type: ignore[attr-defined]
        assert context.max_b_frames == 0
        assert context.codec.name == "libx264"
        frame = av.VideoFrame(64, 64, "yuv420p")
        frame.pts = 0
        frame.time_base = writer._stream.codec_context.time_base  # type: ignore[attr-defined]
        packets = list(writer._stream.encode(frame))  # type: ignore[attr-defined]
        assert packets and packets[0].is_keyframe  # zerolatency: no frame held back
        sps = _first_nal(bytes(context.extradata), 7)  # the muxer reads the profile here
        assert sps[1] == 66  # profile_idc: baseline
        certificate = writer._certificate  # type: ignore[attr-defined]
        assert certificate is not None and os.path.exists(certificate.cert_file)
    finally:
        writer.close()
    assert not os.path.exists(certificate.folder)  # deleted with the writer


def _first_nal(annexb: bytes, kind: int) -> bytes:
    for unit in annexb.replace(b"\x00\x00\x00\x01", b"\x00\x00\x01").split(b"\x00\x00\x01"):
        if unit and unit[0] & 0x1F == kind:
            return unit
    raise AssertionError(f"no NAL unit of type {kind} in {annexb.hex()}")


@needs_cryptography
def test_the_certificate_is_ecdsa_p256_readable_only_by_its_owner() -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    certificate = DtlsCertificate()
    try:
        cert = x509.load_pem_x509_certificate(Path(certificate.cert_file).read_bytes())
        key = load_pem_private_key(Path(certificate.key_file).read_bytes(), None)
        public = cert.public_key()
        assert isinstance(public, ec.EllipticCurvePublicKey)
        assert public.curve.name == "secp256r1"  # OpenSSL offers it; FFmpeg's own is P-224
        assert isinstance(key, ec.EllipticCurvePrivateKey)
        assert key.public_key().public_numbers() == public.public_numbers()
        assert stat.S_IMODE(os.stat(certificate.folder).st_mode) == 0o700
        assert stat.S_IMODE(os.stat(certificate.key_file).st_mode) == 0o600
        assert certificate.options == {
            "cert_file": certificate.cert_file,
            "key_file": certificate.key_file,
        }
    finally:
        certificate.close()
    assert not os.path.exists(certificate.folder)


@needs_whip
def test_without_cryptography_ffmpeg_makes_its_certificate_and_a_warning_says_what_it_costs(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(whip_module, "_certificates_available", lambda: False)
    with caplog.at_level(logging.WARNING, logger="framescope.video.whip"):
        spyglass = SpyGlass("whip://s3cret@127.0.0.1/whip", 30, 64, 64)
    [record] = [r for r in caplog.records if r.name == "framescope.video.whip"]
    assert "'cryptography' package is not installed" in record.getMessage()
    assert "P-224" in record.getMessage() and "whip://***@127.0.0.1/whip" in record.getMessage()
    assert spyglass._certificate() is None  # type: ignore[operator]
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="framescope.video.whip"):
        given = SpyGlass(
            "whip://127.0.0.1/whip", 30, 64, 64, options={"cert_file": "c", "key_file": "k"}
        )
    assert [r for r in caplog.records if r.name == "framescope.video.whip"] == []
    assert given._certificate() is None  # type: ignore[operator]


def test_the_command_line_says_so_too_without_a_traceback(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from framescope.cli import main

    monkeypatch.setattr(av, "formats_available", av.formats_available - {"whip"})
    with pytest.raises(SystemExit) as exit_info:
        main(["demo", "--restream", "whip://127.0.0.1/whip", "--out", str(tmp_path / "out")])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "argument --restream" in err and "pip install --upgrade av" in err
    assert "Traceback" not in err


@needs_whip
@needs_cryptography
@pytest.mark.integration
def test_a_certificate_that_cannot_be_written_is_a_counted_failure(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def full(*args: object, **kwargs: object) -> str:
        raise OSError(28, "No space left on device")

    import tempfile  # the WHIP module loads it for a session (not at import: cold start)

    monkeypatch.setattr(tempfile, "mkdtemp", full)
    spyglass = SpyGlass("whip://127.0.0.1:9/whip", 30, 64, 64, reconnect_initial=0.05)
    spyglass.start_streaming()
    assert spyglass.state is SpyGlassState.ERROR  # the feeder thread goes on, failing
    assert spyglass.last_error == (
        "the WHIP DTLS certificate could not be written: [Errno 28] No space left on device"
    )
    assert holds_within(lambda: spyglass.counters()["failures"] >= 2)
    assert spyglass.stop_streaming()


@needs_whip
@needs_cryptography
def test_a_writer_that_cannot_open_leaves_no_certificate(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    made: list[DtlsCertificate] = []
    real = whip_module.DtlsCertificate.__init__

    def record(self: DtlsCertificate, days: int = 30) -> None:
        real(self, days)
        made.append(self)

    monkeypatch.setattr(whip_module.DtlsCertificate, "__init__", record)
    bad_pixels = VideoWriter("whip://127.0.0.1:9/whip", width=64, height=64, pixel_format="nope")
    with pytest.raises(ValueError, match="nope"):
        bad_pixels.open()
    monkeypatch.setattr(writer_module._av, "open", _refuse)
    unopened = VideoWriter("whip://127.0.0.1:9/whip", width=64, height=64)
    with pytest.raises(OSError, match="refused here"):
        unopened.open()
    assert len(made) == 2
    assert not any(os.path.exists(certificate.folder) for certificate in made)


def _refuse(*args: object, **kwargs: object) -> None:
    raise OSError("refused here")
