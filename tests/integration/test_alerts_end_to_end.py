"""Alerts, end to end on the lab: an example app goes wrong, Prometheus fires the rule of
prometheus/rules/obslab-alerts.yml, Alertmanager routes it, and the webhook of .env
(OBSLAB_ALERT_WEBHOOK_URL) receives it with the service's name. The webhook receiver is a small HTTP
server in this process, which Alertmanager reaches at host.docker.internal (tests/alerting/). The lab's
test settings shorten the rules' `for:` and evaluation interval (conftest.ALERT_TEST_SETTINGS)."""

from __future__ import annotations

import json
import re
import subprocess
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from conftest import MISSING, eventually
from lab import REPO


class Webhook:
    """What Alertmanager POSTed: one payload (its webhook JSON) per notification."""

    def __init__(self) -> None:
        self.payloads: list[dict] = []
        self.lock = threading.Lock()

    def alerts(self, alertname: str, **labels: str) -> list[dict]:
        with self.lock:
            return [alert for payload in self.payloads for alert in payload.get("alerts", [])
                    if alert["labels"].get("alertname") == alertname and alert["status"] == "firing"
                    and all(alert["labels"].get(k) == v for k, v in labels.items())]


@pytest.fixture(scope="module")
def webhook(lab):
    """The webhook receiver, on the address host.docker.internal has inside the Alertmanager container
    (the host's side of the Docker bridge, not every interface) and the port of the lab's .env."""
    hosts = lab.compose("exec", "-T", "alertmanager", "cat", "/etc/hosts").stdout
    address = next(line.split()[0] for line in hosts.splitlines() if line.strip().endswith("host.docker.internal"))
    received = Webhook()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 - the http.server API
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            with received.lock:
                received.payloads.append(json.loads(body))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer((address, int(lab.env["ALERT_WEBHOOK_PORT"])), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield received
    server.shutdown()
    server.server_close()


def test_a_service_turning_to_100_percent_errors_reaches_the_webhook_with_its_name(lab, webhook):
    service = f"alerts-web-{uuid.uuid4().hex[:8]}"
    started = time.monotonic()
    with lab.web_api(service, "--error-rate", "1") as url:
        def fired():
            for _ in range(5):  # traffic all along: every quote answers 500
                assert requests.get(f"{url}/quote/paris", timeout=5).status_code == 500
            return webhook.alerts("ServiceErrorBudgetBurn", service=service)
        alerts = eventually(fired, timeout=180, interval=1)
    seconds = time.monotonic() - started
    alert = alerts[0]
    assert alert["labels"]["severity"] == "critical" and alert["labels"]["component"] == "service"
    # Every quote failed; the example's one health probe before them succeeded.
    assert re.match(rf"{service}: (100|9\d(\.\d+)?)% of requests failed in the last hour \(development\)",
                    alert["annotations"]["summary"]), alert["annotations"]["summary"]
    assert alert["annotations"]["dashboard"] == (
        f"http://127.0.0.1:{lab.env['GRAFANA_PORT']}/d/obslab-service-overview/service-overview"
        f"?viewPanel=panel-2&var-service={service}")
    print(f"\nServiceErrorBudgetBurn for {service} at the webhook {seconds:.0f} s after the app turned to errors")
    # Its slow-burn twin fires too, and Alertmanager holds it back (inhibited by the fast burn).
    assert not webhook.alerts("ServiceErrorBudgetBurnSlow", service=service)


def test_an_llm_budget_crossed_by_the_fake_llm_client_fires_its_alert(lab, webhook):
    service = f"alerts-llm-{uuid.uuid4().hex[:8]}"
    started = time.monotonic()
    lab.run_demo(service, requests_count=12, interval=0.5, fake_llm="both")  # over 6 s: metrics every 2 s
    cost = lab.value(f'sum(obslab_gen_ai_client_cost_total{{service_name="{service}"}})', default=None)
    alerts = eventually(lambda: webhook.alerts("LLMDailyBudgetExceeded", service_name=service), timeout=120)
    seconds = time.monotonic() - started
    alert = alerts[0]
    assert alert["labels"]["component"] == "llm"
    assert alert["annotations"]["summary"].startswith(f"{service}: LLM calls cost ")
    assert alert["annotations"]["summary"].endswith("over the daily budget of 0.0010 USD")
    assert f"/d/obslab-llm-cost/llm-cost?viewPanel=panel-6&var-service={service}" in alert["annotations"]["dashboard"]
    # The same run called a model without a price (every eighth request of the fake client).
    assert eventually(lambda: webhook.alerts("LLMUnpricedCalls", service_name=service,
                                             gen_ai_request_model="local-llama-3"), timeout=60)
    print(f"\nLLMDailyBudgetExceeded for {service} (cost {cost} USD) at the webhook {seconds:.0f} s after the run")


def test_doctor_lists_the_firing_alerts_after_its_hops(lab):
    """An alert sent to the lab's Alertmanager (as Prometheus sends them) is listed by `obslab doctor`,
    after its hops, with its severity, name and summary; the doctor's exit code is its hops'."""
    service = f"alerts-doctor-{uuid.uuid4().hex[:8]}"
    alert = {"labels": {"alertname": "ServiceErrorBudgetBurn", "severity": "critical", "component": "service",
                        "service": service, "deployment_environment": "development"},
             "annotations": {"summary": f"{service}: 100% of requests failed in the last hour (development)"}}
    requests.post(f"{lab.alertmanager}/api/v2/alerts", json=[alert], timeout=5).raise_for_status()
    absent = [name for name in ("tempo", "loki", "grafana") if name in MISSING]
    doctor = [str(REPO / ".venv/bin/obslab"), "doctor", "--timeout", "60", "--not-running", ",".join(absent)]
    result = subprocess.run(doctor, capture_output=True, text=True, cwd=lab.env_file.parent, timeout=300)
    print(result.stdout)
    assert result.returncode == 0, result.stdout + result.stderr
    hops, _, alerts = result.stdout.partition("\nalerts: ")
    assert "prometheus         ok" in hops and alerts.startswith(tuple("123456789"))
    line = next(line for line in alerts.splitlines() if service in line)
    assert line.split()[:2] == ["critical", "ServiceErrorBudgetBurn"]
    assert line.endswith(f"{service}: 100% of requests failed in the last hour (development)")
