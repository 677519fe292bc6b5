"""Agent helpers from the travel-agent seed: spans and metrics of the OpenTelemetry GenAI
conventions (made by ``opentelemetry-util-genai``), beside the seed's metric catalogue.

Metric names and the names Prometheus gives them (OTLP translation, underscores and suffixes):

=========================  ==================  ===============================================
instrument                 attributes          Prometheus
=========================  ==================  ===============================================
agent.llm.calls            llm.model/provider  agent_llm_calls_total
agent.llm.latency (ms)     llm.model/provider  agent_llm_latency_milliseconds_bucket/_sum/_count
agent.llm.tokens           + token_type        agent_llm_tokens_total
agent.llm.estimated_cost   llm.model/provider  agent_llm_estimated_cost_total (USD)
agent.tool.calls           tool_name, success  agent_tool_calls_total
agent.tool.latency (ms)    tool_name           agent_tool_latency_milliseconds_bucket
agent.iterations                               agent_iterations_total
agent.requests.total       intent, ok          agent_requests_total
agent.request.duration     intent              agent_request_duration_milliseconds_bucket
agent.errors.total         error_type, comp.   agent_errors_total
=========================  ==================  ===============================================

The GenAI side (``gen_ai.client.operation.duration``, ``gen_ai.client.token.usage`` and the spans
``chat {model}``, ``execute_tool {tool}``, ``invoke_agent {agent}``) is the upstream
``TelemetryHandler``'s, the same code the OpenAI and Anthropic instrumentations use; see
:mod:`obslab.genai`. Every latency is recorded while its span is current, so that the exemplar of
a slow call opens that call's span. A client call made by an instrumented library inside
``trace_llm_call`` adds its data to the helper's span instead of making a second one.

Latency histograms carry bucket boundaries that fit them (OpenTelemetry's advisory parameter): an
LLM call or an agent request can take minutes, a tool call milliseconds. Recording never raises
into the caller: a bad value (a token count given as text, say) is reported and skipped.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from typing import Any, Iterator

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.metrics import Meter
from opentelemetry.trace import Tracer
from opentelemetry.util.genai.handler import TelemetryHandler
from opentelemetry.util.genai.invocation import CLIENT_INFERENCE_CONTEXT_KEY, GenAIInvocation, InferenceData

from obslab._diagnostics import guarded, report
from obslab.genai.conventions import (CACHE_CREATION_TOKENS, CACHE_READ_TOKENS, INPUT_TOKENS, OUTPUT_TOKENS,
                          REASONING_TOKENS, price_of_call)
from obslab.genai.prices import PriceTable

# Bucket boundaries, milliseconds.
LLM_LATENCY_MS = (100, 250, 500, 1000, 2000, 5000, 10000, 20000, 30000, 60000, 120000, 300000)
TOOL_LATENCY_MS = (1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000)
REQUEST_DURATION_MS = (10, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 20000, 30000, 60000, 120000, 300000)


class AgentInstruments:
    """The agent metric catalogue on one meter, and span helpers on one tracer."""

    def __init__(self, tracer: Tracer, meter: Meter, genai: TelemetryHandler, prices: PriceTable) -> None:
        self._tracer = tracer
        self._genai = genai
        self._prices = prices
        self.llm_calls = meter.create_counter("agent.llm.calls", unit="1", description="LLM calls")
        self.llm_latency = meter.create_histogram("agent.llm.latency", unit="ms", description="LLM call latency",
                                                  explicit_bucket_boundaries_advisory=LLM_LATENCY_MS)
        self.llm_tokens = meter.create_counter("agent.llm.tokens", unit="1", description="LLM tokens by token_type")
        self.llm_cost = meter.create_counter(
            "agent.llm.estimated_cost", unit="{USD}", description="Estimated LLM cost in US dollars")
        self.tool_calls = meter.create_counter("agent.tool.calls", unit="1", description="Tool calls")
        self.tool_latency = meter.create_histogram("agent.tool.latency", unit="ms", description="Tool call latency",
                                                   explicit_bucket_boundaries_advisory=TOOL_LATENCY_MS)
        self.iterations = meter.create_counter("agent.iterations", unit="1", description="Agent loop iterations")
        self.requests = meter.create_counter("agent.requests.total", unit="1", description="Requests by intent")
        self.request_duration = meter.create_histogram(
            "agent.request.duration", unit="ms", description="Request duration",
            explicit_bucket_boundaries_advisory=REQUEST_DURATION_MS)
        self.errors = meter.create_counter("agent.errors.total", unit="1", description="Errors by type and component")

    @contextmanager
    def trace_agent_iteration(self, iteration: int) -> Iterator[trace.Span]:
        """Span ``agent.iteration`` for one turn of the agent loop (not a GenAI operation of its own);
        counts ``agent.iterations``."""
        self.iterations.add(1)
        with self._tracer.start_as_current_span(
            # Not gen_ai.operation.name=invoke_agent: an iteration is a turn inside one agent invocation,
            # and counting it as one would multiply the invocations by the turns.
            "agent.iteration", attributes={"agent.iteration": iteration}
        ) as span:
            yield span

    @contextmanager
    def trace_agent(self, name: str, model: str | None = None, conversation_id: str | None = None
                    ) -> Iterator[trace.Span]:
        """Span ``invoke_agent {name}`` (GenAI conventions) around one run of an in-process agent;
        ``conversation_id`` (the application's id of the conversation or session) goes on it and on
        the GenAI spans under it as ``gen_ai.conversation.id``."""
        invocation = self._start("invoke_agent", lambda: self._genai.invoke_local_agent(
            agent_name=name, request_model=model, conversation_id=conversation_id))
        with self._finishing(invocation) as span:
            yield span

    @contextmanager
    def trace_llm_call(self, model: str, provider: str) -> Iterator[trace.Span]:
        """CLIENT span ``chat {model}``; records ``gen_ai.client.operation.duration`` (and the token
        usage given to :meth:`record_llm_usage`) and the catalogue's call count and latency in ms."""
        labels = {"llm.model": model, "llm.provider": provider}
        started = time.perf_counter()
        call = _CallUsage()  # what record_llm_usage reports inside: priced once, when the call ends
        token = otel_context.attach(otel_context.set_value(_LLM_CALL, call))
        span: trace.Span = trace.INVALID_SPAN
        try:
            invocation = self._start("trace_llm_call", lambda: self._genai.inference(provider, request_model=model))
            with self._finishing(invocation, {"peer.service": provider}) as span:  # peer: Tempo's service graph
                try:
                    yield span
                finally:
                    self._record_call(self.llm_calls, self.llm_latency, started, labels, labels, span)
        finally:
            otel_context.detach(token)
            self._record_call_cost(call, provider, model, span, labels)

    @contextmanager
    def trace_tool_call(self, name: str, **attributes: Any) -> Iterator[trace.Span]:
        """Span ``execute_tool {name}``; counts the call by success and records its latency."""
        started, success = time.perf_counter(), "false"
        invocation = self._start("trace_tool_call", lambda: self._genai.tool(name))
        with self._finishing(invocation, {f"tool.{k}": v for k, v in attributes.items()}) as span:
            try:
                yield span
                success = "true"
            finally:
                self._record_call(self.tool_calls, self.tool_latency, started,
                                  {"tool_name": name, "success": success}, {"tool_name": name}, span)

    @staticmethod
    def _start(where: str, start: Any) -> GenAIInvocation | None:
        try:
            return start()
        except Exception as error:
            report(where, error)
            return None

    @staticmethod
    @contextmanager
    def _finishing(invocation: GenAIInvocation | None, attributes: dict[str, Any] | None = None
                   ) -> Iterator[trace.Span]:
        """Yield the invocation's span; then stop it, or fail it with the application's exception
        (recorded on the span, and raised again unchanged)."""
        if invocation is None:
            yield trace.INVALID_SPAN
            return
        span = invocation.span
        if attributes:
            try:
                span.set_attributes(attributes)
            except Exception as error:
                report("span attributes", error)
        try:
            yield span
        except BaseException as exc:
            try:
                if isinstance(exc, Exception):
                    span.record_exception(exc)
                invocation.fail(exc)
            except Exception as error:
                report("GenAI span", error)
            raise
        else:
            try:
                invocation.stop()
            except Exception as error:
                report("GenAI span", error)

    @staticmethod
    @guarded("agent metrics")
    def _record_call(calls: Any, latency: Any, started: float, call_labels: dict[str, Any],
                     latency_labels: dict[str, Any], span: trace.Span) -> None:
        """The catalogue's count and latency, in the span's context (its exemplar opens the span)."""
        context = trace.set_span_in_context(span)
        calls.add(1, call_labels, context=context)
        latency.record((time.perf_counter() - started) * 1000, latency_labels, context=context)

    @guarded("agent metrics")
    def _record_call_cost(self, call: _CallUsage, provider: str, model: str, span: trace.Span,
                          labels: dict[str, Any]) -> None:
        """``agent.llm.estimated_cost`` of one ended ``trace_llm_call``: the costs given, plus the price
        of the other reported tokens' totals, found as ``obslab.gen_ai.client.cost`` finds it (the
        span's response model and start time): a per-request fee once, a tier by the call's total."""
        if not call.reported:
            return
        context = trace.set_span_in_context(span)
        if not call.to_price:
            self.llm_cost.add(call.given_cost, labels, context=context)
            return
        attributes = getattr(span, "attributes", None) or {}
        response_model = attributes.get("gen_ai.response.model")
        start_time = getattr(span, "start_time", None)

        def record_cost() -> None:
            price = price_of_call(self._prices, provider, model, response_model, start_time, call.tokens[0])
            cost = call.given_cost if call.given else None
            if price is not None:
                cost = (cost or 0.0) + price.cost(*call.tokens)
            if cost is not None:
                self.llm_cost.add(cost, labels, context=context)

        # Now, or once genai-prices' data is in (while it loads, in its thread: the call does not wait).
        self._prices.run_when_ready(record_cost, (provider, response_model or model), (provider, model))

    @guarded("record_llm_usage")
    def record_llm_usage(self, model: str, provider: str, prompt_tokens: int, completion_tokens: int,
                         cost_usd: float | None = None, *, cache_read_tokens: int = 0,
                         cache_creation_tokens: int = 0, reasoning_tokens: int = 0) -> None:
        """Token counts as the catalogue's metrics and as the GenAI usage of the current
        ``trace_llm_call`` (its span attributes and ``gen_ai.client.token.usage``); outside one, as
        usage attributes of the current span. Called more than once for one call, the counts add up
        everywhere alike, and the call is priced once, on its totals (a per-request fee once, a
        tiered price at the tier of the total): at the end of ``trace_llm_call`` (with its model), or,
        on another span, as what the span's new totals cost beyond its previous ones. As in the GenAI
        conventions, ``prompt_tokens`` include the cache reads and cache writes (``cache_read_tokens``,
        ``cache_creation_tokens``) and ``completion_tokens`` the ``reasoning_tokens``. ``cost_usd``
        (what this part cost) defaults to the price table's figure."""
        prompt_tokens, completion_tokens = _count(prompt_tokens), _count(completion_tokens)
        extra = {CACHE_READ_TOKENS: _count(cache_read_tokens), CACHE_CREATION_TOKENS: _count(cache_creation_tokens),
                 REASONING_TOKENS: _count(reasoning_tokens)}
        labels = {"llm.model": model, "llm.provider": provider}
        self.llm_tokens.add(prompt_tokens, {**labels, "token_type": "prompt"})
        self.llm_tokens.add(completion_tokens, {**labels, "token_type": "completion"})
        tokens = (prompt_tokens, completion_tokens, *extra.values())
        call = otel_context.get_value(_LLM_CALL)
        data = otel_context.get_value(CLIENT_INFERENCE_CONTEXT_KEY)
        if isinstance(call, _CallUsage) and isinstance(data, InferenceData):
            call.add(tokens, cost_usd)  # priced when trace_llm_call ends
        elif cost_usd is not None:
            self.llm_cost.add(cost_usd, labels)
        else:
            self._price_increment(provider, model, tokens, labels)
        if isinstance(data, InferenceData):  # inside trace_llm_call: the invocation reports the sum at its end
            data.usage_input_tokens = (data.usage_input_tokens or 0) + prompt_tokens
            data.usage_output_tokens = (data.usage_output_tokens or 0) + completion_tokens
            if extra[CACHE_READ_TOKENS]:
                data.usage_cache_read_input_tokens = (data.usage_cache_read_input_tokens or 0) + extra[CACHE_READ_TOKENS]
            if extra[CACHE_CREATION_TOKENS]:
                data.usage_cache_write_input_tokens = ((data.usage_cache_write_input_tokens or 0)
                                                       + extra[CACHE_CREATION_TOKENS])
            if extra[REASONING_TOKENS]:
                data.usage_reasoning_output_tokens = ((data.usage_reasoning_output_tokens or 0)
                                                      + extra[REASONING_TOKENS])
            return
        span = trace.get_current_span()
        if span.is_recording():
            before = getattr(span, "attributes", None) or {}
            added = {INPUT_TOKENS: prompt_tokens, OUTPUT_TOKENS: completion_tokens,
                     **{key: value for key, value in extra.items() if value}}
            span.set_attributes({key: _count_or_zero(before.get(key)) + value for key, value in added.items()})

    def _price_increment(self, provider: str, model: str, tokens: tuple[int, ...], labels: dict[str, Any]) -> None:
        """Outside ``trace_llm_call``: what the current span's usage totals cost with ``tokens``
        beyond what they cost before (the whole price when the span has no usage yet, or is not
        recorded); never below zero."""
        span = trace.get_current_span()
        before = (getattr(span, "attributes", None) or {}) if span.is_recording() else {}
        previous = tuple(_count_or_zero(before.get(key)) for key in _USAGE_KEYS)
        after = tuple(a + b for a, b in zip(previous, tokens))
        first = INPUT_TOKENS not in before and OUTPUT_TOKENS not in before

        def record_cost() -> None:
            cost_after = self._prices.cost(provider, model, after[0], after[1], cache_read_tokens=after[2],
                                           cache_write_tokens=after[3], reasoning_tokens=after[4])
            if cost_after is None:
                return
            cost_before = 0.0 if first else self._prices.cost(
                provider, model, previous[0], previous[1], cache_read_tokens=previous[2],
                cache_write_tokens=previous[3], reasoning_tokens=previous[4]) or 0.0
            self.llm_cost.add(max(cost_after - cost_before, 0.0), labels)

        self._prices.run_when_ready(record_cost, (provider, model))

    @guarded("record_request")
    def record_request(self, intent: str, duration_ms: float, ok: bool) -> None:
        """One handled request: ``agent.requests.total`` and ``agent.request.duration``."""
        self.requests.add(1, {"intent": intent, "ok": str(ok).lower()})
        self.request_duration.record(duration_ms, {"intent": intent})

    @guarded("record_error")
    def record_error(self, error_type: str, component: str) -> None:
        """One error, by type and component."""
        self.errors.add(1, {"error_type": error_type, "component": component})


_LLM_CALL = otel_context.create_key("obslab.llm_call")
_USAGE_KEYS = (INPUT_TOKENS, OUTPUT_TOKENS, CACHE_READ_TOKENS, CACHE_CREATION_TOKENS, REASONING_TOKENS)


class _CallUsage:
    """The usage ``record_llm_usage`` reports inside one ``trace_llm_call``: the tokens to price
    (input, output, cache read, cache write, reasoning) and the costs the application gave."""

    __slots__ = ("tokens", "given_cost", "given", "to_price", "reported")

    def __init__(self) -> None:
        self.tokens = [0, 0, 0, 0, 0]
        self.given_cost, self.given, self.to_price, self.reported = 0.0, False, False, False

    def add(self, tokens: tuple[int, ...], cost_usd: float | None) -> None:
        self.reported = True
        if cost_usd is not None:
            self.given_cost += cost_usd
            self.given = True
            return
        self.to_price = True
        for i, count in enumerate(tokens):
            self.tokens[i] += count


def _count_or_zero(value: Any) -> int:
    """A token count already recorded on a span, 0 when there is none."""
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _count(value: Any) -> int:
    """A token count as an int; anything else is refused (and reported by the guard)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise TypeError(f"token count {value!r}: expected a non-negative int")
    return value
