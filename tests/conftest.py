"""Shared fixtures: a Telemetry handle wired to in-memory exporters."""

from __future__ import annotations

import logging
import os

import pytest
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from obslab import telemetry as telemetry_module
from obslab.config import Settings


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
def root_level():
    """``root_level(level)`` sets the root logger's level for one test (through setLevel, which
    also clears logging's cached levels); the level is put back afterwards."""
    root = logging.getLogger()
    saved = root.level
    yield root.setLevel
    root.setLevel(saved)


@pytest.fixture
def app_logging_at_info(root_level):
    """The root logger at INFO, as an application that configured logging has it (pytest's own
    capture handlers are on the root logger, so obslab leaves its level alone)."""
    root_level(logging.INFO)


@pytest.fixture
def recording(monkeypatch, app_logging_at_info):
    """``recording(settings)`` installs a handle built from ``settings`` on the root logger,
    exporting in memory, and returns its ``Recorded``; the handle is shut down afterwards."""
    handles = []

    def install(settings: Settings) -> Recorded:
        spans, logs, reader = InMemorySpanExporter(), InMemoryLogRecordExporter(), InMemoryMetricReader()
        handle = telemetry_module.Telemetry(settings, span_exporter=spans, log_exporter=logs, metric_readers=(reader,))
        handle._install()
        monkeypatch.setattr(telemetry_module, "_handle", handle)
        handles.append(handle)
        return Recorded(handle, spans, logs, reader)

    yield install
    for handle in handles:
        handle.shutdown(1)


@pytest.fixture
def recorded(recording):
    """A handle built from default settings, installed on the root logger, exporting in memory."""
    return recording(Settings(service_name="unit-test"))


@pytest.fixture
def fresh(monkeypatch, tmp_path):
    """No process handle and no stray .env or OTEL_* settings; the handle is reset afterwards."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(telemetry_module, "_handle", None)
    for name in [n for n in os.environ if n.startswith(("OTEL_", "OBSLAB_"))] + ["OTLP_ENDPOINT"]:
        monkeypatch.delenv(name, raising=False)
    yield
    telemetry_module._reset_for_tests()
