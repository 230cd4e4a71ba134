"""Cost of the browser live view, as a ratio measured in one run.

Run: python benchmarks/live.py [--seconds 4] [--runs 5]

A 4-stage threaded pipeline of 640x480 frames (each stage does a little
numpy work) runs as fast as it can for --seconds, alternately without a
live view and with one (its preview taps the Draw stage) serving at 2 Hz
to one client that reads the event stream and a 640x480 MJPEG preview
(10 fps), as a browser would. Target:
with the view, >= 97% of the throughput without it (median of the pairs).
Also printed: the size of one event for 20 stages.
"""

from __future__ import annotations

import argparse
import statistics
import threading
import time
import urllib.request
from typing import Any

import numpy as np

from framescope import Pipeline
from framescope.live import LiveView


def work(frame: Any) -> Any:
    np.multiply(frame[::8, ::8], 1, out=frame[::8, ::8])  # touch the image, as a stage would
    return frame


def build(view: bool) -> tuple[Pipeline, LiveView | None]:
    pipeline = Pipeline(name="Bench")
    live = LiveView(pipeline, refresh=0.5) if view else None
    for name in ("Decode", "Detect", "Track", "Draw"):
        pipeline.add(work, name)
    if live is not None:
        live.preview("annotated", "Draw")  # taps Draw's results: no stage is added
    pipeline.parallelize(queue_size=4, input_timeout=None)
    return pipeline, live


def read(url: str, stop: threading.Event) -> None:
    with urllib.request.urlopen(url, timeout=10) as stream:
        while not stop.is_set() and stream.read(65536):
            pass


def throughput(seconds: float, view: bool) -> float:
    pipeline, live = build(view)
    frame = np.zeros((480, 640, 3), np.uint8)
    stop = threading.Event()
    readers = []
    if live is not None:
        live.start()
        for path in ("events", "video/annotated.mjpg"):
            reader = threading.Thread(target=read, args=(live.url + path, stop))
            reader.start()
            readers.append(reader)

    def feed() -> None:  # as fast as the first stage takes them; results nobody reads drop
        while not stop.is_set():
            pipeline.forward(frame)

    feeder = threading.Thread(target=feed)
    feeder.start()
    time.sleep(0.5)  # warm up
    start, before = time.perf_counter(), pipeline.counters()["completed"]
    time.sleep(seconds)
    done = pipeline.counters()["completed"] - before
    elapsed = time.perf_counter() - start
    stop.set()
    feeder.join()
    if live is not None:
        live.close()
    for reader in readers:
        reader.join(5)
    pipeline.cleanup()
    return done / elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    pairs = []
    for run in range(args.runs):
        if run % 2:  # alternate which goes first, so that neither gains from the order
            with_view, without = throughput(args.seconds, True), throughput(args.seconds, False)
        else:
            without, with_view = throughput(args.seconds, False), throughput(args.seconds, True)
        pairs.append((with_view, without))
    ratio = statistics.median(w / wo for w, wo in pairs)
    print(
        f"4 stages of 640x480 frames: without a view {statistics.median(p[1] for p in pairs):,.0f}"
        f" items/s, with one (2 Hz events + 10 fps MJPEG to one client) "
        f"{statistics.median(p[0] for p in pairs):,.0f} items/s: {ratio:.1%} "
        f"(>= 97% {'ok' if ratio >= 0.97 else 'MISSED'}; pairs "
        f"{min(w / wo for w, wo in pairs):.0%}-{max(w / wo for w, wo in pairs):.0%})"
    )
    many = Pipeline(name="Cam", debug=True)
    for index in range(20):
        many.add(lambda x: x, f"Stage{index:02d}")
    many.parallelize(queue_size=4)
    for _ in many.run(range(500)):
        pass
    with LiveView(many) as view, urllib.request.urlopen(view.url + "view.json") as response:
        size = len(response.read())
    many.cleanup()
    verdict = "ok" if size < 50_000 else "MISSED"
    print(f"one event for 20 stages: {size:,} bytes (< 50,000 {verdict})")
    return 0 if ratio >= 0.97 and size < 50_000 else 1


if __name__ == "__main__":
    raise SystemExit(main())
