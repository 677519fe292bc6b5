"""Issue 13 end to end: the travel agent with the real OpenAI and Anthropic clients (against the fake
LLM server, instrumented by obslab) -> the collector -> Tempo (or the ingest witness) and Prometheus."""

from __future__ import annotations

from conftest import eventually
from lab import fake_llm_module

fake_llm = fake_llm_module()
CLIENT_SCOPES = {"openai": "opentelemetry.instrumentation.genai.openai",
                 "anthropic": "opentelemetry.instrumentation.genai.anthropic"}


def test_instrumented_client_chat_spans_reach_the_trace_backend_with_their_token_usage(lab, workload):
    for request_no, provider, model in ((0, "openai", "gpt-4o-mini"), (1, "anthropic", "claude-haiku-4-5")):
        made = workload.requests[request_no]
        spans = eventually(lambda: lab.stored_spans(made["trace_id"]), timeout=120)
        chats = [(span["scope"], span) for span in spans if span["name"].startswith("chat ")]
        client = [span for scope, span in chats if scope == CLIENT_SCOPES[provider]]
        assert len(client) == 1, [(scope, span["name"]) for scope, span in chats]
        span, attributes = client[0], client[0]["attributes"]
        assert span["name"] == f"chat {model}" and span["kind"] in ("SPAN_KIND_CLIENT", 3)
        assert attributes["gen_ai.provider.name"] == provider and attributes["gen_ai.response.model"] == model
        question = f"Write the {made['intent']} answer for request {request_no}: YUL to CDG"
        assert int(attributes["gen_ai.usage.input_tokens"]) == fake_llm.input_tokens(
            {"messages": [{"content": question}]})
        assert int(attributes["gen_ai.usage.output_tokens"]) == len(fake_llm.reply_text(model).split())
        helper = [span for scope, span in chats if scope == "obslab.genai"]
        assert len(helper) == 1 and "gen_ai.usage.input_tokens" in helper[0]["attributes"]  # the helper's call too


def test_genai_token_usage_duration_and_cost_series_are_in_prometheus(lab, workload):
    selector = f'service_name="{workload.agent}"'
    usage = eventually(lambda: lab.promql(f"sum by (gen_ai_provider_name, gen_ai_token_type) "
                                          f"(gen_ai_client_token_usage_bucket{{{selector}, le=\"+Inf\"}})"),
                       timeout=120)
    assert {(s["metric"]["gen_ai_provider_name"], s["metric"]["gen_ai_token_type"]) for s in usage} == {
        (provider, kind) for provider in ("openai", "anthropic") for kind in ("input", "output")}
    errors = eventually(lambda: lab.promql(f'sum by (error_type) (gen_ai_client_operation_duration_seconds_count'
                                           f'{{{selector}, error_type!=""}})'))
    assert {s["metric"]["error_type"] for s in errors} == {"openai.RateLimitError", "anthropic.BadRequestError"}
    cost = eventually(lambda: lab.promql(f"sum by (gen_ai_request_model) (obslab_gen_ai_client_cost_total{{{selector}}})"))
    assert {"gpt-4o-mini", "claude-haiku-4-5", "claude-sonnet-4"} <= {s["metric"]["gen_ai_request_model"] for s in cost}
    unpriced = eventually(lambda: lab.promql(f"obslab_gen_ai_client_unpriced_calls_total{{{selector}}}"))
    assert {s["metric"]["gen_ai_request_model"] for s in unpriced} == {"local-llama-3"}
