"""A real moto server on loopback, and boto3 sessions pointed at it."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

REGION = "eu-west-1"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass
class MotoEndpoint:
    """A ThreadedMotoServer that tests can stop and start again on the same port."""

    port: int
    server: object | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        moto_server = pytest.importorskip("moto.server")
        server = moto_server.ThreadedMotoServer(
            ip_address="127.0.0.1", port=self.port, verbose=False
        )
        server.start()
        self.server = server

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()  # type: ignore[attr-defined]
            self.server = None

    def session(self) -> object:
        boto3 = pytest.importorskip("boto3")
        return boto3.Session(
            aws_access_key_id="testing", aws_secret_access_key="testing", region_name=REGION
        )

    def client(self, service: str) -> object:
        return self.session().client(service, endpoint_url=self.url)  # type: ignore[attr-defined]


@pytest.fixture(scope="session")
def moto_server() -> Iterator[MotoEndpoint]:
    """One moto server on a free loopback port for the whole session."""
    endpoint = MotoEndpoint(free_port())
    endpoint.start()
    try:
        yield endpoint
    finally:
        endpoint.stop()


@pytest.fixture
def moto(moto_server: MotoEndpoint) -> Iterator[MotoEndpoint]:
    """The session's moto server, its data reset for this test (started again if a test
    stopped it, on the same port)."""
    import requests

    if moto_server.server is None:
        moto_server.start()
    requests.post(f"{moto_server.url}/moto-api/reset", timeout=5).raise_for_status()
    yield moto_server
    if moto_server.server is None:  # the test took it down: the next one finds it up
        moto_server.start()


def wait_until(predicate: object, timeout: float = 10.0) -> bool:
    """Poll ``predicate`` until it is true or ``timeout`` seconds pass (for real servers)."""
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return True
        time.sleep(0.01)
    return bool(predicate())  # type: ignore[operator]
