"""Tracer provider: parent-based ratio sampling, batch export over OTLP gRPC."""

from __future__ import annotations

import json

from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SimpleSpanProcessor, SpanExporter
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased

from obslab._export import otlp_kwargs
from obslab.config import Settings


def build_tracer_provider(
    settings: Settings,
    resource: Resource,
    exporter: SpanExporter | None = None,
    extra_processors: tuple[SpanProcessor, ...] = (),
) -> tuple[TracerProvider, list[SpanExporter]]:
    """A provider exporting to ``exporter`` (default: OTLP gRPC to the settings' endpoint)."""
    provider = TracerProvider(
        resource=resource,
        sampler=ParentBased(TraceIdRatioBased(settings.sampling_ratio)),
        shutdown_on_exit=False,  # obslab's own exit hook bounds the time spent
    )
    for processor in extra_processors:
        provider.add_span_processor(processor)
    exporters: list[SpanExporter] = []
    if exporter is None and not settings.console_only:
        exporter = OTLPSpanExporter(**otlp_kwargs(settings))
    if exporter is not None:
        provider.add_span_processor(BatchSpanProcessor(exporter))
        exporters.append(exporter)
    if settings.enable_console_export:
        console = ConsoleSpanExporter(formatter=_span_json)
        provider.add_span_processor(SimpleSpanProcessor(console))
        exporters.append(console)
    return provider, exporters


def _span_json(span: ReadableSpan) -> str:
    """One span as one JSON line (name, ids, parent, times, attributes, events, status)."""
    return json.dumps(json.loads(span.to_json()), separators=(",", ":")) + "\n"
