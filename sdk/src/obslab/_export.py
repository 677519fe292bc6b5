"""OTLP exporters of the three signals (gRPC by default, HTTP on request), configured as the
OpenTelemetry specification says, and the reachability check that lets exit skip waiting on a
collector that is not there.

Endpoints: a signal's own endpoint (``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``...) is used as is;
otherwise the common one, to which OTLP/HTTP appends ``v1/<signal>`` (after any path). For gRPC,
``https://`` means TLS, ``http://`` plain text, and no scheme follows ``OTEL_EXPORTER_OTLP_INSECURE``.
Headers, compression and certificates are left to the exporters, which read their
``OTEL_EXPORTER_OTLP_*`` variables themselves.
"""

from __future__ import annotations

import importlib
import socket
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from grpc import StatusCode

from obslab.config import Settings

# signal -> (module, class) in the gRPC and HTTP exporter packages
_EXPORTERS = {
    "traces": ("trace_exporter", "OTLPSpanExporter"),
    "metrics": ("metric_exporter", "OTLPMetricExporter"),
    "logs": ("_log_exporter", "OTLPLogExporter"),
}
_DEFAULT_PORTS = {"https": 443, "http": 80}
BUFFERED = ("traces", "logs")  # the signals an outage buffer keeps (metrics are cumulative)
# With an outage buffer, the gRPC exporter retries only what a collector that is up asks to retry;
# an unreachable collector (UNAVAILABLE, DEADLINE_EXCEEDED, CANCELLED) fails the export at once and
# the buffer keeps the batch, instead of the exporter's back-off holding it for seconds.
_RETRIED_BY_EXPORTER = frozenset({StatusCode.RESOURCE_EXHAUSTED, StatusCode.ABORTED, StatusCode.OUT_OF_RANGE,
                                  StatusCode.DATA_LOSS})


@dataclass(frozen=True)
class Target:
    """Where and how one signal is exported."""

    endpoint: str  # what the exporter is given
    insecure: bool  # gRPC only: no TLS
    timeout: float  # seconds
    address: tuple[str, int]  # host and port, for the reachability check


def target(settings: Settings, signal: str) -> Target:
    """Endpoint, TLS and timeout of ``signal`` ("traces", "metrics", "logs")."""
    endpoint = settings.signal_endpoint(signal)
    own = getattr(settings, f"otlp_{signal}_endpoint") is not None
    parts = urlsplit(endpoint if "://" in endpoint else f"//{endpoint}")
    insecure = parts.scheme == "http" or (not parts.scheme and settings.otlp_insecure is not False)
    if settings.otlp_protocol == "http/protobuf" and not own:
        endpoint = f"{endpoint.rstrip('/')}/v1/{signal}"
    port = parts.port or _DEFAULT_PORTS.get(parts.scheme, 443)
    return Target(endpoint, insecure, settings.otlp_timeout, (parts.hostname or "", port))


def otlp_exporter(settings: Settings, signal: str) -> Any:
    """The OTLP exporter of ``signal`` for the settings' protocol."""
    module, cls = _EXPORTERS[signal]
    where = target(settings, signal)
    if settings.otlp_protocol == "grpc":
        exporter = getattr(importlib.import_module(f"opentelemetry.exporter.otlp.proto.grpc.{module}"), cls)
        # With an outage buffer, unavailability is the buffer's to retry.
        retry = {"retryable_error_codes": _RETRIED_BY_EXPORTER} if settings.outage_buffer and signal in BUFFERED else {}
        return exporter(endpoint=where.endpoint, insecure=where.insecure, timeout=where.timeout, **retry)
    try:
        exporter = getattr(importlib.import_module(f"opentelemetry.exporter.otlp.proto.http.{module}"), cls)
    except ImportError:
        raise ValueError("otlp_protocol='http/protobuf' needs the OTLP/HTTP exporter: "
                         "pip install 'obslab[http]'") from None
    return exporter(endpoint=where.endpoint, timeout=where.timeout)


def unreachable(addresses: set[tuple[str, int]], timeout: float = 0.2) -> list[str]:
    """The addresses where nothing accepts a TCP connection within ``timeout`` seconds (a refused
    connection answers at once)."""
    down = []
    for host, port in sorted(addresses):
        try:
            socket.create_connection((host, port), timeout=timeout).close()
        except OSError as error:
            down.append(f"{host}:{port} ({error.strerror or type(error).__name__})")
    return down
