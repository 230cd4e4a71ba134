"""Import optional dependencies with an error that names the extra to install."""

from __future__ import annotations

import importlib
from types import ModuleType

__all__ = ["require"]


def require(module: str, extra: str, feature: str) -> ModuleType:
    """Import ``module``, or raise ImportError telling which framescope extra provides it."""
    try:
        return importlib.import_module(module)
    except ImportError as error:
        raise ImportError(
            f"{feature} needs the {module.split('.', maxsplit=1)[0]!r} package: "
            f"pip install 'framescope[{extra}]'"
        ) from error
