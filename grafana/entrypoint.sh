#!/bin/sh
# obslab's start-up for Grafana, run inside the container (official image and local stand-in alike),
# so the lab's security rules hold however the lab is started:
#  - anonymous access is turned off whenever the lab's ports bind beyond loopback;
#  - GRAFANA_ADMIN_PASSWORD from .env takes effect at every start (Grafana itself reads
#    GF_SECURITY_ADMIN_PASSWORD only when it creates its database).
case "$OBSLAB_BIND_ADDRESS" in
  127.*|::1|localhost) ;;
  *)
    if [ "$GF_AUTH_ANONYMOUS_ENABLED" = "true" ]; then
      echo "obslab: OBSLAB_BIND_ADDRESS=$OBSLAB_BIND_ADDRESS is beyond loopback: anonymous access turned off" >&2
    fi
    export GF_AUTH_ANONYMOUS_ENABLED=false
    ;;
esac
if [ -f "$GF_PATHS_DATA/grafana.db" ]; then
  printf '%s\n' "$GF_SECURITY_ADMIN_PASSWORD" |
    grafana cli --homepath "$GF_PATHS_HOME" --config "$GF_PATHS_CONFIG" \
      admin reset-admin-password --password-from-stdin >/dev/null 2>&1 ||
    echo "obslab: could not apply GRAFANA_ADMIN_PASSWORD; reset it with: docker compose -f docker-compose.observability.yml exec grafana grafana cli admin reset-admin-password --password-from-stdin" >&2
fi
exec /run.sh "$@"
