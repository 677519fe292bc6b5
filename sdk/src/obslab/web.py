"""``X-Trace-ID`` on every HTTP response of an instrumented web app (FastAPI/ASGI, Flask/WSGI...).

OpenTelemetry's server instrumentations hand each response to the global *response propagator*;
obslab installs one that writes the request's trace id, so a user reporting an error can quote the
id that finds the trace in Tempo. The hook never raises into the server's response path.
"""

from __future__ import annotations

from typing import Any, Callable

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.instrumentation.propagators import (
    ResponsePropagator,
    get_global_response_propagator,
    set_global_response_propagator,
)
from opentelemetry.propagators import textmap

from obslab._diagnostics import guarded

TRACE_ID_HEADER = "X-Trace-ID"


class TraceIdResponsePropagator(ResponsePropagator):
    """Sets ``X-Trace-ID: <32 hex>`` and exposes it to browsers (CORS)."""

    @guarded("X-Trace-ID response header")
    def inject(self, carrier: textmap.CarrierT, context: Context | None = None,
               setter: textmap.Setter = textmap.default_setter) -> None:
        span_context = trace.get_current_span(context).get_span_context()
        if not span_context.is_valid:
            return
        setter.set(carrier, TRACE_ID_HEADER, f"{span_context.trace_id:032x}")
        setter.set(carrier, "Access-Control-Expose-Headers", TRACE_ID_HEADER)


def install_trace_id_header() -> Callable[[], None]:
    """Make every instrumented server answer with ``X-Trace-ID``; returns the function that puts
    back the response propagator there was before."""
    previous = get_global_response_propagator()
    set_global_response_propagator(TraceIdResponsePropagator())
    return lambda: set_global_response_propagator(previous)  # type: ignore[arg-type]


def instrument_app(app: Any, tracer_provider: Any = None, meter_provider: Any = None) -> Any:
    """Instrument one FastAPI/Starlette or Flask app created before ``instrument=[...]`` took
    effect; its responses then carry ``X-Trace-ID``. Returns the app."""
    kind = type(app).__module__.split(".")[0]
    try:
        if kind in ("fastapi", "starlette"):
            from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
            FastAPIInstrumentor.instrument_app(app, tracer_provider=tracer_provider, meter_provider=meter_provider)
        elif kind == "flask":
            from opentelemetry.instrumentation.flask import FlaskInstrumentor
            FlaskInstrumentor.instrument_app(app, tracer_provider=tracer_provider, meter_provider=meter_provider)
        else:
            raise ValueError(f"instrument_app({type(app).__name__}): expected a FastAPI, Starlette or Flask app")
    except ImportError:
        raise ValueError(f"instrument_app({type(app).__name__}): pip install 'obslab[{kind}]'") from None
    return app
