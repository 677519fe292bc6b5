#!/usr/bin/env bash
# The lab command of a clone: the machine made able to run the lab, its images (stand-ins built here
# where no registry answers), then `obslab lab up` on this checkout's .env (the .env checks, the ports,
# `compose up --wait`, the one line naming what does not run here, the URLs), a demo workload and the doctor.
set -euo pipefail
cd "$(dirname "$0")/.."

bash tools/bootstrap.sh
.venv/bin/python tools/images/build_images.py     # present, loaded, pulled or (collector, Prometheus, Alertmanager) built
.venv/bin/obslab lab up --env-file .env

set -a; . ./.env; set +a
echo "[lab] demo workload: examples/travel_agent and examples/etl"
OTLP_ENDPOINT="127.0.0.1:${OTLP_GRPC_PORT}" .venv/bin/python examples/travel_agent/main.py --requests 40 --interval 0.25 \
  >/dev/null 2>/tmp/obslab-demo.log || { echo "[lab] the demo failed: /tmp/obslab-demo.log"; exit 1; }
OTLP_ENDPOINT="127.0.0.1:${OTLP_GRPC_PORT}" OBSLAB_METRIC_EXPORT_INTERVAL=5 .venv/bin/python examples/etl/main.py \
  --runs 5 --interval 2 >/dev/null 2>>/tmp/obslab-demo.log || { echo "[lab] the ETL demo failed: /tmp/obslab-demo.log"; exit 1; }
.venv/bin/obslab doctor     # it asks the engine which of the lab's services run here
echo "Status: .venv/bin/obslab lab status   Logs: .venv/bin/obslab lab logs [service]   Stop: .venv/bin/obslab lab down"
