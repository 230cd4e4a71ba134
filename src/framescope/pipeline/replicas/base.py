"""Where a stage's replicas run: threads, worker processes, or Ray actors.

``Pipeline.add(stage, replicas=N, executor=...)`` gives a stage ``N``
replicas. Each replica is driven by a thread of the pipeline (it takes items
from the stage's queue, see :mod:`framescope.pipeline.replicas`); the
executor decides what that thread calls:

- ``"thread"``: the stage itself, shared by the replica threads (so it must
  be safe to call from several threads at once; a stage that releases the
  interpreter lock, such as OpenCV, NumPy or PyTorch work, or I/O, scales);
- ``"process"``: a worker process per replica holding its own copy of the
  stage (:mod:`framescope.pipeline.replicas.process`), past the interpreter
  lock;
- ``"ray"``: a Ray actor per replica (:mod:`framescope.pipeline.replicas.ray`).

A remote replica measures the stage where it runs and returns that time with
the result, so the stage's statistics hold processing time, not transport.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from framescope.clock import Clock

__all__ = [
    "EXECUTORS",
    "Executor",
    "Replica",
    "ReplicaLostError",
    "ThreadExecutor",
    "check_picklable",
    "pickle_stage",
]

EXECUTORS = ("thread", "process", "ray")
"""The executors ``Pipeline.add`` takes by name."""


class ReplicaLostError(RuntimeError):
    """A replica's worker (process or actor) died while it held an item; it is restarted."""


class Replica(Protocol):
    """One remote replica: ``call(data)`` returns ``(result, busy_ns)``, ``close`` ends it."""

    restarts: int
    recycles: int

    def call(self, data: Any) -> tuple[Any, int]:
        """Run the stage on ``data`` where the replica lives; the result and its busy time (ns)."""

    def close(self, timeout: float | None) -> None:
        """End the replica's worker (waiting at most ``timeout`` s, then forcing it)."""

    def halt(self) -> None:
        """End the worker now, without waiting (a call in progress raises)."""


class Executor(Protocol):
    """Makes a stage's replicas. ``remote`` is False when they run in this process's threads.

    An executor may also have ``prepare(stage, label)``, called at
    ``parallelize()`` to start ahead of the first item what its replicas come
    from (the process executor's worker server); it returns what to call at
    cleanup to let go of it (or None).
    """

    name: str
    remote: bool

    def check(self, stage: Callable[[Any], Any], label: str) -> None:
        """Refuse, with a clear error, a stage this executor cannot run (called at ``add()``)."""

    def replicas(
        self, stage: Callable[[Any], Any], count: int, label: str, clock: Clock
    ) -> list[Replica]:
        """Start ``count`` replicas of ``stage`` (called when the pipeline starts)."""


class ThreadExecutor:
    """Replicas as threads of this process, sharing the one stage object."""

    name = "thread"
    remote = False

    def check(self, stage: Callable[[Any], Any], label: str) -> None:
        """Any callable runs in a thread."""

    def replicas(
        self, stage: Callable[[Any], Any], count: int, label: str, clock: Clock
    ) -> list[Replica]:
        """Thread replicas call the stage in place: there is nothing to start."""
        return []


def _dumps(stage: object) -> bytes:
    import pickle  # noqa: PLC0415 - loaded on first use (cold start)

    return pickle.dumps(stage, protocol=pickle.HIGHEST_PROTOCOL)


def pickle_stage(stage: Callable[[Any], Any], dumps: Callable[[Any], bytes] = _dumps) -> bytes:
    """The stage pickled for a worker, without the event recorder the pipeline attached."""
    attached = getattr(stage, "__dict__", {})
    recorder = attached.pop("_framescope_events", None)
    try:
        return bytes(dumps(stage))
    finally:
        if recorder is not None:
            attached["_framescope_events"] = recorder


def check_picklable(
    stage: Callable[[Any], Any],
    label: str,
    executor: str,
    dumps: Callable[[Any], bytes] = _dumps,
) -> bytes:
    """Pickle ``stage`` (with ``dumps``) or raise a TypeError saying why it must be and how."""
    try:
        return pickle_stage(stage, dumps)
    except Exception as error:
        raise TypeError(
            f"stage: executor={executor!r} sends a copy of stage {label!r} to each worker, "
            f"so it must be picklable, and it is not ({type(error).__name__}: {error}). "
            "Define it at module level (not inside a function or as a lambda), and open "
            "what cannot be pickled (models, cameras, sockets) on first call in the worker"
        ) from error
