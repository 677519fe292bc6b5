"""The telemetry handle: ``init_telemetry()`` builds it once, ``get_telemetry()`` returns it."""

from __future__ import annotations

import atexit
import logging
import threading
import warnings
from contextlib import AbstractContextManager
from typing import Any, Callable, Mapping, Sequence

from opentelemetry import _logs, metrics, trace
from opentelemetry.metrics import Counter, Histogram, Meter, NoOpMeterProvider, UpDownCounter
from opentelemetry.trace import NoOpTracerProvider, Span, Tracer

from obslab import _diagnostics, _export, instrumentation, web
from obslab.agent import AgentInstruments
from obslab.config import Settings, load_settings
from obslab.logs import (
    OTLPHandler,
    build_logger_provider,
    console_handler,
    find_installed_bridge,
    install_handlers,
    remove_handlers,
)
from obslab.metrics import build_meter_provider
from obslab.privacy import Redactor
from obslab.prometheus import start_prometheus_endpoint
from obslab.resource import build_resource
from obslab.system import register_system_metrics
from obslab.traces import build_tracer_provider, set_propagators

_INSTRUMENTATION_NAME = "obslab"

_handle: Telemetry | None = None  # the one telemetry handle of the process
_handle_lock = threading.Lock()


class Telemetry:
    """Tracer, meter and logger of one service, and the agent helpers built on them.

    A handle made with ``enabled=False`` (``OTEL_SDK_DISABLED=true``, or before
    ``init_telemetry``) works the same way and records nothing.
    """

    def __init__(self, settings: Settings, enabled: bool = True, *, span_exporter: Any = None,
                 metric_exporter: Any = None, log_exporter: Any = None, metric_readers: tuple[Any, ...] = (),
                 arguments: Mapping[str, Any] = (), adopted: tuple[Any, Any, Any] | None = None) -> None:
        self.settings = settings
        self.enabled = enabled
        self._arguments = dict(arguments)
        self._shutdown_done = False
        self._exporters: list[Any] = []
        self._log_handlers: list[logging.Handler] = []
        self._undo: list[Callable[[], Any]] = []  # run at shutdown, newest first
        self._redactor = Redactor(settings.privacy_keys) if settings.privacy else None
        self._owns_providers = adopted is None
        self._tracer_provider: Any
        self._meter_provider: Any
        self._logger_provider: Any
        if adopted is not None:
            # Set up by opentelemetry-instrument (or the app): use those, never a second pipeline.
            self._tracer_provider, self._meter_provider, self._logger_provider = adopted
        elif not enabled:
            self._tracer_provider = NoOpTracerProvider()
            self._meter_provider = NoOpMeterProvider()
            self._logger_provider = None
        else:
            extra_readers: tuple[Any, ...] = ()
            if settings.prometheus_port is not None:
                reader, stop = start_prometheus_endpoint(settings.prometheus_port)
                extra_readers, self._undo = (reader,), [stop]
            resource = build_resource(settings)
            self._tracer_provider, span_exps = build_tracer_provider(
                settings, resource, span_exporter, redactor=self._redactor)
            self._meter_provider, metric_exps = build_meter_provider(
                settings, resource, metric_exporter, metric_readers, extra_readers)
            self._logger_provider, log_exps = build_logger_provider(
                settings, resource, log_exporter, redactor=self._redactor)
            self._exporters = [*span_exps, *metric_exps, *log_exps]
        self._tracer = self.get_tracer(_INSTRUMENTATION_NAME)
        self._meter = self.get_meter(_INSTRUMENTATION_NAME)
        self._agent = AgentInstruments(self._tracer, self._meter)

    # --- set-up of process-wide state, done once by init_telemetry -------------------------

    def _install(self) -> None:
        _diagnostics.quiet_sdk_loggers()
        set_propagators(self.settings.propagators)  # first: it may reject a name
        if self._owns_providers:
            self._tracer_provider._obslab = True  # tells a later handle (tests) that this one was ours
            trace.set_tracer_provider(self._tracer_provider)
            metrics.set_meter_provider(self._meter_provider)
            _logs.set_logger_provider(self._logger_provider)
        web.install_trace_id_header()
        otlp = None
        if not self.settings.console_only and find_installed_bridge() is None:
            otlp = OTLPHandler(logger_provider=self._logger_provider)
        console = console_handler(self.settings, redactor=self._redactor)
        self._log_handlers = [h for h in (otlp, console) if h is not None]
        install_handlers(otlp, console, self.settings.log_level)
        if self.settings.system_metrics:
            self._undo.append(register_system_metrics(self.get_meter("obslab.system")))
        self._instrument_libraries()
        atexit.register(self.shutdown)

    def _instrument_libraries(self) -> None:
        own = instrumentation.own_names(self.settings.instrument)
        if own:
            from obslab.data import DataInstrumentor  # imports nothing of pandas/NumPy until used

            data = DataInstrumentor(self.get_tracer("obslab.data"), self.get_meter("obslab.data"))
            data.instrument(own)
            self._undo.append(data.uninstrument)
        for instrumentor in instrumentation.instrument(self.settings.instrument, self._tracer_provider,
                                                       self._meter_provider):
            self._undo.append(instrumentor.uninstrument)

    # --- tracer, meter, logger ------------------------------------------------------------

    def get_tracer(self, name: str) -> Tracer:
        """A tracer for instrumentation scope ``name``."""
        return self._tracer_provider.get_tracer(name)

    def get_meter(self, name: str) -> Meter:
        """A meter for instrumentation scope ``name``."""
        return self._meter_provider.get_meter(name)

    def get_logger(self, name: str | None = None) -> logging.Logger:
        """A stdlib logger (named after the service by default); its records reach OTLP through
        the root logger bridge."""
        return logging.getLogger(name or self.settings.service_name)

    def get_otel_logger(self, name: str) -> _logs.Logger:
        """An OpenTelemetry logger (Logs API) for code that emits log records itself, like the
        structlog integration."""
        return self._logger_provider.get_logger(name) if self.enabled else _logs.get_logger(name)

    @property
    def tracer(self) -> Tracer:
        """The ``obslab`` tracer, for code that wants one without naming a scope."""
        return self._tracer

    def create_counter(self, name: str, description: str = "", unit: str = "1") -> Counter:
        """A monotonic counter on the ``obslab`` meter (arguments in the autotelemetry seed's order)."""
        return self._meter.create_counter(name, unit=unit, description=description)

    def create_histogram(self, name: str, description: str = "", unit: str = "ms") -> Histogram:
        """A histogram on the ``obslab`` meter (milliseconds unless told otherwise)."""
        return self._meter.create_histogram(name, unit=unit, description=description)

    def create_up_down_counter(self, name: str, description: str = "", unit: str = "1") -> UpDownCounter:
        """A counter that can go down (queue sizes, sessions in flight)."""
        return self._meter.create_up_down_counter(name, unit=unit, description=description)

    def span(self, name: str, **attributes: Any) -> AbstractContextManager[Span]:
        """A span as ``with telemetry.span("x", k=v):`` or as ``@telemetry.span("x")`` on sync and
        async functions (the SDK's context manager is also a decorator: nothing is added on top)."""
        return self._tracer.start_as_current_span(name, attributes=attributes)

    def instrument_app(self, app: Any) -> Any:
        """Instrument a FastAPI/Starlette or Flask app made before ``instrument=[...]`` took effect
        (its responses then carry ``X-Trace-ID``); returns the app."""
        return web.instrument_app(app, self._tracer_provider, self._meter_provider)

    def get_trace_context(self) -> dict[str, str]:
        """``{"trace_id", "span_id"}`` of the current span in hex; empty strings outside a span."""
        ctx = trace.get_current_span().get_span_context()
        if not ctx.is_valid:
            return {"trace_id": "", "span_id": ""}
        return {"trace_id": f"{ctx.trace_id:032x}", "span_id": f"{ctx.span_id:016x}"}

    # --- agent helpers ----------------------------------------------------------------------

    def trace_agent_iteration(self, iteration: int) -> AbstractContextManager[Span]:
        """See :meth:`obslab.agent.AgentInstruments.trace_agent_iteration`."""
        return self._agent.trace_agent_iteration(iteration)

    def trace_llm_call(self, model: str, provider: str) -> AbstractContextManager[Span]:
        """See :meth:`obslab.agent.AgentInstruments.trace_llm_call`."""
        return self._agent.trace_llm_call(model, provider)

    def trace_tool_call(self, name: str, **attributes: Any) -> AbstractContextManager[Span]:
        """See :meth:`obslab.agent.AgentInstruments.trace_tool_call`."""
        return self._agent.trace_tool_call(name, **attributes)

    def record_llm_usage(self, model: str, provider: str, prompt_tokens: int, completion_tokens: int,
                         cost_usd: float | None = None) -> None:
        """See :meth:`obslab.agent.AgentInstruments.record_llm_usage`."""
        self._agent.record_llm_usage(model, provider, prompt_tokens, completion_tokens, cost_usd)

    def record_request(self, intent: str, duration_ms: float, ok: bool) -> None:
        """See :meth:`obslab.agent.AgentInstruments.record_request`."""
        self._agent.record_request(intent, duration_ms, ok)

    def record_error(self, error_type: str, component: str) -> None:
        """See :meth:`obslab.agent.AgentInstruments.record_error`."""
        self._agent.record_error(error_type, component)

    # --- flush and shutdown -----------------------------------------------------------------

    def force_flush(self, timeout: float | None = None) -> bool:
        """Export what is buffered; gives up after ``timeout`` s (default: shutdown_timeout)."""
        if not self.enabled:
            return True
        return self._bounded(self._flush_all, timeout or self.settings.shutdown_timeout)

    def shutdown(self, timeout: float | None = None) -> bool:
        """Flush and stop exporting; never takes longer than ``timeout`` s (default 2 s)."""
        if not self.enabled or self._shutdown_done:
            return True
        self._shutdown_done = True
        done = self._bounded(self._shutdown_all, timeout or self.settings.shutdown_timeout)
        if not done:
            for exporter in self._exporters:
                _export.abort_retries(exporter)
        remove_handlers()
        while self._undo:
            self._undo.pop()()
        return done

    def _flush_all(self) -> None:
        for provider in (self._tracer_provider, self._meter_provider, self._logger_provider):
            provider.force_flush()

    def _shutdown_all(self) -> None:
        if not self._owns_providers:  # their owner shuts them down
            return self._flush_all()
        for provider in (self._tracer_provider, self._meter_provider, self._logger_provider):
            provider.shutdown()

    @staticmethod
    def _bounded(work: Callable[[], None], timeout: float) -> bool:
        """Run ``work`` in a daemon thread; True if it finished within ``timeout`` seconds."""
        worker = threading.Thread(target=work, name="obslab-flush", daemon=True)
        worker.start()
        worker.join(timeout)
        return not worker.is_alive()


def init_telemetry(
    service_name: str | None = None,
    service_version: str | None = None,
    environment: str | None = None,
    otlp_endpoint: str | None = None,
    enable_console_export: bool | None = None,
    sampling_ratio: float | None = None,
    log_level: str | None = None,
    json_logs: bool | None = None,
    resource_attributes: Mapping[str, str] | None = None,
    metric_export_interval: float | None = None,
    config_file: str | None = None,
    *,
    console_only: bool | None = None,
    otlp_protocol: str | None = None,
    propagators: Sequence[str] | None = None,
    privacy: bool | None = None,
    privacy_keys: Sequence[str] | None = None,
    prometheus_port: int | None = None,
    system_metrics: bool | None = None,
    instrument: str | Sequence[str] | None = None,
) -> Telemetry:
    """Set up traces, metrics and logs for this process and return the telemetry handle.

    Arguments left as None come from the environment, a ``.env`` file, a YAML config file or
    defaults, in that order. A bad value raises ``ValueError`` naming the setting, the value and
    its source. A second call returns the first handle (with a warning if arguments differ).

    ``console_only`` prints all three signals to stdout and opens no connection; ``privacy`` masks
    secrets and personal data before export; ``prometheus_port`` serves ``/metrics`` on loopback;
    ``system_metrics`` adds CPU, memory and GC metrics; ``instrument`` turns on library
    instrumentors by name (``["fastapi", "requests", "pandas"]``) or all installed ones (``"auto"``).
    """
    global _handle
    arguments = dict(locals())
    with _handle_lock:
        if _handle is not None:
            if _handle._arguments != arguments:
                warnings.warn("init_telemetry() was already called with other arguments; "
                              "returning the existing telemetry handle", RuntimeWarning, stacklevel=2)
            return _handle
        settings = load_settings(arguments)
        instrumentation.check_names(settings.instrument)
        if settings.disabled:
            _handle = Telemetry(settings, enabled=False, arguments=arguments)
            return _handle
        handle = Telemetry(settings, arguments=arguments, adopted=_providers_set_up_elsewhere(settings))
        handle._install()
        _handle = handle
        return handle


def _providers_set_up_elsewhere(settings: Settings) -> tuple[Any, Any, Any] | None:
    """The SDK providers already installed in this process (by ``opentelemetry-instrument``, say)."""
    from opentelemetry.sdk.trace import TracerProvider as SdkTracerProvider

    current = trace.get_tracer_provider()
    if not isinstance(current, SdkTracerProvider) or getattr(current, "_obslab", False):
        return None
    for setting in ("privacy", "prometheus_port", "console_only"):
        if getattr(settings, setting) not in (None, False):
            raise ValueError(f"{setting}={getattr(settings, setting)!r}: OpenTelemetry was already set up in this "
                             "process (opentelemetry-instrument?), and obslab cannot add this to its pipeline; "
                             "run without opentelemetry-instrument to use it")
    logging.getLogger("obslab").info("OpenTelemetry already set up in this process: obslab uses its providers")
    return trace.get_tracer_provider(), metrics.get_meter_provider(), _logs.get_logger_provider()


def get_telemetry() -> Telemetry:
    """The handle made by ``init_telemetry``, or a no-op handle if it was not called yet."""
    return _handle if _handle is not None else _NOOP


def _reset_for_tests() -> None:
    """Forget the process handle (tests only)."""
    global _handle
    if _handle is not None:
        _handle.shutdown(0.5)
    _handle = None


_NOOP = Telemetry(Settings(), enabled=False)
