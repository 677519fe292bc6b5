"""The stdlib logging bridge: root logger -> OTLP logs, plus trace-stamped console output.

Installed once per process, whatever the number of ``init_telemetry`` calls or later
``logging.config.dictConfig`` / ``basicConfig`` calls: the OTLP handler is re-attached after
them, and the SDK's own loggers never reach it (see ``_diagnostics``), so there is no export loop.
"""

from __future__ import annotations

import json
import logging
import logging.config
import sys
from datetime import datetime, timezone
from functools import wraps
from typing import Any, Callable

from opentelemetry import trace
from opentelemetry.instrumentation.logging.handler import LoggingHandler
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor, LogRecordExporter
from opentelemetry.sdk.resources import Resource

from obslab._export import otlp_exporter
from obslab.config import Settings
from obslab.privacy import RedactingFilter, RedactingLogProcessor, Redactor

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s trace_id=%(trace_id)s span_id=%(span_id)s - %(message)s"

# Record attributes that are not user data: stdlib internals and what our console filter adds.
_NOT_ATTRIBUTES = frozenset(vars(logging.makeLogRecord({}))) | {
    "message", "asctime", "trace_id", "span_id", "data",
    "otelTraceID", "otelSpanID", "otelServiceName", "otelTraceSampled",
}


def build_logger_provider(
    settings: Settings, resource: Resource, exporter: LogRecordExporter | None = None,
    redactor: Redactor | None = None,
) -> tuple[LoggerProvider, list[LogRecordExporter]]:
    """A provider exporting log records in batches (default: OTLP), masked first when privacy is on."""
    provider = LoggerProvider(resource=resource, shutdown_on_exit=False)
    if redactor is not None:
        provider.add_log_record_processor(RedactingLogProcessor(redactor))
    if exporter is None and not settings.console_only:
        exporter = otlp_exporter(settings, "logs")
    exporters = []
    if exporter is not None:
        provider.add_log_record_processor(BatchLogRecordProcessor(exporter))
        exporters.append(exporter)
    return provider, exporters


class OTLPHandler(LoggingHandler):
    """The OpenTelemetry logging handler, with ``extra={"data": {...}}`` flattened to attributes."""

    def _get_attributes(self, record: logging.LogRecord) -> tuple[dict[str, Any], str | None]:
        attributes, event_name = super()._get_attributes(record)
        data = attributes.pop("data", None)
        if isinstance(data, dict):
            attributes.update((str(k), v) for k, v in data.items())
        return {k: v if type(v) in _PLAIN else _attribute_value(v)
                for k, v in attributes.items() if k not in _NOT_ATTRIBUTES}, event_name


_PLAIN = frozenset((str, bool, int, float))


def _attribute_value(value: Any) -> Any:
    if isinstance(value, (str, bool, int, float)) or value is None:
        return value
    if isinstance(value, (list, tuple)) and all(isinstance(v, (str, bool, int, float)) for v in value):
        return list(value)
    return json.dumps(value, default=str)


class TraceContextFilter(logging.Filter):
    """Stamp ``trace_id`` / ``span_id`` (hex, or ``-`` outside a span) on records for formatters."""

    def filter(self, record: logging.LogRecord) -> bool:
        ctx = trace.get_current_span().get_span_context()
        if ctx.is_valid:
            record.trace_id, record.span_id = f"{ctx.trace_id:032x}", f"{ctx.span_id:016x}"
        else:
            record.trace_id = record.span_id = "-"
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, trace ids, extra attributes."""

    def __init__(self, service_name: str) -> None:
        super().__init__()
        self.service_name = service_name

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "timestamp": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "service": self.service_name,
        }
        if getattr(record, "trace_id", "-") != "-":
            entry["trace_id"], entry["span_id"] = record.trace_id, record.span_id  # type: ignore[attr-defined]
        extras = {k: v for k, v in vars(record).items() if k not in _NOT_ATTRIBUTES}
        if isinstance(getattr(record, "data", None), dict):
            extras.update(record.data)  # type: ignore[attr-defined]
        entry.update(extras)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def console_handler(settings: Settings, stream: Any = None, redactor: Redactor | None = None) -> logging.Handler:
    """Console handler in the text format of the mini-telemetry seed, or JSON lines: on stderr,
    or on stdout with the other signals in console-only mode."""
    handler = logging.StreamHandler(stream or (sys.stdout if settings.console_only else sys.stderr))
    handler.addFilter(TraceContextFilter())
    if redactor is not None:
        handler.addFilter(RedactingFilter(redactor))
    handler.setFormatter(JsonFormatter(settings.service_name) if settings.json_logs else logging.Formatter(TEXT_FORMAT))
    return handler


def install_handlers(otlp: logging.Handler | None, console: logging.Handler | None, level: str) -> None:
    """Attach our handlers to the root logger once and keep them through logging reconfiguration."""
    root = logging.getLogger()
    for handler in (otlp, console):
        if handler is not None:
            handler._obslab = True  # type: ignore[attr-defined]
            root.addHandler(handler)
    root.setLevel(level)
    _keep_across_reconfiguration(otlp, console)


def remove_handlers() -> None:
    root = logging.getLogger()
    for handler in [h for h in root.handlers if getattr(h, "_obslab", False)]:
        root.removeHandler(handler)


def find_installed_bridge() -> logging.Handler | None:
    """An OpenTelemetry log handler already on the root logger (ours or opentelemetry-instrument's)."""
    return next((h for h in logging.getLogger().handlers if isinstance(h, LoggingHandler)), None)


def _keep_across_reconfiguration(otlp: logging.Handler | None, console: logging.Handler | None) -> None:
    def wrap(config_fn: Callable[..., Any]) -> Callable[..., Any]:
        original = getattr(config_fn, "__wrapped__", config_fn)

        @wraps(original)
        def reconfigure(*args: Any, **kwargs: Any) -> Any:
            root = logging.getLogger()
            ours = [h for h in root.handlers if getattr(h, "_obslab", False)]
            for handler in ours:
                root.removeHandler(handler)
            try:
                return original(*args, **kwargs)
            finally:
                if otlp is not None and otlp not in root.handlers:
                    root.addHandler(otlp)
                # The app now formats its own console output: do not print every line twice.
                app_console = any(isinstance(h, logging.StreamHandler) and h not in ours for h in root.handlers)
                if console is not None and not app_console and console not in root.handlers:
                    root.addHandler(console)

        reconfigure.__wrapped__ = original  # type: ignore[attr-defined]
        return reconfigure

    logging.config.dictConfig = wrap(logging.config.dictConfig)
    logging.config.fileConfig = wrap(logging.config.fileConfig)
    logging.basicConfig = wrap(logging.basicConfig)
