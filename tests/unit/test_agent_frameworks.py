"""Issue 20, part 4: agent frameworks and MCP without a network. An OpenAI Agents SDK run against the
local fake server through ``instrument=["openai", "openai_agents"]`` (OpenTelemetry's own
instrumentations), and an in-process MCP server and client through ``instrument=["mcp"]``."""

from __future__ import annotations

import anyio
import pytest
from agents import Agent, OpenAIChatCompletionsModel, Runner, function_tool
from agents.tracing import get_trace_provider
from mcp import Client
from mcp.client._memory import InMemoryTransport  # the SDK's JSON-RPC transport in memory
from mcp.server.mcpserver import MCPServer
from openai import AsyncOpenAI
from opentelemetry.trace import SpanKind

from lab import fake_llm_module
from obslab.config import Settings

fake_llm = fake_llm_module()


@pytest.fixture(scope="module")
def server():
    with fake_llm.FakeLLMServer() as running:
        yield running


@function_tool
def search_flights(origin: str) -> str:
    """Flights leaving an airport."""
    return f"3 flights from {origin}"


def agent_processors() -> list:
    return list(getattr(getattr(get_trace_provider(), "_multi_processor", None), "_processors", ()))


def run_agent(server) -> str:
    client = AsyncOpenAI(base_url=server.openai_base_url, api_key="sk-fake", max_retries=0)
    agent = Agent(name="travel-planner", instructions="Plan trips.", tools=[search_flights],
                  model=OpenAIChatCompletionsModel(model="gpt-4o-mini", openai_client=client))
    return Runner.run_sync(agent, "Flights from Montreal?").final_output


def test_an_openai_agents_run_makes_workflow_agent_tool_and_chat_spans_in_one_trace(recording, server):
    before = agent_processors()
    recorded = recording(Settings(service_name="agents", instrument=("openai", "openai_agents")))
    # OpenTelemetry's processor only: the Agents SDK's own export to OpenAI is off by default
    (processor,) = agent_processors()
    assert type(processor).__module__.startswith("opentelemetry.instrumentation.genai.openai_agents")
    assert run_agent(server) == fake_llm.reply_text("gpt-4o-mini")
    spans = {s.name: s for s in recorded.spans()}
    assert {"invoke_workflow Agent workflow", "invoke_agent travel-planner", "execute_tool search_flights",
            "chat gpt-4o-mini"} <= set(spans)
    workflow, agent = spans["invoke_workflow Agent workflow"], spans["invoke_agent travel-planner"]
    tool, chat = spans["execute_tool search_flights"], spans["chat gpt-4o-mini"]
    assert len({s.context.trace_id for s in recorded.spans()}) == 1
    assert agent.parent.span_id == workflow.context.span_id
    assert tool.parent.span_id == chat.parent.span_id == agent.context.span_id
    assert agent.attributes["gen_ai.agent.name"] == "travel-planner"
    assert tool.attributes["gen_ai.tool.name"] == "search_flights"
    assert chat.kind == SpanKind.CLIENT and chat.attributes["gen_ai.provider.name"] == "openai"
    costs = recorded.metrics().get("obslab.gen_ai.client.cost", [])
    assert len([s for s in recorded.spans() if s.name == "chat gpt-4o-mini"]) == 2 and costs  # both calls priced
    recorded.handle.shutdown(1)
    assert agent_processors() == before  # the Agents SDK's processors are given back


def test_the_agents_sdks_own_export_is_kept_when_asked(recording):
    before = agent_processors()
    recording(Settings(service_name="agents", instrument=("openai_agents",), openai_agents_trace_export=True))
    assert agent_processors()[:len(before)] == before and len(agent_processors()) == len(before) + 1


def mcp_server() -> MCPServer:
    travel = MCPServer("travel")

    @travel.tool()
    def find_flights(origin: str, destination: str) -> str:
        """Flights between two airports."""
        return f"3 flights {origin}-{destination}"

    return travel


async def call_tool() -> str:
    async with Client(InMemoryTransport(mcp_server())) as client:
        await client.list_tools()
        result = await client.call_tool("find_flights", {"origin": "YUL", "destination": "CDG"})
        return result.content[0].text


def test_mcp_client_and_server_spans_are_named_by_the_mcp_conventions(recording):
    recorded = recording(Settings(service_name="mcp", instrument=("mcp",)))
    with recorded.handle.span("plan trip") as root:
        assert anyio.run(call_tool) == "3 flights YUL-CDG"
    spans = [s for s in recorded.spans() if s.instrumentation_scope.name == "mcp-python-sdk"]
    calls = {s.kind: s for s in spans if s.name == "tools/call find_flights"}
    client, server_span = calls[SpanKind.CLIENT], calls[SpanKind.SERVER]
    assert server_span.parent.span_id == client.context.span_id  # trace context carried in the request's _meta
    assert client.parent.span_id == root.get_span_context().span_id
    for span in (client, server_span):
        assert span.attributes["mcp.method.name"] == "tools/call"
        assert span.attributes["gen_ai.operation.name"] == "execute_tool"
        assert span.attributes["gen_ai.tool.name"] == "find_flights"
        assert span.attributes["jsonrpc.request.id"] == client.attributes["jsonrpc.request.id"]
    assert {(s.name, s.kind) for s in spans if s.attributes["mcp.method.name"] == "tools/list"} == {
        ("tools/list", SpanKind.CLIENT), ("tools/list", SpanKind.SERVER)}
    assert not [s for s in spans if s.name.startswith("MCP send")]


def test_the_mcp_sdks_tracer_is_given_back_at_shutdown(recording):
    from mcp.shared import _otel

    before = _otel._tracer
    recorded = recording(Settings(service_name="mcp", instrument=("mcp",)))
    assert _otel._tracer is not before
    recorded.handle.shutdown(1)
    assert _otel._tracer is before


def test_under_opentelemetry_instrument_the_agents_sdks_export_to_openai_is_off_too(recording):
    from importlib.metadata import entry_points

    from opentelemetry.instrumentation.genai.openai_agents import OpenAIAgentsInstrumentor

    from obslab.distro import ObslabDistro

    recorded = recording(Settings(service_name="agents"))  # the handle the configurator made first
    (entry_point,) = [e for e in entry_points(group="opentelemetry_instrumentor") if e.name == "openai_agents"]
    before = agent_processors()
    ObslabDistro().load_instrumentor(entry_point, tracer_provider=recorded.handle._tracer_provider)
    try:
        (processor,) = agent_processors()
        assert type(processor).__module__.startswith("opentelemetry.instrumentation.genai.openai_agents")
    finally:
        OpenAIAgentsInstrumentor().uninstrument()
    assert agent_processors() == before


def test_an_mcp_sdk_laid_out_otherwise_is_reported_and_never_stops_the_start(recording, monkeypatch, caplog):
    from mcp.shared import _otel

    monkeypatch.delattr(_otel, "_tracer")
    recorded = recording(Settings(service_name="mcp", instrument=("mcp",)))
    assert "instrument=['mcp'] failed" in caplog.text
    recorded.handle.shutdown(1)
    assert not hasattr(_otel, "_tracer")
