"""obslab as an OpenTelemetry distro: ``opentelemetry-instrument python app.py`` builds obslab's
pipeline (outage buffer and spool, privacy masking, LLM cost, trace-stamped console logs), and
``init_telemetry()`` goes through the same configurator.

``opentelemetry-instrument`` loads the ``opentelemetry_distro`` entry point (:class:`ObslabDistro`),
then the ``opentelemetry_configurator`` one (:class:`ObslabConfigurator`), which sets the global
providers, then the instrumentors, which find those providers. Settings come from the ``OBSLAB_*``
and ``OTEL_*`` variables (and ``.env`` / ``OBSLAB_CONFIG``), as for ``init_telemetry()``; a later
``init_telemetry()`` in the application returns the handle the configurator made.
"""

from __future__ import annotations

import os
from importlib.metadata import EntryPoint
from typing import TYPE_CHECKING, Any, Mapping

from opentelemetry.instrumentation.distro import BaseDistro

if TYPE_CHECKING:
    from obslab.config import Default
    from obslab.telemetry import Telemetry

# Environment defaults, as opentelemetry-distro sets them: OTLP for every signal (obslab's default too).
_ENVIRONMENT_DEFAULTS = {"OTEL_TRACES_EXPORTER": "otlp", "OTEL_METRICS_EXPORTER": "otlp", "OTEL_LOGS_EXPORTER": "otlp"}


class ObslabDistro(BaseDistro):
    """The ``opentelemetry_distro`` entry point."""

    def _configure(self, **kwargs: Any) -> None:
        """Set the environment defaults a distro sets (never over a variable already set)."""
        for name, value in _ENVIRONMENT_DEFAULTS.items():
            os.environ.setdefault(name, value)

    def load_instrumentor(self, entry_point: EntryPoint, **kwargs: Any) -> None:
        """Activate an instrumentor as ``opentelemetry-instrument`` does, except two that obslab
        drives itself: the logging instrumentation adds no log handler of its own (obslab's bridge
        already sends the root logger's records; a second handler would export each twice), and the
        system metrics follow obslab's ``system_metrics`` setting (``OBSLAB_SYSTEM_METRICS``). The
        OpenAI Agents SDK's own export to OpenAI follows ``openai_agents_trace_export``, as under
        ``instrument=["openai_agents"]`` (the configurator, which made the handle, runs first)."""
        if entry_point.name == "system_metrics":
            return
        if entry_point.name == "logging":
            kwargs.setdefault("enable_log_auto_instrumentation", False)
        if entry_point.name == "openai_agents":
            from obslab.telemetry import get_telemetry

            kwargs.setdefault("disable_openai_trace_export", not get_telemetry().settings.openai_agents_trace_export)
        super().load_instrumentor(entry_point, **kwargs)


class ObslabConfigurator:
    """The ``opentelemetry_configurator`` entry point, and what ``init_telemetry()`` calls."""

    def configure(self, arguments: Mapping[str, Any] | None = None,
                  defaults: Mapping[str, Default] | None = None, **kwargs: Any) -> Telemetry:
        """Build obslab's pipeline from ``arguments`` (``init_telemetry``'s; none under
        ``opentelemetry-instrument``) over the environment, files and ``defaults``, install it in
        the process and return its handle (the existing one if there is one)."""
        from obslab.telemetry import _init

        launcher = "opentelemetry-instrument" if "auto_instrumentation_version" in kwargs else None
        return _init(dict(arguments or {}), defaults, launcher=launcher)
