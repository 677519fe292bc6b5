"""Plug-ins registered through entry points by the SDK parity tests (this directory on ``sys.path``
makes ``parity_plugins-1.0.dist-info`` an installed distribution): each is recognisable in what the
SDK builds, so a test can tell that the entry point named in an ``OTEL_*`` variable was used."""

from __future__ import annotations

import itertools

from opentelemetry.propagators.textmap import TextMapPropagator
from opentelemetry.sdk.resources import Resource, ResourceDetector
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.id_generator import IdGenerator
from opentelemetry.sdk.trace.sampling import Decision, Sampler, SamplingResult

TRACE_ID_BASE = 0x9A71_7700_0000_0000_0000_0000_0000_0000  # every trace id this generator makes starts so


class ParitySampler(Sampler):
    """Keeps the spans whose name starts with ``keep``, whatever the parent says."""

    def __init__(self, arg: object = None) -> None:
        self.arg = arg

    def should_sample(self, parent_context, trace_id, name, kind=None, attributes=None, links=None,
                      trace_state=None) -> SamplingResult:
        return SamplingResult(Decision.RECORD_AND_SAMPLE if name.startswith("keep") else Decision.DROP)

    def get_description(self) -> str:
        return f"ParitySampler{{{self.arg}}}"


class ParityIdGenerator(IdGenerator):
    """Trace ids counting up from :data:`TRACE_ID_BASE`."""

    def __init__(self) -> None:
        self._next = itertools.count(1)

    def generate_span_id(self) -> int:
        return next(self._next)

    def generate_trace_id(self) -> int:
        return TRACE_ID_BASE + next(self._next)


class ParityPropagator(TextMapPropagator):
    """Injects ``x-parity: 1``."""

    def extract(self, carrier, context=None, getter=None):
        return context

    def inject(self, carrier, context=None, setter=None):
        carrier["x-parity"] = "1"

    @property
    def fields(self):
        return {"x-parity"}


class ParitySpanExporter(SpanExporter):
    """Keeps nothing, answers success."""

    def export(self, spans) -> SpanExportResult:
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        pass


class ParityDetector(ResourceDetector):
    def detect(self) -> Resource:
        return Resource({"parity.detected": "yes"})
