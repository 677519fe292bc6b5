"""An in-process OTLP gRPC trace receiver, for wire-format tests of the SDK's exporters."""

from __future__ import annotations

import threading
from concurrent import futures

import grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc


class TraceReceiver(trace_service_pb2_grpc.TraceServiceServicer):
    """Collects the names and attributes of every span exported to it."""

    def __init__(self, port: int) -> None:
        self.port, self.spans, self._lock = port, [], threading.Lock()
        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
        trace_service_pb2_grpc.add_TraceServiceServicer_to_server(self, self._server)
        self._server.add_insecure_port(f"127.0.0.1:{port}")

    def Export(self, request, context):  # noqa: N802 (gRPC method name)
        with self._lock:
            for resource_spans in request.resource_spans:
                for scope_spans in resource_spans.scope_spans:
                    for span in scope_spans.spans:
                        attrs = {a.key: a.value.string_value or a.value.int_value for a in span.attributes}
                        self.spans.append((span.name, attrs))
        return trace_service_pb2.ExportTraceServiceResponse()

    def start(self) -> "TraceReceiver":
        self._server.start()
        return self

    def stop(self) -> None:
        self._server.stop(0)
