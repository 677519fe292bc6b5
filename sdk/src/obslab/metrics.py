"""Meter provider: periodic export over OTLP, plus any extra reader (Prometheus endpoint, tests)."""

from __future__ import annotations

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import (
    ConsoleMetricExporter,
    MetricExporter,
    MetricReader,
    MetricsData,
    PeriodicExportingMetricReader,
)
from opentelemetry.sdk.resources import Resource

from obslab._export import otlp_exporter
from obslab.config import Settings
from obslab.privacy import Redactor, mask_exports


def build_meter_provider(
    settings: Settings,
    resource: Resource,
    exporter: MetricExporter | None = None,
    readers: tuple[MetricReader, ...] = (),
    extra_readers: tuple[MetricReader, ...] = (),
    redactor: Redactor | None = None,
) -> tuple[MeterProvider, list[MetricExporter]]:
    """A provider whose reader exports every ``metric_export_interval`` seconds. ``readers``
    replace the OTLP export (tests); ``extra_readers`` come on top (the Prometheus endpoint).
    With privacy on, every exported batch is masked first."""
    interval_ms = settings.metric_export_interval * 1000
    exporters: list[MetricExporter] = []
    if exporter is None and not readers and not settings.console_only:
        exporter = otlp_exporter(settings, "metrics")
    if exporter is not None:
        exporters.append(exporter)
    if settings.enable_console_export:
        exporters.append(ConsoleMetricExporter(formatter=lambda data: data.to_json(indent=None) + "\n"))
    for each_exporter in exporters if redactor is not None else ():
        mask_exports(each_exporter, redactor.metrics, MetricsData(resource_metrics=[]))
    all_readers = [*readers, *extra_readers,
                   *(PeriodicExportingMetricReader(e, export_interval_millis=interval_ms) for e in exporters)]
    provider = MeterProvider(resource=resource, metric_readers=all_readers, shutdown_on_exit=False)
    return provider, exporters
