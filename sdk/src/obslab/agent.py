"""Agent helpers from the travel-agent seed: spans that follow the OpenTelemetry GenAI
conventions, and the seed's metric catalogue.

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

Latency histograms carry bucket boundaries that fit them (OpenTelemetry's advisory parameter): an
LLM call or an agent request can take minutes, a tool call milliseconds. Recording never raises
into the caller: a bad value (a token count given as text, say) is reported and skipped.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from typing import Any, Iterator

from opentelemetry import trace
from opentelemetry.metrics import Meter
from opentelemetry.trace import SpanKind, Tracer

from obslab._diagnostics import guarded

# Bucket boundaries, milliseconds.
LLM_LATENCY_MS = (100, 250, 500, 1000, 2000, 5000, 10000, 20000, 30000, 60000, 120000, 300000)
TOOL_LATENCY_MS = (1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000)
REQUEST_DURATION_MS = (10, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 20000, 30000, 60000, 120000, 300000)


class AgentInstruments:
    """The agent metric catalogue on one meter, and span helpers on one tracer."""

    def __init__(self, tracer: Tracer, meter: Meter) -> None:
        self._tracer = tracer
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
        """Span ``agent.iteration`` for one turn of the agent loop; counts ``agent.iterations``."""
        self.iterations.add(1)
        with self._tracer.start_as_current_span(
            "agent.iteration", attributes={"agent.iteration": iteration, "gen_ai.operation.name": "invoke_agent"}
        ) as span:
            yield span

    @contextmanager
    def trace_llm_call(self, model: str, provider: str) -> Iterator[trace.Span]:
        """CLIENT span ``chat {model}``; counts the call and records its latency in ms."""
        labels = {"llm.model": model, "llm.provider": provider}
        started = time.perf_counter()
        try:
            with self._tracer.start_as_current_span(
                f"chat {model}",
                kind=SpanKind.CLIENT,
                attributes={"gen_ai.operation.name": "chat", "gen_ai.provider.name": provider,
                            "gen_ai.request.model": model,
                            # the remote peer, so that Tempo's service graph draws an edge to it
                            "peer.service": provider},
            ) as span:
                yield span
        finally:
            self._record_call(self.llm_calls, self.llm_latency, started, labels, labels)

    @contextmanager
    def trace_tool_call(self, name: str, **attributes: Any) -> Iterator[trace.Span]:
        """Span ``execute_tool {name}``; counts the call by success and records its latency."""
        started, success = time.perf_counter(), "false"
        span_attributes = {"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": name,
                           **{f"tool.{k}": v for k, v in attributes.items()}}
        try:
            with self._tracer.start_as_current_span(f"execute_tool {name}", attributes=span_attributes) as span:
                yield span
            success = "true"
        finally:
            self._record_call(self.tool_calls, self.tool_latency, started, {"tool_name": name, "success": success},
                              {"tool_name": name})

    @staticmethod
    @guarded("agent metrics")
    def _record_call(calls: Any, latency: Any, started: float, call_labels: dict[str, Any],
                     latency_labels: dict[str, Any]) -> None:
        calls.add(1, call_labels)
        latency.record((time.perf_counter() - started) * 1000, latency_labels)

    @guarded("record_llm_usage")
    def record_llm_usage(self, model: str, provider: str, prompt_tokens: int, completion_tokens: int,
                         cost_usd: float | None = None) -> None:
        """Token counts (and cost) as metrics, and as GenAI usage attributes on the current span."""
        labels = {"llm.model": model, "llm.provider": provider}
        self.llm_tokens.add(prompt_tokens, {**labels, "token_type": "prompt"})
        self.llm_tokens.add(completion_tokens, {**labels, "token_type": "completion"})
        if cost_usd is not None:
            self.llm_cost.add(cost_usd, labels)
        span = trace.get_current_span()
        if span.is_recording():
            span.set_attributes({"gen_ai.usage.input_tokens": prompt_tokens,
                                 "gen_ai.usage.output_tokens": completion_tokens})

    @guarded("record_request")
    def record_request(self, intent: str, duration_ms: float, ok: bool) -> None:
        """One handled request: ``agent.requests.total`` and ``agent.request.duration``."""
        self.requests.add(1, {"intent": intent, "ok": str(ok).lower()})
        self.request_duration.record(duration_ms, {"intent": intent})

    @guarded("record_error")
    def record_error(self, error_type: str, component: str) -> None:
        """One error, by type and component."""
        self.errors.add(1, {"error_type": error_type, "component": component})
