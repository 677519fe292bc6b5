#!/bin/sh
# Renders what .env decides about alerting into files Prometheus and Alertmanager read: neither expands
# environment variables in its rule files or config. Run by the compose one-shot `alerting-config`
# (busybox and promtool of the Prometheus image) before Prometheus and Alertmanager start, at every
# `docker compose up`, into the `alerting-config` volume:
#
#   rules/objectives.yml   constant series from .env: the objectives the alert rules compare with
#                          (OBSLAB_SLO_AVAILABILITY, OBSLAB_SLO_LATENCY_MS, OBSLAB_LLM_BUDGET_USD_PER_DAY,
#                          absent when unset: the budget alert is then off) and the Grafana URL of the links
#   rules/obslab-alerts.yml  prometheus/rules/obslab-alerts.yml as it is, except with OBSLAB_ALERT_FOR set
#                          (every rule's `for:` becomes it) or OBSLAB_RULE_EVALUATION_INTERVAL (every
#                          group is evaluated that often): settings for tests and demos, empty by default
#   alertmanager.yml       alertmanager/alertmanager.yml; its root route goes to the `lab` receiver (sends
#                          nothing) when OBSLAB_ALERT_WEBHOOK_URL is empty
#   webhook_url            OBSLAB_ALERT_WEBHOOK_URL (read by the webhook receiver's url_file), mode 0600,
#                          owned by the user Alertmanager runs as (nobody, 65534): a webhook URL often
#                          carries a token, and only Alertmanager needs it
#
# A value that is not what it should be stops here with its variable named, and Prometheus and
# Alertmanager do not start (`docker compose up` says which service failed; its logs say why).
set -eu

out=/rendered
ALERTMANAGER_USER=65534:65534   # prom/alertmanager's Dockerfile: USER nobody
awk="busybox awk"

fail() { echo "alerting-config: $*" >&2; exit 1; }

number() {  # number NAME VALUE MIN_EXCLUSIVE MAX_INCLUSIVE(empty: none)
    $awk -v v="$2" -v lo="$3" -v hi="$4" 'BEGIN {
        if (v !~ /^[0-9]+(\.[0-9]+)?$/ || v + 0 <= lo + 0 || (hi != "" && v + 0 > hi + 0)) exit 1 }' \
        || fail "$1=$2: must be a number above $3${4:+ and at most $4}"
}
duration() {  # duration NAME VALUE
    echo "$2" | busybox grep -Eq '^[0-9]+(ms|s|m|h)$' || fail "$1=$2: must be a duration such as 10s, 5m or 1h"
}

number OBSLAB_SLO_AVAILABILITY "$OBSLAB_SLO_AVAILABILITY" 0 99.999
number OBSLAB_SLO_LATENCY_MS "$OBSLAB_SLO_LATENCY_MS" 0 ""
[ -z "${OBSLAB_LLM_BUDGET_USD_PER_DAY:-}" ] || number OBSLAB_LLM_BUDGET_USD_PER_DAY "$OBSLAB_LLM_BUDGET_USD_PER_DAY" 0 ""
[ -z "${OBSLAB_ALERT_FOR:-}" ] || duration OBSLAB_ALERT_FOR "$OBSLAB_ALERT_FOR"
[ -z "${OBSLAB_RULE_EVALUATION_INTERVAL:-}" ] || duration OBSLAB_RULE_EVALUATION_INTERVAL "$OBSLAB_RULE_EVALUATION_INTERVAL"
# The compose service passes the webhook URL as a file (a secret), so that `docker inspect` never shows
# it, and OBSLAB_ALERT_WEBHOOK=set when there is one (compose leaves a stale file when the URL becomes
# empty); run by hand, the variable itself works too.
webhook="${OBSLAB_ALERT_WEBHOOK_URL:-}"
if [ -z "$webhook" ] && [ "${OBSLAB_ALERT_WEBHOOK:-}" = set ]; then
    webhook=$(cat "$OBSLAB_ALERT_WEBHOOK_URL_FILE") || fail "OBSLAB_ALERT_WEBHOOK_URL: its file is unreadable"
fi
case "$webhook" in
    ""|http://?*|https://?*) ;;
    *) fail "OBSLAB_ALERT_WEBHOOK_URL=$webhook: must be an http:// or https:// URL (or empty: no webhook)" ;;
esac
case "${OBSLAB_BIND_ADDRESS:-127.0.0.1}" in
    0.0.0.0|::|"") host=localhost ;;   # listening everywhere: this machine's name is the caller's to know
    *:*) host="[$OBSLAB_BIND_ADDRESS]" ;;
    *) host="${OBSLAB_BIND_ADDRESS:-127.0.0.1}" ;;
esac
grafana_url="http://$host:${GRAFANA_PORT:-3000}"

rm -rf "$out/rules" "$out/alertmanager.yml" "$out/webhook_url"
mkdir -p "$out/rules"

interval="${OBSLAB_RULE_EVALUATION_INTERVAL:-}"
{
    echo "# Rendered by prometheus/render-alerting.sh from .env at \`docker compose up\`: do not edit."
    echo "groups:"
    echo "  - name: obslab-objectives"
    [ -z "$interval" ] || echo "    interval: $interval"
    echo "    rules:"
    echo "      - record: obslab:objective:error_budget_ratio   # OBSLAB_SLO_AVAILABILITY=$OBSLAB_SLO_AVAILABILITY"
    echo "        expr: vector((100 - $OBSLAB_SLO_AVAILABILITY) / 100)"
    echo "      - record: obslab:objective:latency_seconds      # OBSLAB_SLO_LATENCY_MS=$OBSLAB_SLO_LATENCY_MS"
    echo "        expr: vector($OBSLAB_SLO_LATENCY_MS / 1000)"
    if [ -n "${OBSLAB_LLM_BUDGET_USD_PER_DAY:-}" ]; then
        echo "      - record: obslab:objective:llm_budget_usd       # OBSLAB_LLM_BUDGET_USD_PER_DAY"
        echo "        expr: vector($OBSLAB_LLM_BUDGET_USD_PER_DAY)"
    fi
    echo "      - record: obslab:lab_info                       # where the alerts' dashboard links point"
    echo "        expr: vector(1)"
    echo "        labels:"
    echo "          grafana_url: \"$grafana_url\""
} > "$out/rules/objectives.yml"

$awk -v for_="${OBSLAB_ALERT_FOR:-}" -v every="$interval" '
    for_ != "" && /^ +for: / { sub(/for: .*/, "for: " for_) }
    { print }
    every != "" && /^  - name: / { print "    interval: " every }
' /obslab/rules/obslab-alerts.yml > "$out/rules/obslab-alerts.yml"

if [ -n "$webhook" ]; then
    cp /obslab/alertmanager.yml "$out/alertmanager.yml"
else
    $awk '/^  receiver: webhook/ { sub(/receiver: webhook/, "receiver: lab") } { print }' \
        /obslab/alertmanager.yml > "$out/alertmanager.yml"
fi
(umask 077 && printf '%s' "$webhook" > "$out/webhook_url")   # 0600 from its first byte
chmod 0755 "$out" "$out/rules"
chmod 0644 "$out"/rules/*.yml "$out/alertmanager.yml"
chown "$ALERTMANAGER_USER" "$out/webhook_url"   # the one capability this one-shot has: CHOWN

/bin/promtool check rules "$out"/rules/*.yml >/dev/null || fail "the rendered rules do not load (see above)"
[ -n "$webhook" ] && route="the webhook" || route="no webhook (alerts shown, not sent)"
echo "alerting-config: objectives $OBSLAB_SLO_AVAILABILITY % of requests, ${OBSLAB_SLO_LATENCY_MS} ms;" \
     "LLM budget ${OBSLAB_LLM_BUDGET_USD_PER_DAY:-off}; $route${OBSLAB_ALERT_FOR:+; for: $OBSLAB_ALERT_FOR}${interval:+; every $interval}"
