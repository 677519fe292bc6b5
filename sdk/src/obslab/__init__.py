"""obslab: one call ships a Python service's traces, metrics and trace-correlated logs over OTLP."""

from obslab.autotrace import trace_modules, traced
from obslab.compat import TelemetryTools, auto_instrument
from obslab.config import Environment, LogLevel, Settings
from obslab.telemetry import Telemetry, get_telemetry, init_telemetry

__all__ = [
    "Environment", "LogLevel", "Settings", "Telemetry", "TelemetryTools", "auto_instrument", "get_telemetry",
    "init_telemetry", "trace_modules", "traced",
]
__version__ = "0.1.0"
