"""Metrics computed from traces: RED metrics and the service graph count every span even when the
collector samples, TraceQL metrics answer through Tempo's API, and Loki finds log patterns."""

from __future__ import annotations

import time
import uuid

import requests
from dotenv import set_key
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span

from conftest import eventually
from otlp_stream import resource_of, logs_request, post, spans_request


def _client_server_traces(client: str, server: str, count: int) -> ExportTraceServiceRequest:
    """``count`` traces, each a client span of ``client`` calling a server span of ``server``."""
    now = time.time_ns()
    calls, handlers = [], []
    for _ in range(count):
        trace_id, client_id = uuid.uuid4().bytes, uuid.uuid4().bytes[:8]
        calls.append(Span(trace_id=trace_id, span_id=client_id, name="GET /quote", kind=Span.SPAN_KIND_CLIENT,
                          start_time_unix_nano=now - 5_000_000, end_time_unix_nano=now))
        handlers.append(Span(trace_id=trace_id, span_id=uuid.uuid4().bytes[:8], parent_span_id=client_id,
                             name="GET /quote", kind=Span.SPAN_KIND_SERVER,
                             start_time_unix_nano=now - 4_000_000, end_time_unix_nano=now - 1_000_000))
    return ExportTraceServiceRequest(resource_spans=[
        ResourceSpans(resource=resource_of(client), scope_spans=[ScopeSpans(spans=calls)]),
        ResourceSpans(resource=resource_of(server), scope_spans=[ScopeSpans(spans=handlers)])])


def test_request_rates_count_every_span_when_the_collector_keeps_10_percent(lab):
    set_key(lab.env_file, "SAMPLING_PERCENTAGE", "10", quote_mode="never")
    lab.compose("up", "-d", "--wait", "otel-collector")
    suffix = uuid.uuid4().hex[:8]
    client, server, traces = f"sampled-client-{suffix}", f"sampled-server-{suffix}", 20_000
    try:
        for _ in range(traces // 1000):
            assert post(lab.otlp_http, "traces", _client_server_traces(client, server, 1000), retry_for=60)
    finally:
        set_key(lab.env_file, "SAMPLING_PERCENTAGE", "100", quote_mode="never")
        lab.compose("up", "-d", "--wait", "otel-collector")
    calls = f'sum(traces_spanmetrics_calls_total{{service="{server}"}})'
    edges = f'sum(traces_service_graph_request_total{{client="{client}", server="{server}"}})'
    # Settled: the counters stop moving once the metrics-generator has seen every kept span.
    eventually(lambda: lab.value(calls) > 0 and lab.value(edges) > 0, timeout=120)
    time.sleep(30)
    counted_calls, counted_edges = lab.value(calls), lab.value(edges)
    print(f"sampling 10 %: {traces} requests sent, span metrics count {counted_calls:.0f}, "
          f"service graph counts {counted_edges:.0f}")
    assert abs(counted_calls - traces) <= 0.10 * traces
    assert abs(counted_edges - traces) <= 0.10 * traces
    # An exemplar on the latency series (Tempo names its label traceID) opens a trace that was kept.
    now = time.time()
    exemplars = requests.get(f"{lab.prometheus}/api/v1/query_exemplars", timeout=10, params={
        "query": f'traces_spanmetrics_latency_bucket{{service="{server}"}}', "start": now - 900, "end": now}).json()
    trace_ids = [e["labels"]["traceID"] for series in exemplars["data"] for e in series["exemplars"]]
    assert trace_ids, exemplars
    assert eventually(lambda: lab.trace(trace_ids[-1]))


def test_traceql_metrics_query_counts_spans_through_tempo_api(lab):
    service = f"traceql-{uuid.uuid4().hex[:8]}"
    assert post(lab.otlp_http, "traces", spans_request(service, 0, 300), retry_for=30)

    def counted() -> float:
        now = int(time.time())
        response = requests.get(f"{lab.tempo}/api/metrics/query_range", timeout=30, params={
            "q": f'{{resource.service.name="{service}"}} | count_over_time()',
            "start": now - 600, "end": now + 60, "step": "60s"})
        response.raise_for_status()
        series = response.json().get("series", [])
        return sum(float(s.get("value", 0)) for one in series for s in one.get("samples", []))

    assert eventually(lambda: counted() == 300, timeout=120)


def test_loki_finds_the_pattern_of_repeated_log_lines(lab):
    service = f"patterns-{uuid.uuid4().hex[:8]}"
    for first in range(0, 600, 100):
        assert post(lab.otlp_http, "logs",
                    logs_request(service, first, 100, body="user {seq} signed in from 10.0.0.7"), retry_for=30)

    def patterns() -> list[str]:
        now = time.time()
        response = requests.get(f"{lab.loki}/loki/api/v1/patterns", timeout=10, params={
            "query": f'{{service_name="{service}"}}', "start": str(int((now - 600) * 1e9)),
            "end": str(int((now + 60) * 1e9))})
        response.raise_for_status()
        return [p["pattern"] for p in response.json().get("data", [])]

    found = eventually(lambda: [p for p in patterns() if "signed in from" in p and "<_>" in p], timeout=120)
    print(f"Loki pattern: {found}")
