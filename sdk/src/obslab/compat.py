"""Entry points with the names of the tools obslab replaces, over the same telemetry handle.

- ``auto_instrument(...)`` (autotelemetry seed): one line turns everything on.
- ``TelemetryTools(...)`` (mini-telemetry seed): ``get_tracer/get_meter/get_logger(name)``.
"""

from __future__ import annotations

import logging
from typing import Any, Mapping, Sequence

from opentelemetry.metrics import Meter
from opentelemetry.trace import Tracer

from obslab.config import Environment, LogLevel
from obslab.telemetry import Telemetry, configure, init_telemetry


def auto_instrument(
    service_name: str,
    service_version: str | None = None,
    environment: Environment | str | None = None,
    log_level: LogLevel | str | None = None,
    prometheus_port: int | None = None,
    otlp_endpoint: str | None = None,
    additional_attributes: Mapping[str, str] | None = None,
    instrument: str | Sequence[str] | None = None,
    system_metrics: bool | None = None,
    enable_console_export: bool | None = None,
) -> Telemetry:
    """Traces, metrics and logs, system metrics and every installed instrumentation in one call.

    Arguments left as None come from the environment, ``.env`` or YAML like ``init_telemetry``'s,
    and only then from the seed's defaults: PRODUCTION (JSON logs), INFO, ``instrument="auto"``,
    system metrics on, and console export in DEVELOPMENT. Returns the telemetry handle
    (``get_logger()``, ``create_counter()``, ``create_histogram()``, ``tracer``...).
    """
    return configure({
        "service_name": service_name,
        "service_version": service_version,
        "environment": environment,
        "log_level": log_level,
        "otlp_endpoint": otlp_endpoint,
        "resource_attributes": additional_attributes,
        "enable_console_export": enable_console_export,
        "prometheus_port": prometheus_port,
        "system_metrics": system_metrics,
        "instrument": instrument,
    }, defaults=AUTO_INSTRUMENT_DEFAULTS)


AUTO_INSTRUMENT_DEFAULTS = {
    "environment": Environment.PRODUCTION.value,
    "log_level": LogLevel.INFO.value,
    "instrument": "auto",
    "system_metrics": True,
    "enable_console_export": lambda settings: (settings.environment or "").lower() == Environment.DEVELOPMENT.value,
}


class TelemetryTools:
    """The mini-telemetry seed's object: a thin alias over the process's telemetry handle."""

    def __init__(self, service_name: str, service_version: str | None = None, environment: str | None = None,
                 **options: Any) -> None:
        self.telemetry = init_telemetry(service_name=service_name, service_version=service_version,
                                        environment=environment, **options)

    def get_tracer(self, name: str) -> Tracer:
        """A tracer for instrumentation scope ``name``."""
        return self.telemetry.get_tracer(name)

    def get_meter(self, name: str) -> Meter:
        """A meter for instrumentation scope ``name``."""
        return self.telemetry.get_meter(name)

    def get_logger(self, name: str) -> logging.Logger:
        """A stdlib logger whose records carry trace ids and reach OTLP."""
        return self.telemetry.get_logger(name)

    def shutdown(self) -> None:
        """Flush and stop exporting."""
        self.telemetry.shutdown()
