"""Fleet metrics end to end, on local servers: CloudWatch, Prometheus, AutoIdentity.

Run: python examples/fleet_metrics.py   (needs framescope[aws,prometheus] and moto[server])

A moto server on loopback stands in for AWS: it holds a Panorama application
instance and receives the CloudWatch data. The example

1. learns who it is with AutoIdentity (the instance id comes from AppGraph_Uid,
   as on a Panorama device) and uses that for the CloudWatch dimensions;
2. runs a threaded two-stage pipeline for about a second, with a
   TickerTachometer reporting frame times to CloudWatch every 0.25 s and a
   PipelineMetricsExporter sending per-stage fps and latency percentiles;
3. serves the pipeline on a Prometheus /metrics endpoint and scrapes it once;
4. reads the frame-time statistics back from CloudWatch.
"""

from __future__ import annotations

import datetime
import logging
import os
import socket
import time
import urllib.request

import boto3
from moto.server import ThreadedMotoServer

from framescope.autoidentity import APP_INSTANCE_VARIABLE, AutoIdentity
from framescope.cwadapter import CloudWatchTimerAdapter, PipelineMetricsExporter
from framescope.exporters.prometheus import PrometheusExporter
from framescope.pipeline import Pipeline
from framescope.timepiece import TickerTachometer

REGION = "eu-west-1"
NAMESPACE = "fleet-example"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def deploy_application(session: boto3.Session, url: str) -> str:
    """What the Panorama console would have done: a device and an application on it."""
    panorama = session.client("panorama", endpoint_url=url)
    device = panorama.provision_device(Name="dock-camera-3")
    instance = panorama.create_application_instance(
        DefaultRuntimeContextDevice=device["DeviceId"],
        ManifestPayload={"PayloadData": "{}"},
        Name="people-counter",
        Description="counts people at the loading dock",
        Tags={"site": "lyon"},
    )
    return str(instance["ApplicationInstanceId"])


def main() -> int:
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    port = free_port()
    aws = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    aws.start()
    url = f"http://127.0.0.1:{port}"
    session = boto3.Session(
        aws_access_key_id="example", aws_secret_access_key="example", region_name=REGION
    )
    try:
        os.environ[APP_INSTANCE_VARIABLE] = deploy_application(session, url)  # as Panorama does

        identity = AutoIdentity(REGION, boto3_session=session, endpoint_url=url)
        print(identity)
        dimensions = identity.dimensions()

        pipeline = Pipeline(name="Counter")
        pipeline.add(lambda frame: frame, "Decode").add(lambda frame: frame * 2, "Detect")
        pipeline.parallelize(queue_size=4)

        adapter = CloudWatchTimerAdapter(
            NAMESPACE, "frame_time", dimensions, boto3_session=session, endpoint_url=url
        )
        tach = TickerTachometer(stats_callback=adapter.send_metrics, stats_interval=0.25)
        prometheus = PrometheusExporter().add_pipeline(pipeline).add_timer(tach, "frame")
        server = prometheus.serve()
        with PipelineMetricsExporter(
            pipeline, NAMESPACE, dimensions, interval=0.25, boto3_session=session, endpoint_url=url
        ) as pipeline_exporter:
            end = time.monotonic() + 1.0
            frame = 0
            while time.monotonic() < end:
                tach.tick()
                pipeline.forward(frame)
                frame += 1
                time.sleep(0.005)
        tach.flush()
        adapter.close()
        print(f"pipeline exporter: {pipeline_exporter.counters()}")

        scraped = urllib.request.urlopen(server.url, timeout=5).read().decode()
        wanted = ("framescope_pipeline_completed_items_total", "framescope_timer_seconds_count")
        for line in scraped.splitlines():
            if line.startswith(wanted):
                print(line)
        prometheus.close()
        pipeline.cleanup()

        now = datetime.datetime.now(datetime.timezone.utc)
        points = session.client("cloudwatch", endpoint_url=url).get_metric_statistics(
            Namespace=NAMESPACE,
            MetricName="frame_time",
            Dimensions=[{"Name": k, "Value": v} for k, v in dimensions.items()],
            StartTime=now - datetime.timedelta(hours=1),
            EndTime=now + datetime.timedelta(hours=1),
            Period=3600,
            Statistics=["SampleCount", "Average", "Maximum"],
        )["Datapoints"]
        for point in points:
            print(
                f"CloudWatch frame_time: {point['SampleCount']:.0f} frames, "
                f"mean {point['Average'] * 1000:.2f} ms, max {point['Maximum'] * 1000:.2f} ms"
            )
        print(f"frames ticked: {frame}; tachometer adapter: {adapter.counters()}")
    finally:
        aws.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
