"""The executor ``Pipeline.add(executor=...)`` names, checked with the replica count."""

from __future__ import annotations

from framescope._validation import check_positive_int
from framescope.pipeline.replicas.base import EXECUTORS, Executor, ThreadExecutor
from framescope.pipeline.replicas.process import ProcessExecutor
from framescope.pipeline.replicas.ray import RayExecutor

__all__ = ["resolve_executor"]


def resolve_executor(executor: object, replicas: object) -> Executor:
    """Check ``add()``'s ``replicas`` and return the executor ``executor`` names."""
    check_positive_int(replicas, "replicas")
    if isinstance(executor, str):
        if executor == "thread":
            return ThreadExecutor()
        if executor == "process":
            return ProcessExecutor()
        if executor == "ray":
            return RayExecutor()
        raise ValueError(f"executor must be one of {', '.join(EXECUTORS)}, got {executor!r}")
    if all(hasattr(executor, name) for name in ("name", "remote", "check", "replicas")):
        return executor  # type: ignore[return-value]
    raise TypeError(
        f"executor must be one of {', '.join(map(repr, EXECUTORS))} or an executor object "
        f"(with name, remote, check and replicas), got {type(executor).__name__}"
    )
