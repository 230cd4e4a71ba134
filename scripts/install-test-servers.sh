#!/usr/bin/env bash
# Installs the servers and the browser the integration tests use on loopback:
# Debian's Prometheus, Debian's ffmpeg as the RTSP server (it listens with
# `-rtsp_flags listen`), Debian's GStreamer RTSP server (run by the system
# python, /usr/bin/python3 with gi, it serves a live camera to VideoSource),
# and Debian's chromium with its driver for the live view's page (the AWS and
# OTLP endpoints and the RTMP, HTTP and UDP receivers come from Python
# packages). Does nothing when all are already installed.
set -euo pipefail
gst_rtsp_server() {
    [ -x /usr/bin/python3 ] && /usr/bin/python3 -c \
        "import gi; gi.require_version('Gst', '1.0'); gi.require_version('GstRtspServer', '1.0'); from gi.repository import Gst; Gst.init(None); assert all(Gst.ElementFactory.find(e) for e in ('videotestsrc', 'x264enc', 'rtph264pay', 'valve'))" \
        >/dev/null 2>&1
}
if command -v prometheus >/dev/null 2>&1 && command -v ffmpeg >/dev/null 2>&1 \
    && command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1 \
    && gst_rtsp_server; then
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "install-test-servers: no apt-get; install Prometheus, ffmpeg, GStreamer's RTSP server and chromium yourself (their tests will skip)" >&2
    exit 0
fi
SUDO=""
if [ "$(id -u)" != 0 ]; then
    if ! command -v sudo >/dev/null 2>&1; then
        echo "install-test-servers: not root and no sudo; Prometheus, RTSP and browser tests will skip" >&2
        exit 0
    fi
    SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends prometheus ffmpeg chromium chromium-driver \
    python3 python3-gi gir1.2-gst-rtsp-server-1.0 gstreamer1.0-rtsp gstreamer1.0-plugins-base \
    gstreamer1.0-plugins-good gstreamer1.0-plugins-bad gstreamer1.0-plugins-ugly >/dev/null
