#!/bin/sh
# obslab's start-up for Grafana, run inside the container (official image and local stand-in alike),
# so the lab's security rules hold however the lab is started:
#  - anonymous access is turned off whenever the lab's ports bind beyond loopback;
#  - the admin password and the secret key come from .env as files (compose `secrets:`, named by
#    GF_SECURITY_ADMIN_PASSWORD__FILE and GF_SECURITY_SECRET_KEY__FILE, which the image's /run.sh
#    reads), never as environment values `docker inspect` would show; an empty one stops here;
#  - GRAFANA_ADMIN_PASSWORD from .env takes effect at every start (Grafana itself reads the admin
#    password only when it creates its database).
case "$OBSLAB_BIND_ADDRESS" in
  127.*|::1|localhost) ;;
  *)
    if [ "$GF_AUTH_ANONYMOUS_ENABLED" = "true" ]; then
      echo "obslab: OBSLAB_BIND_ADDRESS=$OBSLAB_BIND_ADDRESS is beyond loopback: anonymous access turned off" >&2
    fi
    export GF_AUTH_ANONYMOUS_ENABLED=false
    ;;
esac
need() {  # need SETTING FILE: compose writes no secret file for an empty value
  [ -s "$2" ] || { echo "obslab: $1 is empty in .env: set one (python3 tools/check_env.py .env generates it)" >&2; exit 1; }
}
need GRAFANA_ADMIN_PASSWORD "$GF_SECURITY_ADMIN_PASSWORD__FILE"
need GRAFANA_SECRET_KEY "$GF_SECURITY_SECRET_KEY__FILE"
if [ -f "$GF_PATHS_DATA/grafana.db" ]; then
  { cat "$GF_SECURITY_ADMIN_PASSWORD__FILE"; echo; } |   # one line, as before (the file has no newline)
    grafana cli --homepath "$GF_PATHS_HOME" --config "$GF_PATHS_CONFIG" \
      admin reset-admin-password --password-from-stdin >/dev/null 2>&1 ||
    echo "obslab: could not apply GRAFANA_ADMIN_PASSWORD; reset it with: docker compose -f docker-compose.observability.yml exec grafana grafana cli admin reset-admin-password --password-from-stdin" >&2
fi
exec /run.sh "$@"
