"""Issue 20, part 2: usage by the GenAI conventions. Cache reads, cache writes and reasoning tokens on
spans and in ``obslab.gen_ai.client.token.usage`` (issue 26: not as token types of the conventions'
``gen_ai.client.token.usage``, whose input and output include them), priced at their own
rates; time to first chunk and time per output chunk of streamed calls; ``gen_ai.conversation.id``.
The real ``openai`` and ``anthropic`` clients against the local fake server (no network)."""

from __future__ import annotations

import anthropic
import openai
import pytest

from lab import fake_llm_module
from obslab.config import Settings
from obslab.prices import PriceTable

fake_llm = fake_llm_module()
SYSTEM = "You are a travel agent. Answer with flights, trains and hotels, cheapest first, in one sentence."
PROMPT = fake_llm._words(SYSTEM)
WHEN = None  # prices of today


@pytest.fixture
def server():
    with fake_llm.FakeLLMServer() as running:  # a fresh prompt cache for each test
        yield running


@pytest.fixture
def llm(recording):
    return recording(Settings(service_name="llm-usage", instrument=("openai", "anthropic")))


def points(recorded, name: str) -> list:
    recorded.handle.force_flush(2)
    data = recorded._reader.get_metrics_data()
    return [p for rm in data.resource_metrics for sm in rm.scope_metrics for m in sm.metrics if m.name == name
            for p in m.data.data_points]


def token_sums(recorded, metric: str = "gen_ai.client.token.usage", kind_key: str = "gen_ai.token.type") -> dict:
    sums: dict = {}
    for point in points(recorded, metric):
        kind = point.attributes[kind_key]
        sums[kind] = sums.get(kind, 0) + point.sum
    return sums


def detail_sums(recorded) -> dict:
    """Cache and reasoning tokens by kind, from obslab's own metric."""
    return token_sums(recorded, "obslab.gen_ai.client.token.usage", "obslab.gen_ai.token.type")


def chat_spans(recorded) -> list:
    return [s for s in recorded.spans() if s.name.startswith("chat ")]


def cost(recorded) -> float:
    return sum(p.value for p in points(recorded, "obslab.gen_ai.client.cost"))


def openai_chat(server, model: str, question: str, stream: bool = False) -> str:
    client = openai.OpenAI(base_url=server.openai_base_url, api_key="sk-fake", max_retries=0)
    messages = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": question}]
    if not stream:
        return client.chat.completions.create(model=model, messages=messages).choices[0].message.content
    chunks = client.chat.completions.create(model=model, messages=messages, stream=True,
                                            stream_options={"include_usage": True})
    return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)


def anthropic_chat(server, question: str, stream: bool = False) -> str:
    client = anthropic.Anthropic(base_url=server.url, api_key="sk-ant-fake", max_retries=0)
    system = [{"type": "text", "text": SYSTEM, "cache_control": {"type": "ephemeral"}}]
    arguments = dict(model="claude-sonnet-4-5", max_tokens=256, system=system,
                     messages=[{"role": "user", "content": question}])
    if not stream:
        return client.messages.create(**arguments).content[0].text
    return "".join(e.delta.text for e in client.messages.create(stream=True, **arguments)
                   if e.type == "content_block_delta")


def test_openai_cached_prompt_tokens_are_on_the_span_in_the_token_metric_and_priced_at_the_cache_rate(llm, server):
    openai_chat(server, "gpt-4o-mini", "Montreal to Paris?")
    reply = openai_chat(server, "gpt-4o-mini", "And to Lyon?")  # same system prompt: read from the cache
    first, second = chat_spans(llm)
    assert "gen_ai.usage.cache_read.input_tokens" not in first.attributes
    assert second.attributes["gen_ai.usage.cache_read.input_tokens"] == PROMPT
    inputs = [s.attributes["gen_ai.usage.input_tokens"] for s in (first, second)]
    outputs = [s.attributes["gen_ai.usage.output_tokens"] for s in (first, second)]
    assert token_sums(llm) == {"input": sum(inputs), "output": sum(outputs)}
    assert detail_sums(llm) == {"cache_read": PROMPT}
    table = PriceTable()
    expected = table.cost("openai", "gpt-4o-mini", inputs[0], outputs[0]) + table.cost(
        "openai", "gpt-4o-mini", inputs[1], outputs[1], cache_read_tokens=PROMPT)
    assert cost(llm) == pytest.approx(expected)
    assert expected < table.cost("openai", "gpt-4o-mini", sum(inputs), sum(outputs))  # the cache saved some
    (saved,) = points(llm, "obslab.gen_ai.client.cache_savings")
    price = table.price("openai", "gpt-4o-mini")
    assert saved.value > 0
    assert saved.value == pytest.approx(PROMPT * (price.input_per_million - price.cache_read_per_million) / 1e6)
    assert dict(saved.attributes) == {"gen_ai.provider.name": "openai", "gen_ai.request.model": "gpt-4o-mini"}
    assert reply == fake_llm.reply_text("gpt-4o-mini")


def test_openai_reasoning_tokens_are_on_the_span_and_in_the_token_metric(llm, server):
    reply = openai_chat(server, "o4-mini", "Cheapest way to Paris?")
    (span,) = chat_spans(llm)
    assert span.attributes["gen_ai.usage.reasoning.output_tokens"] == fake_llm.REASONING_TOKENS
    assert span.attributes["gen_ai.usage.output_tokens"] == len(reply.split()) + fake_llm.REASONING_TOKENS
    assert detail_sums(llm)["reasoning"] == fake_llm.REASONING_TOKENS
    assert set(token_sums(llm)) == {"input", "output"}
    (point,) = [p for p in points(llm, "obslab.gen_ai.client.token.usage")
                if p.attributes["obslab.gen_ai.token.type"] == "reasoning"]
    assert point.attributes["gen_ai.request.model"] == "o4-mini" and point.attributes["gen_ai.provider.name"] == "openai"


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
def test_anthropic_cache_writes_then_reads_by_the_conventions_names(llm, server, stream):
    anthropic_chat(server, "Montreal to Paris?", stream)
    anthropic_chat(server, "And to Lyon?", stream)
    write, read = chat_spans(llm)
    # the conventions' name, and opentelemetry-util-genai's newer one for the same count
    assert write.attributes["gen_ai.usage.cache_creation.input_tokens"] == PROMPT
    assert write.attributes["gen_ai.usage.cache_write.input_tokens"] == PROMPT
    assert "gen_ai.usage.cache_read.input_tokens" not in write.attributes
    assert read.attributes["gen_ai.usage.cache_read.input_tokens"] == PROMPT
    assert "gen_ai.usage.cache_creation.input_tokens" not in read.attributes
    question = fake_llm._words("Montreal to Paris?")
    assert write.attributes["gen_ai.usage.input_tokens"] == PROMPT + question  # cache tokens included
    sums = detail_sums(llm)
    assert (sums["cache_creation"], sums["cache_read"]) == (PROMPT, PROMPT)
    table = PriceTable()
    outputs = [s.attributes["gen_ai.usage.output_tokens"] for s in (write, read)]
    inputs = [s.attributes["gen_ai.usage.input_tokens"] for s in (write, read)]
    expected = table.cost("anthropic", "claude-sonnet-4-5", inputs[0], outputs[0], cache_write_tokens=PROMPT) + \
        table.cost("anthropic", "claude-sonnet-4-5", inputs[1], outputs[1], cache_read_tokens=PROMPT)
    assert cost(llm) == pytest.approx(expected)


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_a_streamed_call_records_time_to_first_chunk_and_time_per_output_chunk(llm, server, provider):
    if provider == "openai":
        reply = openai_chat(server, "gpt-4o-mini", "Montreal to Paris?", stream=True)
    else:
        reply = anthropic_chat(server, "Montreal to Paris?", stream=True)
    assert reply.startswith("Fake ")
    data = llm._reader.get_metrics_data()  # first: each collection empties the exemplar reservoirs
    (exemplar,) = [e for rm in data.resource_metrics for sm in rm.scope_metrics for m in sm.metrics
                   if m.name == "gen_ai.client.operation.time_to_first_chunk" for p in m.data.data_points
                   for e in p.exemplars]
    (span,) = chat_spans(llm)
    assert exemplar.span_id == span.context.span_id  # the slow first chunk opens its call
    (first,) = points(llm, "gen_ai.client.operation.time_to_first_chunk")
    assert first.count == 1 and first.attributes["gen_ai.provider.name"] == provider
    (per_chunk,) = points(llm, "gen_ai.client.operation.time_per_output_chunk")
    assert per_chunk.count >= len(reply.split()) - 1


def test_a_call_that_is_not_streamed_records_no_chunk_timing(llm, server):
    openai_chat(server, "gpt-4o-mini", "Montreal to Paris?")
    assert points(llm, "gen_ai.client.operation.time_to_first_chunk") == []


def test_the_helpers_record_cache_and_reasoning_tokens_the_same_way(recorded):
    t = recorded.handle
    with t.trace_llm_call("claude-sonnet-4-5", "anthropic"):
        t.record_llm_usage("claude-sonnet-4-5", "anthropic", 10_000, 500, cache_read_tokens=6_000,
                           cache_creation_tokens=3_000, reasoning_tokens=200)
    (span,) = recorded.spans()
    assert {k: span.attributes.get(k) for k in (
        "gen_ai.usage.input_tokens", "gen_ai.usage.output_tokens", "gen_ai.usage.cache_read.input_tokens",
        "gen_ai.usage.cache_creation.input_tokens", "gen_ai.usage.reasoning.output_tokens")} == {
        "gen_ai.usage.input_tokens": 10_000, "gen_ai.usage.output_tokens": 500,
        "gen_ai.usage.cache_read.input_tokens": 6_000, "gen_ai.usage.cache_creation.input_tokens": 3_000,
        "gen_ai.usage.reasoning.output_tokens": 200}
    assert token_sums(recorded) == {"input": 10_000, "output": 500}
    assert detail_sums(recorded) == {"cache_read": 6_000, "cache_creation": 3_000, "reasoning": 200}
    expected = PriceTable().cost("anthropic", "claude-sonnet-4-5", 10_000, 500, cache_read_tokens=6_000,
                                 cache_write_tokens=3_000, reasoning_tokens=200)
    assert cost(recorded) == pytest.approx(expected)
    catalogue = sum(p.value for p in points(recorded, "agent.llm.estimated_cost"))
    assert catalogue == pytest.approx(expected)


def test_usage_outside_an_llm_call_goes_on_the_current_span_with_both_cache_write_names(recorded):
    t = recorded.handle
    with t.span("batch"):
        t.record_llm_usage("gpt-4o", "openai", 100, 10, cache_read_tokens=40, cache_creation_tokens=20)
    (span,) = recorded.spans()
    assert span.attributes["gen_ai.usage.cache_read.input_tokens"] == 40
    assert span.attributes["gen_ai.usage.cache_creation.input_tokens"] == 20


def test_the_conversation_id_goes_on_the_agent_span_and_the_calls_under_it(llm, server):
    t = llm.handle
    with t.trace_agent("travel-planner", conversation_id="conv-42"):
        with t.trace_llm_call("gpt-4o", "openai"):
            t.record_llm_usage("gpt-4o", "openai", 10, 5)
        openai_chat(server, "gpt-4o-mini", "Montreal to Paris?")
    with t.trace_agent("travel-planner"):
        pass
    spans = llm.spans()
    conversation = sorted((s.name, s.attributes.get("gen_ai.conversation.id", "")) for s in spans)
    assert conversation == [("chat gpt-4o", "conv-42"), ("chat gpt-4o-mini", "conv-42"),
                            ("invoke_agent travel-planner", ""), ("invoke_agent travel-planner", "conv-42")]
