"""The grammar of profile keys: the one place they are built and taken apart.

A stage's key joins its pipeline's name and the names of the pipelines it is
nested in with :data:`SEPARATOR` (``MainPipeline__Inner__Resize``); a
replica's key adds ``#`` and its number (``MainPipeline__Infer#1``); a fleet
view puts a box's name in front (``box1__MainPipeline__Infer``).
"""

from __future__ import annotations

__all__ = [
    "REPLICA_MARK",
    "SEPARATOR",
    "check_name",
    "join_key",
    "leaf_name",
    "replica_index",
    "replica_key",
    "without_prefix",
]

SEPARATOR = "__"
"""Joins pipeline and stage names in profile keys: ``MainPipeline__Stage1``."""
REPLICA_MARK = "#"
"""Ends a replica's key before its number: ``MainPipeline__Infer#0``."""


def check_name(name: object, argument: str) -> str:
    """Return ``name`` if it can be a pipeline or stage name, else raise a clear error."""
    if not isinstance(name, str):
        raise TypeError(f"{argument} must be a str, got {type(name).__name__}")
    if not name or SEPARATOR in name:
        raise ValueError(
            f"{argument} must be a non-empty str without {SEPARATOR!r} "
            f"(it separates levels in profile keys), got {name!r}"
        )
    return name


def join_key(*parts: str) -> str:
    """The key of the last part under the others (empty parts are left out)."""
    return SEPARATOR.join(part for part in parts if part)


def replica_key(key: str, index: int) -> str:
    """The key of replica ``index`` of the stage ``key``."""
    return f"{key}{REPLICA_MARK}{index}"


def replica_index(key: str) -> int | None:
    """The replica number at the end of ``key`` (None when it is not a replica's key)."""
    head, mark, number = key.rpartition(REPLICA_MARK)
    if not mark or not head or not number.isdecimal():
        return None
    return int(number)


def without_prefix(key: str, prefix: str) -> str:
    """``key`` below ``prefix`` (``Inner__Resize`` for ``Main__Inner__Resize`` under ``Main``)."""
    head = prefix + SEPARATOR
    return key[len(head) :] if key.startswith(head) else key


def leaf_name(key: str) -> str:
    """The last name of ``key`` (the stage's own name: ``Resize`` for ``Main__Inner__Resize``)."""
    return key.rsplit(SEPARATOR, 1)[-1]
