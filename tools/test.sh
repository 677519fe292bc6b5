#!/usr/bin/env bash
# The test command: bootstrap the machine, make the lab's images, run every test.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/bootstrap.sh
.venv/bin/python tools/images/build_images.py
# The browser tests drive Grafana: Chromium is installed only where Grafana's image is present.
case " $(.venv/bin/python tools/images/build_images.py --list-present) " in
  *" grafana "*) bash tools/bootstrap.sh --browser ;;
esac
exec .venv/bin/python -m pytest tests "$@"
