"""Kinesis Video Streams: :class:`KVSSpyGlass` and Backpack's credential handlers.

Needs ``framescope[kvs]`` (PyAV, numpy and boto3). PutMedia is spoken by
framescope itself: no KVS Producer SDK, no GStreamer.
"""

from framescope.kvs.acks import ERROR_NAMES, FATAL_ERRORS, Ack, AckParser
from framescope.kvs.credentials import (
    Credentials,
    KVSCredentialsHandler,
    KVSEnvironmentCredentialsHandler,
    KVSFileCredentialsHandler,
    KVSInlineCredentialsHandler,
)
from framescope.kvs.spyglass import KVSSpyGlass

__all__ = [
    "ERROR_NAMES",
    "FATAL_ERRORS",
    "Ack",
    "AckParser",
    "Credentials",
    "KVSCredentialsHandler",
    "KVSEnvironmentCredentialsHandler",
    "KVSFileCredentialsHandler",
    "KVSInlineCredentialsHandler",
    "KVSSpyGlass",
]
