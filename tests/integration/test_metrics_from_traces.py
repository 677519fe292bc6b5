"""Metrics computed from traces: RED metrics (the collector's span_metrics connector, before its
sampler) count every span exactly, and Tempo's service graph every edge, even when the collector
samples; TraceQL metrics answer through Tempo's API, and Loki finds log patterns."""

from __future__ import annotations

import time
import uuid

import pytest
import requests
from dotenv import set_key
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span

from conftest import eventually, settle
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


@pytest.fixture(scope="module")
def sampled(lab) -> tuple[str, str, int, dict]:
    """20,000 client -> server traces sent while the collector keeps 10 % of traces: (client, server,
    count, the span metrics' count per service once settled). The collector is put back to 100 % only
    then: its span_metrics connector holds the counts in memory until its next flush (15 s)."""
    set_key(lab.env_file, "SAMPLING_PERCENTAGE", "10", quote_mode="never")
    lab.compose("up", "-d", "--wait", "otel-collector")
    suffix = uuid.uuid4().hex[:8]
    client, server, traces = f"sampled-client-{suffix}", f"sampled-server-{suffix}", 20_000
    calls = {name: f'sum(traces_spanmetrics_calls_total{{service="{name}"}})' for name in (client, server)}
    try:
        for _ in range(traces // 1000):
            assert post(lab.otlp_http, "traces", _client_server_traces(client, server, 1000), retry_for=60)
        counted = settle(lambda: {name: lab.value(query) for name, query in calls.items()},
                         lambda found: found == {client: traces, server: traces}, timeout=120)
    finally:
        set_key(lab.env_file, "SAMPLING_PERCENTAGE", "100", quote_mode="never")
        lab.compose("up", "-d", "--wait", "otel-collector")
    return client, server, traces, counted


def test_request_rates_count_every_span_exactly_when_the_collector_keeps_10_percent(lab, sampled):
    client, server, traces, counted = sampled
    print(f"sampling 10 %: {traces} requests sent, span metrics count {counted}")
    assert counted == {client: traces, server: traces}
    # The latency series carry exemplars (trace_id). They are taken before the sampler, so at 10 % most
    # point to traces that were not kept (the README says so); at 100 % they all lead to a trace
    # (test_lab_end_to_end's exemplar test).
    now = time.time()
    exemplars = requests.get(f"{lab.prometheus}/api/v1/query_exemplars", timeout=10, params={
        "query": f'traces_spanmetrics_duration_seconds_bucket{{service="{server}"}}', "start": now - 900,
        "end": now}).json()
    trace_ids = [e["labels"]["trace_id"] for series in exemplars["data"] for e in series["exemplars"]]
    assert trace_ids and all(len(trace_id) == 32 for trace_id in trace_ids), exemplars


def test_the_sampler_keeps_about_10_percent_of_traces_each_whole(lab, sampled):
    """What reaches the trace backend: about a tenth of the traces, each with both its spans."""
    client, server, traces, _ = sampled
    if lab.witness:
        def kept() -> dict[str, set]:
            by_trace: dict[str, set] = {}
            for span in lab.witness.spans():
                if span["resource"].get("service.name") in (client, server):
                    by_trace.setdefault(span["traceId"], set()).add(span["resource"]["service.name"])
            return by_trace
    else:
        def search(service: str) -> set[str]:
            now = int(time.time())
            return {found["traceID"] for found in requests.get(f"{lab.tempo}/api/search", timeout=60, params={
                "q": f'{{resource.service.name="{service}"}}', "start": now - 3600, "end": now + 60,
                "limit": 1_000_000}).json().get("traces", [])}

        def kept() -> dict[str, set]:
            ids = {client: search(client), server: search(server)}
            return {trace_id: {name for name in ids if trace_id in ids[name]} for trace_id in ids[client] | ids[server]}
    traces_kept = settle(kept, lambda found: len(found) > 0.05 * traces, timeout=120)
    time.sleep(5)
    traces_kept = kept()
    share = len(traces_kept) / traces
    print(f"sampling 10 %: {len(traces_kept)} of {traces} traces kept ({share:.1%})")
    assert 0.08 <= share <= 0.12  # binomial(20000, 0.1): 10 % +- 0.6 % at 3 sigma
    assert all(services == {client, server} for services in traces_kept.values())


@pytest.mark.official_images("tempo")
def test_service_graph_counts_every_edge_when_the_collector_keeps_10_percent(lab, sampled):
    client, server, traces, _ = sampled
    edges = f'sum(traces_service_graph_request_total{{client="{client}", server="{server}"}})'
    eventually(lambda: lab.value(edges) > 0, timeout=120)
    time.sleep(30)  # settled: the counter stops moving once the metrics-generator has seen every kept span
    counted_edges = lab.value(edges)
    print(f"sampling 10 %: {traces} requests sent, service graph counts {counted_edges:.0f}")
    assert abs(counted_edges - traces) <= 0.10 * traces


@pytest.mark.official_images("tempo")
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


@pytest.mark.official_images("loki")
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
