"""Shared memory a child process attaches to without taking ownership of it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from multiprocessing import shared_memory

__all__ = ["attach_untracked"]


def attach_untracked(name: str) -> shared_memory.SharedMemory:
    """Open a block another process made, without this process's tracker removing it at exit.

    The maker owns the block and unlinks it; an attaching process that the
    tracker also watched would unlink it (and warn) when it ends.
    """
    from multiprocessing import resource_tracker, shared_memory  # noqa: PLC0415 - loaded on first use (cold start)

    untracked: dict[str, Any] = {"track": False}  # Python 3.13's switch
    try:
        return shared_memory.SharedMemory(name=name, **untracked)
    except TypeError:  # before Python 3.13 every attach is tracked: keep it out
        register = resource_tracker.register
        setattr(resource_tracker, "register", lambda *args, **kwargs: None)  # noqa: B010
        try:
            return shared_memory.SharedMemory(name=name)
        finally:
            setattr(resource_tracker, "register", register)  # noqa: B010
