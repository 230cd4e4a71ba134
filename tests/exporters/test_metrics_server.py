"""The /metrics server under faults: idle connections, too many clients, HTTPS."""

from __future__ import annotations

import datetime
import socket
import ssl
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("prometheus_client")
pytest.importorskip("cryptography")

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from framescope.exporters.prometheus import PrometheusExporter
from framescope.pipeline import Pipeline
from tests.polling import holds_within
from tests.slow_clients import SlowClients, answer_of

pytestmark = pytest.mark.integration


def handler_threads() -> int:
    return sum(1 for t in threading.enumerate() if t.name.endswith("-conn"))


@pytest.fixture
def exporter() -> Iterator[PrometheusExporter]:
    pipeline = Pipeline(name="Cam").add(lambda x: x, "Decode")
    pipeline.forward(1)
    exporter = PrometheusExporter().add_pipeline(pipeline)
    yield exporter
    exporter.close()
    pipeline.cleanup()


def test_idle_connections_hold_a_bounded_number_of_threads(exporter: PrometheusExporter) -> None:
    server = exporter.serve(max_connections=4, request_timeout=60, header_timeout=60)
    idle = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(60)]
    try:
        # At most 4 wait for their request head; each newer one made the oldest go (503).
        assert answer_of(idle[0]).startswith(b"HTTP/1.0 503")
        assert holds_within(lambda: server.refused == 56)
        assert holds_within(lambda: handler_threads() <= 4)  # not one per connection
        # They take no slot: a scrape gets through while they wait.
        body = urllib.request.urlopen(server.url, timeout=5).read().decode()
        assert "framescope_pipeline_forwarded_items_total" in body
    finally:
        for connection in idle:
            connection.close()
    assert holds_within(lambda: server.handler_threads() == 0)


def test_slow_clients_never_keep_a_scrape_out(exporter: PrometheusExporter) -> None:
    server = exporter.serve(max_connections=8, request_timeout=30, header_timeout=2)
    slow = SlowClients(server.port, 24, "/metrics")
    try:
        assert holds_within(lambda: server.handler_threads() == 8)  # 8 still on their head
        for _ in range(5):
            body = urllib.request.urlopen(server.url, timeout=5).read().decode()
            assert "framescope_pipeline_forwarded_items_total" in body
        timed_out = slow.all_cut(header_timeout=2)
        assert timed_out >= 1 and server.timed_out == timed_out
    finally:
        slow.close()


def test_close_ends_connections_that_are_still_open(exporter: PrometheusExporter) -> None:
    server = exporter.serve(request_timeout=60)
    stalled = socket.create_connection(("127.0.0.1", server.port))
    stalled.sendall(b"GET /metrics HTTP/1.0\r\n")  # never finishes its request
    assert holds_within(lambda: server.handler_threads() == 1)
    assert server.close(timeout=5)  # not held for the 60 s read timeout
    assert handler_threads() == 0
    stalled.close()


def self_signed(folder: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.timezone.utc)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def test_https_with_an_ssl_context(exporter: PrometheusExporter, tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server = exporter.serve(ssl_context=context, request_timeout=60, header_timeout=1)
    assert server.url.startswith("https://")
    client = ssl.create_default_context(cafile=str(cert))
    url = f"https://localhost:{server.port}/metrics"
    body = urllib.request.urlopen(url, timeout=5, context=client).read().decode()
    assert "framescope_pipeline_forwarded_items_total" in body
    with pytest.raises((urllib.error.URLError, ConnectionError)):  # plain HTTP: refused
        urllib.request.urlopen(f"http://127.0.0.1:{server.port}/metrics", timeout=5).read()
    # A client that never says hello, and one that never ends its request head,
    # are cut at the head's deadline, long before a read would time out.
    silent = socket.create_connection(("127.0.0.1", server.port))
    slow = client.wrap_socket(
        socket.create_connection(("127.0.0.1", server.port)), server_hostname="localhost"
    )
    slow.sendall(b"GET /metrics HTTP/1.0\r\n")
    assert holds_within(lambda: server.timed_out == 2)
    assert holds_within(lambda: server.handler_threads() == 0)
    silent.close()
    slow.close()


def test_bad_server_options_are_refused(exporter: PrometheusExporter) -> None:
    with pytest.raises(ValueError, match="max_connections"):
        exporter.serve(max_connections=0)
    with pytest.raises(ValueError, match="request_timeout"):
        exporter.serve(request_timeout=-1)
    with pytest.raises(ValueError, match="header_timeout"):
        exporter.serve(header_timeout=0)
    with pytest.raises(TypeError, match="ssl_context"):
        exporter.serve(ssl_context="cert.pem")  # type: ignore[arg-type]
