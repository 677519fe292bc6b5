"""Meter provider: periodic export over OTLP, plus any extra reader (Prometheus endpoint, tests)."""

from __future__ import annotations

import logging
import os
import sys

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import (
    ConsoleMetricExporter,
    MetricExporter,
    MetricReader,
    MetricsData,
    PeriodicExportingMetricReader,
)
from opentelemetry.sdk.resources import Resource

from obslab import _components
from obslab._export import build_exporters
from obslab.config import Settings
from obslab.privacy import Redactor, mask_exports

_logger = logging.getLogger("obslab")


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
    interval_ms = export_interval_millis(settings)
    exporters: list[MetricExporter] = []
    if exporter is not None:
        exporters.append(exporter)
    elif not readers:
        exporters.extend(build_exporters(settings, "metrics"))
    if settings.enable_console_export:  # first: a flush reaches it before a collector that may not answer
        exporters.insert(0, ConsoleMetricExporter(out=sys.stdout, formatter=lambda data: data.to_json(indent=None) + "\n"))
    for each_exporter in exporters if redactor is not None else ():
        if isinstance(each_exporter, MetricReader):
            continue  # a pull exporter the SDK made (OTEL_METRICS_EXPORTER=prometheus): not masked
        mask_exports(each_exporter, redactor.metrics, MetricsData(resource_metrics=[]))
    all_readers = [*readers, *extra_readers,
                   *(e if isinstance(e, MetricReader) else _periodic_reader(e, interval_ms) for e in exporters)]
    configurator = _components.meter_configurator()
    provider = _components.tolerant(lambda: MeterProvider(resource=resource, metric_readers=all_readers,
                                                         shutdown_on_exit=False, _meter_configurator=configurator),
                                    "meter provider")
    return provider, exporters


def _periodic_reader(exporter: MetricExporter, interval_ms: float | None) -> PeriodicExportingMetricReader:
    return _components.tolerant(lambda: PeriodicExportingMetricReader(exporter, export_interval_millis=interval_ms),
                                "metric reader")


def export_interval_millis(settings: Settings) -> float | None:
    """The metric export interval: obslab's argument; else ``OTEL_METRIC_EXPORT_INTERVAL`` (None:
    the SDK reads it, and warns about a bad value); else obslab's variable, YAML or 15 s."""
    given = os.environ.get("OTEL_METRIC_EXPORT_INTERVAL")
    if settings.sources.get("metric_export_interval") == "argument" or given is None:
        return settings.metric_export_interval * 1000
    try:
        number = float(given)
    except ValueError:
        return None  # the SDK warns and uses its default
    if number > 0:
        return None
    # upstream raises at start: obslab warns and keeps its own default
    _logger.warning("OTEL_METRIC_EXPORT_INTERVAL=%r: the interval must be above 0; %s s used", given,
                    settings.metric_export_interval)
    return settings.metric_export_interval * 1000
