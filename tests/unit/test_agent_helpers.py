import asyncio

import pytest
from opentelemetry.trace import SpanKind, StatusCode


def test_agent_spans_nest_iteration_llm_tool_with_genai_attributes(recorded):
    t = recorded.handle
    with t.trace_agent_iteration(1):
        with t.trace_llm_call("gpt-4o", "openai"):
            t.record_llm_usage("gpt-4o", "openai", 120, 30, cost_usd=0.002)
            with t.trace_tool_call("search_flights", departure="YUL"):
                pass
    spans = {s.name: s for s in recorded.spans()}
    iteration, chat, tool = spans["agent.iteration"], spans["chat gpt-4o"], spans["execute_tool search_flights"]
    assert chat.parent.span_id == iteration.context.span_id
    assert tool.parent.span_id == chat.context.span_id
    assert chat.kind == SpanKind.CLIENT
    assert chat.attributes["gen_ai.operation.name"] == "chat"
    assert chat.attributes["gen_ai.provider.name"] == "openai"
    assert chat.attributes["gen_ai.request.model"] == "gpt-4o"
    assert chat.attributes["gen_ai.usage.input_tokens"] == 120
    assert chat.attributes["gen_ai.usage.output_tokens"] == 30
    assert tool.attributes["gen_ai.tool.name"] == "search_flights"
    assert tool.attributes["tool.departure"] == "YUL"


def test_agent_metrics_follow_the_seed_catalogue(recorded):
    t = recorded.handle
    with t.trace_agent_iteration(0):
        with t.trace_llm_call("m", "p"):
            t.record_llm_usage("m", "p", 10, 5, cost_usd=0.5)
        with t.trace_tool_call("lookup"):
            pass
    t.record_request("planning", 12.5, ok=True)
    t.record_error("Timeout", "tools")
    m = recorded.metrics()
    assert m["agent.llm.calls"] == [({"llm.model": "m", "llm.provider": "p"}, 1)]
    assert sorted((a["token_type"], v) for a, v in m["agent.llm.tokens"]) == [("completion", 5), ("prompt", 10)]
    assert m["agent.llm.estimated_cost"][0][1] == 0.5
    assert m["agent.tool.calls"] == [({"tool_name": "lookup", "success": "true"}, 1)]
    assert m["agent.iterations"][0][1] == 1
    assert m["agent.requests.total"] == [({"intent": "planning", "ok": "true"}, 1)]
    assert m["agent.request.duration"][0][1] == 1  # one recorded duration
    assert m["agent.errors.total"] == [({"error_type": "Timeout", "component": "tools"}, 1)]
    assert {"agent.llm.latency", "agent.tool.latency"} <= set(m)


def test_exception_in_tool_call_is_recorded_and_reraised(recorded):
    with pytest.raises(ValueError, match="boom"):
        with recorded.handle.trace_tool_call("flaky"):
            raise ValueError("boom")
    (span,) = recorded.spans()
    assert span.status.status_code == StatusCode.ERROR
    assert span.events[0].name == "exception"
    assert recorded.metrics()["agent.tool.calls"] == [({"tool_name": "flaky", "success": "false"}, 1)]


def test_span_works_as_context_manager_and_sync_and_async_decorator(recorded):
    t = recorded.handle

    @t.span("sync.op", kind="sync")
    def sync_op():
        return t.get_trace_context()["trace_id"]

    @t.span("async.op")
    async def async_op():
        return t.get_trace_context()["span_id"]

    with t.span("block", a=1):
        pass
    assert len(sync_op()) == 32
    assert len(asyncio.run(async_op())) == 16
    names = {s.name: s for s in recorded.spans()}
    assert set(names) == {"sync.op", "async.op", "block"}
    assert names["sync.op"].attributes["kind"] == "sync"


def test_trace_context_is_empty_outside_a_span(recorded):
    assert recorded.handle.get_trace_context() == {"trace_id": "", "span_id": ""}


# --- issue 10: histogram buckets that fit each instrument ---------------------------------


def histogram_points(recorded) -> dict:
    """{metric name: its one histogram data point}."""
    recorded.handle.force_flush(1)
    data = recorded._reader.get_metrics_data()
    return {metric.name: metric.data.data_points[0] for rm in data.resource_metrics for sm in rm.scope_metrics
            for metric in sm.metrics if type(metric.data).__name__ == "Histogram"}


def test_histograms_have_buckets_that_fit_their_values(recorded):
    from obslab.data import DataInstrumentor

    t = recorded.handle
    t._agent.llm_latency.record(45_000.0, {"llm.model": "slow", "llm.provider": "p"})  # an LLM call of 45 s
    t.record_request("planning", 95_000.0, ok=True)  # a request of 95 s
    DataInstrumentor(t.get_tracer("d"), t.get_meter("d")).size.record(50e6, {"operation": "read_csv"})  # 50 MB
    points = histogram_points(recorded)
    for name in ("agent.llm.latency", "agent.request.duration", "data.size"):
        point = points[name]
        assert point.bucket_counts[-1] == 0, f"{name}: {point.sum} landed in +Inf ({point.explicit_bounds})"
        assert sum(point.bucket_counts) == 1
