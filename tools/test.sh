#!/usr/bin/env bash
# The test command: bootstrap the machine, make the lab's images, run every test.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/bootstrap.sh
.venv/bin/python tools/images/build_images.py --only otel/opentelemetry-collector-contrib prom/prometheus grafana/loki grafana/tempo
exec .venv/bin/python -m pytest tests "$@"
