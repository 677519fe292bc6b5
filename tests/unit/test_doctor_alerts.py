"""``obslab doctor`` lists the alerts firing now, after its hops, as Alertmanager's v2 API gives them."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from lab import free_port
from obslab.doctor import firing_alerts

ALERTS = [
    {"labels": {"alertname": "ScrapeTargetDown", "severity": "warning", "job": "tempo", "instance": "tempo:3200"},
     "annotations": {"summary": "tempo: Prometheus cannot scrape tempo:3200, the service is down or unreachable"},
     "startsAt": "2026-12-02T16:01:02.123Z", "status": {"state": "active"}},
    {"labels": {"alertname": "ServiceErrorBudgetBurn", "severity": "critical", "service": "payments"},
     "annotations": {"summary": "payments: 100% of requests failed in the last hour\n(development), burning..."},
     "startsAt": "2026-12-02T16:05:00Z", "status": {"state": "active"}},
    {"labels": {"alertname": "FromElsewhere", "team": "data"}, "annotations": {},
     "startsAt": "2026-12-02T16:06:00Z", "status": {"state": "active"}},
]


@pytest.fixture
def alertmanager():
    """A stand-in for Alertmanager's /api/v2/alerts; yields (url, the alerts it serves, the queries it got)."""
    served, queries = [], []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - the http.server API
            queries.append(self.path)
            body = json.dumps(served).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", served, queries
    server.shutdown()
    server.server_close()


def test_firing_alerts_are_listed_most_severe_first_with_their_summary(alertmanager):
    url, served, queries = alertmanager
    served.extend(ALERTS)
    lines = firing_alerts(url, not_running=("tempo", "loki", "grafana"))
    assert lines[0] == f"alerts: 3 firing (Alertmanager {url})"
    assert lines[1].split()[:2] == ["critical", "ServiceErrorBudgetBurn"]
    assert "since 16:05:00 UTC" in lines[1]
    assert lines[1].endswith("payments: 100% of requests failed in the last hour (development), burning...")
    assert lines[2].split()[:2] == ["warning", "ScrapeTargetDown"]
    assert lines[2].endswith("the service is down or unreachable (not running here)")
    assert lines[3].split()[:2] == ["-", "FromElsewhere"] and lines[3].endswith("team=data")
    assert queries == ["/api/v2/alerts?active=true&silenced=false&inhibited=false"]


def test_no_alert_firing_is_said_in_one_line(alertmanager):
    url, _, _ = alertmanager
    assert firing_alerts(url) == [f"alerts: none firing (Alertmanager {url})"]


def test_an_alertmanager_that_does_not_answer_is_said_in_one_line():
    url = f"http://127.0.0.1:{free_port()}"
    assert firing_alerts(url) == [f"alerts: Alertmanager {url} does not answer, the firing alerts cannot be shown"]
