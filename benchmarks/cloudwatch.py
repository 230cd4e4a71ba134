"""Frame-loop cost of a TickerTachometer wired to CloudWatch, endpoint slow or down.

Run: python benchmarks/cloudwatch.py [--quick]

A frame loop ticks a TickerTachometer and does a little per-frame work (a
``frame_us`` busy loop, 0 for tick-only). The tachometer reports every
``--interval`` seconds (10 ms by default: 6,000 times more often than the usual
60 s, to stress the reporting path). It is timed three ways, alternating, best
of several rounds each:

- bare: the stats callback does nothing (no exporter);
- slow: wired to CloudWatchTimerAdapter.send_metrics, the endpoint a real moto
  server behind a proxy that holds every response 500 ms;
- down: the endpoint's port is closed.

Figures are ns per frame and the ratio to bare (target <= 1.2x).
"""

from __future__ import annotations

import argparse
import http.client
import logging
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import boto3
from moto.server import ThreadedMotoServer

from framescope.cwadapter import CloudWatchTimerAdapter
from framescope.timepiece import TickerTachometer


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class SlowProxy:
    """Forwards every request to ``target_port`` and answers 500 ms late."""

    def __init__(self, target_port: int, delay_s: float = 0.5) -> None:
        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                time.sleep(delay_s)
                upstream = http.client.HTTPConnection("127.0.0.1", target_port, timeout=10)
                upstream.request("POST", self.path, body, dict(self.headers.items()))
                response = upstream.getresponse()
                payload = response.read()
                self.send_response(response.status)
                for key, value in response.getheaders():
                    if key.lower() not in ("content-length", "connection", "transfer-encoding"):
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
                upstream.close()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def busy(us: float) -> None:
    """Spin for ``us`` microseconds (per-frame work that holds the interpreter)."""
    end = time.perf_counter_ns() + int(us * 1000)
    while time.perf_counter_ns() < end:
        pass


def frame_loop(tach: TickerTachometer, frames: int, frame_us: float) -> float:
    """ns per frame of a loop that ticks and works."""
    tick = tach.tick
    start = time.perf_counter_ns()
    if frame_us:
        for _ in range(frames):
            tick()
            busy(frame_us)
    else:
        for _ in range(frames):
            tick()
    return (time.perf_counter_ns() - start) / frames


def adapter_for(url: str) -> CloudWatchTimerAdapter:
    session = boto3.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name="eu-west-1"
    )
    return CloudWatchTimerAdapter(
        "framescope-bench",
        "frame_time",
        {"Device": "bench"},
        boto3_session=session,
        endpoint_url=url,
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds (a smoke run)")
    parser.add_argument("--interval", type=float, default=0.01, help="report period in s")
    args = parser.parse_args()
    rounds = 3 if args.quick else 9
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's request log
    logging.getLogger("framescope").setLevel(logging.ERROR)  # the expected delivery warnings

    moto_port = free_port()
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=moto_port, verbose=False)
    moto.start()
    proxy = SlowProxy(moto_port)
    down_url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    slow = adapter_for(proxy.url)
    down = adapter_for(down_url)
    try:
        print(f"report every {args.interval * 1000:.0f} ms; best of {rounds} rounds, alternating")
        for frame_us, frames in ((0.0, 400_000), (50.0, 20_000)):
            bests: dict[str, float] = {}
            for _ in range(rounds):
                for name, callback in (
                    ("bare", lambda ts, t: None),
                    ("slow", slow.send_metrics),
                    ("down", down.send_metrics),
                ):
                    tach = TickerTachometer(callback, stats_interval=args.interval)
                    ns = frame_loop(tach, frames, frame_us)
                    bests[name] = min(bests.get(name, float("inf")), ns)
            label = "tick only" if not frame_us else f"tick + {frame_us:.0f} us frame work"
            print(
                f"{label:28s} bare {bests['bare']:9.1f} ns/frame   "
                f"slow endpoint {bests['slow'] / bests['bare']:.3f}x   "
                f"endpoint down {bests['down'] / bests['bare']:.3f}x"
            )
        slow_counts, down_counts = slow.counters(), down.counters()
        print(
            f"slow endpoint: {slow_counts['submitted']} reports queued, "
            f"{slow_counts['sent']} sent, "
            f"{slow_counts['dropped']} dropped; down: {down_counts['failed_attempts']} failed "
            f"attempts, {down_counts['pending']} buffered, {down_counts['dropped']} dropped"
        )
    finally:
        slow.close(timeout=1)
        down.close(timeout=0.1)
        proxy.close()
        moto.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
