"""What Tempo and Loki would receive, read from the ingest witness that stands in for them where
their official images are absent (tests/ingest-witness/): the real SDK and the real collector, and
every record counted. Loki turns a record's trace id, span id, severity and attributes into
structured metadata and its resource's service.name into the service_name label; Tempo stores the
spans as they come. Where Tempo and Loki run, the tests of their own APIs cover the same ground."""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import uuid

import pytest
import requests

from conftest import eventually, settle


@pytest.fixture(scope="module")
def demo(witness, lab):
    service = f"witness-{uuid.uuid4().hex[:8]}"
    return service, lab.run_demo(service, requests_count=12)


def test_every_request_reaches_tempos_endpoint_once_as_one_trace(witness, demo):
    service, requests_made = demo
    roots = settle(lambda: [s for s in witness.spans(service) if s["name"] == "agent.iteration"],
                   lambda found: len(found) >= len(requests_made))
    assert sorted(s["traceId"] for s in roots) == sorted(r["trace_id"] for r in requests_made)
    assert all(not s.get("parentSpanId") for s in roots)
    spans = witness.spans(service)
    assert len({s["spanId"] for s in spans}) == len(spans)  # nothing delivered twice


def test_spans_carry_the_resource_and_the_conventions_attributes(witness, demo, lab):
    service, requests_made = demo
    spans = eventually(lambda: witness.trace(requests_made[0]["trace_id"]))
    resource = spans[0]["resource"]
    assert resource["service.name"] == service and resource["service.version"] == "1.0.0"
    assert resource["deployment.environment"] == lab.env["DEFAULT_ENVIRONMENT"]  # the collector's default
    assert resource["telemetry.sdk.language"] == "python"
    assert resource["obslab.sampling.ratio"] == 1.0  # Tempo's service graph multiplies by its inverse
    chat = next(s for s in spans if s["name"].startswith("chat "))
    assert chat["attributes"]["gen_ai.operation.name"] == "chat"
    assert chat["attributes"]["gen_ai.usage.input_tokens"] > 0
    assert chat["kind"] == 3  # SPAN_KIND_CLIENT


def test_logs_in_spans_reach_lokis_endpoint_with_what_loki_keeps_as_structured_metadata(witness, demo):
    service, requests_made = demo
    received = settle(lambda: [r for r in witness.logs(service) if r["body"].get("stringValue") == "request received"],
                      lambda found: len(found) >= len(requests_made))
    assert len(received) == len(requests_made)
    by_trace = {r["traceId"]: r for r in received}
    for made in requests_made:
        record = by_trace[made["trace_id"]]
        assert len(record["spanId"]) == 16 and record["spanId"] in {s["spanId"] for s in witness.trace(made["trace_id"])}
        assert record["severityText"] == "INFO" and record["severityNumber"] == 9
        assert record["attributes"]["intent"] == made["intent"]
        assert record["resource"]["service.name"] == service  # Loki's service_name label


def test_logs_outside_spans_reach_lokis_endpoint_without_a_trace_id(witness, demo):
    service, _ = demo
    started = eventually(lambda: [r for r in witness.logs(service)
                                  if r["body"].get("stringValue") == "travel agent demo starting"])
    assert len(started) == 1 and not started[0].get("traceId")


def test_with_privacy_on_no_secret_reaches_tempos_or_lokis_endpoint(witness, lab):
    service = f"witness-private-{uuid.uuid4().hex[:8]}"
    secret, user = f"pw-{secrets.token_hex(12)}", f"{uuid.uuid4().hex[:6]}@example.com"
    key = secrets.token_hex(32)
    with lab.web_api(service, OBSLAB_PRIVACY="true", OBSLAB_PRIVACY_SECRET=key) as url:
        response = requests.post(f"{url}/login", json={"user": user, "password": secret}, timeout=5)
        trace_id = response.headers["X-Trace-ID"]
        check = eventually(lambda: next((s for s in witness.trace(trace_id) if s["name"] == "check_credentials"),
                                        None), timeout=60)
        logs = eventually(lambda: [r for r in witness.logs(service) if r.get("traceId") == trace_id], timeout=60)
    assert check["attributes"]["password"] == "[REDACTED]"
    assert check["attributes"]["user.id"] == "hmac-sha256:" + hmac.new(key.encode(), user.encode(),
                                                                       hashlib.sha256).hexdigest()
    assert any("password=[REDACTED]" in r["body"]["stringValue"] for r in logs), logs
    assert any(r["attributes"].get("api_key") == "[REDACTED]" for r in logs), logs
    everything = json.dumps(witness.spans(service)) + json.dumps(witness.logs(service))
    assert secret not in everything and user not in everything
