"""Hot-path cost of the timepiece timers, as ratios to a bare clock read.

Run: python benchmarks/timepiece.py [--quick]

Every figure comes from this one run: each operation is timed with timeit
(best of several repeats, so the figure is the cost, not the noise) and
divided by the cost of a bare ``time.perf_counter_ns()`` call measured the
same way. The loops are long enough to include the amortised batch folds.
Targets: Ticker.tick() <= 4x, StopWatch enter+exit <= 10x, recent statistics
over a full window of 1,000 samples < 100 us.

With --backpack (the default), Backpack 0.3.2's timepiece is installed into a
throw-away venv (--backpack-venv, reused when present; its numpy pin cannot
install on this Python, so without dependencies, plus python-dateutil) and
imported into this process: its Ticker.tick() and StopWatch enter+exit are
timed back to back with ours in paired rounds (21; 9 with --quick), and the
median of the rounds' ratios ours / Backpack is the verdict (the best times
are printed too). Target: <= 1.1x. NumPy is loaded first (as in any
application that handles frames), so the timers fold their records with it;
ours is also timed with the pure-Python fold, which a process without NumPy
uses.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import random
import statistics
import subprocess
import sys
import tempfile
import time
import timeit
from collections import deque
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy  # noqa: F401 - loaded as in any frame-handling application: the folds use it

from framescope import folds
from framescope.stats import RollingStats
from framescope.timepiece import StopWatch, StopWatchTachometer, Ticker, TickerTachometer


def best_ns(stmt: str, env: dict[str, Any], number: int, repeat: int) -> float:
    """Best per-call time in ns of ``stmt`` over ``repeat`` runs of ``number`` calls."""
    return min(timeit.repeat(stmt, globals=env, number=number, repeat=repeat)) / number * 1e9


class NaiveTicker:
    """The simplest ticker one would write by hand: a deque of float differences."""

    def __init__(self, max_intervals: int = 10) -> None:
        self.intervals: deque[float] = deque(maxlen=max_intervals)
        self._last: float | None = None

    def tick(self) -> None:
        now = time.perf_counter()
        if self._last is not None:
            self.intervals.append(now - self._last)
        self._last = now


def backpack_timepiece(venv_dir: Path) -> Any:
    """Backpack 0.3.2's timepiece module, from a throw-away venv (made on first use)."""
    python = venv_dir / "bin" / "python"
    if not python.exists():
        print(f"installing panorama-backpack==0.3.2 into a throw-away venv at {venv_dir} ...")
        subprocess.run([sys.executable, "-m", "venv", str(venv_dir)], check=True)
        for packages in (["--no-deps", "panorama-backpack==0.3.2"], ["python-dateutil"]):
            subprocess.run([str(python), "-m", "pip", "install", "-q", *packages], check=True)
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    sys.path.append(site)  # after ours: only backpack itself comes from there
    import backpack.timepiece  # type: ignore[import-not-found]

    return backpack.timepiece


def compare_with_backpack(venv_dir: Path, number: int, repeat: int) -> bool:
    """Print ours vs Backpack's tick and StopWatch cost, paired; True when within 1.1x.

    Each round times ours, ours with the pure-Python fold and Backpack's back
    to back (``number`` calls each); the verdict is the median of the rounds'
    ratios, which cancels the slow drifts of a shared machine. The best time
    of each is printed too. Ours folds with NumPy (loaded by this script, as
    by any application that handles frames) and with the pure-Python fold.
    """
    bp = backpack_timepiece(venv_dir)
    ours_ticker, their_ticker = Ticker(max_intervals=10), bp.Ticker(max_intervals=10)
    ours_watch, their_watch = StopWatch("a"), bp.StopWatch("a")

    def ours_block() -> None:
        with ours_watch:
            pass

    def their_block() -> None:
        with their_watch:
            pass

    env = {"o": ours_ticker, "t": their_ticker, "ob": ours_block, "tb": their_block}
    pure_python = {"_numpy": lambda: None}
    rounds = 3 * repeat
    ok = True
    print(f"\nside by side with Backpack 0.3.2 ({rounds} paired rounds of {number:,} calls)")
    for name, ours_stmt, their_stmt in (
        ("Ticker.tick()", "o.tick()", "t.tick()"),
        ("StopWatch enter+exit", "ob()", "tb()"),
    ):
        ours, ours_python, theirs = [], [], []
        for _ in range(rounds):
            ours.append(best_ns(ours_stmt, env, number, 1))
            with patched(folds, pure_python):
                ours_python.append(best_ns(ours_stmt, env, number, 1))
            theirs.append(best_ns(their_stmt, env, number, 1))
        ratio = statistics.median(a / b for a, b in zip(ours, theirs, strict=True))
        python_ratio = statistics.median(a / b for a, b in zip(ours_python, theirs, strict=True))
        verdict = "ok" if ratio <= 1.1 else "MISSED"
        ok &= ratio <= 1.1
        print(
            f"{name:<24} median ratio {ratio:.2f}x (<= 1.1x {verdict}), pure-Python fold"
            f" {python_ratio:.2f}x; best: framescope {min(ours):7.1f} ns"
            f" ({min(ours_python):7.1f}), Backpack {min(theirs):7.1f} ns"
        )
    return ok


@contextlib.contextmanager
def patched(module: Any, names: dict[str, Any]) -> Iterator[None]:
    """Set attributes of ``module`` for the duration of the block."""
    saved = {name: getattr(module, name) for name in names}
    for name, value in names.items():
        setattr(module, name, value)
    try:
        yield
    finally:
        for name, value in saved.items():
            setattr(module, name, value)


def main() -> int:  # noqa: PLR0915 - one measured run, printed in order
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer iterations (a smoke run)")
    parser.add_argument("--no-backpack", action="store_true", help="skip the Backpack comparison")
    parser.add_argument(
        "--backpack-venv", type=Path, default=Path(tempfile.gettempdir()) / "framescope-bp-venv"
    )
    args = parser.parse_args()
    number, repeat = (100_000, 3) if args.quick else (1_000_000, 7)

    clock_read = time.perf_counter_ns
    ticker = Ticker(max_intervals=100)
    naive = NaiveTicker(max_intervals=100)
    watch = StopWatch("bench", max_intervals=100)
    tach = TickerTachometer(lambda ts, t: None, stats_interval=datetime.timedelta(seconds=1))
    sw_tach = StopWatchTachometer(lambda ts, t: None, stats_interval=datetime.timedelta(seconds=1))

    def stopwatch_block() -> None:
        with watch:
            pass

    def tach_block() -> None:
        with sw_tach:
            pass

    def empty_call() -> None:
        pass

    env = {
        "clock_read": clock_read,
        "ticker": ticker,
        "naive": naive,
        "stopwatch_block": stopwatch_block,
        "tach": tach,
        "tach_block": tach_block,
        "empty_call": empty_call,
    }
    floor = best_ns("clock_read()", env, number, repeat)
    rows = [
        ("bare time.perf_counter_ns()", floor, None),
        ("Ticker.tick()", best_ns("ticker.tick()", env, number, repeat), 4.0),
        ("hand-written deque ticker .tick()", best_ns("naive.tick()", env, number, repeat), None),
        ("TickerTachometer.tick()", best_ns("tach.tick()", env, number, repeat), None),
        (
            "StopWatch enter+exit (with-block in a function)",
            best_ns("stopwatch_block()", env, number, repeat),
            10.0,
        ),
        (
            "  of which: calling the empty function",
            best_ns("empty_call()", env, number, repeat),
            None,
        ),
        (
            "StopWatchTachometer enter+exit",
            best_ns("tach_block()", env, number, repeat),
            None,
        ),
    ]
    print(f"Python {sys.version.split()[0]}, {number:,} calls x {repeat} repeats, best run\n")
    print(f"{'operation':<50} {'ns/call':>9} {'x clock':>8}  target")
    failed = False
    for name, ns, target in rows:
        ratio = ns / floor
        verdict = ""
        if target is not None:
            ok = ratio <= target
            failed |= not ok
            verdict = f"<= {target:g}x {'ok' if ok else 'MISSED'}"
        print(f"{name:<50} {ns:9.1f} {ratio:8.2f}  {verdict}")

    rng = random.Random(7)
    samples = [rng.randint(1_000_000, 50_000_000) for _ in range(5_000)]
    stats = RollingStats(window=1_000, divisor=1e9)
    stats.extend(samples, list(range(len(samples))))
    full_ticker = Ticker(max_intervals=1_000)
    for _ in range(2_000):
        full_ticker.tick()
    window = [s / 1e9 for s in samples[-1_000:]]
    env2 = {"stats": stats, "full_ticker": full_ticker, "window": window, "st": statistics}
    n_stats = 200 if args.quick else 2_000
    summary_us = best_ns("stats.snapshot().summary()", env2, n_stats, repeat) / 1e3
    ticker_us = best_ns("full_ticker.statistics().summary()", env2, n_stats, repeat) / 1e3
    stdlib_us = (
        best_ns(
            "st.fmean(window); st.median(window); st.stdev(window);"
            "st.quantiles(window, n=100, method='inclusive')",
            env2,
            max(n_stats // 10, 20),
            repeat,
        )
        / 1e3
    )
    print("\nrecent statistics over a full window of 1,000 samples")
    print("(min, max, mean, median, stddev, p90, p99, rate, all-time aggregates)")
    for name, us in (
        ("RollingStats.snapshot().summary()", summary_us),
        ("Ticker.statistics().summary()", ticker_us),
    ):
        ok = us < 100.0
        failed |= not ok
        print(f"{name:<50} {us:9.1f} us  < 100 us {'ok' if ok else 'MISSED'}")
    print(f"{'stdlib statistics: fmean+median+stdev+quantiles':<50} {stdlib_us:9.1f} us")
    print(f"{'  ratio stdlib / ours':<50} {stdlib_us / summary_us:9.1f} x")
    if not args.no_backpack:
        failed |= not compare_with_backpack(args.backpack_venv, number // 4, repeat)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
