"""An in-process OTLP gRPC receiver of traces, metrics and logs, for wire-level tests of the SDK's
exporters (and the exit-time benchmark)."""

from __future__ import annotations

import threading
import time
from concurrent import futures

import grpc
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2, logs_service_pb2_grpc
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2, metrics_service_pb2_grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc


def _attributes(key_values) -> dict:
    return {a.key: a.value.string_value or a.value.int_value for a in key_values}


class OTLPReceiver:
    """Collects every span (name, attributes), log body and metric name exported to it."""

    def __init__(self, port: int) -> None:
        self.port, self._lock = port, threading.Lock()
        self.spans: list[tuple[str, dict]] = []
        self.logs: list[str] = []
        self.metrics: list[str] = []
        self.log_records: list[dict] = []  # body, severity, attributes, trace id, resource of each log record
        self.requests: dict[str, list] = {"traces": [], "metrics": [], "logs": []}  # every request, as received
        self.refusal: grpc.StatusCode | None = None  # backpressure: log exports refused with this code...
        self.refuse_for = 0.0  # ...for this many seconds after the first one (inf: until stopped)
        self.refused = 0  # log exports refused
        self.last_refused = 0.0  # when the last one was (time.time())
        self._refusing_since: float | None = None
        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        trace_service_pb2_grpc.add_TraceServiceServicer_to_server(_Traces(self), self._server)
        metrics_service_pb2_grpc.add_MetricsServiceServicer_to_server(_Metrics(self), self._server)
        logs_service_pb2_grpc.add_LogsServiceServicer_to_server(_Logs(self), self._server)
        self._server.add_insecure_port(f"127.0.0.1:{port}")

    def start(self) -> "OTLPReceiver":
        self._server.start()
        return self

    def stop(self) -> None:
        self._server.stop(0)

    def refuse_logs(self, code: grpc.StatusCode, seconds: float = float("inf")) -> "OTLPReceiver":
        """Refuse log exports with ``code`` (a collector's "sending queue is full" backpressure) for
        ``seconds`` after the first one arrives, then accept them."""
        self.refusal, self.refuse_for = code, seconds
        return self

    def _refuses(self) -> bool:
        with self._lock:
            if self.refusal is None:
                return False
            now = time.monotonic()
            self._refusing_since = now if self._refusing_since is None else self._refusing_since
            if now - self._refusing_since < self.refuse_for:
                self.refused += 1
                self.last_refused = time.time()
                return True
            return False


class _Traces(trace_service_pb2_grpc.TraceServiceServicer):
    def __init__(self, receiver: OTLPReceiver) -> None:
        self.receiver = receiver

    def Export(self, request, context):  # noqa: N802 (gRPC method name)
        with self.receiver._lock:
            self.receiver.requests["traces"].append(request)
            self.receiver.spans.extend((span.name, _attributes(span.attributes))
                                       for rs in request.resource_spans for ss in rs.scope_spans for span in ss.spans)
        return trace_service_pb2.ExportTraceServiceResponse()


class _Metrics(metrics_service_pb2_grpc.MetricsServiceServicer):
    def __init__(self, receiver: OTLPReceiver) -> None:
        self.receiver = receiver

    def Export(self, request, context):  # noqa: N802
        with self.receiver._lock:
            self.receiver.requests["metrics"].append(request)
            self.receiver.metrics.extend(metric.name for rm in request.resource_metrics
                                         for sm in rm.scope_metrics for metric in sm.metrics)
        return metrics_service_pb2.ExportMetricsServiceResponse()


class _Logs(logs_service_pb2_grpc.LogsServiceServicer):
    def __init__(self, receiver: OTLPReceiver) -> None:
        self.receiver = receiver

    def Export(self, request, context):  # noqa: N802
        if self.receiver._refuses():
            context.abort(self.receiver.refusal, "sending queue is full")
        with self.receiver._lock:
            self.receiver.requests["logs"].append(request)
            self.receiver.logs.extend(record.body.string_value for rl in request.resource_logs
                                      for sl in rl.scope_logs for record in sl.log_records)
            self.receiver.log_records.extend(
                {"body": record.body.string_value, "severity": record.severity_text,
                 "attributes": _attributes(record.attributes), "trace_id": record.trace_id.hex(),
                 "resource": _attributes(rl.resource.attributes)}
                for rl in request.resource_logs for sl in rl.scope_logs for record in sl.log_records)
        return logs_service_pb2.ExportLogsServiceResponse()


TraceReceiver = OTLPReceiver  # the name the first wire-level tests used
