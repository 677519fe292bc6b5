#!/usr/bin/env bash
# The lab command: engine, .env check, images, `compose up --wait`, demo workload, doctor, URLs.
# It starts every service whose image this machine has; the others are named in one line.
set -euo pipefail
cd "$(dirname "$0")/.."

bash tools/bootstrap.sh
.venv/bin/python tools/check_env.py .env          # bad .env values stop here, before anything starts
.venv/bin/python tools/images/build_images.py     # present, loaded, pulled or (collector, Prometheus, Alertmanager) built
services=$(.venv/bin/python tools/images/build_images.py --list-present)
missing=$(.venv/bin/python tools/images/build_images.py --missing)
if [ -n "$missing" ]; then
  echo "[lab] not running here: ${missing// /, } (official images absent and not built here: AGPL; see the lines above to provide them)"
fi
# Docker Engine before 25 has no healthcheck start_interval, which compose then refuses: the second file
# takes it out there (and probes every second, as before).
engine_files=()
api=$(docker version --format '{{.Server.APIVersion}}')
if [ "$(printf '%s\n1.44\n' "$api" | sort -V | head -1)" != 1.44 ]; then
  engine_files=(-f docker-compose.engine-before-25.yml)
fi
compose() { docker compose -f docker-compose.observability.yml "${engine_files[@]}" "$@"; }
# Compose copies Grafana's secrets (.env's password and key) in when it starts the container, and does not
# see them change: a stopped Grafana starts with the current ones.
case " $services " in *" grafana "*) compose stop grafana >/dev/null 2>&1 || true;; esac
compose up -d --wait $services

set -a; . ./.env; set +a
# Tempo's image has nothing to run a healthcheck with (distroless, no health subcommand), so `up --wait`
# only saw it start: wait here for its /ready, and Loki's, from the host, where they run.
host=${OBSLAB_BIND_ADDRESS:-127.0.0.1}; [ "$host" = 0.0.0.0 ] && host=127.0.0.1
wait_ready() {  # service, host port
  case " $services " in *" $1 "*) ;; *) return 0;; esac
  .venv/bin/python - "$1" "http://$host:$2/ready" <<'PY' || exit 1
import sys, time, urllib.request
service, url = sys.argv[1:]
deadline = time.monotonic() + 120
while True:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            if response.status == 200:
                break
    except Exception:
        pass
    if time.monotonic() > deadline:
        sys.exit(f"[lab] {service} is not ready after 120 s ({url}): docker compose -f docker-compose.observability.yml logs {service}")
    time.sleep(0.5)
PY
}
wait_ready tempo "$TEMPO_PORT"
wait_ready loki "$LOKI_PORT"
echo "[lab] demo workload: examples/travel_agent and examples/etl"
OTLP_ENDPOINT="127.0.0.1:${OTLP_GRPC_PORT}" .venv/bin/python examples/travel_agent/main.py --requests 40 --interval 0.25 \
  >/dev/null 2>/tmp/obslab-demo.log || { echo "[lab] the demo failed: /tmp/obslab-demo.log"; exit 1; }
OTLP_ENDPOINT="127.0.0.1:${OTLP_GRPC_PORT}" OBSLAB_METRIC_EXPORT_INTERVAL=5 .venv/bin/python examples/etl/main.py \
  --runs 5 --interval 2 >/dev/null 2>>/tmp/obslab-demo.log || { echo "[lab] the ETL demo failed: /tmp/obslab-demo.log"; exit 1; }
.venv/bin/obslab doctor --not-running "${missing// /,}"

echo "obslab is up ($services):"
url() { case " $services " in *" $1 "*) printf '  %-11s %s\n' "$2" "$3";; esac; }
url grafana Grafana "http://127.0.0.1:${GRAFANA_PORT}   login ${GRAFANA_ADMIN_USER} / the GRAFANA_ADMIN_PASSWORD in .env"
url tempo Tempo "http://127.0.0.1:${TEMPO_PORT}"
url loki Loki "http://127.0.0.1:${LOKI_PORT}"
url prometheus Prometheus "http://127.0.0.1:${PROMETHEUS_PORT}"
url alertmanager Alerts "http://127.0.0.1:${ALERTMANAGER_PORT}   Alertmanager (a stand-in built here serves its API, not its web UI)"
url otel-collector OTLP "grpc 127.0.0.1:${OTLP_GRPC_PORT}, http 127.0.0.1:${OTLP_HTTP_PORT}"
echo "Stop: docker compose -f docker-compose.observability.yml down   (add -v to wipe the data)"
