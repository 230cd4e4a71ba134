"""Watching a pipeline live: in the browser (:class:`LiveView`) or the terminal (:func:`watch`)."""

from framescope.live.preview import PreviewTap
from framescope.live.server import LiveView
from framescope.live.terminal import watch

__all__ = ["LiveView", "PreviewTap", "watch"]
