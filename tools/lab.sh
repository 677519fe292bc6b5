#!/usr/bin/env bash
# The lab command: engine, .env check, images, `compose up --wait`, demo workload, URLs.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/bootstrap.sh
.venv/bin/python tools/check_env.py .env          # bad .env values stop here, before anything starts
.venv/bin/python tools/images/build_images.py
docker compose -f docker-compose.observability.yml up -d --wait
set -a; . ./.env; set +a
OTLP_ENDPOINT="127.0.0.1:${OTLP_GRPC_PORT}" .venv/bin/python examples/travel_agent/main.py --requests 30 >/dev/null
cat <<URLS
obslab is up:
  Grafana     http://${OBSLAB_BIND_ADDRESS}:${GRAFANA_PORT}   (user ${GRAFANA_ADMIN_USER}, password in .env)
  Tempo       http://${OBSLAB_BIND_ADDRESS}:${TEMPO_PORT}
  Loki        http://${OBSLAB_BIND_ADDRESS}:${LOKI_PORT}
  Prometheus  http://${OBSLAB_BIND_ADDRESS}:${PROMETHEUS_PORT}
  OTLP        grpc ${OBSLAB_BIND_ADDRESS}:${OTLP_GRPC_PORT}, http ${OBSLAB_BIND_ADDRESS}:${OTLP_HTTP_PORT}
URLS
