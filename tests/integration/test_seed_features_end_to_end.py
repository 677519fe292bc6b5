"""Seed features that cross the collector: X-Trace-ID, the ETL example's data metrics, privacy."""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import uuid

import pytest
import requests

from conftest import eventually


def spans_of(trace: dict) -> list[dict]:
    return [span for batch in trace["batches"] for scope in batch.get("scopeSpans", batch.get("instrumentationLibrarySpans", []))
            for span in scope["spans"]]


def attributes(span: dict) -> dict:
    return {a["key"]: next(iter(a["value"].values()), None) for a in span.get("attributes", [])}


def test_fastapi_x_trace_id_is_a_trace_the_trace_backend_received(lab):
    service = f"web-{uuid.uuid4().hex[:8]}"
    with lab.web_api(service) as url:
        response = requests.get(f"{url}/quote/paris", timeout=5)
        trace_id = response.headers["X-Trace-ID"]
        assert response.json()["trace_id"] == trace_id  # the handler ran inside that trace
        spans = eventually(lambda: lab.stored_spans(trace_id), timeout=60)
    assert {"GET /quote/{city}", "price_lookup"} <= {span["name"] for span in spans}
    assert {span["resource"]["service.name"] for span in spans} == {service}


def test_etl_example_data_metrics_reach_prometheus(lab):
    service = f"etl-{uuid.uuid4().hex[:8]}"
    runs = lab.run_etl(service, runs=3, interval=1.0)
    rows_in = sum(run["rows_in"] for run in runs)
    filtered = sum(run["rows_in"] - run["rows_kept"] for run in runs)

    def value(query: str) -> float:
        result = lab.promql(query)
        return float(result[0]["value"][1]) if result else -1.0

    assert eventually(lambda: value(f'sum(data_raw_rows_total{{job="{service}"}})') == rows_in, timeout=60)
    assert eventually(lambda: value(f'sum(data_filtered_rows_total{{job="{service}"}})') == filtered, timeout=60)
    for metric in ("data_processed_rows_total", "data_processing_time_milliseconds_count", "data_size_bytes_sum",
                   "process_cpu_time_seconds_total", "process_memory_usage_bytes", "cpython_gc_collections_total"):
        assert eventually(lambda: lab.promql(f'{metric}{{job="{service}"}}'), timeout=60), metric
    spans = eventually(lambda: lab.stored_spans(runs[0]["trace_id"]), timeout=60)
    by_name = {span["name"]: span["attributes"] for span in spans}
    assert {"etl.run", "etl.extract", "pandas.read_csv", "pandas.filter", "pandas.groupby.agg", "numpy.median"} <= set(by_name)
    assert int(by_name["pandas.read_csv"]["pandas.rows"]) == runs[0]["rows_in"]


@pytest.mark.official_images("tempo", "loki")
def test_with_privacy_on_secrets_are_masked_in_tempo_and_loki(lab):
    service = f"private-{uuid.uuid4().hex[:8]}"
    secret, user = f"pw-{secrets.token_hex(12)}", f"{uuid.uuid4().hex[:6]}@example.com"
    key = secrets.token_hex(32)  # the deployment's user-id hash key
    with lab.web_api(service, OBSLAB_PRIVACY="true", OBSLAB_PRIVACY_SECRET=key) as url:
        response = requests.post(f"{url}/login", json={"user": user, "password": secret}, timeout=5)
        trace_id = response.headers["X-Trace-ID"]
        trace = eventually(lambda: lab.trace(trace_id) if "check_credentials" in json.dumps(lab.trace(trace_id))
                           else None, timeout=60)
        logs = eventually(lambda: lab.loki_query(f'{{service_name="{service}"}} | trace_id="{trace_id}"'), timeout=60)
    check = next(attributes(s) for s in spans_of(trace) if s["name"] == "check_credentials")
    assert check["password"] == "[REDACTED]"
    assert check["user.id"] == "hmac-sha256:" + hmac.new(key.encode(), user.encode(), hashlib.sha256).hexdigest()
    lines = [line for stream in logs for _, line, *_ in stream["values"]]
    assert any(f"password=[REDACTED]" in line for line in lines), lines
    assert any(stream["stream"].get("api_key") == "[REDACTED]" for stream in logs), logs
    for text in (json.dumps(trace), json.dumps(logs)):
        assert secret not in text and user not in text
    # ...and nowhere else in either backend
    assert lab.loki_query(f'{{service_name="{service}"}} |= "{secret}"') == []
    found = requests.get(f"{lab.tempo}/api/search", timeout=5,
                         params={"q": f'{{ span.password = "{secret}" }}', "start": 0}).json()
    assert found.get("traces", []) == []


def test_otlp_http_exporter_reaches_all_three_backends(lab):
    service = f"http-{uuid.uuid4().hex[:8]}"
    (first, *_) = lab.run_demo(service, requests_count=3, OTEL_EXPORTER_OTLP_PROTOCOL="http/protobuf",
                               OTLP_ENDPOINT=lab.otlp_http)
    assert eventually(lambda: lab.stored_spans(first["trace_id"]), timeout=60)
    assert eventually(lambda: lab.has_logs(service, trace_id=first["trace_id"]), timeout=60)
    assert eventually(lambda: lab.promql(f'agent_requests_total{{job="{service}"}}'), timeout=60)
