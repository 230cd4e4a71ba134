"""Ray replicas: each replica a Ray actor holding a copy of the stage (``framescope[ray]``).

Connect to a cluster yourself first (``ray.init(address=...)``); when Ray is
not initialised, framescope starts a local instance bound to 127.0.0.1,
without the dashboard and without usage reporting. Items travel through Ray's
object store, so NumPy frames arrive **read-only** in the actor: a stage that
draws on its frame must copy it first (``frame = frame.copy()``); the error a
write raises says so. An actor that dies fails the item it held with
:class:`~framescope.pipeline.ReplicaLostError` (counted as the
stage's failure) and a new actor takes its place for the next item.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from framescope._keys import replica_key
from framescope._optional import require
from framescope.clock import Clock
from framescope.pipeline.replicas.base import Replica, ReplicaLostError, check_picklable

__all__ = ["RayExecutor", "RayReplica", "StageActor"]

_init_lock = threading.Lock()
_READ_ONLY_HINT = (
    "frames reach a Ray actor read-only (through Ray's object store); "
    "copy the frame before writing to it: frame = frame.copy()"
)


def _ray() -> Any:
    return require("ray", "ray", "Ray replicas (executor='ray')")


def ensure_ray() -> Any:
    """Ray, initialised: the user's cluster, or a local one on loopback when there is none."""
    ray = _ray()
    with _init_lock:
        if not ray.is_initialized():
            os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
            ray.init(
                include_dashboard=False,
                log_to_driver=False,
                _node_ip_address="127.0.0.1",
            )
    return ray


class StageActor:
    """What runs inside each actor: the unpickled stage, timed there."""

    def __init__(self, stage_bytes: bytes) -> None:
        self.stage = pickle.loads(stage_bytes)

    def call(self, data: Any) -> tuple[Any, int]:
        """Run the stage; the result and the time it took (ns)."""
        start = time.monotonic_ns()
        try:
            result = self.stage(data)
        except ValueError as error:
            if "read-only" in str(error):
                raise ValueError(f"{error}: {_READ_ONLY_HINT}") from error
            raise
        return result, time.monotonic_ns() - start

    def cleanup(self) -> None:
        """Call the stage copy's ``cleanup()``."""
        cleanup = getattr(self.stage, "cleanup", None)
        if callable(cleanup):
            cleanup()


class RayExecutor:
    """Runs each replica of a stage as a Ray actor (``executor="ray"``).

    Args:
        actor_options: passed to ``ray.remote`` for each actor (e.g.
            ``{"num_cpus": 1, "num_gpus": 0.5}``; default ``num_cpus=1``): a
            dict with str keys, or None.
    """

    name = "ray"
    remote = True

    def __init__(self, actor_options: dict[str, Any] | None = None) -> None:
        if actor_options is not None and not isinstance(actor_options, Mapping):
            raise TypeError(
                "actor_options must be a dict of ray.remote options (such as "
                f'{{"num_cpus": 1}}) or None, got {type(actor_options).__name__}'
            )
        for key in actor_options or {}:
            if not isinstance(key, str):
                raise TypeError(
                    f"actor_options keys must be str (ray.remote option names), got {key!r}"
                )
        self.actor_options = {"num_cpus": 1, **(actor_options or {})}

    def check(self, stage: Callable[[Any], Any], label: str) -> None:
        """Refuse a stage Ray cannot send to an actor (and say that Ray is missing)."""
        self._pickled(stage, label)

    def _pickled(self, stage: Callable[[Any], Any], label: str) -> bytes:
        return check_picklable(stage, label, self.name, dumps=_ray().cloudpickle.dumps)

    def replicas(
        self, stage: Callable[[Any], Any], count: int, label: str, clock: Clock
    ) -> list[Replica]:
        """Start ``count`` actors, each with a copy of ``stage``."""
        stage_bytes = self._pickled(stage, label)
        ray = ensure_ray()
        actor_class = ray.remote(**self.actor_options)(StageActor)
        return [RayReplica(actor_class, stage_bytes, replica_key(label, i)) for i in range(count)]


class RayReplica:
    """One actor; a new one replaces it when it dies."""

    def __init__(self, actor_class: Any, stage_bytes: bytes, label: str) -> None:
        self.label = label
        self.restarts = 0
        self.recycles = 0  # an actor is never replaced for its bounds; only ProcessExecutor's
        self._actor_class = actor_class
        self._stage_bytes = stage_bytes
        self._closed = False
        self._busy = False
        self._actor: Any = actor_class.remote(stage_bytes)

    def call(self, data: Any) -> tuple[Any, int]:
        """Run the stage on ``data`` in the actor; its result and the time it took there."""
        ray = _ray()
        if self._closed:
            raise ReplicaLostError(f"replica {self.label} was closed")
        if self._actor is None:
            self.restarts += 1
            self._actor = self._actor_class.remote(self._stage_bytes)
        self._busy = True
        try:
            result, busy = ray.get(self._actor.call.remote(data))
        except ray.exceptions.RayActorError as error:
            self._actor = None
            raise ReplicaLostError(
                f"replica {self.label}: its Ray actor died while it held this item; "
                "a new one starts with the next item"
            ) from error
        except ray.exceptions.RayTaskError as error:
            cause = error.as_instanceof_cause()
            raise cause from None
        finally:
            self._busy = False
        return result, int(busy)

    def halt(self) -> None:
        """The pipeline stops: end an actor that is busy on an item, so its thread returns."""
        self._closed = True
        actor = self._actor
        if self._busy and actor is not None:
            self._actor = None
            with contextlib.suppress(Exception):
                _ray().kill(actor)

    def close(self, timeout: float | None) -> None:
        """Run the stage copy's ``cleanup()`` in the actor (within ``timeout``), then end it."""
        ray = _ray()
        self._closed = True
        actor, self._actor = self._actor, None
        if actor is None:
            return
        with contextlib.suppress(Exception):
            ray.get(actor.cleanup.remote(), timeout=2.0 if timeout is None else max(0.1, timeout))
        with contextlib.suppress(Exception):
            ray.kill(actor)
