"""obslab: one call ships a Python service's traces, metrics and trace-correlated logs over OTLP."""

from obslab.config import Settings
from obslab.telemetry import Telemetry, get_telemetry, init_telemetry

__all__ = ["Settings", "Telemetry", "get_telemetry", "init_telemetry"]
__version__ = "0.1.0"
