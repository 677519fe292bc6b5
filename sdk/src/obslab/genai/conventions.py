"""The OpenTelemetry GenAI semantic conventions in obslab, on top of ``opentelemetry-util-genai``.

Spans and the two client metrics come from the upstream util package, whatever made the call:
the agent helpers use its ``TelemetryHandler``, and so do the upstream OpenAI and Anthropic
instrumentations (``instrument=["openai", "anthropic"]``). What obslab adds here:

- cost: :class:`LLMCostProcessor` prices every finished ``chat {model}`` span from its
  ``gen_ai.usage.*`` tokens (a client library's own span of the same call, such as the Anthropic
  SDK's ``anthropic.messages.create``, is not priced again) with the :class:`~obslab.prices.PriceTable`, into
  ``obslab.gen_ai.client.cost`` (USD) or, for a model without a price,
  ``obslab.gen_ai.client.unpriced_calls``;
- token kinds: ``gen_ai.client.token.usage`` keeps the conventions' token types (``input`` and
  ``output``, which include the cache and reasoning tokens, so its sum over types is what a call
  used); the cache reads, cache writes and reasoning tokens of a call are on its span as the
  conventions' ``gen_ai.usage.*`` attributes (with ``gen_ai.usage.cache_creation.input_tokens`` beside
  util-genai's ``gen_ai.usage.cache_write.input_tokens``) and in obslab's own
  ``obslab.gen_ai.client.token.usage``, by ``obslab.gen_ai.token.type`` (``cache_read``,
  ``cache_creation``, ``reasoning``: part of the input or output tokens, not more of them);
- message content: captured only when ``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT`` asks
  for it (``span_only``, ``event_only`` or ``span_and_event``, read by opentelemetry-util-genai), and then exported
  through privacy masking (:class:`ContentRedactor`, or the whole privacy redactor when privacy is on).

=================================  ============  ==================================================
instrument                         unit          Prometheus
=================================  ============  ==================================================
gen_ai.client.operation.duration   s             gen_ai_client_operation_duration_seconds_bucket
gen_ai.client.token.usage          {token}       gen_ai_client_token_usage_bucket (gen_ai_token_type:
                                                 input, output)
obslab.gen_ai.client.token.usage   {token}       obslab_gen_ai_client_token_usage_bucket
                                                 (obslab_gen_ai_token_type: cache_read, cache_creation,
                                                 reasoning)
gen_ai.client.operation.time_to_first_chunk  s  gen_ai_client_operation_time_to_first_chunk_seconds_bucket
gen_ai.client.operation.time_per_output_chunk s gen_ai_client_operation_time_per_output_chunk_seconds_bucket
obslab.gen_ai.client.cost          {USD}         obslab_gen_ai_client_cost_total
obslab.gen_ai.client.unpriced_calls  {call}      obslab_gen_ai_client_unpriced_calls_total
obslab.gen_ai.client.cache_savings {USD}       obslab_gen_ai_client_cache_savings_total
=================================  ============  ==================================================
"""

from __future__ import annotations

import os
from datetime import datetime, timezone
from typing import Any, Mapping, NamedTuple

from opentelemetry.metrics import Meter
from opentelemetry.sdk._logs import ReadWriteLogRecord
from opentelemetry.sdk.trace import ReadableSpan, SpanLimits, SpanProcessor
from opentelemetry.trace import NonRecordingSpan, set_span_in_context
from opentelemetry.util.genai.handler import TelemetryHandler
from opentelemetry.util.genai.utils import get_content_capturing_mode

from obslab._diagnostics import guarded
from obslab.genai.prices import Price, PriceTable
from obslab.privacy import Redactor, copy_span, mask_in_place

CAPTURE_VARIABLE = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"
CAPTURE_MODES = ("no_content", "span_only", "event_only", "span_and_event")
# Attributes that carry message content (GenAI conventions), on spans and on events.
CONTENT_KEYS = frozenset({
    "gen_ai.input.messages", "gen_ai.output.messages", "gen_ai.system_instructions",
    "gen_ai.tool.definitions", "gen_ai.tool.call.arguments", "gen_ai.tool.call.result",
    "gen_ai.evaluation.explanation",  # may quote the evaluated answer
})
COST_METRIC = "obslab.gen_ai.client.cost"
UNPRICED_METRIC = "obslab.gen_ai.client.unpriced_calls"
SAVINGS_METRIC = "obslab.gen_ai.client.cache_savings"
_PRICED_OPERATIONS = frozenset({"chat", "text_completion", "generate_content"})
TOKEN_DETAIL_METRIC = "obslab.gen_ai.client.token.usage"
TOKEN_DETAIL_TYPE = "obslab.gen_ai.token.type"
TOKEN_BUCKETS = (1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864)
INPUT_TOKENS = "gen_ai.usage.input_tokens"
OUTPUT_TOKENS = "gen_ai.usage.output_tokens"
CACHE_READ_TOKENS = "gen_ai.usage.cache_read.input_tokens"
CACHE_CREATION_TOKENS = "gen_ai.usage.cache_creation.input_tokens"
CACHE_WRITE_TOKENS = "gen_ai.usage.cache_write.input_tokens"  # opentelemetry-util-genai's name of the same
REASONING_TOKENS = "gen_ai.usage.reasoning.output_tokens"
# The attributes of gen_ai.client.token.usage points (opentelemetry-util-genai's metric attributes).
_TOKEN_METRIC_KEYS = ("gen_ai.operation.name", "gen_ai.provider.name", "gen_ai.request.model",
                      "gen_ai.response.model", "server.address", "server.port")


def content_capture_mode(environ: Mapping[str, str] | None = None) -> str:
    """The message content capture mode asked for, as opentelemetry-util-genai reads it (``no_content``
    unless the variable is set; a value it does not know gives its warning and ``no_content``)."""
    if environ is not None and environ is not os.environ:
        raw = environ.get(CAPTURE_VARIABLE, "").strip().lower()
        return raw if raw in CAPTURE_MODES else "no_content"
    return get_content_capturing_mode().name.lower()


def genai_handler(tracer_provider: Any, meter_provider: Any, logger_provider: Any) -> TelemetryHandler:
    """The upstream handler that makes GenAI spans, metrics and events for obslab's helpers."""
    return TelemetryHandler(tracer_provider=tracer_provider, meter_provider=meter_provider,
                            logger_provider=logger_provider, instrumentation_scope_name="obslab.genai")


class ContentRedactor(Redactor):
    """Masks secret-looking values (tokens, JWTs, card numbers, e-mail addresses...) inside captured
    message content, and leaves everything else as it is: privacy masking for the content a user
    turned on while privacy is off."""

    def _content(self, attributes: Mapping[str, Any] | None) -> Any:
        if not attributes or not CONTENT_KEYS.intersection(attributes):
            return attributes
        return {key: self.scrub(value) if key in CONTENT_KEYS else value for key, value in attributes.items()}

    def span(self, span: ReadableSpan, limits: SpanLimits | None = None,
             extra: Mapping[str, Any] | None = None) -> ReadableSpan:
        if not extra and not (CONTENT_KEYS.intersection(span.attributes or {})
                              or any(CONTENT_KEYS.intersection(e.attributes or {}) for e in span.events)):
            return span
        return copy_span(span, limits, attributes=self._content, extra=extra)

    def log_record(self, record: ReadWriteLogRecord) -> None:
        attributes = record.log_record.attributes
        if attributes and CONTENT_KEYS.intersection(attributes):
            mask_in_place(attributes, lambda key, value: self.scrub(value) if key in CONTENT_KEYS else value)


class LLMCostProcessor(SpanProcessor):
    """Prices each finished LLM call span (the helpers' and the instrumented clients' alike), at the
    price in force when the call started, cache and reasoning tokens at their own rates; and records
    those token kinds in ``obslab.gen_ai.client.token.usage``."""

    def __init__(self, meter: Meter, prices: PriceTable) -> None:
        self._prices = prices
        self._cost = meter.create_counter(COST_METRIC, unit="{USD}",
                                          description="Estimated cost of LLM calls in US dollars (price table)")
        self._unpriced = meter.create_counter(UNPRICED_METRIC, unit="{call}",
                                              description="LLM calls of a model the price table does not know")
        self._savings = meter.create_counter(
            SAVINGS_METRIC, unit="{USD}", description="What cache reads saved against the input price, US dollars")
        # Shaped as the conventions' gen_ai.client.token.usage (unit, buckets, attributes), for the token
        # kinds its input and output include.
        self._tokens = meter.create_histogram(
            TOKEN_DETAIL_METRIC, unit="{token}", explicit_bucket_boundaries_advisory=TOKEN_BUCKETS,
            description="Cache read, cache write and reasoning tokens of GenAI client calls "
                        "(part of gen_ai.client.token.usage input and output)")

    def on_end(self, span: ReadableSpan) -> None:
        attributes = span.attributes
        if attributes and "gen_ai.operation.name" in attributes:  # the app's other spans pay no more than this
            self._price(span, attributes)

    @guarded("LLM cost")
    def _price(self, span: ReadableSpan, attributes: Mapping[str, Any]) -> None:
        operation = attributes.get("gen_ai.operation.name")
        if operation not in _PRICED_OPERATIONS or not (span.name == operation or span.name.startswith(f"{operation} ")):
            return  # only spans named by the conventions: a client library's own span of the same call is not priced
        input_tokens = attributes.get("gen_ai.usage.input_tokens")
        output_tokens = attributes.get("gen_ai.usage.output_tokens")
        if input_tokens is None and output_tokens is None:
            return  # a failed call: no tokens, no cost
        usage = usage_of(attributes)
        provider = str(attributes.get("gen_ai.provider.name") or attributes.get("gen_ai.system") or "")
        request_model = attributes.get("gen_ai.request.model")
        model = str(attributes.get("gen_ai.response.model") or request_model or "")
        labels = {"gen_ai.provider.name": provider, "gen_ai.request.model": str(request_model or model)}
        context = set_span_in_context(NonRecordingSpan(span.context))  # the exemplar opens this call
        self._record_token_kinds(attributes, usage, context)
        start_time = span.start_time

        def record_cost() -> None:
            price = price_of_call(self._prices, provider, labels["gen_ai.request.model"], model, start_time,
                                  usage.input_tokens)
            if price is None:
                self._unpriced.add(1, labels, context=context)
                return
            self._cost.add(price.cost(*usage), labels, context=context)
            saved = price.cache_read_savings(usage.cache_read_tokens)
            if saved > 0:
                self._savings.add(saved, labels, context=context)

        # Now, or once genai-prices' data is in (while it loads, in its thread: the call does not wait).
        self._prices.run_when_ready(record_cost, (provider, model), (provider, labels["gen_ai.request.model"]))

    def _record_token_kinds(self, attributes: Mapping[str, Any], usage: TokenCounts, context: Any) -> None:
        kinds = {"cache_read": usage.cache_read_tokens, "cache_creation": usage.cache_write_tokens,
                 "reasoning": usage.reasoning_tokens}
        if not any(kinds.values()):
            return
        base = {key: attributes[key] for key in _TOKEN_METRIC_KEYS if attributes.get(key) is not None}
        for kind, count in kinds.items():
            if count:
                self._tokens.record(count, {**base, TOKEN_DETAIL_TYPE: kind}, context=context)


def price_of_call(prices: PriceTable, provider: str, request_model: str, response_model: str | None,
                  start_time: int | None, input_tokens: int) -> Price | None:
    """The price of one LLM call: of its response model (the one that answered), else of its request
    model, in force when it started (``start_time`` in ns since the epoch, now when None), at the
    tier its ``input_tokens`` reach. The cost metric and the agent catalogue both price through it."""
    when = datetime.fromtimestamp(start_time / 1e9, tz=timezone.utc) if start_time else None
    model = response_model or request_model
    price = prices.price(provider, model, when, input_tokens)
    if price is None and model != request_model:
        price = prices.price(provider, request_model, when, input_tokens)
    return price


class TokenCounts(NamedTuple):
    """A call's tokens as the GenAI conventions count them: input includes the cache reads and
    writes, output the reasoning tokens."""

    input_tokens: int
    output_tokens: int
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0


def usage_of(attributes: Mapping[str, Any]) -> TokenCounts:
    """The token counts of a span's ``gen_ai.usage.*`` attributes (cache writes under either name)."""
    def count(*keys: str) -> int:
        for key in keys:
            value = attributes.get(key)
            if isinstance(value, int) and not isinstance(value, bool) and value > 0:
                return value
        return 0
    return TokenCounts(count(INPUT_TOKENS), count(OUTPUT_TOKENS), count(CACHE_READ_TOKENS),
                       count(CACHE_CREATION_TOKENS, CACHE_WRITE_TOKENS), count(REASONING_TOKENS))


def usage_aliases(attributes: Mapping[str, Any] | None) -> dict[str, Any]:
    """The attributes an exported span gets on top of its own: ``gen_ai.usage.cache_creation.input_tokens``
    beside the ``gen_ai.usage.cache_write.input_tokens`` that opentelemetry-util-genai writes (both
    names are in use: the first is the conventions' as published in opentelemetry-semantic-conventions)."""
    attributes = attributes or {}
    if CACHE_WRITE_TOKENS not in attributes or CACHE_CREATION_TOKENS in attributes:
        return {}
    return {CACHE_CREATION_TOKENS: attributes[CACHE_WRITE_TOKENS]}
