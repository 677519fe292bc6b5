"""`obslab doctor --service NAME` on the real lab: what the collector accepted from NAME and what reached
Prometheus (Tempo and Loki reported as not running where the witness stands in), a name differing by
case, a name never seen, an exporter turned off in its environment; and the doctor without flags
finding out from the engine which services run, answering within 10 s."""

from __future__ import annotations

import os
import subprocess
import time
import uuid

import pytest

from conftest import MISSING, settle
from lab import REPO

OBSLAB = str(REPO / ".venv/bin/obslab")


@pytest.fixture(scope="module")
def seen(lab) -> str:
    """A service that sent spans, logs and metrics, counted by the span metrics already."""
    service = f"Doctor-Seen-{uuid.uuid4().hex[:6]}"
    lab.run_demo(service, requests_count=3, OBSLAB_METRIC_EXPORT_INTERVAL="1")
    settle(lambda: lab.value(f'sum(traces_spanmetrics_calls_total{{service="{service}"}})'), bool, timeout=60)
    return service


def doctor(lab, *args: str, **env: str) -> tuple[subprocess.CompletedProcess, float]:
    started = time.monotonic()
    result = subprocess.run([OBSLAB, "doctor", *args], capture_output=True, text=True, cwd=lab.env_file.parent,
                            timeout=120, env={"PATH": "/usr/bin:/bin", "HOME": os.environ.get("HOME", "/root"),
                                              "COMPOSE_PROJECT_NAME": lab.project,
                                              "OTLP_ENDPOINT": lab.otlp, **env})
    print(result.stdout, result.stderr)
    return result, time.monotonic() - started


def test_a_service_seen_by_the_collector_and_prometheus_is_reported_ok(lab, seen):
    result, _ = doctor(lab, "--service", seen)
    assert result.returncode == 0
    assert "spans:   ok, the collector accepted spans of " + seen in result.stdout
    assert "metrics: ok" in result.stdout and f"{seen})" in result.stdout
    assert "collector: accepted " in result.stdout and " spans" in result.stdout
    if lab.witness:
        spans, logs = len(lab.witness.spans(seen)), len(lab.witness.logs(seen))
        assert spans and logs
        assert f"traces:  ok, the ingest witness (in Tempo's place) received {spans} spans of {seen}" in result.stdout
        assert f"logs:    ok, the ingest witness (in Loki's place) received {logs} log records of {seen}" \
            in result.stdout
    else:
        assert f"ok, Tempo has traces of {seen}" in result.stdout and f"ok, Loki has log lines of {seen}" in result.stdout


def test_a_name_differing_by_case_is_named(lab, seen):
    result, _ = doctor(lab, "--service", seen.lower())
    assert result.returncode == 1
    assert f"spans:   none from {seen.lower()}, but from {seen}: the service name differs by case" in result.stdout


def test_a_name_never_seen_lists_the_services_seen(lab, seen):
    result, _ = doctor(lab, "--service", "never-sent-anything")
    assert result.returncode == 1
    assert "spans:   none from never-sent-anything reached the collector (services seen: " in result.stdout


def test_an_exporter_turned_off_in_its_environment_is_a_cause(lab, seen):
    result, _ = doctor(lab, "--service", seen, OTEL_LOGS_EXPORTER="none")
    assert result.returncode == 1
    assert "cause:   OTEL_LOGS_EXPORTER=none in the environment: the SDK exports no logs" in result.stdout


def test_the_wrong_protocol_port_is_a_cause(lab, seen):
    result, _ = doctor(lab, "--service", seen, OTLP_ENDPOINT=f"127.0.0.1:{lab.env['OTLP_HTTP_PORT']}")
    assert f"the SDK sends OTLP gRPC to 127.0.0.1:{lab.env['OTLP_HTTP_PORT']} (OTLP_ENDPOINT), the collector's " \
           f"OTLP/HTTP port: use port {lab.env['OTLP_GRPC_PORT']}" in result.stdout


def test_without_flags_the_doctor_asks_the_engine_and_answers_within_10_s(lab):
    result, seconds = doctor(lab, "--timeout", "60")
    absent = [name for name in ("tempo", "loki", "alertmanager", "grafana") if name in MISSING or
              (name in ("tempo", "loki") and lab.witness)]
    assert result.returncode == 0 and "FAILED" not in result.stdout
    if absent:
        assert f"not running here (the engine, compose project {lab.project}): {', '.join(absent)}" in result.stdout
        assert seconds < 10, f"{seconds:.1f} s"
    for hop in ("collector", "prometheus"):
        assert f"{hop:18} ok" in result.stdout
