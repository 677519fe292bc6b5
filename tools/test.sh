#!/usr/bin/env bash
# The test command: bootstrap the machine, make the lab's images, run every test.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/bootstrap.sh --browser
.venv/bin/python tools/images/build_images.py
exec .venv/bin/python -m pytest tests "$@"
