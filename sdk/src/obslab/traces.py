"""Tracer provider: the SDK's sampler (or obslab's parent-based ratio), batch export to the exporters
the SDK configures, context propagation."""

from __future__ import annotations

import json
import sys
from importlib.metadata import entry_points

from opentelemetry.propagators.composite import CompositePropagator
from opentelemetry.propagators.textmap import TextMapPropagator
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, SpanLimits, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SimpleSpanProcessor, SpanExporter
from opentelemetry.sdk.trace.sampling import ParentBased, Sampler, TraceIdRatioBased

from obslab._export import build_exporters
from obslab._outage import buffered
from obslab.config import Settings
from obslab.genai import usage_aliases
from obslab.privacy import Redactor, copy_span, each, mask_exports


def build_tracer_provider(
    settings: Settings,
    resource: Resource,
    exporter: SpanExporter | None = None,
    extra_processors: tuple[SpanProcessor, ...] = (),
    redactor: Redactor | None = None,
) -> tuple[TracerProvider, list[SpanExporter]]:
    """A provider exporting to ``exporter`` (default: the exporters ``OTEL_TRACES_EXPORTER`` names,
    each behind an outage buffer), through ``redactor`` when privacy is on."""
    limits = SpanLimits()  # read from OTEL_* as the provider would; the exported copies keep them
    provider = TracerProvider(
        resource=resource,
        sampler=sampler(settings),
        span_limits=limits,
        shutdown_on_exit=False,  # obslab's own exit hook bounds the time spent
    )
    for processor in extra_processors:
        provider.add_span_processor(processor)
    exporters: list[SpanExporter] = []
    given = [exporter] if exporter is not None else [buffered(e, settings, "traces")
                                                     for e in build_exporters(settings, "traces")]
    for each_exporter in given:
        provider.add_span_processor(BatchSpanProcessor(_masked(each_exporter, redactor, limits)))
        exporters.append(each_exporter)
    if settings.enable_console_export:
        console = ConsoleSpanExporter(out=sys.stdout, formatter=_span_json)  # the stdout of now, not of import time
        provider.add_span_processor(SimpleSpanProcessor(_masked(console, redactor, limits)))
        exporters.append(console)
    return provider, exporters


def sampler(settings: Settings) -> Sampler | None:
    """obslab's ``sampling_ratio``, parent-based, when it is set; None otherwise, so that the SDK
    reads ``OTEL_TRACES_SAMPLER`` and ``OTEL_TRACES_SAMPLER_ARG`` itself."""
    if settings.sampling_ratio is None:
        return None
    return ParentBased(TraceIdRatioBased(settings.sampling_ratio))


def propagator(names: tuple[str, ...]) -> TextMapPropagator:
    """The named context propagators (``tracecontext``, ``baggage``, or any installed one), as one."""
    available = {ep.name: ep for ep in entry_points(group="opentelemetry_propagator")}
    unknown = [name for name in names if name not in available]
    if unknown:
        raise ValueError(f"propagators={','.join(names)!r}: unknown propagator(s) {', '.join(unknown)}; "
                         f"installed: {', '.join(sorted(available))}")
    return CompositePropagator([available[name].load()() for name in names])


def _masked(exporter: SpanExporter, redactor: Redactor | None, limits: SpanLimits) -> SpanExporter:
    """``exporter`` sending each span with its GenAI usage aliases, and masked when ``redactor`` is
    given: one copy of the span at most, keeping its dropped counts and the provider's ``limits``."""
    def export_form(span: ReadableSpan) -> ReadableSpan:
        extra = usage_aliases(span.attributes)
        if redactor is not None:
            return redactor.span(span, limits, extra)
        return copy_span(span, limits, extra=extra) if extra else span

    return mask_exports(exporter, each(export_form), [])


def _span_json(span: ReadableSpan) -> str:
    """One span as one JSON line (name, ids, parent, times, attributes, events, status)."""
    return json.dumps(json.loads(span.to_json()), separators=(",", ":")) + "\n"
