"""A live camera served over RTSP by Debian's GStreamer RTSP server, for the video tests.

Run by the system python (it has ``gi``): ``/usr/bin/python3 rtsp_server.py [PORT]``.
It serves a live test pattern (H.264, 320x240 at 30 fps) at
``rtsp://127.0.0.1:PORT/cam`` to clients that pull it (PORT: the one given, or a
free one), prints ``ready PORT``
once it listens, and obeys commands on stdin, one a line:

- ``freeze``: every stream being served stops sending (connections stay open);
  streams opened later flow normally.
- ``drop``: every client is disconnected (the server goes on listening).
- ``quit``: ends it (so does the end of stdin).

Each command is answered with ``done COMMAND``.
"""

from __future__ import annotations

import sys
import threading

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402

PIPELINE = (
    "( videotestsrc is-live=true pattern=ball ! video/x-raw,width=320,height=240,framerate=30/1"
    " ! valve name=valve drop=false"
    " ! x264enc tune=zerolatency speed-preset=ultrafast key-int-max=15"
    " ! rtph264pay name=pay0 pt=96 config-interval=1 )"
)


def main() -> None:
    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(sys.argv[1] if len(sys.argv) > 1 else "0")
    factory = GstRtspServer.RTSPMediaFactory()
    factory.set_launch(PIPELINE)
    factory.set_shared(False)  # each client its own stream: a frozen one stays frozen alone
    valves: list[Gst.Element] = []
    factory.connect("media-configure", lambda _f, media: valves.append(_valve(media)))
    server.get_mount_points().add_factory("/cam", factory)
    server.attach(None)
    loop = GLib.MainLoop()

    def obey(command: str) -> bool:
        if command == "freeze":
            for valve in valves:
                valve.set_property("drop", True)
            valves.clear()
        elif command == "drop":
            server.client_filter(lambda _s, _c: GstRtspServer.RTSPFilterResult.REMOVE)
        elif command == "quit":
            loop.quit()
        print(f"done {command}", flush=True)
        return False

    def read_commands() -> None:
        for line in sys.stdin:
            GLib.idle_add(obey, line.strip())
        GLib.idle_add(obey, "quit")

    threading.Thread(target=read_commands, daemon=True).start()
    GLib.idle_add(lambda: print(f"ready {server.get_bound_port()}", flush=True) and False)
    loop.run()


def _valve(media: GstRtspServer.RTSPMedia) -> Gst.Element:
    valve: Gst.Element = media.get_element().get_by_name("valve")
    return valve


if __name__ == "__main__":
    main()
