"""OTLP exporters of the three signals (gRPC by default, HTTP on request), and the escape hatch
used at the shutdown deadline."""

from __future__ import annotations

import importlib
from typing import Any

from obslab.config import Settings

# signal -> (module, class) in the gRPC and HTTP exporter packages, and the HTTP path
_EXPORTERS = {
    "traces": ("trace_exporter", "OTLPSpanExporter"),
    "metrics": ("metric_exporter", "OTLPMetricExporter"),
    "logs": ("_log_exporter", "OTLPLogExporter"),
}


def otlp_exporter(settings: Settings, signal: str) -> Any:
    """The OTLP exporter of ``signal`` ("traces", "metrics", "logs") for the settings' protocol."""
    module, cls = _EXPORTERS[signal]
    if settings.otlp_protocol == "grpc":
        exporter = getattr(importlib.import_module(f"opentelemetry.exporter.otlp.proto.grpc.{module}"), cls)
        return exporter(endpoint=settings.otlp_endpoint, insecure=settings.otlp_insecure, timeout=10)
    try:
        exporter = getattr(importlib.import_module(f"opentelemetry.exporter.otlp.proto.http.{module}"), cls)
    except ImportError:
        raise ValueError("otlp_protocol='http/protobuf' needs the OTLP/HTTP exporter: "
                         "pip install 'obslab[http]'") from None
    base = settings.otlp_endpoint if "://" in settings.otlp_endpoint else f"http://{settings.otlp_endpoint}"
    return exporter(endpoint=f"{base.rstrip('/')}/v1/{signal}", timeout=10)


def abort_retries(exporter: Any) -> None:
    """Stop an exporter's retry back-off now (used when the shutdown deadline has passed)."""
    event = getattr(exporter, "_shutdown_in_progress", None)
    if event is not None:
        event.set()
