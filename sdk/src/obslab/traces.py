"""Tracer provider: the sampler, id generator and tracer configurator the ``OTEL_*`` variables name
(or obslab's parent-based ratio), loaded by the SDK's loaders; batch export to the exporters the SDK
configures."""

from __future__ import annotations

import json

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SimpleSpanProcessor, SpanExporter
from opentelemetry.sdk.trace.sampling import ParentBased, Sampler, TraceIdRatioBased

from obslab import _components
from obslab._export import build_exporters
from obslab._outage import buffered
from obslab.config import Settings
from obslab.genai import with_usage_aliases
from obslab.privacy import Redactor, each, mask_exports


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
    provider = _components.tolerant(lambda: TracerProvider(
        resource=resource,
        sampler=chosen_sampler,
        id_generator=ids,
        shutdown_on_exit=False,  # obslab's own exit hook bounds the time spent
        _tracer_configurator=configurator,
    ), "tracer provider")
    for processor in extra_processors:
        provider.add_span_processor(processor)
    exporters: list[SpanExporter] = []
    given = [exporter] if exporter is not None else [buffered(e, settings, "traces")
                                                     for e in build_exporters(settings, "traces")]
    for each_exporter in given:
        masked = _masked(each_exporter, redactor)
        provider.add_span_processor(_components.tolerant(lambda: BatchSpanProcessor(masked), "span batch processor"))
        exporters.append(each_exporter)
    if settings.enable_console_export:
        console = ConsoleSpanExporter(formatter=_span_json)
        provider.add_span_processor(SimpleSpanProcessor(_masked(console, redactor)))
        exporters.append(console)
    return provider, exporters


def sampler(settings: Settings) -> Sampler | None:
    """obslab's ``sampling_ratio``, parent-based, when it is set; otherwise the sampler
    ``OTEL_TRACES_SAMPLER`` names, built in or an entry point, loaded by the SDK's loader (None: the
    SDK's default)."""
    if settings.sampling_ratio is None:
        return _components.sampler()
    return ParentBased(TraceIdRatioBased(settings.sampling_ratio))


def _masked(exporter: SpanExporter, redactor: Redactor | None) -> SpanExporter:
    """``exporter`` sending each span with its GenAI usage aliases, and masked when ``redactor`` is given."""
    if redactor is None:
        return mask_exports(exporter, each(with_usage_aliases), [])
    return mask_exports(exporter, each(lambda span: redactor.span(with_usage_aliases(span))), [])


def _span_json(span: ReadableSpan) -> str:
    """One span as one JSON line (name, ids, parent, times, attributes, events, status)."""
    return json.dumps(json.loads(span.to_json()), separators=(",", ":")) + "\n"
