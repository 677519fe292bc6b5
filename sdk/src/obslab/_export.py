"""The exporters of each signal, as opentelemetry-sdk chooses and configures them, and the
reachability check that lets exit skip waiting on a collector that is not there.

Which exporters a signal gets is the SDK's reading of ``OTEL_{TRACES,METRICS,LOGS}_EXPORTER``
(``otlp`` when unset, ``none`` for no exporter) and of the OTLP protocol variables; each exporter
reads its own ``OTEL_EXPORTER_OTLP_*`` variables (generic and per-signal endpoint, insecure,
timeout, headers, certificates, compression). obslab passes only what its own settings say:
``otlp_endpoint`` (argument, ``OTLP_ENDPOINT`` or YAML) and ``otlp_protocol`` (argument or YAML).
A value the SDK cannot use gives a warning and is left out, never an exception at start.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import logging
import os
import socket
import threading
import weakref
from typing import Any, Iterator
from urllib.parse import urlsplit

from grpc import StatusCode

from obslab import _components
from obslab.config import Settings

_logger = logging.getLogger("obslab")
_DEFAULT_PORTS = {"https": 443, "http": 80}
BUFFERED = ("traces", "logs")  # the signals an outage buffer keeps (metrics are cumulative)
# With an outage buffer, the gRPC exporter retries only what a collector that is up asks to retry;
# an unreachable collector (UNAVAILABLE, DEADLINE_EXCEEDED, CANCELLED) fails the export at once and
# the buffer keeps the batch, instead of the exporter's back-off holding it for seconds.
_RETRIED_BY_EXPORTER = frozenset({StatusCode.RESOURCE_EXHAUSTED, StatusCode.ABORTED, StatusCode.OUT_OF_RANGE,
                                  StatusCode.DATA_LOSS})
_EXPORTING: contextvars.ContextVar[bool] = contextvars.ContextVar("obslab_exporting", default=False)
_FLUSHING: contextvars.ContextVar[bool] = contextvars.ContextVar("obslab_flushing", default=False)
_PROTOCOL_EXPORTERS = {"grpc": "otlp_proto_grpc", "http/protobuf": "otlp_proto_http"}
_OTLP_NAMES = frozenset({"otlp", *_PROTOCOL_EXPORTERS.values()})


def exporter_names(settings: Settings, signal: str) -> list[str]:
    """The entry-point names of the exporters of ``signal``, as the SDK reads them (see
    :func:`obslab._components.exporter_names`); obslab's ``otlp_protocol`` setting, when given,
    picks the OTLP one."""
    names = _components.exporter_names(signal)
    if settings.otlp_protocol is not None:
        names = [_PROTOCOL_EXPORTERS[settings.otlp_protocol] if name in _OTLP_NAMES else name for name in names]
    return names


def build_exporters(settings: Settings, signal: str) -> list[Any]:
    """The exporters of ``signal`` (none in console-only mode), made by their own classes from the
    ``OTEL_*`` variables, with obslab's endpoint when one is set. Where the SDK raises at start, a
    warning instead: an exporter name it cannot load gives the default (OTLP) exporter, a variable
    value an exporter refuses its default (:func:`obslab._components.tolerant`)."""
    if settings.console_only:
        return []
    classes: dict[str, Any] = {}  # entry-point name -> class, one exporter each as the SDK makes them
    for name in exporter_names(settings, signal):
        try:
            classes.setdefault(name, _components.exporter_class(signal, name))
        except Exception as error:
            if name == "otlp_proto_http" and settings.otlp_protocol == "http/protobuf":
                raise ValueError("otlp_protocol='http/protobuf' needs the OTLP/HTTP exporter: "
                                 "pip install 'obslab[http]'") from None
            default = _default_exporter(settings, signal)
            try:
                if default == name:
                    raise error
                classes.setdefault(default, _components.exporter_class(signal, default))
                _logger.warning("%s exporter %r cannot be loaded (%s); using %s", signal, name, error, default)
            except Exception:
                _logger.warning("%s exporter %r cannot be loaded (%s): %s not exported there", signal, name,
                                error, signal)
    exporters = []
    for name, cls in classes.items():
        try:
            exporter = interruptible(marked(_components.tolerant(lambda: cls(**_arguments(settings, signal, name)),
                                                                 f"{signal} exporter {name!r}")))
            if signal == "metrics" and settings.outage_buffer and is_otlp(exporter):
                exporter = failing_fast_when_unreachable(exporter)
            exporters.append(exporter)
        except Exception as error:  # refused even with the SDK's defaults
            _logger.warning("%s exporter %r cannot be made (%s: %s): %s not exported there", signal, name,
                            type(error).__name__, error, signal)
    # Local exporters (console) first: a flush reaches them before any collector that may not answer.
    return sorted(exporters, key=is_otlp)


def _default_exporter(settings: Settings, signal: str) -> str:
    """The entry point of the default (OTLP) exporter of ``signal``, as the protocol settings say."""
    if settings.otlp_protocol is not None:
        return _PROTOCOL_EXPORTERS[settings.otlp_protocol]
    (name,) = _components.exporter_names_of(_components.DEFAULT_EXPORTER, signal)
    return name


def _arguments(settings: Settings, signal: str, name: str) -> dict[str, Any]:
    """What obslab gives an exporter: its endpoint setting, and for gRPC behind an outage buffer
    the retries it leaves to the buffer."""
    arguments: dict[str, Any] = {}
    if name == "otlp_proto_grpc":
        if settings.otlp_endpoint is not None:
            arguments["endpoint"] = settings.otlp_endpoint
            arguments["insecure"] = urlsplit(settings.otlp_endpoint).scheme != "https"
        if settings.outage_buffer and signal in BUFFERED:
            arguments["retryable_error_codes"] = _RETRIED_BY_EXPORTER
    elif name == "otlp_proto_http" and settings.otlp_endpoint is not None:
        arguments["endpoint"] = f"{settings.otlp_endpoint.rstrip('/')}/v1/{signal}"
    return arguments


def interruptible(exporter: Any) -> Any:
    """``exporter``, whose shutdown also ends the requests it has under way when it is an OTLP/HTTP
    exporter (on its requests session), as closing the channel does for the gRPC ones. ``Session.close()``
    drops idle connections only: a collector that accepts and never answers held the exit for the
    exporter's own timeout (10 s), past ``shutdown_timeout``. After the shutdown the session opens no
    connection (the exporter's one immediate retry fails at once). Connections through a proxy are
    left as they are."""
    session = getattr(getattr(getattr(exporter, "_client", None), "_transport", None), "_session", None)
    adapters = getattr(session, "adapters", None)
    if not isinstance(adapters, dict):
        return exporter
    in_use: weakref.WeakSet[Any] = weakref.WeakSet()
    closed = threading.Event()
    pools = _tracked_pools(in_use, closed)
    for adapter in adapters.values():
        manager = getattr(adapter, "poolmanager", None)
        if manager is not None and isinstance(getattr(manager, "pool_classes_by_scheme", None), dict):
            manager.pool_classes_by_scheme = pools
            manager.clear()
    close = session.close

    def close_ending_requests() -> None:
        closed.set()
        for connection in list(in_use):
            sock = getattr(connection, "sock", None)
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)  # a blocked read returns: the request fails now
        close()

    session.close = close_ending_requests
    return exporter


def _tracked_pools(in_use: weakref.WeakSet[Any], closed: threading.Event) -> dict[str, type]:
    """urllib3's connection pools, keeping the connections out of the pool (sending) in ``in_use``
    and handing out none once ``closed`` is set."""
    from urllib3 import HTTPConnectionPool, HTTPSConnectionPool
    from urllib3.exceptions import ClosedPoolError

    class Tracked:
        def _get_conn(self, timeout: float | None = None) -> Any:
            if closed.is_set():
                raise ClosedPoolError(self, "the exporter was shut down")
            connection = super()._get_conn(timeout)  # type: ignore[misc]
            in_use.add(connection)
            return connection

        def _put_conn(self, conn: Any) -> None:
            if conn is not None:
                in_use.discard(conn)
            super()._put_conn(conn)  # type: ignore[misc]

    # Named as urllib3's own: the names show in the export errors obslab prints.
    return {"http": type("HTTPConnectionPool", (Tracked, HTTPConnectionPool), {}),
            "https": type("HTTPSConnectionPool", (Tracked, HTTPSConnectionPool), {})}


@contextlib.contextmanager
def exporting() -> Iterator[None]:
    """Marks the code inside as obslab's export path: log records it causes are not exported again."""
    token = _EXPORTING.set(True)
    try:
        yield
    finally:
        _EXPORTING.reset(token)


def is_exporting() -> bool:
    """Whether the current code runs inside an export (see :func:`exporting`)."""
    return _EXPORTING.get()


def marked(exporter: Any) -> Any:
    """``exporter`` whose exports run marked as the export path (see :func:`exporting`)."""
    export = exporter.export

    @functools.wraps(export)
    def export_marked(*args: Any, **kwargs: Any) -> Any:
        with exporting():
            return export(*args, **kwargs)

    exporter.export = export_marked
    return exporter


@contextlib.contextmanager
def flushing() -> Iterator[None]:
    """Marks the code inside as a flush the application waits for (see :func:`failing_fast_when_unreachable`)."""
    token = _FLUSHING.set(True)
    try:
        yield
    finally:
        _FLUSHING.reset(token)


def failing_fast_when_unreachable(exporter: Any) -> Any:
    """A metric ``exporter`` whose export, inside a flush (:func:`flushing`), fails at once while
    nothing accepts connections at its collector, instead of retrying until its timeout: the flush
    is not held by a collector that is not there, and metrics are cumulative (the next export after
    the outage carries the totals). The periodic exports are left as they are."""
    from opentelemetry.sdk.metrics.export import MetricExportResult

    where = address(exporter)
    export = exporter.export

    @functools.wraps(export)
    def export_if_reachable(*args: Any, **kwargs: Any) -> Any:
        if _FLUSHING.get() and where is not None and unreachable({where}):
            return MetricExportResult.FAILURE
        return export(*args, **kwargs)

    exporter.export = export_if_reachable
    return exporter


def is_otlp(exporter: Any) -> bool:
    """Whether ``exporter`` is one of the SDK's OTLP exporters (gRPC or HTTP)."""
    return type(exporter).__module__.startswith("opentelemetry.exporter.otlp.")


def address(exporter: Any) -> tuple[str, int] | None:
    """Host and port an OTLP exporter sends to (None when it cannot be told)."""
    endpoint = getattr(exporter, "_endpoint", None)
    if not isinstance(endpoint, str) or not endpoint:
        return None
    parts = urlsplit(endpoint if "://" in endpoint else f"//{endpoint}")
    try:
        port = parts.port or _DEFAULT_PORTS.get(parts.scheme, 443)
    except ValueError:
        return None
    return (parts.hostname, port) if parts.hostname else None


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
