"""A service in its own container reaches the lab: the compose file of examples/container/ (the one
docs/lab.md shows) joins the lab's named network and sends to otel-collector:4317. The service here is
a stand-in that exists on this machine (tests/container/: the collector's image relaying what the test
sends it, over OTLP gRPC to the endpoint the example gives); every span and log record arrives, exactly."""

from __future__ import annotations

import subprocess
import time
import uuid

import requests

from conftest import eventually, settle
from lab import REPO, free_port, image

SPANS, LOGS = 7, 5


def otlp_json(service: str) -> tuple[dict, dict]:
    """One request of SPANS spans and one of LOGS log records of ``service`` (OTLP/HTTP JSON)."""
    resource = {"attributes": [{"key": "service.name", "value": {"stringValue": service}}]}
    now = time.time_ns()
    trace_id = uuid.uuid4().hex
    spans = [{"traceId": trace_id, "spanId": f"{i + 1:016x}", "name": f"step {i}", "kind": 2,
              "startTimeUnixNano": str(now - 10**6), "endTimeUnixNano": str(now)} for i in range(SPANS)]
    logs = [{"timeUnixNano": str(now), "severityText": "INFO", "body": {"stringValue": f"line {i}"}}
            for i in range(LOGS)]
    return ({"resourceSpans": [{"resource": resource, "scopeSpans": [{"spans": spans}]}]},
            {"resourceLogs": [{"resource": resource, "scopeLogs": [{"logRecords": logs}]}]})


def test_a_container_on_the_labs_network_sends_to_otel_collector_4317_and_nothing_is_lost(lab, tmp_path):
    assert lab.network != "obslab"  # the suite's lab has a network of its own: labs run in parallel
    project, port = f"{lab.project}user", free_port()
    files = ["-f", str(REPO / "examples/container/docker-compose.yml"), "-f", str(REPO / "tests/container/docker-compose.yml")]
    env = {"PATH": "/usr/bin:/bin", "OBSLAB_NETWORK": lab.network, "MY_SERVICE_IMAGE": image("otel-collector"),
           "RELAY_PORT": str(port)}

    def compose(*args: str) -> subprocess.CompletedProcess:
        result = subprocess.run(["docker", "compose", *files, "--project-directory", str(REPO / "tests/container"),
                                 "-p", project, *args], capture_output=True, text=True, env=env, timeout=300)
        assert result.returncode == 0, result.stdout + result.stderr
        return result

    service = f"in-a-container-{uuid.uuid4().hex[:8]}"
    traces, logs = otlp_json(service)
    compose("up", "-d")
    try:
        networks = compose("ps", "--format", "{{.Networks}}").stdout.split()
        assert networks == [lab.network]
        url = f"http://127.0.0.1:{port}"
        eventually(lambda: requests.post(f"{url}/v1/traces", json=traces, timeout=2).ok, timeout=60, interval=0.3)
        assert requests.post(f"{url}/v1/logs", json=logs, timeout=5).ok
        spans = lab.spans(service, count=SPANS)
        records = lab.log_records(service, count=LOGS)
        calls = settle(lambda: lab.value(f'sum(traces_spanmetrics_calls_total{{service="{service}"}})'),
                       lambda value: value >= SPANS, timeout=60)
        time.sleep(2)  # anything more would have arrived by now: the counts are exact
        assert sorted(s["name"] for s in lab.spans(service)) == [f"step {i}" for i in range(SPANS)] \
            and len(spans) == SPANS
        assert sorted(r["body"] for r in lab.log_records(service)) == [f"line {i}" for i in range(LOGS)] \
            and len(records) == LOGS
        assert calls == SPANS
    finally:
        compose("down", "-v")
