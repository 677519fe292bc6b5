"""Shared fixtures: a Telemetry handle wired to in-memory exporters."""

from __future__ import annotations

import logging

import pytest
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from obslab import telemetry as telemetry_module
from obslab.config import Settings
from obslab.logs import remove_handlers


class Recorded:
    """What a handle exported, after a flush."""

    def __init__(self, handle: telemetry_module.Telemetry, spans, logs, reader) -> None:
        self.handle, self._spans, self._logs, self._reader = handle, spans, logs, reader

    def spans(self):
        self.handle.force_flush(5)
        return self._spans.get_finished_spans()

    def logs(self):
        self.handle.force_flush(5)
        return [r.log_record for r in self._logs.get_finished_logs()]

    def metrics(self) -> dict:
        """{metric name: [(attributes, value)]} from the in-memory reader."""
        out: dict = {}
        data = self._reader.get_metrics_data()
        for rm in data.resource_metrics if data else []:
            for sm in rm.scope_metrics:
                for metric in sm.metrics:
                    for point in metric.data.data_points:
                        value = getattr(point, "value", None)
                        if value is None:
                            value = point.count
                        out.setdefault(metric.name, []).append((dict(point.attributes), value))
        return out


@pytest.fixture
def recorded(monkeypatch):
    """A handle built from default settings, installed on the root logger, exporting in memory."""
    spans, logs, reader = InMemorySpanExporter(), InMemoryLogRecordExporter(), InMemoryMetricReader()
    handle = telemetry_module.Telemetry(
        Settings(service_name="unit-test"), span_exporter=spans, log_exporter=logs, metric_readers=(reader,))
    handle._install()
    monkeypatch.setattr(telemetry_module, "_handle", handle)
    yield Recorded(handle, spans, logs, reader)
    remove_handlers()
    handle.shutdown(1)
    logging.getLogger().setLevel(logging.WARNING)


@pytest.fixture
def fresh(monkeypatch, tmp_path):
    """No process handle and no stray .env or OTEL_* settings; the handle is reset afterwards."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(telemetry_module, "_handle", None)
    for name in ("OTEL_SDK_DISABLED", "OTEL_SERVICE_NAME", "SERVICE_NAME", "OBSLAB_CONSOLE_ONLY", "OBSLAB_PRIVACY",
                 "OTEL_EXPORTER_OTLP_ENDPOINT", "OBSLAB_INSTRUMENT"):
        monkeypatch.delenv(name, raising=False)
    yield
    telemetry_module._reset_for_tests()
    logging.getLogger().setLevel(logging.WARNING)
