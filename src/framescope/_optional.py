"""Import optional dependencies with an error that names the extra to install."""

from __future__ import annotations

import importlib
import importlib.util
from types import ModuleType

__all__ = ["require", "require_installed"]


def require(module: str, extra: str, feature: str) -> ModuleType:
    """Import ``module``, or raise ImportError telling which framescope extra provides it."""
    try:
        return importlib.import_module(module)
    except ImportError as error:
        raise ImportError(_missing(module, extra, feature)) from error


def require_installed(module: str, extra: str, feature: str) -> None:
    """Raise :func:`require`'s ImportError if ``module`` is not installed, without importing it
    (another process will: this one need not pay for loading it)."""
    if importlib.util.find_spec(module.split(".", maxsplit=1)[0]) is None:
        raise ImportError(_missing(module, extra, feature))


def _missing(module: str, extra: str, feature: str) -> str:
    return (
        f"{feature} needs the {module.split('.', maxsplit=1)[0]!r} package: "
        f"pip install 'framescope[{extra}]'"
    )
