"""Where the time goes inside a PyTorch model and its pre- and post-processing.

:class:`ModelTiming` instruments a model's submodules and the transforms around
it for the duration of a ``with`` block and reports per-module total, child and
self time per call as a table, a tree, JSON or a rich renderable. Needs the
``torch`` extra (``pip install 'framescope[torch]'``); importing this package
does not import torch.
"""

from framescope.modeltiming.report import TimingNode, format_table, format_tree
from framescope.modeltiming.timing import ForwardTimer, ModelTiming, ModuleTimingAtom

__all__ = [
    "ForwardTimer",
    "ModelTiming",
    "ModuleTimingAtom",
    "TimingNode",
    "format_table",
    "format_tree",
]
