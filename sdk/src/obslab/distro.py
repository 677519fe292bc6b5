"""obslab as an OpenTelemetry distro: ``opentelemetry-instrument python app.py`` builds obslab's
pipeline (outage buffer and spool, privacy masking, LLM cost, trace-stamped console logs), and
``init_telemetry()`` goes through the same :func:`obslab.telemetry.configure`.

``opentelemetry-instrument`` loads the ``opentelemetry_distro`` entry point (:class:`ObslabDistro`),
then the ``opentelemetry_configurator`` one (:class:`ObslabConfigurator`), which sets the global
providers, then the instrumentors, which find those providers. Settings come from the ``OBSLAB_*``
and ``OTEL_*`` variables (and ``.env`` / ``OBSLAB_CONFIG``), as for ``init_telemetry()``; a later
``init_telemetry()`` in the application returns the handle the configurator made. When
opentelemetry-distro is installed too, ``OTEL_PYTHON_DISTRO=obslab`` and
``OTEL_PYTHON_CONFIGURATOR=obslab`` choose obslab (``opentelemetry-instrument`` takes the first one
it finds otherwise).

This module is the top of obslab's imports: it imports :mod:`obslab.telemetry`, never the reverse.
"""

from __future__ import annotations

import os
from importlib.metadata import EntryPoint
from typing import Any, Mapping

from opentelemetry.instrumentation.distro import BaseDistro
from opentelemetry.instrumentation.logging import _get_log_level
from opentelemetry.instrumentation.logging.environment_variables import (
    OTEL_PYTHON_LOG_AUTO_INSTRUMENTATION,
    OTEL_PYTHON_LOG_CODE_ATTRIBUTES,
    OTEL_PYTHON_LOG_HANDLER_LEVEL,
)

from obslab.config import Default
from obslab.telemetry import Launcher, Telemetry, configure, get_telemetry

# Environment defaults, as opentelemetry-distro sets them: OTLP over gRPC for every signal (obslab's default too).
_ENVIRONMENT_DEFAULTS = {"OTEL_TRACES_EXPORTER": "otlp", "OTEL_METRICS_EXPORTER": "otlp", "OTEL_LOGS_EXPORTER": "otlp",
                         "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}
# The SDK's own (deprecated) logging handler, which opentelemetry-instrumentation-logging defers to.
_SDK_LOGGING_HANDLER = "OTEL_PYTHON_LOGGING_AUTO_INSTRUMENTATION_ENABLED"


class ObslabDistro(BaseDistro):
    """The ``opentelemetry_distro`` entry point."""

    def _configure(self, **kwargs: Any) -> None:
        """Set the environment defaults opentelemetry-distro sets (never over a variable already set)."""
        for name, value in _ENVIRONMENT_DEFAULTS.items():
            os.environ.setdefault(name, value)

    def load_instrumentor(self, entry_point: EntryPoint, **kwargs: Any) -> None:
        """Activate an instrumentor as ``opentelemetry-instrument`` does, except two that obslab
        drives itself. The logging instrumentation: obslab's bridge sends the root logger's records
        (the instrumentation adds no handler of its own, which would export each twice), from now on
        and as the instrumentation would (``OTEL_PYTHON_LOG_AUTO_INSTRUMENTATION``,
        ``OTEL_PYTHON_LOG_CODE_ATTRIBUTES``, ``OTEL_PYTHON_LOG_HANDLER_LEVEL``); turned off
        (``OTEL_PYTHON_DISABLED_INSTRUMENTATIONS=logging``), this is never called and no record is
        sent. The system metrics follow obslab's ``system_metrics`` setting (``OBSLAB_SYSTEM_METRICS``).
        The OpenAI Agents SDK's own export to OpenAI follows ``openai_agents_trace_export``, as under
        ``instrument=["openai_agents"]`` (the configurator, which made the handle, runs first)."""
        if entry_point.name == "system_metrics":
            return
        if entry_point.name == "logging":
            _export_log_records(get_telemetry())
            kwargs.setdefault("enable_log_auto_instrumentation", False)
        if entry_point.name == "openai_agents":
            kwargs.setdefault("disable_openai_trace_export", not get_telemetry().settings.openai_agents_trace_export)
        super().load_instrumentor(entry_point, **kwargs)


def _export_log_records(handle: Telemetry) -> None:
    """What opentelemetry-instrumentation-logging reads to set up its handler, applied to obslab's."""
    if os.environ.get(_SDK_LOGGING_HANDLER, "").strip().lower() != "true" and \
            os.environ.get(OTEL_PYTHON_LOG_AUTO_INSTRUMENTATION, "true").strip().lower() != "true":
        return
    code = os.environ.get(OTEL_PYTHON_LOG_CODE_ATTRIBUTES, "false").strip().lower() == "true"
    handle._export_log_records(code_attributes=code, level=_get_log_level(os.environ.get(OTEL_PYTHON_LOG_HANDLER_LEVEL)))


class ObslabConfigurator:
    """The ``opentelemetry_configurator`` entry point."""

    def configure(self, arguments: Mapping[str, Any] | None = None,
                  defaults: Mapping[str, Default] | None = None, **kwargs: Any) -> Telemetry:
        """Build obslab's pipeline (see :func:`obslab.telemetry.configure`); under
        ``opentelemetry-instrument``, whose version (``auto_instrumentation_version``) goes in the
        resource as ``telemetry.auto.version``."""
        launcher = None
        if "auto_instrumentation_version" in kwargs:
            launcher = Launcher("opentelemetry-instrument", kwargs["auto_instrumentation_version"])
        return configure(dict(arguments or {}), defaults, launcher=launcher)
