"""The executor ``Pipeline.add(executor=...)`` names, checked with the replica count.

Process and Ray replicas are imported when first named, so a thread-only
pipeline never loads multiprocessing or Ray.
"""

from __future__ import annotations

from framescope._validation import check_positive_int
from framescope.pipeline.replicas.base import EXECUTORS, Executor, ThreadExecutor

__all__ = ["resolve_executor"]


def resolve_executor(executor: object, replicas: object) -> Executor:
    """Check ``add()``'s ``replicas`` and return the executor ``executor`` names."""
    check_positive_int(replicas, "replicas")
    if isinstance(executor, str):
        if executor == "thread":
            return ThreadExecutor()
        if executor == "process":
            from framescope.pipeline.replicas.process import (  # noqa: PLC0415 - loaded on first use (cold start)
                ProcessExecutor,
            )

            return ProcessExecutor()
        if executor == "ray":
            from framescope.pipeline.replicas.ray import (  # noqa: PLC0415 - loaded on first use (cold start)
                RayExecutor,
            )

            return RayExecutor()
        raise ValueError(f"executor must be one of {', '.join(EXECUTORS)}, got {executor!r}")
    if all(hasattr(executor, name) for name in ("name", "remote", "check", "replicas")):
        return executor  # type: ignore[return-value]
    raise TypeError(
        f"executor must be one of {', '.join(map(repr, EXECUTORS))} or an executor object "
        f"(with name, remote, check and replicas), got {type(executor).__name__}"
    )
