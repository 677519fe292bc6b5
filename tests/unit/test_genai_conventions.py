"""Issue 13: the agent helpers speak the OpenTelemetry GenAI conventions (through
opentelemetry-util-genai), price their calls, and keep message content out unless asked."""

from __future__ import annotations

import pytest
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from obslab import telemetry as telemetry_module
from obslab.config import Settings, load_settings
from obslab.genai import content_capture_mode
from obslab.prices import Price, PriceTable, parse_prices
from obslab.telemetry import Telemetry, init_telemetry

# The bucket boundaries the GenAI conventions recommend (metrics spec, "explicit bucket boundaries").
DURATION_BUCKETS = (0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92)
TOKEN_BUCKETS = (1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864)


def points(recorded, name: str) -> list:
    """The data points of metric ``name`` (after a flush)."""
    recorded.handle.force_flush(1)
    data = recorded._reader.get_metrics_data()
    return [point for rm in data.resource_metrics for sm in rm.scope_metrics for metric in sm.metrics
            if metric.name == name for point in metric.data.data_points]


def metric(recorded, name: str):
    data = recorded._reader.get_metrics_data()
    return next(m for rm in data.resource_metrics for sm in rm.scope_metrics for m in sm.metrics if m.name == name)


def test_llm_call_helper_makes_a_client_chat_span_with_genai_attributes(recorded):
    t = recorded.handle
    with t.trace_llm_call("gpt-4o-mini", "openai"):
        t.record_llm_usage("gpt-4o-mini", "openai", 120, 30)
    (chat,) = recorded.spans()
    assert chat.name == "chat gpt-4o-mini" and chat.kind == SpanKind.CLIENT
    assert {k: chat.attributes[k] for k in ("gen_ai.operation.name", "gen_ai.provider.name", "gen_ai.request.model",
                                            "gen_ai.usage.input_tokens", "gen_ai.usage.output_tokens")} == {
        "gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai", "gen_ai.request.model": "gpt-4o-mini",
        "gen_ai.usage.input_tokens": 120, "gen_ai.usage.output_tokens": 30}
    assert chat.attributes["peer.service"] == "openai"
    assert chat.instrumentation_scope.name == "obslab.genai"


def test_duration_and_token_usage_histograms_follow_the_conventions(recorded):
    t = recorded.handle
    with t.trace_llm_call("claude-sonnet-4", "anthropic"):
        t.record_llm_usage("claude-sonnet-4", "anthropic", 812, 120)
    duration, usage = (metric(recorded, n) for n in ("gen_ai.client.operation.duration", "gen_ai.client.token.usage"))
    assert (duration.unit, usage.unit) == ("s", "{token}")
    (point,) = duration.data.data_points
    assert tuple(point.explicit_bounds) == DURATION_BUCKETS
    assert point.attributes == {"gen_ai.operation.name": "chat", "gen_ai.provider.name": "anthropic",
                                "gen_ai.request.model": "claude-sonnet-4"}
    tokens = {p.attributes["gen_ai.token.type"]: (p.sum, tuple(p.explicit_bounds)) for p in usage.data.data_points}
    assert tokens == {"input": (812, TOKEN_BUCKETS), "output": (120, TOKEN_BUCKETS)}


def test_llm_latency_is_recorded_while_the_chat_span_is_current_so_exemplars_open_it(recorded):
    t = recorded.handle
    with t.trace_agent_iteration(0):
        with t.trace_llm_call("gpt-4o", "openai") as chat:
            chat_id = chat.get_span_context().span_id
    data = recorded._reader.get_metrics_data()  # one collection: each one empties the exemplar reservoirs
    found = {m.name: m.data.data_points for rm in data.resource_metrics for sm in rm.scope_metrics for m in sm.metrics}
    for name in ("gen_ai.client.operation.duration", "agent.llm.latency", "agent.llm.calls"):
        (point,) = found[name]
        assert [e.span_id for e in point.exemplars] == [chat_id], name


def test_tool_and_agent_helpers_make_execute_tool_and_invoke_agent_spans(recorded):
    t = recorded.handle
    with t.trace_agent("travel-planner", model="gpt-4o"):
        with t.trace_tool_call("search_flights", departure="YUL"):
            pass
    spans = {s.name: s for s in recorded.spans()}
    agent, tool = spans["invoke_agent travel-planner"], spans["execute_tool search_flights"]
    assert tool.parent.span_id == agent.context.span_id
    assert agent.attributes["gen_ai.operation.name"] == "invoke_agent"
    assert agent.attributes["gen_ai.agent.name"] == "travel-planner"
    assert tool.attributes["gen_ai.operation.name"] == "execute_tool"
    assert tool.attributes["gen_ai.tool.name"] == "search_flights" and tool.attributes["tool.departure"] == "YUL"


def test_failed_llm_call_has_error_type_on_its_span_and_duration(recorded):
    class RateLimited(Exception):
        pass

    with pytest.raises(RateLimited):
        with recorded.handle.trace_llm_call("gpt-4o", "openai"):
            raise RateLimited("slow down")
    (chat,) = recorded.spans()
    assert chat.status.status_code == StatusCode.ERROR
    error_type = chat.attributes["error.type"]
    assert error_type.endswith("RateLimited")
    (point,) = points(recorded, "gen_ai.client.operation.duration")
    assert point.attributes["error.type"] == error_type
    assert recorded.metrics()["agent.llm.calls"][0][1] == 1


# --- cost ---------------------------------------------------------------------------------


def test_cost_of_a_priced_call_is_recorded_by_provider_and_model(recorded):
    t = recorded.handle
    with t.trace_llm_call("gpt-4o-mini", "openai"):
        t.record_llm_usage("gpt-4o-mini", "openai", 1_000_000, 2_000_000)
    (point,) = points(recorded, "obslab.gen_ai.client.cost")
    assert point.attributes == {"gen_ai.provider.name": "openai", "gen_ai.request.model": "gpt-4o-mini"}
    assert point.value == pytest.approx(0.15 + 2 * 0.60)
    # the catalogue's counter gets the table's figure when no cost is given
    assert recorded.metrics()["agent.llm.estimated_cost"][0][1] == pytest.approx(1.35)


def test_unknown_model_costs_nothing_and_is_counted_as_unpriced(recorded):
    t = recorded.handle
    with t.trace_llm_call("in-house-llm", "vllm"):
        t.record_llm_usage("in-house-llm", "vllm", 500, 50)
    assert points(recorded, "obslab.gen_ai.client.cost") == []
    (point,) = points(recorded, "obslab.gen_ai.client.unpriced_calls")
    assert (point.attributes["gen_ai.request.model"], point.value) == ("in-house-llm", 1)
    assert "agent.llm.estimated_cost" not in recorded.metrics()


def test_a_dated_model_name_is_priced_as_its_model():
    table = PriceTable()
    assert table.price("anthropic", "claude-sonnet-4-20250514") == Price(3.0, 15.0, 0.3, 3.75)
    assert table.price("openai", "gpt-4o-mini-2024-07-18") == Price(0.15, 0.60, 0.075)
    assert table.cost("openai", "gpt-5-preview", 10, 10) is None


def test_prices_from_yaml_and_the_environment_override_the_defaults(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = tmp_path / "telemetry.yaml"
    config.write_text("telemetry:\n  prices:\n    openai:\n      gpt-4o-mini: {input: 1, output: 2}\n"
                      "    vllm:\n      in-house-llm: {input: 0.5, output: 0.5}\n")
    settings = load_settings({"config_file": str(config)}, environ={})
    table = PriceTable(settings.prices)
    assert table.price("openai", "gpt-4o-mini") == Price(1, 2)
    assert table.price("vllm", "in-house-llm") == Price(0.5, 0.5)
    assert table.price("openai", "gpt-4o") == Price(2.5, 10, 1.25)  # genai-prices' stay
    settings = load_settings({"config_file": str(config)},
                             environ={"OBSLAB_PRICES": "openai/gpt-4o-mini=0.2:0.8, anthropic/claude-x=1:5"})
    assert settings.prices == {("openai", "gpt-4o-mini"): Price(0.2, 0.8), ("anthropic", "claude-x"): Price(1, 5)}


@pytest.mark.parametrize("value", ["openai/gpt-4o=cheap:1", "gpt-4o=1:2", "openai/gpt-4o=-1:2"])
def test_a_bad_price_is_refused_naming_the_setting_and_the_value(value):
    with pytest.raises(ValueError, match=r"OBSLAB_PRICES") as error:
        load_settings({}, environ={"OBSLAB_PRICES": value})
    assert repr(value) in str(error.value)


def test_a_bad_price_in_yaml_names_the_model():
    with pytest.raises(ValueError, match=r"prices\.openai\.gpt-4o="):
        parse_prices("prices", {"openai": {"gpt-4o": {"input": 1}}}, "YAML file x")


# --- message content ------------------------------------------------------------------------


@pytest.fixture
def content_handle(monkeypatch):
    """A handle (privacy off) with message content capture on spans, exporting in memory."""
    monkeypatch.setenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "span_only")
    spans = InMemorySpanExporter()
    handle = Telemetry(Settings(service_name="content"), span_exporter=spans, log_exporter=InMemoryLogRecordExporter(),
                       metric_readers=(InMemoryMetricReader(),))
    yield handle, spans
    handle.shutdown(1)


def test_captured_message_content_is_masked_before_export_even_with_privacy_off(content_handle):
    from opentelemetry.util.genai.types import InputMessage, Text

    handle, exporter = content_handle
    invocation = handle._agent._genai.inference("openai", request_model="gpt-4o")
    invocation.input_messages = [InputMessage(role="user", parts=[Text(
        content="book for jane.doe@example.com, card 4111 1111 1111 1111, password=hunter2")])]
    invocation.stop()
    handle.force_flush(2)
    (span,) = exporter.get_finished_spans()
    text = span.attributes["gen_ai.input.messages"]
    assert "book for" in text and "[REDACTED]" in text
    assert "jane.doe@example.com" not in text and "4111 1111" not in text and "hunter2" not in text


def test_content_capture_is_off_unless_the_variable_asks_for_it():
    assert content_capture_mode({}) == "no_content"
    assert content_capture_mode({"OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": "SPAN_AND_EVENT"}) == \
        "span_and_event"


def test_a_capture_mode_the_instrumentations_would_ignore_is_warned_about_and_captures_nothing(fresh, monkeypatch,
                                                                                               caplog):
    monkeypatch.setenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "yes please")
    handle = init_telemetry(service_name="x", console_only=True)
    assert handle.enabled and content_capture_mode() == "no_content"
    assert any("yes please" in record.getMessage() and record.levelname == "WARNING" for record in caplog.records)


def test_a_client_librarys_own_span_of_the_same_call_is_not_priced_again(recorded):
    usage = {"gen_ai.operation.name": "chat", "gen_ai.provider.name": "anthropic",
             "gen_ai.request.model": "claude-haiku-4-5", "gen_ai.usage.input_tokens": 10,
             "gen_ai.usage.output_tokens": 10}
    with recorded.handle.span("chat claude-haiku-4-5", **usage):
        with recorded.handle.span("anthropic.messages.create", **usage):  # the Anthropic SDK's own tracing
            pass
    (point,) = points(recorded, "obslab.gen_ai.client.cost")
    assert point.value == pytest.approx((10 * 1.0 + 10 * 5.0) / 1_000_000)  # one call, not two


def test_content_capture_under_opentelemetry_instrument_is_refused_rather_than_exported_unmasked(tmp_path):
    import os
    import subprocess
    import sys

    from test_init import COEXIST

    env = {**os.environ, "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": "span_only"}
    out = subprocess.run([sys.executable, "-c", COEXIST.replace("PRIVACY", "None")], capture_output=True,
                         text=True, cwd=tmp_path, timeout=60, env=env)
    assert out.returncode != 0
    assert "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT='span_only': OpenTelemetry traces, logs" in out.stderr
