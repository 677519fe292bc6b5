"""An in-process Prometheus ``/metrics`` endpoint (``prometheus_port``), beside the OTLP export."""

from __future__ import annotations

from typing import Any, Callable, Iterator

from opentelemetry.sdk.metrics.export import MetricReader

from obslab.privacy import Redactor

LOOPBACK = "127.0.0.1"


def start_prometheus_endpoint(port: int, host: str = LOOPBACK, redactor: Redactor | None = None
                              ) -> tuple[MetricReader, Callable[[], None]]:
    """Serve the process's metrics on ``http://host:port/metrics`` (label values masked when
    ``redactor`` is given); returns the reader to give the meter provider and the function that
    stops the server. Binds to loopback unless told otherwise."""
    try:
        from opentelemetry.exporter.prometheus import PrometheusMetricReader
        from prometheus_client import CollectorRegistry, start_http_server
    except ImportError:
        raise ValueError(f"prometheus_port={port}: the Prometheus endpoint needs "
                         "pip install 'obslab[prometheus]'") from None
    registry = CollectorRegistry()  # our own, so two handles in one process never collide
    served = registry
    if redactor is not None:
        served = CollectorRegistry()
        served.register(_MaskedCollector(registry, redactor))
    try:
        server, thread = start_http_server(port, addr=host, registry=served)
    except OSError as exc:
        raise ValueError(f"prometheus_port={port}: cannot listen on {host}:{port} ({exc.strerror}); "
                         "the port is probably in use, choose another one") from None
    reader = PrometheusMetricReader(registry=registry)

    def stop() -> None:
        server.shutdown()
        server.server_close()
        thread.join(1)

    return reader, stop


class _MaskedCollector:
    """The metric families of ``registry``, with every label value masked."""

    def __init__(self, registry: Any, redactor: Redactor) -> None:
        self._registry, self._redactor = registry, redactor

    def collect(self) -> Iterator[Any]:
        for family in self._registry.collect():
            family.samples = [sample._replace(labels={k: str(self._redactor.value(k, v))
                                                      for k, v in sample.labels.items()})
                              for sample in family.samples]
            yield family
