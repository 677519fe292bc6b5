"""Tests of the web example as a user of obslab writes them for their own service, with the two
fixtures obslab's pytest plugin brings (docs/testing.md): ``telemetry_capture`` (in memory, through
obslab's real pipeline) and ``obslab_lab`` (the lab, with helpers that wait until data arrives).

Run: pytest examples/web_api/test_app.py   (the lab test uses a running lab, `obslab lab up`, or
starts one for the session). The project's suite runs this file (tests/integration/test_user_fixtures.py).
"""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import requests
from fastapi.testclient import TestClient

from app import create_app
from obslab.testing.lab import free_port


@pytest.fixture
def client(telemetry_capture) -> TestClient:
    """The app, made inside the test: its init_telemetry() returns the capture's handle."""
    return TestClient(create_app("web-api"))


def test_a_quote_is_one_trace_with_the_lookup_and_the_log_line_inside(client, telemetry_capture):
    response = client.get("/quote/paris")

    assert response.status_code == 200
    request = telemetry_capture.span("GET /quote/{city}")
    lookup = telemetry_capture.span("price_lookup", city="paris")
    assert telemetry_capture.parent(lookup) is request
    assert response.headers["X-Trace-ID"] == f"{request.context.trace_id:032x}"
    [served] = telemetry_capture.logs(request, body="quote served")
    assert dict(served.attributes) == {"city": "paris", "price": 120.0}
    assert telemetry_capture.metric_value("http.server.duration", {"http.target": "/quote/{city}"}) == 1


def test_an_unknown_city_logs_a_warning_in_its_lookup(client, telemetry_capture):
    assert client.get("/quote/atlantis").status_code == 404

    lookup = telemetry_capture.span("price_lookup", city="atlantis")
    assert [(r.severity_text, r.body) for r in telemetry_capture.logs(lookup)] == [("WARN", "no price for atlantis")]
    assert telemetry_capture.metric_points("http.server.duration", {"http.status_code": 404})


def test_the_password_of_a_login_never_leaves_the_process(telemetry_capture):
    telemetry_capture.configure(privacy=True)  # the pipeline as production runs it
    client = TestClient(create_app("web-api"))

    client.post("/login", json={"user": "ada", "password": "hunter2-secret"})

    span = telemetry_capture.span("check_credentials")
    assert span.attributes["password"] == "[REDACTED]"
    exported = [str(r.body) + str(dict(r.attributes)) for r in telemetry_capture.logs()]
    assert exported and not any("hunter2-secret" in line for line in exported)


def test_a_quote_trace_compares_whole_in_the_deterministic_mode(telemetry_capture):
    telemetry_capture.configure(deterministic=True)  # ids 1, 2, 3..., a fixed clock
    TestClient(create_app("web-api")).get("/quote/tokyo")

    assert telemetry_capture.as_dicts("price_lookup") == [{
        "name": "price_lookup", "kind": "INTERNAL", "scope": "obslab",
        "trace_id": "00000000000000000000000000000001", "span_id": "0000000000000002",
        "parent_id": "0000000000000001", "start_time": 1_700_000_000_000_000_000,
        "end_time": 1_700_000_000_000_000_000, "status": "UNSET", "status_description": None,
        "attributes": {"city": "tokyo", "price.eur": 210.0}, "events": [], "links": []}]
    assert telemetry_capture.tree() == [("GET /quote/{city}", [
        ("price_lookup", []), ("GET /quote/{city} http send", []), ("GET /quote/{city} http send", [])])]


def test_quotes_reach_the_lab_as_spans_logs_and_span_metrics(obslab_lab):
    service = f"web-api-{uuid.uuid4().hex[:8]}"
    port = free_port()
    app = subprocess.Popen([sys.executable, str(Path(__file__).with_name("app.py")), "--port", str(port),
                            "--service-name", service], env={"PATH": "/usr/bin:/bin", **obslab_lab.sdk_environment})
    try:
        url = f"http://127.0.0.1:{port}"
        for _ in range(100):  # until it listens
            try:
                requests.get(f"{url}/docs", timeout=1)
                break
            except requests.ConnectionError:
                time.sleep(0.1)
        for city in ("paris", "montreal", "tokyo"):
            assert requests.get(f"{url}/quote/{city}", timeout=5).ok

        lookups = obslab_lab.spans(service, count=3, name="price_lookup")  # waits: the SDK exports every 5 s
        assert sorted(span["attributes"]["city"] for span in lookups) == ["montreal", "paris", "tokyo"]
        assert sorted(obslab_lab.logs(service, count=3)) == ["quote served"] * 3
        quotes = f'sum(traces_spanmetrics_calls_total{{service="{service}", span_name="GET /quote/{{city}}"}})'
        calls = obslab_lab.query(quotes, until=lambda result: result and float(result[0]["value"][1]) >= 3)
        assert float(calls[0]["value"][1]) == 3
    finally:
        app.terminate()
        app.wait(timeout=30)
