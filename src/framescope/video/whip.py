"""Publishing over WebRTC with WHIP (RFC 9725), through FFmpeg's ``whip`` muxer.

Which URLs are WHIP, and how (see :func:`whip_target`):

- ``whip://host[:port]/path`` is POSTed to ``http://host[:port]/path``, and
  ``whips://`` to ``https://``;
- an ``http://`` or ``https://`` URL is WHIP only with ``format="whip"``
  (without it, it stays MPEG-TS POSTed over HTTP);
- the bearer token (``Authorization: Bearer TOKEN``) is the URL's userinfo,
  ``whip://TOKEN@host/path`` (percent-encoded), or FFmpeg's
  ``options={"authorization": TOKEN}``; the URL shown in logs hides it.

What FFmpeg's muxer needs: H.264 without B-frames (baseline profile here,
its SPS and PPS sent before each key frame), Opus for audio, one stream of
each at most; an FFmpeg 8 or later built with a TLS library, for DTLS. It
connects by ICE to the first UDP host candidate of the receiver's answer and
then does the DTLS handshake as the passive side. Its options pass through
``options``: ``handshake_timeout`` (ms; here the writer's ``timeout``),
``pkt_size`` (1200), ``authorization``, ``cert_file``, ``key_file``. It
sends no ICE consent checks: a receiver that disappears without an ICMP
error or a DTLS alert is not noticed.

Its own DTLS certificate (made by GnuTLS in PyAV's wheels, at GnuTLS's
"medium" security level) is an ECDSA key on curve P-224, which
OpenSSL-based receivers (aiortc, and others) refuse once they read it
(alert 47, illegal_parameter: OpenSSL does not offer P-224).
So a WHIP output gets a certificate of its own, ECDSA P-256, made here with
the ``cryptography`` package and given to FFmpeg as ``cert_file`` and
``key_file`` (:class:`DtlsCertificate`); your own ``cert_file`` and
``key_file`` options win. Without ``cryptography`` FFmpeg's certificate is
used, and a warning says so.
"""

from __future__ import annotations

import importlib.util
import logging
import os
from datetime import datetime, timedelta, timezone
from urllib.parse import SplitResult, unquote, urlsplit, urlunsplit

__all__ = [
    "WHIP_SCHEMES",
    "DtlsCertificate",
    "check_whip_codec",
    "check_whip_muxer",
    "needs_certificate",
    "warn_without_certificate",
    "whip_target",
]

logger = logging.getLogger(__name__)

#: The URL schemes that mean WHIP, and the HTTP scheme the offer is POSTed with.
WHIP_SCHEMES = {"whip": "http", "whips": "https"}
_HTTP_SCHEMES = ("http", "https")


def check_whip_muxer(uri: str) -> None:
    """Raise ImportError, naming ``uri``, when PyAV's FFmpeg has no ``whip`` muxer."""
    from framescope._optional import require  # noqa: PLC0415 - the ground floor, lazily

    av = require("av", "video", "WHIP publishing")
    if "whip" in av.formats_available:
        return
    raise ImportError(
        f"uri {_hidden(uri)!r}: WHIP publishing needs FFmpeg's 'whip' muxer (FFmpeg 8 or "
        f"later, built with TLS), and the installed PyAV {av.__version__} (FFmpeg "
        f"{getattr(av, 'ffmpeg_version_info', 'unknown')}) has none: "
        "pip install --upgrade av"
    )


def check_whip_codec(codec: str) -> str:
    """Return ``codec`` if it encodes H.264 (all FFmpeg's WHIP muxer carries), else ValueError."""
    import av  # noqa: PLC0415 - the caller has checked it is there

    if av.Codec(codec, "w").canonical_name != "h264":
        raise ValueError(
            f"codec: a WHIP output carries H.264 only; got {codec!r} (leave codec out: libx264)"
        )
    return codec


def whip_target(
    uri: str, scheme: str, format: str | None, options: dict[str, str]
) -> tuple[str, dict[str, str], str]:
    """The HTTP(S) URL to POST the offer to, the muxer options, and the URL to show.

    ``scheme`` is ``uri``'s (``whip``, ``whips``, ``http`` or ``https``);
    ``options`` are the caller's (strings), returned with the token added.
    Raises ValueError naming what is wrong.
    """
    if scheme in WHIP_SCHEMES and format not in (None, "whip"):
        raise ValueError(
            f"format: a {scheme}:// URL is published with the 'whip' muxer; got {format!r} "
            "(leave format out)"
        )
    if scheme not in WHIP_SCHEMES and scheme not in _HTTP_SCHEMES:
        allowed = ", ".join(f"{name}://" for name in (*WHIP_SCHEMES, *_HTTP_SCHEMES))
        raise ValueError(f"format: 'whip' publishes to a {allowed} URL; got {_hidden(uri)!r}")
    parts = urlsplit(uri)
    if not parts.hostname:
        raise ValueError(
            f"uri: a WHIP URL names its server, e.g. whip://host:port/path; got {uri!r}"
        )
    options = dict(options)
    token = _token(parts, options)
    if token is not None:
        options["authorization"] = token
    netloc = parts.netloc.rpartition("@")[2]
    url = urlunsplit((WHIP_SCHEMES.get(scheme, scheme), netloc, parts.path, parts.query, ""))
    hidden = ("***@" if token else "") + netloc
    shown = urlunsplit((parts.scheme, hidden, parts.path, parts.query, ""))
    return url, options, shown


def _token(parts: SplitResult, options: dict[str, str]) -> str | None:
    """The bearer token: the URL's userinfo, or the ``authorization`` option (not both)."""
    given = options.get("authorization")
    if "@" not in parts.netloc:
        return given
    userinfo = parts.netloc.rpartition("@")[0]
    if ":" in userinfo or not userinfo:
        raise ValueError(
            "uri: a WHIP URL's userinfo is its bearer token, whip://TOKEN@host/path "
            "(percent-encoded, no ':'); got another form"
        )
    token = unquote(userinfo)
    if given is not None and given != token:
        raise ValueError(
            "options: 'authorization' and the token in the uri differ; give the token once"
        )
    return token


def _hidden(uri: str) -> str:
    """``uri`` with its userinfo (a token) replaced by ``***``."""
    parts = urlsplit(uri)
    if "@" not in parts.netloc:
        return uri
    return urlunsplit(parts._replace(netloc="***@" + parts.netloc.rpartition("@")[2]))


def needs_certificate(options: dict[str, str]) -> bool:
    """Whether a WHIP output with these muxer options should be given a certificate.

    False when the caller gave ``cert_file`` or ``key_file``, or when the
    ``cryptography`` package is missing (FFmpeg then makes its own; a warning
    says what that means).
    """
    if "cert_file" in options or "key_file" in options:
        return False
    return _certificates_available()


def _certificates_available() -> bool:
    return importlib.util.find_spec("cryptography") is not None


def warn_without_certificate(shown: str, options: dict[str, str]) -> None:
    """Say, once per output made, that FFmpeg's own certificate will be used, and its cost."""
    if "cert_file" in options or "key_file" in options or _certificates_available():
        return
    logger.warning(
        "WHIP %s: the 'cryptography' package is not installed, so FFmpeg makes its own "
        "DTLS certificate (ECDSA P-224), which OpenSSL-based receivers such as aiortc "
        "refuse; pip install 'framescope[webrtc]' (or cryptography), "
        "or pass options={'cert_file': ..., 'key_file': ...}",
        shown,
    )


class DtlsCertificate:
    """A self-signed ECDSA P-256 certificate and its key, in files FFmpeg's WHIP muxer reads.

    They are written to a new folder only this user can read (the key's file
    is 0600) and deleted by :meth:`close`. :attr:`options` are the muxer
    options that point FFmpeg at them. The certificate is valid from a day
    before it was made for ``days`` days; WebRTC peers check it by its
    fingerprint (sent in the SDP offer), not by a chain.
    """

    def __init__(self, days: int = 30) -> None:
        from cryptography import x509  # noqa: PLC0415 - an optional package, loaded on use
        from cryptography.hazmat.primitives import hashes, serialization  # noqa: PLC0415
        from cryptography.hazmat.primitives.asymmetric import ec  # noqa: PLC0415
        from cryptography.x509.oid import NameOID  # noqa: PLC0415

        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "framescope")])
        now = datetime.now(timezone.utc)
        certificate = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(days=1))
            .not_valid_after(now + timedelta(days=days))
            .sign(key, hashes.SHA256())
        )
        import tempfile  # noqa: PLC0415 - only a WHIP session (it loads bz2 and lzma)

        self.folder = tempfile.mkdtemp(prefix="framescope-whip-")  # mode 0700
        self.cert_file = os.path.join(self.folder, "cert.pem")
        self.key_file = os.path.join(self.folder, "key.pem")
        key_pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        _write(self.key_file, key_pem)
        _write(self.cert_file, certificate.public_bytes(serialization.Encoding.PEM))

    @property
    def options(self) -> dict[str, str]:
        """The muxer options naming the certificate and key files."""
        return {"cert_file": self.cert_file, "key_file": self.key_file}

    def close(self) -> None:
        """Delete the files (safe to call more than once)."""
        import shutil  # noqa: PLC0415 - only a WHIP session

        shutil.rmtree(self.folder, ignore_errors=True)


def _write(path: str, data: bytes) -> None:
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as out:
        out.write(data)
