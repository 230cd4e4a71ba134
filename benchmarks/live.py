"""Cost and latency of the browser live view, as ratios measured in one run.

Run: python benchmarks/live.py [--runs 5] [--seconds 4] [--latency-seconds 15]
    [--cpu-seconds 8] [--mjpeg-fps 10] [--viewers-decode] [--spare-core]
    [--parts view,latency,cpu,throughput,send]

view: a 4-stage threaded pipeline of 640x480 frames (each stage does a little
numpy work) runs as fast as it can for --seconds, alternately without a
live view and with one (its preview taps the Draw stage) serving at 2 Hz
to one client that reads the event stream and a 640x480 MJPEG preview
(10 fps), as a browser would. Target: with the view, >= 97% of the
throughput without it (median of the pairs). Also printed: the size of one
event for 20 stages.

The WebRTC parts feed a pipeline 1280x720 frames (ffmpeg's testsrc2, moving)
at 30 fps, paced on the real clock; its Draw stage burns the frame number
into each picture (24 blocks of 48x48 px, black or white: 16 bits of number,
8 of check) and notes time.time() as the frame leaves the stage.

latency: Debian's headless Chromium opens the live page, once playing the
preview over WebRTC (the default) and once as MJPEG (``?video=mjpeg``), the
order turning round every run, --latency-seconds each. Script injected into
the page reads the blocks from a canvas: for WebRTC in the video's
requestVideoFrameCallback (shown at its expectedDisplayTime), for MJPEG in a
requestAnimationFrame loop drawing the <img> (shown at the first animation
frame with the new number: up to one display frame before it is on the
screen). Browser and script run on one machine, so the page's
performance.timeOrigin + now and time.time() here read the same system
clock. Printed: p50/p99 of stage-to-screen per path (target for WebRTC: p50
< 150 ms, p99 < 300 ms), and, per WebRTC run, framescope's own per-viewer
figure (``LiveView.snapshot().viewers``, from the page's reports) beside the
pattern's over the same frames: their p50s must agree within one frame
interval (33 ms).

cpu: this process's CPU seconds (time.process_time()) a second while 0, 1
and 10 WHEP viewers watch the 720p30 preview, for --cpu-seconds each, the
order turning round every round. The viewers are aiortc peer connections in
a child process (this script with --whep-clients): each POSTs an offer to
``/whep/main`` and receives the track. They stand in for browsers on other
machines, so here they do the least a receiver must: ICE, DTLS and SRTP as
aiortc does, then count each frame that arrives whole (its last packet, none
missing since the frame before); with --viewers-decode they play the track
through aiortc's jitter buffer and decoder instead (decoding ten 720p30
streams takes more than this 2-core machine has). They open no data channel,
so the page's presentation reports are not part of their cost. Target: 10 viewers <= 1.2x
the CPU of one (median of the rounds).

throughput: the view part's 4 stages as fast as they go, with a view whose
preview taps Draw; in each run one such pipeline measured for --seconds
with 0, 1 and 10 such WHEP viewers of it and with the floor's encoder (no
viewer; a process of no framescope code, at the video process's niceness,
that converts and encodes 30 640x480 frames a second with libx264 at the
video process's settings: what serving any viewer must cost at least), one
window after the other (the order turning round every run; 0 after viewers
left is the view with its video process idle). Each window also reads the
CPU time the hypervisor gave other machines (``steal`` in /proc/stat).
Target: 10 viewers >= 95% of none (median of the runs' ratios); printed
beside it, the floor's ratio and 10 viewers / the floor. With --spare-core
this process keeps to core 0 and the view's video process (``webrtc_cpus``),
the viewers and the floor to core 1: a machine with a core for the video.

send: the cpu part's 1 and 10 viewers, once with each viewer's RTP made and
sent by framescope's loop (``framescope.live._rtpsend``, the default) and
once by aiortc's own sender loop, the order turning round every round. Printed:
the CPU of the view's WebRTC thread (where the senders run) a viewer past the
first, framescope / aiortc, and the process's 10/1 for each (no target: the
comparison with the peer).

Each part prints its verdict; the exit status is 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import fractions
import json
import os
import queue
import shutil
import statistics
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from framescope import Pipeline
from framescope.live import LiveView
from framescope.live.videoprocess import VIDEO_NICE
from framescope.pipeline.runtime.cpu import ProcCpuSource
from framescope.statsnapshot import percentile


def work(frame: Any) -> Any:
    np.multiply(frame[::8, ::8], 1, out=frame[::8, ::8])  # touch the image, as a stage would
    return frame


IN_THREADS = False  # --webrtc-in-threads: the view's WebRTC side in threads of this process
SPARE_CORE = False  # --spare-core: this process on core 0, the video and its viewers on core 1


def pin(pid: int, cores: set[int]) -> None:
    """Every thread of process ``pid`` on ``cores`` (threads it starts later inherit it)."""
    for thread in os.listdir(f"/proc/{pid}/task"):
        with contextlib.suppress(OSError):
            os.sched_setaffinity(int(thread), cores)


def build(view: bool) -> tuple[Pipeline, LiveView | None]:
    pipeline = Pipeline(name="Bench")
    cores = {1} if SPARE_CORE else None  # the video process's own core
    live = (
        LiveView(pipeline, refresh=0.5, webrtc_process=not IN_THREADS, webrtc_cpus=cores)
        if view
        else None
    )
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


@dataclass
class Run:
    """One throughput run: items a second, and this process's CPU, the encoder's frames and the
    frames handed to WebRTC viewers a second."""

    items: float
    cpu: float = 0.0
    encoded: float = 0.0
    sent: float = 0.0
    video_cpu: float = 0.0  # the view's video process (0: none, or WebRTC in threads)
    client_cpu: float = 0.0  # the WHEP viewers' process
    steal: float = 0.0  # CPU seconds the hypervisor gave other machines (both cores)


def throughput(
    seconds: float,
    view: bool,
    *,
    readers: bool = True,
    viewers: tuple[int, ...] = (0,),
    decode: bool = False,
) -> list[Run]:
    """The 4 stages fed as fast as they take frames: without a view, or with one and (``readers``)
    a reader of its events and MJPEG preview; a window of ``seconds`` for each count of WHEP
    viewers of its preview in ``viewers``, one after the other, on the same running pipeline."""
    every_core = os.sched_getaffinity(0)
    if SPARE_CORE:
        pin(os.getpid(), {0})
    pipeline, live = build(view)
    frame = np.zeros((480, 640, 3), np.uint8)
    stop = threading.Event()
    threads = []
    runs = []
    with contextlib.ExitStack() as cleanup:
        if live is not None:
            live.start()
            cleanup.callback(live.close)
        for path in ("events", "video/annotated.mjpg") if live is not None and readers else ():
            threads.append(threading.Thread(target=read, args=(live.url + path, stop)))  # type: ignore[union-attr]

        def feed() -> None:  # as fast as the first stage takes them; results nobody reads drop
            while not stop.is_set():
                pipeline.forward(frame)

        threads.append(threading.Thread(target=feed))
        for thread in threads:
            thread.start()
        try:
            time.sleep(0.5)  # warm up
            for count in viewers:
                if count == FLOOR:
                    with Floor() as floor:
                        time.sleep(0.5)  # as long as the viewers' windows wait
                        runs.append(measure(pipeline, live, seconds, floor=floor))
                elif count and live is not None:
                    with Viewers(live.url + "whep/annotated", count, decode) as clients:
                        time.sleep(0.5)  # past the first key frame
                        runs.append(measure(pipeline, live, seconds, clients))
                else:
                    runs.append(measure(pipeline, live, seconds))
        finally:
            stop.set()
            for thread in threads:
                thread.join(5)
    pipeline.cleanup()
    pin(os.getpid(), every_core)
    return runs


def measure(
    pipeline: Pipeline,
    live: LiveView | None,
    seconds: float,
    clients: Viewers | None = None,
    floor: Floor | None = None,
) -> Run:
    """What the pipeline (and the view's WebRTC side, or the floor's encoder) did in the next
    ``seconds``."""
    items = pipeline.counters()["completed"]
    made, sent = (encoded(live, "annotated"), sent_by(live)[0]) if live else (0, 0)
    video = process_cpu(floor.pid) if floor else video_cpu(live)
    client = clients.ask()["cpu"] if clients else 0.0
    cpu, start, steal = time.process_time(), time.perf_counter(), stolen()
    time.sleep(seconds)
    items = pipeline.counters()["completed"] - items
    cpu, elapsed = time.process_time() - cpu, time.perf_counter() - start
    steal = stolen() - steal
    video = (process_cpu(floor.pid) if floor else video_cpu(live)) - video
    client = (clients.ask()["cpu"] if clients else 0.0) - client
    if live is not None:
        made, sent = encoded(live, "annotated") - made, sent_by(live)[0] - sent
    return Run(*(x / elapsed for x in (items, cpu, made, sent, video, client, steal)))


def stolen() -> float:
    """CPU seconds this virtual machine's hypervisor has given other work so far (Linux's
    ``steal`` in /proc/stat, every core; 0 where there is none)."""
    try:
        with open("/proc/stat") as stat:
            fields = stat.readline().split()
    except OSError:
        return 0.0
    return int(fields[8]) / os.sysconf("SC_CLK_TCK") if len(fields) > 8 else 0.0


def video_cpu(view: LiveView | None) -> float:
    """CPU seconds of the view's video process so far (0: none runs, or WebRTC is in threads)."""
    pid = getattr(view._webrtc, "pid", None) if view is not None else None
    return 0.0 if pid is None else process_cpu(pid)


def process_cpu(pid: int) -> float:
    """CPU seconds of process ``pid`` so far (0: gone)."""
    times = ProcCpuSource().process(pid)
    return 0.0 if times is None else times.on_cpu_ns / 1e9


FLOOR = -1  # a throughput window with the floor's encoder beside the pipeline, no viewer


def encode_floor(width: int, height: int) -> None:
    """The floor: what serving any viewer a pipeline's 30 fps must cost at least, written
    plainly with PyAV and no framescope (the video process's settings): each second 30
    black frames converted to YUV 4:2:0 and encoded with libx264, the packets dropped."""
    import av

    encoder = av.CodecContext.create("libx264", "w")
    encoder.width, encoder.height, encoder.pix_fmt = width, height, "yuv420p"
    encoder.time_base, encoder.framerate = fractions.Fraction(1, 90_000), FPS
    encoder.gop_size, encoder.thread_count, encoder.profile = 600, 1, "Baseline"
    rate = str(width * height * 3)
    encoder.options = {"preset": "ultrafast", "tune": "zerolatency", "forced-idr": "1"}
    encoder.options |= {"crf": "23", "maxrate": rate, "bufsize": str(int(rate) // 2)}
    image = np.zeros((height, width, 3), np.uint8)
    start = due = time.monotonic()
    print("encoding", flush=True)
    while True:  # until killed
        picture = av.VideoFrame.from_numpy_buffer(image, format="bgr24")
        picture = picture.reformat(format="yuv420p")
        picture.pts = round((time.monotonic() - start) * 90_000)
        for _ in encoder.encode(picture):
            pass
        due += 1 / FPS
        time.sleep(max(0.0, due - time.monotonic()))


class Floor:
    """The floor's encoder in a process of its own, at the video process's niceness (and its
    core with --spare-core); killed on exit."""

    def __enter__(self) -> Floor:
        self._process = subprocess.Popen(
            [sys.executable, __file__, "--floor-encoder"],
            stdout=subprocess.PIPE,
            text=True,
            preexec_fn=floor_priority,  # noqa: PLW1509 - no threads in the child yet
        )
        assert self._process.stdout is not None
        self._process.stdout.readline()  # it has loaded PyAV and begins
        self.pid = self._process.pid
        return self

    def __exit__(self, *exc: object) -> None:
        self._process.kill()
        self._process.wait(10)


def floor_priority() -> None:
    """The floor's process: the video process's niceness and core."""
    os.nice(VIDEO_NICE)
    if SPARE_CORE:
        os.sched_setaffinity(0, {1})


def throughput_part(args: argparse.Namespace) -> bool:
    """The 4 stages with a view and 10 WHEP viewers (and 1) against the view with none,
    interleaved: the order turns round every run."""
    runs: list[dict[int, Run]] = []
    for run in range(args.runs):
        order = (0, FLOOR, 1, 10) if run % 2 == 0 else (10, 1, FLOOR, 0)
        windows = throughput(
            args.seconds, True, readers=False, viewers=order, decode=args.viewers_decode
        )
        runs.append(dict(zip(order, windows, strict=True)))
    where = "this process on core 0, the video on core 1" if SPARE_CORE else "on every core"
    print(f"4 stages of 640x480 frames as fast as they go ({where}), a view, its preview on Draw:")
    for n in (0, FLOOR, 1, 10):
        one = [r[n] for r in runs]
        line = (
            f"{statistics.median(r.items for r in one):,.0f} items/s (runs "
            f"{min(r.items for r in one):,.0f}-{max(r.items for r in one):,.0f}); this process "
            f"{statistics.median(r.cpu for r in one) * 1e3:.0f} ms CPU/s"
        )
        video = statistics.median(r.video_cpu for r in one) * 1e3
        if n == FLOOR:
            print(f"  the floor's encoder: {line}, the encoder {video:.0f} ms/s (30 frames/s)")
            continue
        print(
            f"  {n} WebRTC viewers: {line}, the video process {video:.0f} ms/s, H.264 "
            f"{statistics.median(r.encoded for r in one):.0f} frames/s encoded, "
            f"{statistics.median(r.sent for r in one):.0f}/s sent in all (the viewers' process "
            f"{statistics.median(r.client_cpu for r in one) * 1e3:.0f} ms/s)"
        )
    for index, run in enumerate(runs):
        print(
            f"  run {index + 1}: 10/0 {run[10].items / run[0].items:.1%}, 1/0 "
            f"{run[1].items / run[0].items:.1%}, floor/0 {run[FLOOR].items / run[0].items:.1%}; "
            "stolen by the hypervisor "
            + ", ".join(f"{run[n].steal * 1e3:.0f}" for n in (0, FLOOR, 1, 10))
            + " ms/s (0, floor, 1, 10)"
        )
    ratios = [r[10].items / r[0].items for r in runs]
    ratio = statistics.median(ratios)
    ones = [r[1].items / r[0].items for r in runs]
    floors = [r[FLOOR].items / r[0].items for r in runs]
    over_floor = [r[10].items / r[FLOOR].items for r in runs]
    print(
        f"  10 viewers / none: {ratio:.1%} (>= 95% {'ok' if ratio >= 0.95 else 'MISSED'}; runs "
        f"{min(ratios):.0%}-{max(ratios):.0%}); 1 viewer / none: {statistics.median(ones):.1%}; "
        f"the floor's encoder / none: {statistics.median(floors):.1%} (runs "
        f"{min(floors):.0%}-{max(floors):.0%}); 10 viewers / the floor: "
        f"{statistics.median(over_floor):.1%}"
    )
    if len(runs) < 5:
        print(f"  ({len(runs)} run(s): on a shared machine one run moves 20% or more; use 9)")
    return ratio >= 0.95


# ---------------------------------------------------------------------------------------------
# WebRTC: a 1280x720 pipeline paced at 30 fps whose Draw stage burns its frame number into
# the picture, read back in Chromium (latency) or by WHEP clients in another process (cost).

FPS = 30
WIDTH, HEIGHT = 1280, 720
BLOCKS, CELL, X0, Y0 = 24, 48, 16, 8  # 16 bits of frame number, 8 of check, 48x48 px each
SLOTS = 1 << 16  # frame numbers wrap here (36 min at 30 fps)


def check_bits(number: int) -> int:
    return (number ^ (number >> 8) ^ 0xA5) & 0xFF


class Stamped:
    """The Draw stage: a moving test picture with the frame number in blocks, and when it left."""

    def __init__(self, frames: int = FPS) -> None:
        import av  # only the WebRTC parts need it

        with av.open(f"testsrc2=size={WIDTH}x{HEIGHT}:rate={FPS}", format="lavfi") as source:
            self.pictures = [
                f.to_ndarray(format="bgr24")
                for f, _ in zip(source.decode(video=0), range(frames), strict=False)
            ]
        self.left = np.zeros(SLOTS)  # time.time() when frame n left the stage

    def __call__(self, number: int) -> Any:
        image = self.pictures[number % len(self.pictures)].copy()
        bits = (number % SLOTS) | check_bits(number % SLOTS) << 16
        for block in range(BLOCKS):
            x = X0 + block * CELL
            image[Y0 : Y0 + CELL, x : x + CELL] = 255 if bits >> block & 1 else 0
        self.left[number % SLOTS] = time.time()  # the tap takes it right after this returns
        return image


class Paced:
    """A 720p pipeline fed ``FPS`` frames a second by a thread, on the real clock, with a view."""

    def __init__(
        self, mjpeg_fps: float = 10.0, max_viewers: int = 10, in_threads: bool | None = None
    ) -> None:
        self.stage = Stamped()
        self.pipeline = Pipeline(name="Live720").add(self.stage, "Draw")
        threads = IN_THREADS if in_threads is None else in_threads
        self.view = LiveView(
            self.pipeline, refresh=0.5, max_viewers=max_viewers, webrtc_process=not threads
        )
        self.view.preview("main", "Draw", fps=mjpeg_fps)
        self.fed = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._feed, name="bench-feed")

    def _feed(self) -> None:
        start = time.perf_counter()
        while not self._stop.is_set():
            wait = start + self.fed / FPS - time.perf_counter()
            if wait > 0:
                self._stop.wait(wait)
            self.pipeline.forward(self.fed)
            self.fed += 1

    def __enter__(self) -> Paced:
        self.view.start()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)
        self.view.close()
        self.pipeline.cleanup()


# Reads the blocks from a canvas. WebRTC: in the video's requestVideoFrameCallback (the frame
# being presented, at expectedDisplayTime); MJPEG: in a requestAnimationFrame loop drawing the
# <img>, at the first animation frame that shows a new number. Times are performance.timeOrigin
# + performance.now(), the wall clock's milliseconds: this machine's, as time.time() here.
READER_JS = """
const mode = arguments[0], B = %d, CELL = %d, X0 = %d, Y0 = %d;
const element = document.getElementById(mode === "webrtc" ? "preview-main-video" : "preview-main");
if (!element) return false;
if (window.benchReader) return true;
const canvas = document.createElement("canvas");
canvas.width = X0 + B * CELL; canvas.height = Y0 + CELL;
const ctx = canvas.getContext("2d", {willReadFrequently: true});
const reader = window.benchReader = {rows: [], unreadable: 0, gaps: []};
function number(source) {
  ctx.drawImage(source, 0, 0, canvas.width, canvas.height, 0, 0, canvas.width, canvas.height);
  const data = ctx.getImageData(0, 0, canvas.width, canvas.height).data;
  let bits = 0;
  for (let b = 0; b < B; b++) {
    let sum = 0, n = 0;
    for (let y = Y0 + CELL / 2 - 8; y < Y0 + CELL / 2 + 8; y += 4)
      for (let x = X0 + b * CELL + CELL / 2 - 8; x < X0 + b * CELL + CELL / 2 + 8; x += 4) {
        sum += data[(y * canvas.width + x) * 4 + 1]; n += 1;
      }
    if (sum / n > 128) bits += 2 ** b;
  }
  const value = bits %% 65536, check = Math.floor(bits / 65536);
  return check === ((value ^ (value >> 8) ^ 0xA5) & 0xFF) ? value : -1;
}
if (mode === "webrtc") {
  const onFrame = (now, meta) => {
    const value = number(element);
    if (value < 0) reader.unreadable += 1;
    else reader.rows.push([value, performance.timeOrigin + meta.expectedDisplayTime]);
    element.requestVideoFrameCallback(onFrame);
  };
  element.requestVideoFrameCallback(onFrame);
} else {
  let last = -1, before = null;
  const onAnimation = (now) => {
    if (before !== null) reader.gaps.push(now - before);
    before = now;
    if (reader.gaps.length > 1000) reader.gaps.splice(0, 500);
    if (element.naturalWidth) {
      const value = number(element);
      if (value < 0) reader.unreadable += 1;
      else if (value !== last) {
        reader.rows.push([value, performance.timeOrigin + now]);
        last = value;
      }
    }
    requestAnimationFrame(onAnimation);
  };
  requestAnimationFrame(onAnimation);
}
return true;
"""
READER_JS = READER_JS % (BLOCKS, CELL, X0, Y0)

TAKE_JS = """
const reader = window.benchReader;
if (!reader) return null;
const rows = reader.rows.splice(0), gaps = reader.gaps.splice(0);
return {rows, gaps, unreadable: reader.unreadable,
        viewer: typeof players === "undefined" ? null : players.main.viewer,
        mode: document.getElementById("preview-main-mode").textContent};
"""


@contextlib.contextmanager
def chromium() -> Iterator[Any]:
    """Debian's Chromium, headless, driven by selenium; quit however the block ends."""
    from selenium import webdriver  # only the latency part needs it
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = shutil.which("chromium") or "chromium"
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--autoplay-policy=no-user-gesture-required",
        f"--window-size={WIDTH + 100},{HEIGHT + 400}",
    ):
        options.add_argument(argument)
    options.page_load_strategy = "none"  # SSE and MJPEG never finish loading
    driver = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def poll(check: Callable[[], Any], limit: float, what: str) -> Any:
    """``check()`` until it gives something true, or a RuntimeError saying ``what`` never came."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.1)
    raise RuntimeError(f"{what} did not happen within {limit:g} s")


@dataclass
class Shown:
    """One path's frames on the screen, as (frame number, shown at: time.time() seconds) rows."""

    mode: str
    played: str  # what the page says it plays
    rows: list[tuple[int, float]]  # the measuring window's
    unreadable: int
    fed: int  # frames fed in the window
    gaps: list[float]  # ms between animation frames (MJPEG)
    viewer: Any = None  # framescope's ViewerSnapshot of this page (WebRTC)
    compared: list[tuple[int, float]] = field(default_factory=list)  # ours, the same frames


def lateness(stage: Stamped, rows: list[tuple[int, float]]) -> list[float]:
    """Seconds from leaving the stage to the screen, sorted."""
    return sorted(shown - float(stage.left[n]) for n, shown in rows)


def take(driver: Any) -> dict[str, Any]:
    taken: dict[str, Any] = driver.execute_script(TAKE_JS)
    taken["rows"] = [(int(n), shown / 1000) for n, shown in taken["rows"]]
    return taken


def watch(driver: Any, paced: Paced, mode: str, seconds: float) -> Shown:
    """Open the page playing ``mode``, let it settle, and read what it shows for ``seconds``."""
    url = paced.view.url
    driver.get(url + ("&" if "?" in url else "?") + "video=mjpeg" if mode == "mjpeg" else url)
    poll(lambda: driver.execute_script(READER_JS, mode), 20, f"the {mode} preview on the page")
    poll(lambda: take(driver)["rows"], 20, f"a readable {mode} frame")
    time.sleep(2.0)  # settle: the first frames and the clock exchange
    first = take(driver)
    if ("WebRTC" if mode == "webrtc" else "MJPEG") not in first["mode"]:
        raise RuntimeError(f"the page plays {first['mode']!r}, not {mode}")
    fed = paced.fed
    time.sleep(seconds)
    taken = take(driver)
    unreadable = taken["unreadable"] - first["unreadable"]
    shown = Shown(mode, first["mode"], taken["rows"], unreadable, paced.fed - fed, taken["gaps"])
    if mode == "webrtc":  # framescope's own figure, from the page's reports of its frames
        time.sleep(1.0)  # the page reports every 0.5 s
        at = time.time()
        viewers = {v.viewer: v for v in paced.view.snapshot().viewers}
        shown.viewer = viewers.get(taken["viewer"])
        if shown.viewer is not None:  # its window: the newest frames reported (by at - 0.5 s)
            rows = first["rows"] + shown.rows + take(driver)["rows"]
            reported = [row for row in rows if row[1] < at - 0.5]
            shown.compared = reported[-shown.viewer.stage_to_screen.summary().recent_count :]
    return shown


def latency_part(args: argparse.Namespace) -> bool:
    """Stage to screen, WebRTC against MJPEG, in one Chromium; the paths alternate by run."""
    runs: dict[str, list[Shown]] = {"webrtc": [], "mjpeg": []}
    with Paced(mjpeg_fps=args.mjpeg_fps) as paced, chromium() as driver:
        for run in range(args.runs):
            for mode in ("webrtc", "mjpeg") if run % 2 == 0 else ("mjpeg", "webrtc"):
                runs[mode].append(watch(driver, paced, mode, args.latency_seconds))
        stage = paced.stage
    print(
        f"stage to screen, {WIDTH}x{HEIGHT} at {FPS} fps, loopback, headless Chromium "
        f"(MJPEG at most {args.mjpeg_fps:g} JPEGs a second); the frame number read from the "
        "picture; shown at: the page's performance.timeOrigin + now, the system clock that "
        "time.time() reads here (one machine):"
    )
    for mode, shown in runs.items():
        for index, one in enumerate(shown):
            late = lateness(stage, one.rows)
            extra = ""
            if one.gaps:
                extra = f", animation frames every {statistics.median(one.gaps):.1f} ms"
            print(
                f"  {mode} run {index + 1} ({one.played}): p50 {ms(late, 50)} "
                f"p99 {ms(late, 99)} ms, "
                f"{len(one.rows)} frames read of {one.fed} fed, {one.unreadable} unreadable{extra}"
            )
    ok = True
    pooled = {
        mode: lateness(stage, [r for one in shown for r in one.rows])
        for mode, shown in runs.items()
    }
    for mode, late in pooled.items():
        p50, p99 = percentile(late, 50) * 1e3, percentile(late, 99) * 1e3
        verdict = ""
        if mode == "webrtc":
            met = p50 < 150 and p99 < 300
            ok = ok and met
            verdict = f" (p50 < 150, p99 < 300: {'met' if met else 'MISSED'})"
        print(
            f"  {mode}, all runs ({len(late)} frames): p50 {p50:.1f} ms, p99 {p99:.1f} ms{verdict}"
        )
    for index, one in enumerate(runs["webrtc"]):
        ok = cross_check(stage, one, index) and ok
    return ok


def ms(late: list[float], q: float) -> str:
    return f"{percentile(late, q) * 1e3:.1f}"


def cross_check(stage: Stamped, shown: Shown, index: int) -> bool:
    """framescope's per-viewer figure beside the pattern's, over the same frames."""
    viewer = shown.viewer
    if viewer is None or not shown.compared:
        print(f"  run {index + 1}: framescope had no figure for this page's viewer")
        return False
    summary = viewer.stage_to_screen.summary()
    ours = lateness(stage, shown.compared)
    d50 = (summary.median - percentile(ours, 50)) * 1e3
    d99 = (summary.p99 - percentile(ours, 99)) * 1e3
    offset = "unknown"
    if viewer.clock_offset is not None and viewer.clock_uncertainty is not None:
        offset = f"{viewer.clock_offset * 1e3:+.2f} ms +- {viewer.clock_uncertainty * 1e3:.2f}"
    agree = bool(abs(d50) <= 1e3 / FPS)
    print(
        f"  run {index + 1}: framescope's viewer figure p50 {summary.median * 1e3:.1f} "
        f"p99 {summary.p99 * 1e3:.1f} ms over {summary.recent_count} frames; the pattern's "
        f"over the same frames p50 {ms(ours, 50)} p99 {ms(ours, 99)} ms: framescope - pattern "
        f"{d50:+.1f} ms at p50, {d99:+.1f} at p99 (p50 within one frame, {1e3 / FPS:.1f} ms: "
        f"{'yes' if agree else 'NO'}; its clock offset {offset}; sent {viewer.frames_sent}, "
        f"dropped {viewer.frames_dropped}, unmatched {viewer.unmatched})"
    )
    return agree


# ---------------------------------------------------------------------------------------------
# WHEP viewers in another process (aiortc): each POSTs an offer, plays the track and counts the
# frames it decodes. The parent says "count" (answered with a JSON line) or "stop" on stdin.


def post(url: str, method: str, body: bytes | None = None) -> tuple[int, str, str]:
    request = urllib.request.Request(url, body, {"Content-Type": "application/sdp"}, method=method)
    with urllib.request.urlopen(request, timeout=20) as response:
        return response.status, response.headers.get("Location", ""), response.read().decode()


class WholeFrames:
    """A receiver's packets counted as a remote browser's would arrive, and nothing more done
    with them: a frame counts when its last packet (the RTP marker) comes with none of its
    packets missing (sequence numbers without a gap since the frame before)."""

    def __init__(self) -> None:
        self.frames = 0
        self._next: int | None = None
        self._whole = True

    def add(self, packet: Any) -> None:
        sequence = packet.sequence_number
        if self._next is not None and sequence != self._next:
            self._whole = False
        self._next = (sequence + 1) & 0xFFFF
        if packet.marker:
            self.frames += self._whole
            self._whole = True


async def whep_clients(url: str, count: int, decode: bool) -> None:
    import aioice.ice
    import aiortc
    import aiortc.rtcrtpreceiver

    aioice.ice.get_host_addresses = lambda use_ipv4, use_ipv6: [
        "127.0.0.1"
    ]  # loopback, as the view
    counters: dict[int, WholeFrames] = {}
    if not decode:
        # Past SRTP (aiortc's DTLS transport) each packet is only counted: no jitter buffer,
        # bit rate estimate or decoder thread, the work of a browser on another machine.
        async def counted(receiver: Any, packet: Any, arrival_time_ms: int) -> None:
            counters[id(receiver)].add(packet)

        setattr(aiortc.rtcrtpreceiver.RTCRtpReceiver, "_handle_rtp_packet", counted)  # noqa: B010
    loop = asyncio.get_running_loop()
    decoded = [0] * count
    connections, locations, readers = [], [], []

    async def play(track: Any, index: int) -> None:
        with contextlib.suppress(aiortc.mediastreams.MediaStreamError):
            while True:
                await track.recv()
                decoded[index] += 1

    def track_of(index: int) -> Callable[[Any], None]:
        return lambda track: readers.append(loop.create_task(play(track, index)))

    for index in range(count):
        connection = aiortc.RTCPeerConnection()
        connections.append(connection)
        counters[id(connection.addTransceiver("video", direction="recvonly").receiver)] = (
            WholeFrames()
        )
        connection.on("track", track_of(index))
        await connection.setLocalDescription(await connection.createOffer())
        sdp = connection.localDescription.sdp.encode()
        _, location, answer = await loop.run_in_executor(None, post, url, "POST", sdp)
        locations.append(urllib.parse.urljoin(url, location))
        await connection.setRemoteDescription(aiortc.RTCSessionDescription(answer, "answer"))
    try:
        while (await loop.run_in_executor(None, sys.stdin.readline)).strip() == "count":
            frames = decoded if decode else [c.frames for c in counters.values()]
            print(json.dumps({"frames": frames, "cpu": time.process_time()}), flush=True)
    finally:
        for location in locations:
            with contextlib.suppress(OSError):
                await loop.run_in_executor(None, post, location, "DELETE")
        for connection in connections:
            await connection.close()
        for reader in readers:
            reader.cancel()
        await asyncio.gather(*readers, return_exceptions=True)


def viewers_priority() -> None:
    """The viewers' process: the lowest priority, and with --spare-core the video's core."""
    os.nice(19)
    if SPARE_CORE:
        os.sched_setaffinity(0, {1})


class Viewers:
    """``count`` WHEP viewers of ``url`` in a child process; closed, and waited for, on exit."""

    def __init__(self, url: str, count: int, decode: bool) -> None:
        self.count, self.decode = count, decode
        self._process: subprocess.Popen[str] | None = None
        self._lines: queue.Queue[str] = queue.Queue()
        self._url = url

    def __enter__(self) -> Viewers:
        if self.count == 0:
            return self
        command = [sys.executable, __file__, "--whep-clients", self._url, str(self.count)]
        command += ["--viewers-decode"] if self.decode else []
        # The viewers stand in for browsers on other machines: at the lowest priority, so
        # on this 2-core box they take only the CPU the pipeline leaves them.
        self._process = subprocess.Popen(
            command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            preexec_fn=viewers_priority,  # noqa: PLW1509 - no threads in the child yet
        )
        threading.Thread(target=self._read, name="bench-viewers", daemon=True).start()
        try:
            poll(
                lambda: all(self.ask()["frames"]),
                40,
                f"a frame received by each of {self.count} viewers",
            )
        except BaseException:
            self.__exit__()
            raise
        return self

    def _read(self) -> None:
        assert self._process is not None
        assert self._process.stdout is not None
        for line in self._process.stdout:
            self._lines.put(line)

    def ask(self) -> dict[str, Any]:
        """Frames received (or decoded) per viewer so far, and the process's CPU seconds."""
        if self._process is None:
            return {"frames": [], "cpu": 0.0}
        assert self._process.stdin is not None
        self._process.stdin.write("count\n")
        self._process.stdin.flush()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with contextlib.suppress(queue.Empty):
                answer: dict[str, Any] = json.loads(self._lines.get(timeout=0.5))
                return answer
            if self._process.poll() is not None:
                break
        raise RuntimeError(
            f"the viewers' process did not answer (exit code {self._process.poll()})"
        )

    def __exit__(self, *exc: object) -> None:
        process = self._process
        if process is None:
            return
        try:
            assert process.stdin is not None
            process.stdin.write("stop\n")
            process.stdin.close()
            process.wait(20)
        except (OSError, subprocess.TimeoutExpired):
            process.kill()
            process.wait(5)


@dataclass
class Window:
    """This process's CPU over a measuring window, and what the viewers got in it (a second)."""

    viewers: int
    cpu: float  # CPU seconds of this process and of the view's video process
    fed: float
    encoded: float  # frames the preview's H.264 encoder made (the view's own count)
    sent: float  # frames handed to the viewers' connections, all of them
    received: float  # frames the viewers received whole (or decoded), all of them
    bits: float  # encoded bits handed to the viewers' connections, all of them
    client_cpu: float  # CPU seconds of the viewers' process
    loop_cpu: float = 0.0  # CPU seconds of the view's WebRTC thread (aiortc and the senders)
    video_cpu: float = 0.0  # CPU seconds of the view's video process (part of cpu)


def loop_cpu(view: LiveView) -> float:
    """CPU seconds of the view's WebRTC thread so far (0 before it started, or in a process)."""
    thread = getattr(view._webrtc, "_thread", None)
    if thread is None or thread.ident is None:
        return 0.0
    return time.clock_gettime(time.pthread_getcpuclockid(thread.ident))


def encoded(view: LiveView, preview: str = "main") -> int:
    """Frames the preview's encoders made so far, as the view's page data says."""
    with urllib.request.urlopen(view.url.split("?")[0] + "view.json", timeout=10) as response:
        page = json.loads(response.read())
    return sum(stream["encoded"] for stream in page["previews"][preview]["webrtc"])


def sent_by(view: LiveView) -> tuple[int, int]:
    """Frames and bytes handed to every viewer's connection so far (the viewers' snapshots)."""
    viewers = view.snapshot().viewers
    return sum(v.frames_sent for v in viewers), sum(v.bytes_sent for v in viewers)


def measure_cpu(paced: Paced, count: int, args: argparse.Namespace) -> Window:
    """``count`` WHEP viewers of the paced pipeline; this process's CPU while they watch."""
    url = paced.view.url.split("?")[0] + "whep/main"
    with Viewers(url, count, args.viewers_decode) as viewers:
        time.sleep(1.0)  # past the first key frames
        before, fed, made = viewers.ask(), paced.fed, encoded(paced.view)
        sent, sent_bytes = sent_by(paced.view)
        video = video_cpu(paced.view)
        cpu, start, loop = time.process_time(), time.perf_counter(), loop_cpu(paced.view)
        time.sleep(args.cpu_seconds)
        cpu, elapsed = time.process_time() - cpu, time.perf_counter() - start
        loop, video = loop_cpu(paced.view) - loop, video_cpu(paced.view) - video
        after, made = viewers.ask(), encoded(paced.view) - made
        sent, sent_bytes = (
            a - b for a, b in zip(sent_by(paced.view), (sent, sent_bytes), strict=True)
        )
        fed = paced.fed - fed
    received = sum(after["frames"]) - sum(before["frames"])
    client = after["cpu"] - before["cpu"]
    figures = (cpu + video, fed, made, sent, received, 8 * sent_bytes, client, loop, video)
    return Window(count, *(x / elapsed for x in figures))


def cpu_part(args: argparse.Namespace) -> bool:
    """This process's CPU with 1 and with 10 viewers (and none), alternated, repeated."""
    rounds: list[dict[int, Window]] = []
    with Paced() as paced:
        time.sleep(1.0)
        for run in range(args.runs):
            order = (0, 1, 10) if run % 2 == 0 else (10, 1, 0)
            rounds.append({n: measure_cpu(paced, n, args) for n in order})
    print(
        f"CPU of this process and its video process, {WIDTH}x{HEIGHT} at {FPS} fps, H.264 to "
        f"aiortc WHEP viewers "
        f"in another process ({args.cpu_seconds:g} s windows):"
    )
    what = "decoded" if args.viewers_decode else "received whole"
    for index, windows in enumerate(rounds):
        parts = [
            f"{w.viewers} viewers {w.cpu * 1e3:.0f} ms/s (fed {w.fed:.1f}/s, encoded "
            f"{w.encoded:.1f}/s, sent {w.sent:.0f}/s at {w.bits / 1e6:.1f} Mbit/s, {what} "
            f"{w.received:.0f}/s; the video process {w.video_cpu * 1e3:.0f} ms/s of it; "
            f"WebRTC thread {w.loop_cpu * 1e3:.1f} ms/s; viewers' "
            f"process {w.client_cpu * 1e3:.0f} ms/s)"
            for w in windows.values()
        ]
        print(f"  round {index + 1}: " + "; ".join(parts))
    ratios = [w[10].cpu / w[1].cpu for w in rounds]
    ratio = statistics.median(ratios)
    one = statistics.median(w[1].cpu for w in rounds)
    ten = statistics.median(w[10].cpu for w in rounds)
    none = statistics.median(w[0].cpu for w in rounds)
    print(
        f"  median: no viewer {none * 1e3:.0f} ms/s, 1 viewer {one * 1e3:.0f} ms/s, 10 viewers "
        f"{ten * 1e3:.0f} ms/s: 10/1 {ratio:.2f}x (rounds {min(ratios):.2f}-{max(ratios):.2f}x; "
        f"<= 1.2x {'met' if ratio <= 1.2 else 'MISSED'}); each viewer past the first "
        f"{(ten - one) / 9 * 1e3:.1f} ms/s, the first (encoder included) "
        f"{(one - none) * 1e3:.1f} ms/s"
    )
    return ratio <= 1.2


def view_part(args: argparse.Namespace) -> bool:
    """The MJPEG view's cost to the frame loop, and the size of one event for 20 stages."""
    pairs = []
    for run in range(args.runs):
        if run % 2:  # alternate which goes first, so that neither gains from the order
            with_view, without = (
                throughput(args.seconds, True)[0].items,
                throughput(args.seconds, False)[0].items,
            )
        else:
            without, with_view = (
                throughput(args.seconds, False)[0].items,
                throughput(args.seconds, True)[0].items,
            )
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
    return ratio >= 0.97 and size < 50_000


def send_part(args: argparse.Namespace) -> bool:
    """Each viewer's cost with framescope's RTP loop against aiortc's own, interleaved."""
    rounds: list[dict[bool, tuple[Window, Window]]] = []
    with Paced(in_threads=True) as paced:  # the WebRTC thread's own CPU clock is read here
        time.sleep(1.0)
        webrtc = paced.view._webrtc
        for run in range(args.runs):
            figures = {}
            for fast in (True, False) if run % 2 == 0 else (False, True):
                webrtc._fast_send = fast
                figures[fast] = (measure_cpu(paced, 1, args), measure_cpu(paced, 10, args))
            rounds.append(figures)
    print(f"RTP sent by framescope's loop against aiortc's ({WIDTH}x{HEIGHT} at {FPS} fps):")
    per_viewer: dict[bool, list[float]] = {True: [], False: []}
    ten_over_one: dict[bool, list[float]] = {True: [], False: []}
    for index, figures in enumerate(rounds):
        parts = []
        for fast, (one, ten) in figures.items():
            each = (ten.loop_cpu - one.loop_cpu) / 9  # the WebRTC thread: the senders' work
            per_viewer[fast].append(each)
            ten_over_one[fast].append(ten.cpu / one.cpu)
            parts.append(
                f"{'framescope' if fast else 'aiortc'}: process 1 viewer {one.cpu * 1e3:.0f} "
                f"ms/s, 10 {ten.cpu * 1e3:.0f} ms/s ({ten.cpu / one.cpu:.2f}x); WebRTC thread "
                f"{one.loop_cpu * 1e3:.1f} and {ten.loop_cpu * 1e3:.1f} ms/s ({each * 1e3:.2f} "
                f"ms/s a viewer past the first); received {ten.received:.0f} frames/s"
            )
        print(f"  round {index + 1}: " + "; ".join(parts))
    ratios = [f / a for f, a in zip(per_viewer[True], per_viewer[False], strict=True) if a > 0]
    print(
        f"  median a viewer past the first (WebRTC thread): framescope "
        f"{statistics.median(per_viewer[True]) * 1e3:.2f} ms/s, aiortc "
        f"{statistics.median(per_viewer[False]) * 1e3:.2f} ms/s; framescope / aiortc "
        f"{statistics.median(ratios):.2f}x (rounds {min(ratios):.2f}-{max(ratios):.2f}x); "
        f"process 10/1: framescope {statistics.median(ten_over_one[True]):.2f}x, aiortc "
        f"{statistics.median(ten_over_one[False]):.2f}x"
    )
    return True


PARTS = {
    "view": view_part,
    "latency": latency_part,
    "cpu": cpu_part,
    "throughput": throughput_part,
    "send": send_part,
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=4.0, help="each throughput run")
    parser.add_argument("--runs", type=int, default=5, help="pairs or rounds of each part")
    parser.add_argument("--latency-seconds", type=float, default=15.0, help="each path's window")
    parser.add_argument("--cpu-seconds", type=float, default=8.0, help="each CPU window")
    parser.add_argument("--mjpeg-fps", type=float, default=10.0, help="the MJPEG preview's fps")
    parser.add_argument("--parts", default=",".join(PARTS), help="which, of " + ",".join(PARTS))
    parser.add_argument(
        "--viewers-decode",
        action="store_true",
        help="the WHEP viewers decode each frame (else they count the frames they receive whole)",
    )
    parser.add_argument(
        "--webrtc-in-threads",
        action="store_true",
        help="the view's WebRTC side in threads of this process (webrtc_process=False), to compare",
    )
    parser.add_argument(
        "--spare-core",
        action="store_true",
        help="throughput: the pipeline's process on core 0, the video process and the viewers "
        "on core 1 (a machine with a core for the video)",
    )
    parser.add_argument("--floor-encoder", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--whep-clients", nargs=2, metavar=("URL", "COUNT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    global IN_THREADS, SPARE_CORE
    IN_THREADS, SPARE_CORE = args.webrtc_in_threads, args.spare_core
    if args.floor_encoder:  # the floor's encoder
        encode_floor(640, 480)
        return 0
    if args.whep_clients:  # the viewers' process
        url, count = args.whep_clients
        asyncio.run(whep_clients(url, int(count), args.viewers_decode))
        return 0
    chosen = args.parts.split(",")
    unknown = set(chosen) - set(PARTS)
    if unknown:
        parser.error(f"--parts: unknown {sorted(unknown)}; choose from {', '.join(PARTS)}")
    results = [PARTS[name](args) for name in chosen]
    left = [
        t.name for t in threading.enumerate() if t is not threading.main_thread() and t.is_alive()
    ]
    if left:
        print(f"threads still running at the end: {left}")
    return 0 if all(results) and not left else 1


if __name__ == "__main__":
    raise SystemExit(main())
