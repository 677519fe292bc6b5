"""Issue 13: the real ``openai`` and ``anthropic`` clients, instrumented by obslab's
``instrument=["openai", "anthropic"]``, against the local fake LLM server (no network): spans,
token and duration metrics, cost, errors, and no message content unless asked."""

from __future__ import annotations

import anthropic
import openai
import pytest
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from lab import fake_llm_module
from obslab import telemetry as telemetry_module
from obslab.config import Settings
from obslab.prices import PriceTable

fake_llm = fake_llm_module()
MESSAGES = [{"role": "user", "content": "Find me a flight from Montreal to Paris tomorrow"}]
INPUT_TOKENS = fake_llm.input_tokens({"messages": MESSAGES})


@pytest.fixture(scope="module")
def server():
    with fake_llm.FakeLLMServer() as running:
        yield running


@pytest.fixture
def llm(recording):
    """A handle with the OpenAI and Anthropic clients instrumented, exporting in memory."""
    return recording(Settings(service_name="llm-clients", instrument=("openai", "anthropic")))


def openai_client(server) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.openai_base_url, api_key="sk-fake", max_retries=0)


def anthropic_client(server) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=server.url, api_key="sk-ant-fake", max_retries=0)


def call(provider: str, server, model: str, stream: bool, **extra) -> str:
    """One chat call through the real client; returns the reply text."""
    if provider == "openai":
        client = openai_client(server)
        if not stream:
            return client.chat.completions.create(model=model, messages=MESSAGES, **extra).choices[0].message.content
        chunks = client.chat.completions.create(model=model, messages=MESSAGES, stream=True,
                                                stream_options={"include_usage": True}, **extra)
        return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    client = anthropic_client(server)
    if not stream:
        return client.messages.create(model=model, max_tokens=256, messages=MESSAGES, **extra).content[0].text
    events = client.messages.create(model=model, max_tokens=256, messages=MESSAGES, stream=True, **extra)
    return "".join(e.delta.text for e in events if e.type == "content_block_delta")


def metric_points(recorded, name: str) -> list:
    data = recorded._reader.get_metrics_data()
    return [p for rm in data.resource_metrics for sm in rm.scope_metrics for m in sm.metrics if m.name == name
            for p in m.data.data_points]


CALLS = [("openai", "gpt-4o-mini", False), ("openai", "gpt-4o-mini", True),
         ("anthropic", "claude-haiku-4-5", False), ("anthropic", "claude-haiku-4-5", True)]


@pytest.mark.parametrize("provider, model, stream", CALLS, ids=[f"{p}-{'stream' if s else 'plain'}" for p, _, s in CALLS])
def test_instrumented_client_call_makes_a_chat_span_with_tokens_duration_and_cost(llm, server, provider, model,
                                                                                  stream):
    reply = call(provider, server, model, stream)
    assert reply == fake_llm.reply_text(model)  # the application gets the reply untouched
    output_tokens = len(reply.split())
    # the Anthropic SDK traces its own calls too (span anthropic.messages.create, under ours)
    (span,) = [s for s in llm.spans() if s.name.startswith("chat ")]
    assert span.kind == SpanKind.CLIENT
    attributes = span.attributes
    assert attributes["gen_ai.operation.name"] == "chat"
    assert attributes["gen_ai.provider.name"] == provider
    assert attributes["gen_ai.request.model"] == attributes["gen_ai.response.model"] == model
    assert (attributes["gen_ai.usage.input_tokens"], attributes["gen_ai.usage.output_tokens"]) == \
        (INPUT_TOKENS, output_tokens)
    assert not [k for k in attributes if k in ("gen_ai.input.messages", "gen_ai.output.messages")]  # no content
    usage = {p.attributes["gen_ai.token.type"]: p.sum for p in metric_points(llm, "gen_ai.client.token.usage")}
    assert usage == {"input": INPUT_TOKENS, "output": output_tokens}
    (duration,) = metric_points(llm, "gen_ai.client.operation.duration")
    assert duration.attributes["gen_ai.request.model"] == model and duration.count == 1
    (cost,) = metric_points(llm, "obslab.gen_ai.client.cost")
    assert cost.attributes == {"gen_ai.provider.name": provider, "gen_ai.request.model": model}
    assert cost.value == pytest.approx(PriceTable().cost(provider, model, INPUT_TOKENS, output_tokens))


@pytest.mark.parametrize("provider, status, error", [("openai", 429, "openai.RateLimitError"),
                                                     ("anthropic", 400, "anthropic.BadRequestError")])
def test_an_error_response_reaches_the_app_and_is_recorded_by_error_type(llm, server, provider, status, error):
    model = "gpt-4o-mini" if provider == "openai" else "claude-haiku-4-5"
    with pytest.raises((openai.APIStatusError, anthropic.APIStatusError)) as raised:
        call(provider, server, model, stream=False, extra_headers={fake_llm.ERROR_HEADER: str(status)})
    assert raised.value.status_code == status
    (span,) = [s for s in llm.spans() if s.name.startswith("chat ")]
    assert span.status.status_code == StatusCode.ERROR and span.attributes["error.type"] == error
    (duration,) = metric_points(llm, "gen_ai.client.operation.duration")
    assert duration.attributes["error.type"] == error
    assert metric_points(llm, "obslab.gen_ai.client.cost") == []  # no tokens, no cost


def test_an_unpriced_model_is_counted_and_costs_nothing(llm, server):
    call("openai", server, "local-llama-3", stream=False)
    assert metric_points(llm, "obslab.gen_ai.client.cost") == []
    (unpriced,) = metric_points(llm, "obslab.gen_ai.client.unpriced_calls")
    assert unpriced.attributes["gen_ai.request.model"] == "local-llama-3" and unpriced.value == 1


def test_a_client_call_inside_the_llm_helper_adds_to_its_span_instead_of_a_second_one(llm, server):
    with llm.handle.trace_llm_call("gpt-4o-mini", "openai"):
        call("openai", server, "gpt-4o-mini", stream=False)
    (span,) = llm.spans()
    assert span.instrumentation_scope.name == "obslab.genai"
    assert span.attributes["gen_ai.usage.input_tokens"] == INPUT_TOKENS
    assert sum(p.count for p in metric_points(llm, "gen_ai.client.operation.duration")) == 1


def test_message_content_is_captured_when_asked_and_masked(monkeypatch, server, app_logging_at_info):
    monkeypatch.setenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "span_only")
    spans = InMemorySpanExporter()
    handle = telemetry_module.Telemetry(Settings(service_name="content", instrument=("openai",)),
                                        span_exporter=spans, log_exporter=InMemoryLogRecordExporter(),
                                        metric_readers=(InMemoryMetricReader(),))
    handle._install()
    try:
        openai_client(server).chat.completions.create(model="gpt-4o-mini", messages=[
            {"role": "user", "content": "Mail the ticket to jane.doe@example.com please"}])
        handle.force_flush(2)
    finally:
        handle.shutdown(1)
    (span,) = spans.get_finished_spans()
    assert "Mail the ticket to [REDACTED] please" in span.attributes["gen_ai.input.messages"]
    assert "Montreal to Paris" in span.attributes["gen_ai.output.messages"]


def test_instrumentation_is_removed_at_shutdown(server, app_logging_at_info):
    spans = InMemorySpanExporter()
    handle = telemetry_module.Telemetry(Settings(service_name="undo", instrument=("openai", "anthropic")),
                                        span_exporter=spans, log_exporter=InMemoryLogRecordExporter(),
                                        metric_readers=(InMemoryMetricReader(),))
    handle._install()
    handle.shutdown(1)
    call("openai", server, "gpt-4o-mini", stream=False)
    call("anthropic", server, "claude-haiku-4-5", stream=False)
    assert not [s for s in spans.get_finished_spans() if s.name.startswith("chat ")]


def test_message_content_events_are_masked_too(monkeypatch, server, app_logging_at_info):
    monkeypatch.setenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "event_only")
    spans, logs = InMemorySpanExporter(), InMemoryLogRecordExporter()
    handle = telemetry_module.Telemetry(Settings(service_name="events", instrument=("anthropic",)),
                                        span_exporter=spans, log_exporter=logs, metric_readers=(InMemoryMetricReader(),))
    handle._install()
    try:
        anthropic_client(server).messages.create(model="claude-haiku-4-5", max_tokens=64, messages=[
            {"role": "user", "content": "My key is Bearer abc.def-123, book CDG"}])
        handle.force_flush(2)
    finally:
        handle.shutdown(1)
    events = [r.log_record for r in logs.get_finished_logs() if r.log_record.attributes
              and "gen_ai.input.messages" in r.log_record.attributes]
    assert len(events) == 1
    text = str(events[0].attributes["gen_ai.input.messages"])
    assert "book CDG" in text and "abc.def-123" not in text and "Bearer [REDACTED]" in text
    (span,) = [s for s in spans.get_finished_spans() if s.name.startswith("chat ")]
    assert "gen_ai.input.messages" not in span.attributes  # event_only: not on the span
