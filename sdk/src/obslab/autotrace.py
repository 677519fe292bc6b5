"""Function auto-tracing: ``@traced`` on one function, ``trace_modules([...])`` for an allow-list of
modules (every public function defined in them gets a span).

Guards against the loops the autotelemetry seed warns of: a function already running in the
current context (recursion) gets no second span, and modules that the tracing path itself calls
(obslab, opentelemetry, logging, threading...) are refused. If starting a span fails, the function
is called untraced: the wrapper never raises anything the function itself would not.
"""

from __future__ import annotations

import contextvars
import functools
import inspect
import sys
from types import ModuleType
from typing import Any, Callable, Iterable, TypeVar

from opentelemetry import trace

from obslab._diagnostics import guarded
from obslab.telemetry import get_telemetry

F = TypeVar("F", bound=Callable[..., Any])

# Modules whose functions the tracing path itself calls: tracing them would recurse.
_REFUSED = ("obslab", "opentelemetry", "logging", "threading", "contextvars", "grpc", "google.protobuf",
            "importlib", "inspect", "functools", "typing", "asyncio", "concurrent", "queue", "json")
_running: contextvars.ContextVar[frozenset[int]] = contextvars.ContextVar("obslab_traced_running",
                                                                          default=frozenset())
_WRAPPED = "__obslab_traced__"


def traced(func: F | None = None, *, name: str | None = None, tracer_name: str = "obslab.autotrace") -> Any:
    """Decorate a sync or async function so each call is a span named ``module.qualname``."""
    if func is None:
        return lambda f: traced(f, name=name, tracer_name=tracer_name)
    if getattr(func, _WRAPPED, False):
        return func
    span_name = name or f"{func.__module__}.{func.__qualname__}"
    attributes = {"code.function": func.__qualname__, "code.namespace": func.__module__}
    key = id(func)

    @guarded("function tracing")
    def start() -> tuple[Any, contextvars.Token[frozenset[int]]] | None:
        running = _running.get()
        if key in running:
            return None
        scope = _tracer(tracer_name).start_as_current_span(span_name, attributes=attributes)
        return scope, _running.set(running | {key})

    if inspect.iscoroutinefunction(func):
        @functools.wraps(func)
        async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
            started = start()
            if started is None:
                return await func(*args, **kwargs)
            scope, token = started
            try:
                with scope:
                    return await func(*args, **kwargs)
            finally:
                _running.reset(token)
        wrapper: Any = async_wrapper
    else:
        @functools.wraps(func)
        def sync_wrapper(*args: Any, **kwargs: Any) -> Any:
            started = start()
            if started is None:
                return func(*args, **kwargs)
            scope, token = started
            try:
                with scope:
                    return func(*args, **kwargs)
            finally:
                _running.reset(token)
        wrapper = sync_wrapper
    setattr(wrapper, _WRAPPED, True)
    return wrapper


def trace_modules(modules: Iterable[str | ModuleType]) -> list[str]:
    """Trace every public function defined in each allowed module (imported ones are left alone).
    Returns the qualified names of the functions now traced."""
    done = []
    for module in modules:
        module = _module(module)
        for attr, value in list(vars(module).items()):
            if (attr.startswith("_") or not inspect.isfunction(value) or value.__module__ != module.__name__
                    or getattr(value, _WRAPPED, False)):
                continue
            setattr(module, attr, traced(value))
            done.append(f"{module.__name__}.{attr}")
    return done


def untrace_modules(modules: Iterable[str | ModuleType]) -> None:
    """Undo :func:`trace_modules`."""
    for module in modules:
        module = _module(module)
        for attr, value in list(vars(module).items()):
            if getattr(value, _WRAPPED, False):
                setattr(module, attr, value.__wrapped__)


def _tracer(name: str) -> trace.Tracer:
    """The telemetry handle's tracer; the global one when init_telemetry was not called (for
    example under ``opentelemetry-instrument``)."""
    handle = get_telemetry()
    return handle.get_tracer(name) if handle.enabled else trace.get_tracer(name)


def _module(module: str | ModuleType) -> ModuleType:
    name = module if isinstance(module, str) else module.__name__
    if any(name == refused or name.startswith(refused + ".") for refused in _REFUSED):
        raise ValueError(f"trace_modules: {name!r} cannot be traced (telemetry itself calls it: "
                         "tracing it would recurse)")
    if isinstance(module, ModuleType):
        return module
    if name not in sys.modules:
        raise ValueError(f"trace_modules: module {name!r} is not imported; import it first")
    return sys.modules[name]
