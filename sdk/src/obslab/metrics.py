"""Meter provider: periodic export over OTLP gRPC."""

from __future__ import annotations

from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import (
    ConsoleMetricExporter,
    MetricExporter,
    MetricReader,
    PeriodicExportingMetricReader,
)
from opentelemetry.sdk.resources import Resource

from obslab._export import otlp_kwargs
from obslab.config import Settings


def build_meter_provider(
    settings: Settings,
    resource: Resource,
    exporter: MetricExporter | None = None,
    extra_readers: tuple[MetricReader, ...] = (),
) -> tuple[MeterProvider, list[MetricExporter]]:
    """A provider whose reader exports every ``metric_export_interval`` seconds."""
    interval_ms = settings.metric_export_interval * 1000
    exporters: list[MetricExporter] = []
    if exporter is None and not extra_readers and not settings.console_only:
        exporter = OTLPMetricExporter(**otlp_kwargs(settings))
    readers = list(extra_readers)
    if exporter is not None:
        readers.append(PeriodicExportingMetricReader(exporter, export_interval_millis=interval_ms))
        exporters.append(exporter)
    if settings.enable_console_export:
        console = ConsoleMetricExporter(formatter=lambda data: data.to_json(indent=None) + "\n")
        readers.append(PeriodicExportingMetricReader(console, export_interval_millis=interval_ms))
        exporters.append(console)
    provider = MeterProvider(resource=resource, metric_readers=readers, shutdown_on_exit=False)
    return provider, exporters
