"""The travel agent with the real OpenAI and Anthropic clients (against the fake LLM server,
instrumented by obslab: cached system prompt, streamed replies, scored answers) -> the collector ->
Tempo (or the ingest witness), Loki (or the witness) and Prometheus."""

from __future__ import annotations

from conftest import eventually, settle
from lab import fake_llm_module, repo_module

fake_llm = fake_llm_module()
travel_agent = repo_module("travel_agent_main", "examples/travel_agent/main.py")
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
        # Cached tokens included, as the conventions count them: the system prompt and the question.
        assert int(attributes["gen_ai.usage.input_tokens"]) == fake_llm.input_tokens(
            {"system": travel_agent.SYSTEM_PROMPT, "messages": [{"content": question}]})
        assert int(attributes["gen_ai.usage.output_tokens"]) == len(fake_llm.reply_text(model).split())
        helper = [span for scope, span in chats if scope == "obslab.genai"]
        assert len(helper) == 1 and "gen_ai.usage.input_tokens" in helper[0]["attributes"]  # the helper's call too


def test_genai_token_usage_duration_and_cost_series_are_in_prometheus(lab, workload):
    selector = f'service_name="{workload.agent}"'
    usage = eventually(lambda: lab.promql(f"sum by (gen_ai_provider_name, gen_ai_token_type) "
                                          f"(gen_ai_client_token_usage_bucket{{{selector}, le=\"+Inf\"}})"),
                       timeout=120)
    # The conventions' token types only: the cache and reasoning tokens are part of them (issue 26).
    assert {(s["metric"]["gen_ai_provider_name"], s["metric"]["gen_ai_token_type"]) for s in usage} == {
        (provider, kind) for provider in ("openai", "anthropic") for kind in ("input", "output")}
    errors = eventually(lambda: lab.promql(f'sum by (error_type) (gen_ai_client_operation_duration_seconds_count'
                                           f'{{{selector}, error_type!=""}})'))
    assert {s["metric"]["error_type"] for s in errors} == {"openai.RateLimitError", "anthropic.BadRequestError"}
    cost = eventually(lambda: lab.promql(f"sum by (gen_ai_request_model) (obslab_gen_ai_client_cost_total{{{selector}}})"))
    assert {"gpt-4o-mini", "claude-haiku-4-5", "claude-sonnet-4"} <= {s["metric"]["gen_ai_request_model"] for s in cost}
    unpriced = eventually(lambda: lab.promql(f"obslab_gen_ai_client_unpriced_calls_total{{{selector}}}"))
    assert {s["metric"]["gen_ai_request_model"] for s in unpriced} == {"local-llama-3"}


def _answered(workload) -> int:
    """LLM calls of the workload that got an answer (the fake server refuses every fifth)."""
    return sum(1 for request_no in range(len(workload.requests)) if request_no % 5 != 4)


def test_cache_tokens_first_chunk_times_savings_and_scores_reach_prometheus(lab, workload):
    selector = f'service_name="{workload.agent}"'
    kinds = eventually(lambda: lab.promql(f"sum by (gen_ai_provider_name, obslab_gen_ai_token_type) "
                                          f"(obslab_gen_ai_client_token_usage_count{{{selector}}})"), timeout=120)
    found = {(s["metric"]["gen_ai_provider_name"], s["metric"]["obslab_gen_ai_token_type"]) for s in kinds}
    assert {("openai", "cache_read"), ("anthropic", "cache_read"), ("anthropic", "cache_creation")} <= found, found
    assert lab.value(f"sum(obslab_gen_ai_client_cache_savings_total{{{selector}}})") > 0
    streamed = lab.value(f"sum(gen_ai_client_operation_time_to_first_chunk_seconds_count{{{selector}}})")
    assert streamed > 0  # every third reply is streamed
    scores = f'sum(obslab_gen_ai_evaluation_score_count{{{selector}, gen_ai_evaluation_name="answer_relevance"}})'
    assert settle(lambda: lab.value(scores), lambda value: value == _answered(workload), timeout=60) == \
        _answered(workload)


def test_evaluation_events_are_among_the_exported_log_records_under_their_spans(lab, workload):
    if lab.witness:
        def events() -> list[dict]:
            return [r for r in lab.witness.logs(workload.agent) if r.get("eventName") == "gen_ai.evaluation.result"]
    else:
        def events() -> list[dict]:
            streams = lab.loki_query(f'{{service_name="{workload.agent}"}} | gen_ai_evaluation_name="answer_relevance"')
            return [{"traceId": stream["stream"].get("trace_id"), "spanId": stream["stream"].get("span_id"),
                     "attributes": {"gen_ai.evaluation.name": stream["stream"].get("gen_ai_evaluation_name")}}
                    for stream in streams for _ in stream["values"]]
    found = settle(events, lambda found: len(found) >= _answered(workload), timeout=60)
    assert len(found) == _answered(workload)
    assert all(event["attributes"]["gen_ai.evaluation.name"] == "answer_relevance" for event in found)
    traced = {made["trace_id"] for made in workload.requests}
    assert all(event["traceId"] in traced and len(event["spanId"]) == 16 for event in found)
