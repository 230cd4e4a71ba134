"""The stage of ``benchmarks/process_start.py``, in a module of its own (as an application's is)."""

from __future__ import annotations

import time

SPIN_S = 0.005
"""How long one item keeps the interpreter busy."""


def spin(item: int) -> int:
    """Pure-Python work for :data:`SPIN_S` (holds the interpreter lock), then the item back."""
    end = time.perf_counter() + SPIN_S
    count = 0
    while time.perf_counter() < end:
        count += 1
    return item
