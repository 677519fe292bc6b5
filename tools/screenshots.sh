#!/usr/bin/env bash
# Screenshots of every Grafana dashboard after the demo workload, for the README (docs/screenshots):
# the browser tests on a fresh test lab, saving what they look at.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/bootstrap.sh --browser
.venv/bin/python tools/images/build_images.py
OBSLAB_SCREENSHOTS=docs/screenshots exec .venv/bin/python -m pytest tests/integration/test_grafana_browser.py "$@"
