"""The timepiece examples as Backpack users write them (runs in about 8 seconds)."""

import datetime
import random
import time
from concurrent.futures import ThreadPoolExecutor

from framescope.timepiece import (
    AlarmClock,
    AtSchedule,
    Callback,
    IntervalSchedule,
    OrdinalSchedule,
    StopWatch,
    StopWatchTachometer,
    Ticker,
    local_now,
)

ticker = Ticker(max_intervals=5)
for _ in range(10):
    ticker.tick()
    time.sleep(random.random() / 10)
print(ticker)

with StopWatch("root") as root:
    with root.child("task1", max_intervals=5) as task1:
        time.sleep(0.01)
        with task1.child("subtask1_1") as subtask1_1:
            time.sleep(0.03)
        with task1.child("subtask1_2"):
            time.sleep(0.07)
        with subtask1_1:
            time.sleep(0.05)
    for _ in range(5):
        with root.child("task2") as task2:
            time.sleep(random.random() / 10)
print(root)

executor = ThreadPoolExecutor()


def cb(name: str) -> None:
    print(f"{name} was called at {datetime.datetime.now()}")


at = local_now() + datetime.timedelta(seconds=3)
alarmclock = AlarmClock(
    [
        AtSchedule(at=at, callback=cb, cbkwargs={"name": "AtSchedule"}, executor=executor),
        IntervalSchedule(
            interval=datetime.timedelta(seconds=1.35),
            callback=Callback(cb=cb, cbkwargs={"name": "IntervalSchedule"}, executor=executor),
        ),
        OrdinalSchedule(
            ordinal=17, callback=cb, cbkwargs={"name": "OrdinalSchedule"}, executor=executor
        ),
    ]
)
for _ in range(25 * 5):
    alarmclock.tick()
    time.sleep(1 / 25)

tach = StopWatchTachometer(
    stats_callback=lambda ts, t: print(ts, t.min(), t.max(), t.sum(), t.len()),
    stats_interval=datetime.timedelta(seconds=2),
)
for _ in range(200):
    with tach:
        time.sleep(random.random() / 10)
executor.shutdown(wait=True)
