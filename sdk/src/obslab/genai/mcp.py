"""MCP client and server spans named by the MCP semantic conventions (``instrument=["mcp"]``).

The MCP Python SDK (``mcp`` 2.x, the official SDK) traces itself through the global tracer provider:
a SERVER span per request received, named ``{mcp.method.name} {target}`` as the conventions name it
(``tools/call search_flights``, with ``gen_ai.operation.name=execute_tool`` and ``gen_ai.tool.name``), and
a CLIENT span per request sent, whose W3C trace context travels in the request's ``_meta`` (SEP-414) so
that the server's span is its child. Its client spans are named ``MCP send {method} {target}``:
:class:`MCPSpanNames` renames them as the conventions do and gives ``tools/call`` ones the same GenAI
attributes as the server's, when they start (while their name can still change).

:func:`instrument` also points the SDK's tracer (``mcp.shared._otel._tracer``, made once at import from
the global provider) at obslab's tracer provider, and :func:`uninstrument` gives the old one back: an
API proxy tracer stays with the first provider it met, and obslab's provider may not be the global one.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from typing import Any

from opentelemetry.sdk.trace import Span, SpanProcessor
from opentelemetry.trace import SpanKind

from obslab._diagnostics import guarded, report

SCOPE = "mcp-python-sdk"  # the MCP SDK's tracer
_CLIENT_PREFIX = "MCP send "
MINIMUM = (2, 0)  # the first MCP SDK release that traces itself


def mcp_version() -> tuple[int, ...] | None:
    """The installed MCP SDK's version as numbers, None when it is not installed."""
    try:
        text = version("mcp")
    except PackageNotFoundError:
        return None
    return tuple(int(part) for part in text.split(".")[:2] if part.isdigit())


def instrument(tracer_provider: Any, names: "MCPSpanNames | None") -> Any:
    """Send the MCP SDK's spans to ``tracer_provider`` and name them by the conventions; returns the
    undo. An MCP SDK laid out otherwise (no ``mcp.shared._otel._tracer``) keeps its tracer, reported."""
    try:
        from mcp.shared import _otel

        before = _otel._tracer
        _otel._tracer = tracer_provider.get_tracer(SCOPE)
    except Exception as error:
        report("instrument=['mcp']", error)
        _otel = before = None
    if names is not None:
        names.active = True

    def uninstrument() -> None:
        if _otel is not None:
            _otel._tracer = before
        if names is not None:
            names.active = False
    return uninstrument


class MCPSpanNames(SpanProcessor):
    """Names the MCP SDK's client spans by the MCP conventions while ``active``."""

    def __init__(self) -> None:
        self.active = False

    @guarded("MCP span names")
    def on_start(self, span: Span, parent_context: Any = None) -> None:
        if not self.active or span.kind is not SpanKind.CLIENT or not span.name.startswith(_CLIENT_PREFIX):
            return
        scope = span.instrumentation_scope
        if scope is None or scope.name != SCOPE:
            return
        name = span.name[len(_CLIENT_PREFIX):]
        span.update_name(name)
        method, _, target = name.partition(" ")
        if method == "tools/call" and target:
            span.set_attributes({"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": target})
        elif method == "prompts/get" and target:
            span.set_attribute("gen_ai.prompt.name", target)
