"""Metrics computed from traces: RED metrics (the collector's span_metrics connector, before its
sampler) count every span exactly, and Tempo's service graph every edge, even when the collector
samples; the collector's tail sampler keeps every error trace and every slow trace whole and a
binomial share of the rest; TraceQL metrics answer through Tempo's API, and Loki finds log patterns."""

from __future__ import annotations

import math
import os
import random
import time
import uuid
from dataclasses import dataclass, field

import pytest
import requests
from dotenv import set_key
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span, Status

from conftest import eventually, settle
from lab import repo_module
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


@dataclass
class TailCases:
    """Generated traces of one service for the tail sampler: span ids per trace id, by expected fate."""

    service: str
    seed: int
    errors: dict[str, set[str]] = field(default_factory=dict)   # a span with status ERROR: always kept
    slow: dict[str, set[str]] = field(default_factory=dict)     # longer than SLOW_TRACE_MS: always kept
    rest: dict[str, set[str]] = field(default_factory=dict)     # kept at SAMPLING_PERCENTAGE


def _tail_cases(service: str, slow_ms: int, count: int, seed: int) -> tuple[TailCases, list[ExportTraceServiceRequest]]:
    """``count`` traces of 1-5 spans each, cut at random around the rules: spans of random offsets and
    lengths whose whole extent (earliest start to latest end) falls within 60 ms of SLOW_TRACE_MS either
    side, or far below it, and an ERROR status on a random span of some. Classified as the collector
    must: slow when the extent in whole milliseconds exceeds SLOW_TRACE_MS, error when any span has one."""
    rng = random.Random(seed)
    cases, now = TailCases(service, seed), time.time_ns()
    spans_of_requests: list[list[Span]] = [[]]
    for _ in range(count):
        trace_id = rng.randbytes(16)
        extent_ms = rng.choice([rng.uniform(1, slow_ms / 2), rng.uniform(slow_ms - 60, slow_ms + 60),
                                slow_ms, slow_ms + 1, rng.uniform(slow_ms, slow_ms + 1)])
        extent = int(extent_ms * 1_000_000)
        start = now - extent - 10_000_000
        n = rng.randint(1, 5)
        # One span covers the start, one (maybe the same) the end; the others lie within.
        bounds = [(0, extent)] if n == 1 else [(0, rng.randint(0, extent)), (rng.randint(0, extent), extent)]
        bounds += [sorted((rng.randint(0, extent), rng.randint(0, extent))) for _ in range(n - len(bounds))]
        error_at = rng.randrange(n) if rng.random() < 0.15 else None
        spans = [Span(trace_id=trace_id, span_id=rng.randbytes(8), name=f"step {i}", kind=Span.SPAN_KIND_INTERNAL,
                      start_time_unix_nano=start + a, end_time_unix_nano=start + b,
                      status=Status(code=Status.STATUS_CODE_ERROR if i == error_at else Status.STATUS_CODE_UNSET))
                 for i, (a, b) in enumerate(bounds)]
        extent_seen = max(s.end_time_unix_nano for s in spans) - min(s.start_time_unix_nano for s in spans)
        fate = (cases.errors if error_at is not None else
                cases.slow if extent_seen // 1_000_000 > slow_ms else cases.rest)
        fate[trace_id.hex()] = {s.span_id.hex() for s in spans}
        if len(spans_of_requests[-1]) > 2000:
            spans_of_requests.append([])
        spans_of_requests[-1].extend(spans)  # every span of a trace in one request: all arrive together
    requests_ = [ExportTraceServiceRequest(resource_spans=[ResourceSpans(
        resource=resource_of(service), scope_spans=[ScopeSpans(spans=spans)])]) for spans in spans_of_requests]
    return cases, requests_


# Lab Health's tail-sampling panels: the sampler runs below SAMPLING_PERCENTAGE=100 only, so they are
# checked here, while the collector samples (test_dashboard_queries_return_data leaves them out).
TAIL_PANELS = [query for query in repo_module("dashboards_generate", "grafana/dashboards/generate.py")
               .prometheus_panel_queries() if "processor_tail_sampling" in query.expr]


def _panels_with_data(lab) -> dict[str, bool]:
    """Whether each tail-sampling panel query returns data within a minute (Prometheus scrapes every 15 s)."""
    deadline = time.monotonic() + 60

    def answered(expr: str) -> bool:
        while not lab.promql(expr) and time.monotonic() < deadline:
            time.sleep(3)
        return bool(lab.promql(expr))
    return {f"{query.title}: {query.expr}": answered(query.expr) for query in TAIL_PANELS}


@pytest.fixture(scope="module")
def sampled(lab) -> tuple[str, str, int, dict, TailCases, dict[str, bool]]:
    """20,000 client -> server traces, and 3,000 generated traces around the tail sampler's rules (errors,
    slow, neither), sent while the collector keeps 10 % of traces: (client, server, count, the span
    metrics' count per service once settled, the generated cases, whether each tail-sampling panel
    query of Lab Health returned data then). The collector is put back to 100 % only then: its
    span_metrics connector holds the counts in memory until its next flush (15 s)."""
    set_key(lab.env_file, "SAMPLING_PERCENTAGE", "10", quote_mode="never")
    lab.compose("up", "-d", "--wait", "otel-collector")
    suffix = uuid.uuid4().hex[:8]
    client, server, traces = f"sampled-client-{suffix}", f"sampled-server-{suffix}", 20_000
    calls = {name: f'sum(traces_spanmetrics_calls_total{{service="{name}"}})' for name in (client, server)}
    seed = int.from_bytes(os.urandom(4), "big")
    cases, tail_requests = _tail_cases(f"tail-{suffix}", int(lab.env["SLOW_TRACE_MS"]), 3000, seed)
    try:
        for _ in range(traces // 1000):
            assert post(lab.otlp_http, "traces", _client_server_traces(client, server, 1000), retry_for=60)
        for request in tail_requests:
            assert post(lab.otlp_http, "traces", request, retry_for=60)
        counted = settle(lambda: {name: lab.value(query) for name, query in calls.items()},
                         lambda found: found == {client: traces, server: traces}, timeout=120)
        panels = _panels_with_data(lab)
    finally:
        set_key(lab.env_file, "SAMPLING_PERCENTAGE", "100", quote_mode="never")
        lab.compose("up", "-d", "--wait", "otel-collector")
    return client, server, traces, counted, cases, panels


def _binomial_bounds(n: int, p: float, sigmas: float = 5.0) -> tuple[float, float]:
    """Counts a Binomial(n, p) draw stays within but for odds of about 1 in 3.5 million (5 sigma)."""
    spread = sigmas * math.sqrt(n * p * (1 - p))
    return n * p - spread, n * p + spread


def test_request_rates_count_every_span_exactly_when_the_collector_keeps_10_percent(lab, sampled):
    client, server, traces, counted, *_ = sampled
    print(f"sampling 10 %: {traces} requests sent, span metrics count {counted}")
    assert counted == {client: traces, server: traces}
    # The latency series carry exemplars (trace_id). They are taken before the sampler, so at 10 % most
    # of those of successful, fast requests point to traces that were not kept (docs/lab.md says so);
    # at 100 % they all lead to a trace (test_lab_end_to_end's exemplar test).
    now = time.time()
    exemplars = requests.get(f"{lab.prometheus}/api/v1/query_exemplars", timeout=10, params={
        "query": f'traces_spanmetrics_duration_seconds_bucket{{service="{server}"}}', "start": now - 900,
        "end": now}).json()
    trace_ids = [e["labels"]["trace_id"] for series in exemplars["data"] for e in series["exemplars"]]
    assert trace_ids and all(len(trace_id) == 32 for trace_id in trace_ids), exemplars


def test_the_sampler_keeps_about_10_percent_of_traces_each_whole(lab, sampled):
    """What reaches the trace backend: about a tenth of the traces, each with both its spans."""
    client, server, traces, *_ = sampled
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
    low, high = _binomial_bounds(traces, 0.10)
    assert low <= len(traces_kept) <= high  # binomial(20000, 0.1): 10 % +- 1.1 % at 5 sigma
    assert all(services == {client, server} for services in traces_kept.values())


def test_the_tail_sampler_keeps_every_error_and_every_slow_trace_whole_and_a_tenth_of_the_rest(lab, sampled):
    """The generated traces (errors on random spans; extents cut around SLOW_TRACE_MS to the
    millisecond): every error trace and every slow trace arrives with all its spans, exactly; of the
    others, each arrives whole or not at all, and as many as a Binomial(n, 10 %) draw gives."""
    cases = sampled[4]

    def stored() -> dict[str, set[str]]:
        by_trace: dict[str, set[str]] = {}
        if lab.witness:
            for span in lab.witness.spans(cases.service):
                by_trace.setdefault(span["traceId"], set()).add(span["spanId"])
        else:
            for trace_id in {**cases.errors, **cases.slow, **cases.rest}:
                spans = lab.stored_spans(trace_id)
                if spans:
                    by_trace[trace_id] = {span["spanId"] for span in spans}
        return by_trace

    must_keep = {**cases.errors, **cases.slow}
    found = settle(stored, lambda got: all(got.get(t) == s for t, s in must_keep.items()), timeout=120)
    time.sleep(12)  # one more decision_wait: whatever was still held is decided
    found = stored()
    kept_rest = {t for t in cases.rest if t in found}
    print(f"tail sampling (seed {cases.seed}): {len(cases.errors)} error traces, {len(cases.slow)} slow, "
          f"{len(cases.rest)} others, of which {len(kept_rest)} kept")
    missing = {t: s - found.get(t, set()) for t, s in must_keep.items() if found.get(t) != s}
    assert not missing, f"error or slow traces not kept whole (seed {cases.seed}): {list(missing.items())[:5]}"
    assert set(found) <= set(must_keep) | set(cases.rest)
    assert all(found[t] == cases.rest[t] for t in kept_rest), "a sampled trace arrived in part"
    low, high = _binomial_bounds(len(cases.rest), 0.10)
    assert low <= len(kept_rest) <= high, (len(kept_rest), len(cases.rest), cases.seed)


def test_the_lab_health_tail_sampling_panels_have_data_while_the_collector_samples(sampled):
    panels = sampled[-1]
    assert TAIL_PANELS and all(panels.values()), panels


@pytest.mark.official_images("tempo")
def test_service_graph_counts_every_edge_when_the_collector_keeps_10_percent(lab, sampled):
    client, server, traces, *_ = sampled
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
