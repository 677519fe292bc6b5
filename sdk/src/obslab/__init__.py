"""obslab: one call ships a Python service's traces, metrics and trace-correlated logs over OTLP."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from obslab.autotrace import trace_modules, traced
    from obslab.compat import TelemetryTools, auto_instrument
    from obslab.config import Environment, LogLevel, Settings
    from obslab.telemetry import Telemetry, get_telemetry, init_telemetry

# Imported on first use (PEP 562), so that what imports only a part of obslab (its pytest plugin, loaded by
# every pytest session of the environment) does not load the SDK and OpenTelemetry's.
_EXPORTS = {"trace_modules": "obslab.autotrace", "traced": "obslab.autotrace", "TelemetryTools": "obslab.compat",
            "auto_instrument": "obslab.compat", "Environment": "obslab.config", "LogLevel": "obslab.config",
            "Settings": "obslab.config", "Telemetry": "obslab.telemetry", "get_telemetry": "obslab.telemetry",
            "init_telemetry": "obslab.telemetry"}

__all__ = [
    "Environment", "LogLevel", "Settings", "Telemetry", "TelemetryTools", "auto_instrument", "get_telemetry",
    "init_telemetry", "trace_modules", "traced",
]
__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
        globals()[name] = value
        return value
    try:  # a submodule used as an attribute (obslab.telemetry), as when __init__ imported it
        return importlib.import_module(f"{__name__}.{name}")
    except ModuleNotFoundError as error:
        if error.name != f"{__name__}.{name}":
            raise
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
