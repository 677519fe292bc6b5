"""The process-wide OpenTelemetry providers. The API lets each be set once per process; a pipeline
obslab built and then shut down may be replaced by the next ``init_telemetry()``, so that a handle
made after ``shutdown()`` records again instead of feeding dead providers."""

from __future__ import annotations

import importlib
from typing import Any

# signal -> (module holding the global, its set-once guard, the global, setter)
_GLOBALS = {
    "traces": ("opentelemetry.trace", "_TRACER_PROVIDER_SET_ONCE", "_TRACER_PROVIDER", "set_tracer_provider"),
    "metrics": ("opentelemetry.metrics._internal", "_METER_PROVIDER_SET_ONCE", "_METER_PROVIDER", "set_meter_provider"),
    "logs": ("opentelemetry._logs._internal", "_LOGGER_PROVIDER_SET_ONCE", "_LOGGER_PROVIDER", "set_logger_provider"),
}


def current(signal: str) -> Any:
    """The provider set as ``signal``'s global, None when none was set. (The API's getter would load
    and set one named by ``OTEL_PYTHON_{TRACER,METER}_PROVIDER`` instead, raising on an unknown name:
    reading what is set must change nothing.)"""
    module_name, _, current_name, _ = _GLOBALS[signal]
    return getattr(importlib.import_module(module_name), current_name)


def set_provider(signal: str, provider: Any, retired: tuple[Any, ...] = ()) -> None:
    """Make ``provider`` the global one of ``signal``; when the current global is one of ``retired``
    (providers obslab built and shut down), it is replaced."""
    module_name, guard, current, setter = _GLOBALS[signal]
    module = importlib.import_module(module_name)
    if any(getattr(module, current) is old for old in retired if old is not None):
        setattr(module, guard, type(getattr(module, guard))())
        setattr(module, current, None)
    getattr(module, setter)(provider)
