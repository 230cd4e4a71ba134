"""One box of a fleet, for tests/test_fleet.py: a pipeline with its /metrics and its live view.

Run as ``python -m tests.fleet_box ITEMS``; ``FLEET_BOX`` names the box. It
prints one JSON line with its two URLs, runs ITEMS items, prints ``done``, and
serves until its standard input closes.
"""

from __future__ import annotations

import json
import sys

from framescope import Pipeline
from framescope.autoidentity import HostIdentity
from framescope.exporters.prometheus import PrometheusExporter
from framescope.live import LiveView


def double(item: int) -> int:
    return item * 2


def main() -> None:
    items = int(sys.argv[1])
    identity = HostIdentity(env={"box": "FLEET_BOX"})
    pipeline = Pipeline(name="Cam", debug=True).add(lambda x: x, "Decode")
    pipeline.add(double, "Detect", replicas=2).parallelize(queue_size=4)
    with PrometheusExporter(labels=identity.dimensions("host_name", "box")) as exporter:
        exporter.add_pipeline(pipeline)
        metrics = exporter.serve()
        with LiveView(pipeline, refresh=0.1) as view:
            print(json.dumps({"metrics": metrics.url, "view": view.url}), flush=True)
            results = list(pipeline.run(range(items)))
            print("done" if results == [2 * i for i in range(items)] else "wrong", flush=True)
            sys.stdin.read()  # until the test lets go
    pipeline.cleanup()


if __name__ == "__main__":
    main()
