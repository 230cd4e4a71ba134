"""Backpack's credential handlers: what they give, and that no secret shows."""

from __future__ import annotations

import logging

import pytest

pytest.importorskip("boto3")

from framescope.kvs import (
    KVSEnvironmentCredentialsHandler,
    KVSFileCredentialsHandler,
    KVSInlineCredentialsHandler,
    KVSSpyGlass,
)

KEY, SECRET, TOKEN = "AKIDINLINE000001", "inline/secret+KEY", "inline-token"


def test_inline_credentials_are_the_ones_given_with_the_secret_as_the_secret() -> None:
    handler = KVSInlineCredentialsHandler(KEY, SECRET, TOKEN)
    found = handler.credentials()
    assert (found.access_key, found.secret_key, found.token) == (KEY, SECRET, TOKEN)
    assert found.expiry is None and found.seconds_left() is None
    session = handler.boto3_session("eu-west-1")
    assert session.get_credentials().secret_key == SECRET  # Backpack used the key id here
    assert SECRET not in repr(handler) + repr(found) + str(found)
    assert TOKEN not in repr(found)
    with pytest.raises(ValueError, match="aws_secret_access_key must be a non-empty str"):
        KVSInlineCredentialsHandler(KEY, "")


def test_environment_credentials_follow_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDENVIRON00001")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "env-secret-1")
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    handler = KVSEnvironmentCredentialsHandler()
    assert handler.credentials().secret_key == "env-secret-1"
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "env-secret-2")  # rotated by the platform
    assert handler.credentials().secret_key == "env-secret-2"
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    with pytest.raises(RuntimeError, match="AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY") as error:
        handler.credentials()
    assert "env-secret" not in str(error.value)


def test_environment_handler_given_keys_puts_them_in_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    handler = KVSEnvironmentCredentialsHandler("AKIDGIVEN0000001", "given-secret")
    assert handler.credentials().access_key == "AKIDGIVEN0000001"


def test_file_handler_reads_the_default_session(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDROLE00000001")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "role-secret")
    handler = KVSFileCredentialsHandler(credentials_path="/tmp/credentials.txt")
    assert handler.credentials().access_key == "AKIDROLE00000001"
    assert handler.credentials_path == "/tmp/credentials.txt"


def test_each_handler_has_its_own_session() -> None:
    one, two = KVSInlineCredentialsHandler(KEY, SECRET), KVSInlineCredentialsHandler(KEY, "other")
    assert one.boto3_session() is not two.boto3_session()
    assert two.credentials().secret_key == "other"


def test_kvsspyglass_checks_its_arguments(caplog: pytest.LogCaptureFixture) -> None:
    handler = KVSInlineCredentialsHandler(KEY, SECRET)
    with pytest.raises(ValueError, match="stream_name must be a non-empty str"):
        KVSSpyGlass("eu-west-1", "", handler)
    with pytest.raises(
        TypeError, match=r"credentials_handler must be a KVS\.\.\.CredentialsHandler"
    ):
        KVSSpyGlass("eu-west-1", "s", "AKID:secret")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="fragment_s must be at most 10"):
        KVSSpyGlass("eu-west-1", "s", handler, fragment_s=12)
    with pytest.raises(ValueError, match="width must be even"):
        KVSSpyGlass("eu-west-1", "s", handler, 30, 641, 480)
    caplog.set_level(logging.INFO)
    glass = KVSSpyGlass("eu-west-1", "s", handler, dotenv_path="/panorama/.env")
    assert "is not needed (no GStreamer plugin) and is ignored" in caplog.text
    assert repr(glass) == "KVSSpyGlass(stream_region='eu-west-1', stream_name='s', state=STOPPED)"
    assert glass.counters()["put"] == 0
