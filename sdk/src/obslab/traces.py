"""Tracer provider: the sampler, id generator and tracer configurator the ``OTEL_*`` variables name
(or obslab's parent-based ratio), loaded by the SDK's loaders; batch export to the exporters the SDK
configures."""

from __future__ import annotations

import json
import sys

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, SpanLimits, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SimpleSpanProcessor, SpanExporter
from opentelemetry.sdk.trace.sampling import ParentBased, Sampler, TraceIdRatioBased

from obslab import _components
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
    chosen_sampler, ids, configurator = sampler(settings), _components.id_generator(), _components.tracer_configurator()
    limits = _components.tolerant(SpanLimits, "span limits")  # as the provider reads them; the exported copies keep them
    provider = _components.tolerant(lambda: TracerProvider(
        resource=resource,
        sampler=chosen_sampler,
        id_generator=ids,
        span_limits=limits,
        shutdown_on_exit=False,  # obslab's own exit hook bounds the time spent
        _tracer_configurator=configurator,
    ), "tracer provider")
    for processor in extra_processors:
        provider.add_span_processor(processor)
    exporters: list[SpanExporter] = []
    given = [exporter] if exporter is not None else [buffered(e, settings, "traces")
                                                     for e in build_exporters(settings, "traces")]
    for each_exporter in given:
        masked = _masked(each_exporter, redactor, limits)
        provider.add_span_processor(_components.tolerant(lambda: BatchSpanProcessor(masked), "span batch processor"))
        exporters.append(each_exporter)
    if settings.enable_console_export:
        console = ConsoleSpanExporter(out=sys.stdout, formatter=_span_json)  # the stdout of now, not of import time
        provider.add_span_processor(SimpleSpanProcessor(_masked(console, redactor, limits)))
        exporters.append(console)
    return provider, exporters


def sampler(settings: Settings) -> Sampler | None:
    """obslab's ``sampling_ratio``, parent-based, when it is set; otherwise the sampler
    ``OTEL_TRACES_SAMPLER`` names, built in or an entry point, loaded by the SDK's loader (None: the
    SDK's default)."""
    if settings.sampling_ratio is None:
        return _components.sampler()
    return ParentBased(TraceIdRatioBased(settings.sampling_ratio))


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
