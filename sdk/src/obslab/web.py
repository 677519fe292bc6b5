"""``X-Trace-ID`` on every HTTP response of an instrumented web app (FastAPI/ASGI, Flask/WSGI...), and
a flush when an ASGI server shuts the app down.

OpenTelemetry's server instrumentations hand each response to the global *response propagator*;
obslab installs one that writes the request's trace id, so a user reporting an error can quote the
id that finds the trace in Tempo. The hook never raises into the server's response path.
"""

from __future__ import annotations

import contextlib
from typing import Any, AsyncIterator, Callable

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.instrumentation.propagators import (
    ResponsePropagator,
    get_global_response_propagator,
    set_global_response_propagator,
)
from opentelemetry.propagators import textmap

from obslab._diagnostics import guarded, report

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


def instrument_app(app: Any, tracer_provider: Any = None, meter_provider: Any = None,
                   flush: Callable[[], Any] | None = None) -> Any:
    """Instrument one FastAPI/Starlette or Flask app created before ``instrument=[...]`` took
    effect; its responses then carry ``X-Trace-ID``, and ``flush`` runs when a server ends a
    FastAPI/Starlette app's lifespan. Returns the app."""
    # the classes it is made of: instrument=["fastapi"] or ["flask"] makes apps of an instrumented subclass
    kinds = [cls.__module__.split(".")[0] for cls in type(app).__mro__]
    kind = next((k for k in kinds if k in ("fastapi", "starlette", "flask")), kinds[0])
    try:
        if kind in ("fastapi", "starlette"):
            from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
            FastAPIInstrumentor.instrument_app(app, tracer_provider=tracer_provider, meter_provider=meter_provider)
            if flush is not None:
                _flush_after_lifespan(app, flush)
        elif kind == "flask":
            from opentelemetry.instrumentation.flask import FlaskInstrumentor
            FlaskInstrumentor.instrument_app(app, tracer_provider=tracer_provider, meter_provider=meter_provider)
        else:
            raise ValueError(f"instrument_app({type(app).__name__}): expected a FastAPI, Starlette or Flask app")
    except ImportError:
        raise ValueError(f"instrument_app({type(app).__name__}): pip install 'obslab[{kind}]'") from None
    return app


def _flush_after_lifespan(app: Any, flush: Callable[[], Any]) -> None:
    """Run ``flush`` once the app's lifespan (the application's own, if any) has ended: ``uvicorn
    module:app`` imports the app inside its SIGTERM handling and, once shut down, re-raises the
    SIGTERM at its default, which ends the process without ``atexit``."""
    router = getattr(app, "router", None)
    lifespan = getattr(router, "lifespan_context", None)
    if lifespan is None or getattr(lifespan, "_obslab_flush", False):
        return

    @contextlib.asynccontextmanager
    async def flushed_lifespan(served: Any) -> AsyncIterator[Any]:
        try:
            async with lifespan(served) as state:
                yield state
        finally:
            try:
                flush()
            except Exception as error:
                report("flush at the app's shutdown", error)

    flushed_lifespan._obslab_flush = True  # type: ignore[attr-defined]
    router.lifespan_context = flushed_lifespan
