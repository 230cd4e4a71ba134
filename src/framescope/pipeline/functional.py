"""PyStream's ``functional`` helpers: one stage made of several functions.

``func_serial([f, g, h])`` is one function that runs them in turn (each on
the previous one's result); ``func_parallel_thread([f, g])`` runs them at
the same time on the same item, which they change in place, and returns
that item.
"""

from __future__ import annotations

import atexit
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Executor, ThreadPoolExecutor
from typing import Any

__all__ = ["func_parallel_thread", "func_serial"]

_shared: ThreadPoolExecutor | None = None
_shared_lock = threading.Lock()


def _shared_executor() -> ThreadPoolExecutor:
    """The pool used when none is given: 10 threads, made on first use, ended at exit."""
    global _shared  # noqa: PLW0603 - one pool for the process, as PyStream's
    with _shared_lock:
        if _shared is None:
            _shared = ThreadPoolExecutor(max_workers=10, thread_name_prefix="functional")
            atexit.register(_shared.shutdown, wait=False)
        return _shared


def _checked(funcs: Sequence[Callable[[Any], Any]]) -> list[Callable[[Any], Any]]:
    if isinstance(funcs, (str, bytes)) or not isinstance(funcs, Sequence):
        raise TypeError(f"funcs must be a list of functions, got {type(funcs).__name__}")
    for func in funcs:
        if not callable(func):
            raise TypeError(f"funcs must hold functions, got {type(func).__name__}")
    return list(funcs)


def func_serial(funcs: Sequence[Callable[[Any], Any]]) -> Callable[[Any], Any]:
    """One function that runs ``funcs`` in turn, each on the previous result."""
    chain = _checked(funcs)

    def serial(data: Any) -> Any:
        for func in chain:
            data = func(data)
        return data

    return serial


def func_parallel_thread(
    funcs: Sequence[Callable[[Any], Any]], executor: Executor | None = None
) -> Callable[[Any], Any]:
    """One function that runs ``funcs`` at once on the same item (in place) and returns it.

    They run on ``executor`` (default: a shared pool of 10 threads); the
    first exception one of them raises is raised again, after all finished.
    Their return values are not used.
    """
    group = _checked(funcs)

    def parallel(data: Any) -> Any:
        pool = executor if executor is not None else _shared_executor()
        futures = [pool.submit(func, data) for func in group]
        errors = [future.exception() for future in futures]
        for error in errors:
            if error is not None:
                raise error
        return data

    return parallel
