#!/usr/bin/env bash
# Installs the servers and the browser the integration tests use on loopback:
# Debian's Prometheus, Debian's ffmpeg as the RTSP server (it listens with
# `-rtsp_flags listen`), and Debian's chromium with its driver for the live
# view's page (the AWS and OTLP endpoints and the RTMP, HTTP and UDP receivers
# come from Python packages). Does nothing when all are already on PATH.
set -euo pipefail
if command -v prometheus >/dev/null 2>&1 && command -v ffmpeg >/dev/null 2>&1 \
    && command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; then
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "install-test-servers: no apt-get; install Prometheus, ffmpeg and chromium yourself (their tests will skip)" >&2
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
$SUDO apt-get install -y -qq --no-install-recommends prometheus ffmpeg chromium chromium-driver >/dev/null
