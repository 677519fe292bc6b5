"""An in-process Prometheus ``/metrics`` endpoint (``prometheus_port``), beside the OTLP export."""

from __future__ import annotations

from typing import Callable

from opentelemetry.sdk.metrics.export import MetricReader

LOOPBACK = "127.0.0.1"


def start_prometheus_endpoint(port: int, host: str = LOOPBACK) -> tuple[MetricReader, Callable[[], None]]:
    """Serve the process's metrics on ``http://host:port/metrics``; returns the reader to give the
    meter provider and the function that stops the server. Binds to loopback unless told otherwise."""
    try:
        from opentelemetry.exporter.prometheus import PrometheusMetricReader
        from prometheus_client import CollectorRegistry, start_http_server
    except ImportError:
        raise ValueError(f"prometheus_port={port}: the Prometheus endpoint needs "
                         "pip install 'obslab[prometheus]'") from None
    registry = CollectorRegistry()  # our own, so two handles in one process never collide
    try:
        server, thread = start_http_server(port, addr=host, registry=registry)
    except OSError as exc:
        raise ValueError(f"prometheus_port={port}: cannot listen on {host}:{port} ({exc.strerror}); "
                         "the port is probably in use, choose another one") from None
    reader = PrometheusMetricReader(registry=registry)

    def stop() -> None:
        server.shutdown()
        server.server_close()
        thread.join(1)

    return reader, stop
