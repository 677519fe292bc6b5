"""structlog integration: trace ids in every event dict, and events exported as OTLP logs.

    import structlog
    from obslab.structlog_bridge import add_trace_context, OTLPLogProcessor
    structlog.configure(processors=[add_trace_context, structlog.processors.add_log_level,
                                    OTLPLogProcessor(), structlog.processors.JSONRenderer()])

or simply ``configure_structlog()`` for that chain (with ``mask_secrets`` before the renderer, so that
with privacy on the printed line is masked as the exported record is). The processors hand the event
dict on whatever happens: telemetry trouble is reported, never raised into the logging call.
"""

from __future__ import annotations

import json
from typing import Any, MutableMapping

from opentelemetry import _logs, context, trace
from opentelemetry._logs import SeverityNumber

from obslab._diagnostics import report
from obslab.privacy import MASK
from obslab.telemetry import get_telemetry

_SEVERITY = {
    "debug": SeverityNumber.DEBUG, "info": SeverityNumber.INFO, "warning": SeverityNumber.WARN,
    "warn": SeverityNumber.WARN, "error": SeverityNumber.ERROR, "exception": SeverityNumber.ERROR,
    "critical": SeverityNumber.FATAL, "fatal": SeverityNumber.FATAL,
}
_NOT_ATTRIBUTES = ("event", "level", "timestamp", "trace_id", "span_id")
_OWN_FIELDS = _NOT_ATTRIBUTES[1:]  # set by the processors, not by the application: printed as they are


def add_trace_context(logger: Any, method_name: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """structlog processor: ``trace_id`` and ``span_id`` (hex) of the current span, when there is one."""
    try:
        span_context = trace.get_current_span().get_span_context()
        if span_context.is_valid:
            event_dict.setdefault("trace_id", f"{span_context.trace_id:032x}")
            event_dict.setdefault("span_id", f"{span_context.span_id:016x}")
    except Exception as error:
        report("structlog add_trace_context", error)
    return event_dict


class OTLPLogProcessor:
    """structlog processor that emits each event as an OpenTelemetry log record and passes it on."""

    def __init__(self, logger_name: str = "structlog") -> None:
        self._logger_name = logger_name

    def __call__(self, logger: Any, method_name: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
        try:
            level = str(event_dict.get("level", method_name)).lower()
            _otel_logger(self._logger_name).emit(
                body=str(event_dict.get("event", "")),
                severity_number=_SEVERITY.get(level, SeverityNumber.INFO),
                severity_text=level.upper(),
                attributes={str(k): _attribute(v) for k, v in event_dict.items() if k not in _NOT_ATTRIBUTES},
                context=context.get_current(),
            )
        except Exception as error:
            report("structlog OTLPLogProcessor", error)
        return event_dict


def mask_secrets(logger: Any, method_name: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """structlog processor: with privacy on (the handle's), the event dict masked as a log record is,
    for the renderers after it (what they print leaves the process too); the event dict itself
    otherwise. An event that cannot be masked is printed as ``[REDACTED]``."""
    redactor = get_telemetry()._redactor
    if redactor is None:
        return event_dict
    try:
        return {key: value if key in _OWN_FIELDS else
                redactor.scrub(value) if key == "event" else redactor.value(str(key), value)
                for key, value in event_dict.items()}
    except Exception as error:
        report("structlog mask_secrets", error)
        return {"event": MASK}


def configure_structlog(json_output: bool = True) -> None:
    """Configure structlog with trace ids, OTLP export and JSON (or console) rendering, masked with
    privacy on."""
    import structlog

    structlog.configure(processors=[
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        add_trace_context,
        OTLPLogProcessor(),
        mask_secrets,
        structlog.processors.JSONRenderer() if json_output else structlog.dev.ConsoleRenderer(),
    ])


def _otel_logger(name: str) -> _logs.Logger:
    """The telemetry handle's OpenTelemetry logger; the global one when init_telemetry was not called."""
    handle = get_telemetry()
    return handle.get_otel_logger(name) if handle.enabled else _logs.get_logger(name)


def _attribute(value: Any) -> Any:
    if isinstance(value, (str, bool, int, float)):
        return value
    return json.dumps(value, default=str)
