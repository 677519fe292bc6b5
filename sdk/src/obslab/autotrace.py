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

    if inspect.isgeneratorfunction(func):
        wrapper: Any = _traced_generator(func, tracer_name, span_name, attributes)
    elif inspect.isasyncgenfunction(func):
        wrapper = _traced_async_generator(func, tracer_name, span_name, attributes)
    elif inspect.iscoroutinefunction(func):
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
        wrapper = async_wrapper
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


@guarded("function tracing")
def _start_span(tracer_name: str, span_name: str, attributes: dict[str, str]) -> trace.Span | None:
    return _tracer(tracer_name).start_span(span_name, attributes=attributes)


def _traced_generator(func: Callable[..., Any], tracer_name: str, span_name: str,
                      attributes: dict[str, str]) -> Callable[..., Any]:
    """A generator function whose span starts at the first ``next()`` and ends when the generator
    is exhausted, fails or is closed; its body runs with the span current, its consumer does not."""
    @functools.wraps(func)
    def generator_wrapper(*args: Any, **kwargs: Any) -> Any:
        generator = func(*args, **kwargs)
        span = _start_span(tracer_name, span_name, attributes)
        if span is None:
            return (yield from generator)
        try:
            sent: Any = None
            thrown: BaseException | None = None
            while True:
                with trace.use_span(span, end_on_exit=False):
                    try:
                        item = generator.throw(thrown) if thrown is not None else generator.send(sent)
                    except StopIteration as stop:
                        return stop.value
                thrown = None
                try:
                    sent = yield item
                except GeneratorExit:
                    generator.close()
                    raise
                except BaseException as error:  # thrown in by the consumer: handed to the generator
                    thrown = error
        finally:
            span.end()
    return generator_wrapper


def _traced_async_generator(func: Callable[..., Any], tracer_name: str, span_name: str,
                            attributes: dict[str, str]) -> Callable[..., Any]:
    """:func:`_traced_generator` for async generator functions."""
    @functools.wraps(func)
    async def async_generator_wrapper(*args: Any, **kwargs: Any) -> Any:
        generator = func(*args, **kwargs)
        span = _start_span(tracer_name, span_name, attributes)
        if span is None:
            async for item in generator:
                yield item
            return
        try:
            sent: Any = None
            thrown: BaseException | None = None
            while True:
                with trace.use_span(span, end_on_exit=False):
                    try:
                        item = await (generator.athrow(thrown) if thrown is not None else generator.asend(sent))
                    except StopAsyncIteration:
                        return
                thrown = None
                try:
                    sent = yield item
                except GeneratorExit:
                    await generator.aclose()
                    raise
                except BaseException as error:
                    thrown = error
        finally:
            span.end()
    return async_generator_wrapper


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
