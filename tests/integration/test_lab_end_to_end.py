"""End to end: the SDK -> the real collector -> Tempo (or the ingest witness), Loki (or the witness),
Prometheus, on the real compose file."""

from __future__ import annotations

import subprocess
import time
import uuid

import requests

import pytest

from conftest import MISSING, SERVICES, eventually, settle
from lab import REPO, free_port


@pytest.fixture(scope="module")
def demo(lab):
    service = f"e2e-{uuid.uuid4().hex[:8]}"
    return service, lab.run_demo(service)


def test_every_service_reaches_healthy(lab):
    print(f"up -> all healthy: {lab.up_seconds:.1f} s")
    running = set(lab.compose("ps", "--status", "running", "--services").stdout.split())
    assert running == set(SERVICES)


def test_trace_reaches_the_trace_backend_with_agent_span_tree(lab, demo):
    service, requests_made = demo
    planning = next(r for r in requests_made if r["intent"] == "planning")
    spans = {s["name"]: s for s in eventually(lambda: lab.stored_spans(planning["trace_id"]))}
    iteration, chat = spans["agent.iteration"], next(s for n, s in spans.items() if n.startswith("chat "))
    tool = spans["execute_tool search_flights"]
    assert chat["parentSpanId"] == iteration["spanId"]
    assert tool["parentSpanId"] == chat["spanId"]
    assert chat["attributes"]["gen_ai.operation.name"] == "chat"
    assert tool["attributes"]["gen_ai.tool.name"] == "search_flights"
    assert iteration["attributes"]["agent.intent"] == "planning"
    assert iteration["resource"]["service.name"] == service
    assert iteration["resource"]["deployment.environment"] == lab.env["DEFAULT_ENVIRONMENT"]  # set by the collector


@pytest.mark.official_images("loki")
def test_logs_in_spans_are_in_loki_with_trace_and_span_ids(lab, demo):
    service, requests_made = demo
    trace_id = requests_made[0]["trace_id"]
    streams = eventually(lambda: lab.loki_query(f'{{service_name="{service}"}} | trace_id="{trace_id}"'))
    lines = [(s["stream"], line) for s in streams for _, line in s["values"]]
    assert any(line == "request received" for _, line in lines)
    labels = next(stream for stream, line in lines if line == "request received")
    assert len(labels["span_id"]) == 16 and labels["intent"] == requests_made[0]["intent"]


@pytest.mark.official_images("loki")
def test_logs_outside_spans_arrive_too(lab, demo):
    service, _ = demo
    assert eventually(lambda: lab.loki_query(f'{{service_name="{service}"}} |= "travel agent demo starting"'))


def test_agent_metrics_are_in_prometheus_under_translated_names(lab, demo):
    service, _ = demo
    for query in (f'agent_llm_calls_total{{job="{service}"}}',
                  f'agent_llm_tokens_total{{job="{service}", token_type="prompt"}}',
                  f'agent_requests_total{{job="{service}", intent="planning"}}',
                  f'agent_request_duration_milliseconds_bucket{{job="{service}"}}',
                  f'agent_tool_calls_total{{job="{service}", tool_name="search_flights"}}',
                  f'agent_errors_total{{job="{service}", error_type="ToolFailure"}}',
                  f'agent_llm_estimated_cost_total{{job="{service}"}}',
                  f'agent_iterations_total{{job="{service}"}}'):
        result = eventually(lambda q=query: lab.promql(f"sum({q})"))
        assert float(result[0]["value"][1]) > 0, query
    labels = lab.promql(f'agent_llm_calls_total{{job="{service}"}}')[0]["metric"]
    assert {"llm_model", "llm_provider"} <= set(labels)


def test_span_metrics_come_from_the_collector_under_the_names_grafana_reads(lab, demo):
    service, requests_made = demo
    calls = eventually(lambda: lab.promql(f'traces_spanmetrics_calls_total{{service="{service}"}}'), timeout=120)
    labels = calls[0]["metric"]
    assert {"service", "span_name", "span_kind", "status_code", "service_name"} <= set(labels), labels
    assert eventually(lambda: lab.promql(f'traces_spanmetrics_duration_seconds_bucket{{service="{service}"}}'))
    iterations = f'sum(traces_spanmetrics_calls_total{{service="{service}", span_name="agent.iteration"}})'
    agent_runs = settle(lambda: lab.value(iterations), lambda value: value == len(requests_made), timeout=60)
    assert agent_runs == len(requests_made)  # one agent.iteration root span a request, each counted once


@pytest.mark.official_images("tempo")
def test_service_graph_comes_from_tempo(lab, demo):
    service, _ = demo
    assert eventually(lambda: lab.promql(f'traces_service_graph_request_total{{client="{service}"}}'), timeout=120)


def test_latency_exemplar_carries_a_trace_id_the_trace_backend_received(lab, demo):
    service, _ = demo

    def exemplars():
        response = requests.get(f"{lab.prometheus}/api/v1/query_exemplars", params={
            "query": f'traces_spanmetrics_duration_seconds_bucket{{service="{service}"}}',
            "start": time.time() - 3600, "end": time.time()}, timeout=5)
        return [e for series in response.json()["data"] for e in series["exemplars"]]

    exemplar = eventually(exemplars, timeout=120)[0]
    # OTLP exemplars are stored with the label trace_id (the Prometheus datasource links it to Tempo).
    assert eventually(lambda: lab.stored_spans(exemplar["labels"]["trace_id"]))


def test_doctor_reports_what_runs_and_what_does_not_run_here(lab):
    """Where Tempo, Loki or Grafana cannot run, the doctor says so for their hops, apart from failures."""
    absent = [service for service in ("tempo", "loki", "grafana") if service in MISSING]
    doctor = [str(REPO / ".venv/bin/obslab"), "doctor", "--timeout", "60", "--not-running", ",".join(absent)]
    ok = subprocess.run(doctor, capture_output=True, text=True, cwd=lab.env_file.parent, timeout=300)
    print(ok.stdout)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    hops = ("collector", "tempo", "loki", "prometheus", "grafana", "grafana>tempo", "grafana>loki",
            "grafana>prometheus")
    for hop in hops:
        status = "not running here" if set(hop.split(">")) & set(absent) else "ok"
        assert f"{hop:18} {status}" in ok.stdout, hop
    wrong_port = {"PATH": "/usr/bin:/bin", "PROMETHEUS_PORT": str(free_port())}
    bad = subprocess.run([*doctor[:3], "5", *doctor[4:]], capture_output=True, text=True, cwd=lab.env_file.parent,
                         timeout=300, env=wrong_port)
    assert bad.returncode == 1 and "the prometheus hop failed" in bad.stdout


@pytest.mark.official_images("tempo", "loki", "grafana")
def test_doctor_follows_every_hop_and_names_the_failed_one(lab):
    doctor = [str(REPO / ".venv/bin/obslab"), "doctor", "--timeout", "60"]
    ok = subprocess.run(doctor, capture_output=True, text=True, cwd=lab.env_file.parent, timeout=300)
    print(ok.stdout)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    hops = ("collector", "tempo", "loki", "prometheus", "grafana", "grafana>tempo", "grafana>loki",
            "grafana>prometheus")
    assert all(f"{hop:18} ok" in ok.stdout for hop in hops)
    wrong_port = {"PATH": "/usr/bin:/bin", "TEMPO_PORT": str(free_port())}
    bad = subprocess.run([*doctor[:-1], "5"], capture_output=True, text=True, cwd=lab.env_file.parent,
                         timeout=300, env=wrong_port)
    assert bad.returncode == 1 and "the tempo hop failed" in bad.stdout
    # an unknown user: Grafana locks out a user after a few failed logins, and the admin is still needed
    wrong_login = {"PATH": "/usr/bin:/bin", "GRAFANA_ADMIN_USER": "no-such-user", "GRAFANA_ADMIN_PASSWORD": "x"}
    bad = subprocess.run([*doctor[:-1], "5"], capture_output=True, text=True, cwd=lab.env_file.parent,
                         timeout=300, env=wrong_login)
    assert bad.returncode == 1 and "the grafana>tempo hop failed" in bad.stdout and "GRAFANA_ADMIN" in bad.stdout
