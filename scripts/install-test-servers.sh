#!/usr/bin/env bash
# Installs the servers the integration tests start on loopback: Debian's
# Prometheus (the AWS and OTLP endpoints come from Python packages).
# Does nothing when a `prometheus` binary is already on PATH.
set -euo pipefail
if command -v prometheus >/dev/null 2>&1; then
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "install-test-servers: no apt-get; install Prometheus yourself (its tests will skip)" >&2
    exit 0
fi
SUDO=""
if [ "$(id -u)" != 0 ]; then
    if ! command -v sudo >/dev/null 2>&1; then
        echo "install-test-servers: not root and no sudo; Prometheus tests will skip" >&2
        exit 0
    fi
    SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends prometheus >/dev/null
