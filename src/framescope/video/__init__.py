"""Video in and out, on PyAV (``pip install 'framescope[video]'``).

- :class:`VideoSource` reads files, network streams (RTSP, RTMP, HTTP, UDP)
  and V4L2 cameras into :class:`Frame` objects (numpy BGR images, or the
  decoder's own YUV with ``pixel_format="native"``);
  :class:`SyntheticSource` makes a moving test pattern (no download).
- :class:`VideoWriter` encodes frames to a file, an HLS folder or a network
  stream (RTMP, RTSP, UDP, TCP, HTTP, WebRTC published with WHIP).
- :class:`Clips` records event clips with pre-roll: a source's own packets
  or a stage's frames, the seconds before a trigger to after the last.
- :class:`SpyGlass` restreams a pipeline's output without ever blocking the
  frame loop: Backpack's SpyGlass, without a custom OpenCV or GStreamer build.

PyAV's wheels bundle FFmpeg with x264 and x265, which are GPL: mind it when
you ship an image that contains them.
"""

from framescope.video.clips import Clips
from framescope.video.frame import Frame
from framescope.video.source import VideoSource
from framescope.video.spyglass import USE_LAST_VALUE, SpyGlass, SpyGlassState
from framescope.video.synthetic import SyntheticSource
from framescope.video.writer import VideoWriter

__all__ = [
    "USE_LAST_VALUE",
    "Clips",
    "Frame",
    "SpyGlass",
    "SpyGlassState",
    "SyntheticSource",
    "VideoSource",
    "VideoWriter",
]
