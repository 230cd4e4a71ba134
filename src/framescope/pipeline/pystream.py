"""PyStream's module-level names, for code that imports them from ``framescope.pipeline``.

``MAIN_PIPELINE_NAME`` is the root's name in profile keys; ``logger`` the
pipeline package's logger; ``PipelineUndefined`` the error PyStream raised
when a pipeline was used before ``serialize()`` or ``parallelize()``.
framescope never raises it there: a pipeline used before either runs
serially (the class exists so that ``except PipelineUndefined`` keeps
working). PyStream kept profiles in an SQLite file whose folder
``set_profiler_db_folder`` chose; framescope keeps them in memory, so the
folder is remembered and reported by ``get_profiler_db_folder`` but nothing
is written there.
"""

from __future__ import annotations

import logging
import os

__all__ = [
    "MAIN_PIPELINE_NAME",
    "PipelineUndefined",
    "get_profiler_db_folder",
    "logger",
    "set_profiler_db_folder",
]

MAIN_PIPELINE_NAME = "MainPipeline"
"""The name of the main pipeline in profile keys (``MainPipeline__Stage_1``)."""

logger = logging.getLogger("framescope.pipeline")
"""The pipeline package's logger (PyStream's ``pystream.logger``)."""

_profiler_db_folder = os.path.join(os.getcwd(), "user_data")


class PipelineUndefined(RuntimeError):  # noqa: N818 - PyStream's name
    """PyStream's error for a pipeline used before ``serialize()``/``parallelize()``.

    framescope starts such a pipeline serially instead, so it does not raise
    this; it is here for code that catches it.
    """


def set_profiler_db_folder(folder_path: str) -> None:
    """Remember ``folder_path`` as PyStream's profiler folder (nothing is written there)."""
    global _profiler_db_folder  # noqa: PLW0603 - PyStream's module-level setting
    if not isinstance(folder_path, (str, os.PathLike)):
        raise TypeError(f"folder_path must be a path, got {type(folder_path).__name__}")
    _profiler_db_folder = os.fspath(folder_path)
    logger.info(
        "set_profiler_db_folder(%r): framescope keeps profiles in memory; nothing is written",
        _profiler_db_folder,
    )


def get_profiler_db_folder() -> str:
    """The folder given to :func:`set_profiler_db_folder` (PyStream's default otherwise)."""
    return _profiler_db_folder
