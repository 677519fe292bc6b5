"""Issue 19, defect 9: agent iterations are not counted as agent invocations, and an LLM call whose
usage is recorded in several parts gives one answer everywhere (span, token metrics, cost metrics)."""

from __future__ import annotations

import pytest


def sums(recorded, name: str) -> dict:
    """{attributes of interest: sum} of metric ``name``."""
    recorded.handle.force_flush(1)
    data = recorded._reader.get_metrics_data()
    found = {}
    for rm in data.resource_metrics:
        for sm in rm.scope_metrics:
            for metric in sm.metrics:
                if metric.name == name:
                    for point in metric.data.data_points:
                        key = point.attributes.get("gen_ai.token.type") or point.attributes.get("token_type")
                        found[key] = getattr(point, "sum", None) if hasattr(point, "sum") else point.value
    return found


def test_an_agent_iteration_is_not_an_agent_invocation(recorded):
    with recorded.handle.trace_agent_iteration(3):
        pass
    (iteration,) = recorded.spans()
    assert iteration.attributes["agent.iteration"] == 3
    assert iteration.attributes.get("gen_ai.operation.name") != "invoke_agent" or "gen_ai.agent.name" in \
        iteration.attributes


def test_usage_recorded_in_parts_adds_up_the_same_on_the_span_and_every_metric(recorded):
    t = recorded.handle
    with t.trace_llm_call("gpt-4o", "openai"):
        t.record_llm_usage("gpt-4o", "openai", 1000, 100)
        t.record_llm_usage("gpt-4o", "openai", 500, 50)
    (chat,) = recorded.spans()
    assert (chat.attributes["gen_ai.usage.input_tokens"], chat.attributes["gen_ai.usage.output_tokens"]) == (1500, 150)
    assert sums(recorded, "agent.llm.tokens") == {"prompt": 1500, "completion": 150}
    assert sums(recorded, "gen_ai.client.token.usage") == {"input": 1500, "output": 150}
    catalogue, conventions = sums(recorded, "agent.llm.estimated_cost"), sums(recorded, "obslab.gen_ai.client.cost")
    assert list(catalogue.values()) == pytest.approx(list(conventions.values()))
    assert list(catalogue.values())[0] > 0
