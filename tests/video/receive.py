"""A video receiver for the tests, run as a process: listens (or reads), decodes, reports.

Usage: python -m tests.video.receive URL FORMAT [KEY=VALUE ...]

Prints one JSON line at the end: the frames decoded, their size, the stream
time of the first and last, and how it ended (an I/O error at the end of a
live stream counts as its end, as for any player).
"""

from __future__ import annotations

import json
import sys

import av


def main() -> int:
    url, container_format = sys.argv[1], sys.argv[2]
    options = dict(arg.split("=", 1) for arg in sys.argv[3:])
    frames, size, first, last, ended = 0, None, None, None, "end"
    print(json.dumps({"event": "ready"}), flush=True)
    try:
        container = av.open(url, format=container_format or None, options=options, timeout=(20, 5))
        print(json.dumps({"event": "open"}), flush=True)
        for frame in container.decode(video=0):
            frames += 1
            size = [frame.width, frame.height]
            time = None if frame.time is None else float(frame.time)
            first = time if first is None else first
            last = time
        container.close()
    except (av.FFmpegError, OSError) as error:
        ended = f"{type(error).__name__}: {error}"
    print(
        json.dumps({"frames": frames, "size": size, "first": first, "last": last, "ended": ended}),
        flush=True,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
