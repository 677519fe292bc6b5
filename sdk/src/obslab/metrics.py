"""Meter provider: periodic export over OTLP, plus any extra reader (Prometheus endpoint, tests)."""

from __future__ import annotations

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import (
    ConsoleMetricExporter,
    MetricExporter,
    MetricReader,
    PeriodicExportingMetricReader,
)
from opentelemetry.sdk.resources import Resource

from obslab._export import otlp_exporter
from obslab.config import Settings


def build_meter_provider(
    settings: Settings,
    resource: Resource,
    exporter: MetricExporter | None = None,
    readers: tuple[MetricReader, ...] = (),
    extra_readers: tuple[MetricReader, ...] = (),
) -> tuple[MeterProvider, list[MetricExporter]]:
    """A provider whose reader exports every ``metric_export_interval`` seconds. ``readers``
    replace the OTLP export (tests); ``extra_readers`` come on top (the Prometheus endpoint)."""
    interval_ms = settings.metric_export_interval * 1000
    exporters: list[MetricExporter] = []
    if exporter is None and not readers and not settings.console_only:
        exporter = otlp_exporter(settings, "metrics")
    all_readers = [*readers, *extra_readers]
    if exporter is not None:
        all_readers.append(PeriodicExportingMetricReader(exporter, export_interval_millis=interval_ms))
        exporters.append(exporter)
    if settings.enable_console_export:
        console = ConsoleMetricExporter(formatter=lambda data: data.to_json(indent=None) + "\n")
        all_readers.append(PeriodicExportingMetricReader(console, export_interval_millis=interval_ms))
        exporters.append(console)
    provider = MeterProvider(resource=resource, metric_readers=all_readers, shutdown_on_exit=False)
    return provider, exporters
