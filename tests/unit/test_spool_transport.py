"""Issue 19: the spool sends on the OTLP exporter's own transport, so the exporter's endpoint, TLS
certificate and client key, compression and headers apply to spooled requests too."""

from __future__ import annotations

import os

import grpc
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from obslab import _spool
from obslab._export import build_exporters
from obslab.config import load_settings


class Recorded:
    def __init__(self, result=None):
        self.calls, self.result = [], result

    def Export(self, **kwargs):  # noqa: N802 - the gRPC stub's method name
        self.calls.append(kwargs)

    def export(self, data):
        self.calls.append(data)
        return self.result


@pytest.fixture
def traces_exporter(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)

    def make(**env):
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        (exporter,) = build_exporters(load_settings({}, environ=os.environ), "traces")
        return exporter
    return make


def test_grpc_spool_sends_on_the_exporters_channel_with_its_headers_and_timeout(traces_exporter):
    exporter = traces_exporter(OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:4317",
                               OTEL_EXPORTER_OTLP_TRACES_HEADERS="x-tenant=acme",
                               OTEL_EXPORTER_OTLP_TRACES_COMPRESSION="gzip", OTEL_EXPORTER_OTLP_TRACES_TIMEOUT="3")
    assert exporter._compression is grpc.Compression.Gzip  # the channel the spool now shares
    stub = Recorded()
    exporter._client = stub
    request = ExportTraceServiceRequest()
    assert _spool.sender("traces", exporter)(request) is True
    (call,) = stub.calls
    assert call["request"] is request and ("x-tenant", "acme") in call["metadata"] and call["timeout"] == 3.0


def test_http_spool_sends_through_the_exporters_client(traces_exporter):
    exporter = traces_exporter(OTEL_EXPORTER_OTLP_PROTOCOL="http/protobuf",
                               OTEL_EXPORTER_OTLP_ENDPOINT="https://collector.example.com")
    client = Recorded(result=type("Result", (), {"success": True})())
    exporter._client = client
    assert _spool.sender("traces", exporter)(ExportTraceServiceRequest()) is True
    assert client.calls == [b""]
