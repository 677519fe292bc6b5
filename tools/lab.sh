#!/usr/bin/env bash
# The lab command: engine, .env check, images, `compose up --wait`, demo workload, doctor, URLs.
set -euo pipefail
cd "$(dirname "$0")/.."

bash tools/bootstrap.sh
.venv/bin/python tools/check_env.py .env          # bad .env values stop here, before anything starts
if ! .venv/bin/python tools/images/build_images.py --keep-going; then
  echo "[lab] some images cannot be had on this machine (see above): starting the services that can run"
fi
# The compose file as is, plus a stand-in file where an official image cannot be pulled here.
read -r -a files <<<"$(.venv/bin/python tools/images/build_images.py --compose-args)"
compose() { docker compose "${files[@]}" "$@"; }
.venv/bin/python tools/images/build_images.py --standins | sed 's/^/[lab] /'
services=$(.venv/bin/python tools/images/build_images.py --list-present)
compose up -d --wait $services

set -a; . ./.env; set +a
echo "[lab] demo workload: examples/travel_agent and examples/etl"
OTLP_ENDPOINT="127.0.0.1:${OTLP_GRPC_PORT}" .venv/bin/python examples/travel_agent/main.py --requests 40 --interval 0.25 \
  >/dev/null 2>/tmp/obslab-demo.log || { echo "[lab] the demo failed: /tmp/obslab-demo.log"; exit 1; }
OTLP_ENDPOINT="127.0.0.1:${OTLP_GRPC_PORT}" OBSLAB_METRIC_EXPORT_INTERVAL=5 .venv/bin/python examples/etl/main.py \
  --runs 5 --interval 2 >/dev/null 2>>/tmp/obslab-demo.log || { echo "[lab] the ETL demo failed: /tmp/obslab-demo.log"; exit 1; }
skip=""; case " $services " in *" grafana "*) ;; *) skip="--skip grafana";; esac
.venv/bin/obslab doctor $skip

echo "obslab is up ($services):"
[ -z "$skip" ] && echo "  Grafana     http://127.0.0.1:${GRAFANA_PORT}   login ${GRAFANA_ADMIN_USER} / the GRAFANA_ADMIN_PASSWORD in .env"
cat <<URLS
  Tempo       http://127.0.0.1:${TEMPO_PORT}
  Loki        http://127.0.0.1:${LOKI_PORT}
  Prometheus  http://127.0.0.1:${PROMETHEUS_PORT}
  OTLP        grpc 127.0.0.1:${OTLP_GRPC_PORT}, http 127.0.0.1:${OTLP_HTTP_PORT}
Stop: docker compose ${files[*]} down   (add -v to wipe the data)
URLS
