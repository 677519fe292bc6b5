"""Telemetry with exact counts, sent to the lab's collector over OTLP/HTTP (protobuf), for the tests
that prove nothing is lost: every span (each its own trace) and log record carries a unique ``seq``,
and a cumulative counter's value is the number of log records sent so far.

A request the collector refuses or cannot take (it is restarting) is sent again until accepted, as
an SDK's exporter retries: what these tests count is what the lab loses after accepting it.
"""

from __future__ import annotations

import collections
import json
import os
import threading
import time

import requests
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord, ResourceLogs, ScopeLogs
from opentelemetry.proto.metrics.v1.metrics_pb2 import (AGGREGATION_TEMPORALITY_CUMULATIVE, Metric, NumberDataPoint,
                                                        ResourceMetrics, ScopeMetrics, Sum)
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span

COUNTER = "stream.records"  # stored by Prometheus as stream_records_total{job=<service>}
# Every answer of the collector that was not a success, by HTTP status ("error" when none came): the
# fault tests read how their fault showed to a sender. Counter updates are atomic under the GIL.
REFUSALS: collections.Counter = collections.Counter()
_HEADERS = {"Content-Type": "application/x-protobuf"}


def _attr(key: str, value: str | int) -> KeyValue:
    return KeyValue(key=key, value=AnyValue(int_value=value) if isinstance(value, int) else AnyValue(string_value=value))


def resource_of(service: str) -> Resource:
    return Resource(attributes=[_attr("service.name", service)])


def spans_request(service: str, first: int, count: int, kind: int = Span.SPAN_KIND_SERVER,
                  name: str = "GET /stream") -> ExportTraceServiceRequest:
    """``count`` one-span traces with seq ``first``..``first + count - 1``."""
    now = time.time_ns()
    spans = [Span(trace_id=os.urandom(16), span_id=os.urandom(8), name=name, kind=kind,
                  start_time_unix_nano=now - 2_000_000, end_time_unix_nano=now, attributes=[_attr("seq", seq)])
             for seq in range(first, first + count)]
    return ExportTraceServiceRequest(resource_spans=[ResourceSpans(
        resource=resource_of(service), scope_spans=[ScopeSpans(spans=spans)])])


def logs_request(service: str, first: int, count: int, body: str = "stream record {seq}") -> ExportLogsServiceRequest:
    """``count`` log records with seq ``first``..``first + count - 1``."""
    now = time.time_ns()
    records = [LogRecord(time_unix_nano=now, observed_time_unix_nano=now, severity_number=9, severity_text="INFO",
                         body=AnyValue(string_value=body.format(seq=seq)), attributes=[_attr("seq", seq)])
               for seq in range(first, first + count)]
    return ExportLogsServiceRequest(resource_logs=[ResourceLogs(
        resource=resource_of(service), scope_logs=[ScopeLogs(log_records=records)])])


def counter_request(service: str, value: int, start_ns: int) -> ExportMetricsServiceRequest:
    """The cumulative counter ``stream.records`` at ``value``."""
    point = NumberDataPoint(start_time_unix_nano=start_ns, time_unix_nano=time.time_ns(), as_int=value)
    metric = Metric(name=COUNTER, sum=Sum(data_points=[point], is_monotonic=True,
                                          aggregation_temporality=AGGREGATION_TEMPORALITY_CUMULATIVE))
    return ExportMetricsServiceRequest(resource_metrics=[ResourceMetrics(
        resource=resource_of(service), scope_metrics=[ScopeMetrics(metrics=[metric])])])


def post(otlp_http: str, signal: str, message, retry_for: float = 0) -> bool:
    """POST one OTLP request; while ``retry_for`` seconds last, send it again until accepted."""
    body = message.SerializeToString()
    deadline = time.monotonic() + retry_for
    while True:
        try:
            response = requests.post(f"{otlp_http}/v1/{signal}", data=body, headers=_HEADERS, timeout=10)
            if response.ok:
                return True
            REFUSALS[response.status_code] += 1
        except requests.RequestException:
            REFUSALS["error"] += 1
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.2)


class Stream:
    """``per_second`` spans and as many log records a second, plus the counter, from a thread."""

    def __init__(self, otlp_http: str, service: str, per_second: int = 50, ticks_per_second: int = 5) -> None:
        self.otlp_http, self.service = otlp_http, service
        self.batch, self.tick = per_second // ticks_per_second, 1 / ticks_per_second
        self.sent = 0  # spans sent, and as many log records; the counter's last value
        self._start_ns = time.time_ns()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> "Stream":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def stop(self) -> int:
        """Stop after the current batch; returns how many spans (and log records) were sent."""
        self._stop.set()
        self._thread.join(timeout=600)
        return self.sent

    def _run(self) -> None:
        next_tick = time.monotonic()
        while not self._stop.is_set():
            first = self.sent
            post(self.otlp_http, "traces", spans_request(self.service, first, self.batch), retry_for=600)
            post(self.otlp_http, "logs", logs_request(self.service, first, self.batch), retry_for=600)
            self.sent = first + self.batch
            post(self.otlp_http, "metrics", counter_request(self.service, self.sent, self._start_ns), retry_for=600)
            next_tick += self.tick
            time.sleep(max(0.0, next_tick - time.monotonic()))


def stored_spans(lab, service: str) -> int:
    """Traces of ``service`` Tempo returns to a search over the last hour (one span each here), or
    the distinct spans the witness received in Tempo's place (Tempo keeps a span sent twice once)."""
    if lab.witness:
        return len({span["spanId"] for span in lab.witness.spans(service)})
    now = int(time.time())
    params = {"q": f'{{resource.service.name="{service}"}}', "start": now - 3600, "end": now + 60,
              "limit": 1_000_000, "spss": 1}
    response = requests.get(f"{lab.tempo}/api/search", params=params, timeout=60)
    response.raise_for_status()
    return len(response.json().get("traces", []))


def stored_logs(lab, service: str) -> int:
    """Log records of ``service`` that Loki holds for the last hour, or the distinct records the
    witness received in Loki's place (Loki keeps an entry repeating one of its stream once)."""
    if lab.witness:
        return len({(r.get("timeUnixNano"), json.dumps(r.get("body"))) for r in lab.witness.logs(service)})
    now = time.time()
    params = {"query": f'sum(count_over_time({{service_name="{service}"}}[1h]))', "time": str(int(now * 1e9))}
    response = requests.get(f"{lab.loki}/loki/api/v1/query", params=params, timeout=60)
    response.raise_for_status()
    result = response.json()["data"]["result"]
    return int(float(result[0]["value"][1])) if result else 0


def stored_counter(lab, service: str) -> int:
    """The last value of ``stream.records`` for ``service`` in Prometheus (-1 if none)."""
    return int(lab.value(f'max(last_over_time(stream_records_total{{job="{service}"}}[1h]))', default=-1))
