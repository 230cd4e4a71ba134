"""Watching a pipeline live: in the terminal (:func:`watch`)."""

from framescope.live.terminal import watch

__all__ = ["watch"]
