"""The telemetry handle: ``init_telemetry()`` builds it once, ``get_telemetry()`` returns it.

Set-up is all or nothing: everything that can be refused (settings, propagators, instrumentors)
is checked before anything global changes, and if a step still fails, what was done is undone
(the Prometheus endpoint stops, patches and logging hooks go, providers shut down).
``shutdown()`` gives the application back its logging configuration and patched functions
first, then flushes within ``shutdown_timeout``, without waiting at all on a collector that
refuses the connection.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import warnings
from contextlib import AbstractContextManager
from typing import Any, Callable, Mapping, Sequence

from opentelemetry import _logs, metrics, trace
from opentelemetry.metrics import Counter, Histogram, Meter, NoOpMeterProvider, UpDownCounter
from opentelemetry.propagate import get_global_textmap, set_global_textmap
from opentelemetry.trace import NoOpTracerProvider, Span, Tracer

from obslab import _diagnostics, _export, _globals, instrumentation, web
from obslab._outage import NOUNS, OutageBuffer, observe_drops
from obslab.agent import AgentInstruments
from obslab.config import SIGNALS, Default, Settings, load_settings
from obslab.genai import ContentRedactor, LLMCostProcessor, content_capture_mode, genai_handler
from obslab.logs import LoggingBridge, OTLPHandler, build_logger_provider, console_handler, find_installed_bridge
from obslab.metrics import build_meter_provider
from obslab.prices import PriceTable
from obslab.privacy import Redactor
from obslab.prometheus import start_prometheus_endpoint
from obslab.resource import build_resource
from obslab.system import register_system_metrics
from obslab.traces import build_tracer_provider, propagator

_INSTRUMENTATION_NAME = "obslab"
_OURS = "obslab_owned"  # marks the SDK providers a handle built, so that no later handle adopts them

_handle: Telemetry | None = None  # the one telemetry handle of the process
_handle_lock = threading.Lock()

Providers = tuple[Any, Any, Any]  # tracer, meter and logger providers; None: not set up elsewhere


class Telemetry:
    """Tracer, meter and logger of one service, and the agent helpers built on them.

    A handle made with ``enabled=False`` (``OTEL_SDK_DISABLED=true``, or before
    ``init_telemetry``) works the same way and records nothing. ``adopted`` are providers set up
    elsewhere in the process (by ``opentelemetry-instrument``, say), used instead of building ours.
    """

    def __init__(self, settings: Settings, enabled: bool = True, *, span_exporter: Any = None,
                 metric_exporter: Any = None, log_exporter: Any = None, metric_readers: tuple[Any, ...] = (),
                 arguments: Mapping[str, Any] = (), adopted: Providers | None = None) -> None:
        self.settings = settings
        self.enabled = enabled
        self._arguments = dict(arguments)
        self._shutdown_done = False
        self._installed = False
        self._undo: list[Callable[[], Any]] = []  # what install() changed, undone newest first
        self._stop_prometheus: Callable[[], None] | None = None
        self._network_exporters: list[Any] = []
        self._collectors: set[tuple[str, int]] = set()
        self._log_handlers: list[logging.Handler] = []
        self._quiet = _diagnostics.QuietSdkLoggers()
        self._built: list[Any] = [None, None, None]  # the providers this handle built
        self._replaces: tuple[Any, ...] = ()  # the providers of a handle shut down before this one
        self._built_once: tuple[Any, ...] = ()  # what _build made, kept after _release forgets it
        self._redactor = Redactor(settings.privacy_keys, settings.privacy_secret) if settings.privacy else None
        # Spans and log records may carry LLM message content once it is turned on: masked even with privacy off.
        self._content_redactor = self._redactor
        if self._redactor is None and enabled and content_capture_mode() != "no_content":
            self._content_redactor = ContentRedactor(settings.privacy_keys, settings.privacy_secret)
        self._prices = PriceTable(settings.prices)
        tracer_provider, meter_provider, logger_provider = adopted or (None, None, None)
        self._owned = (tracer_provider is None, meter_provider is None, logger_provider is None)
        if not enabled:
            tracer_provider, meter_provider = NoOpTracerProvider(), NoOpMeterProvider()
            self._owned = (False, False, False)
        else:
            try:
                built = self._build(span_exporter, metric_exporter, log_exporter, metric_readers,
                                    tracer_provider is None, meter_provider is None, logger_provider is None)
            except BaseException:
                self._release()
                raise
            tracer_provider = tracer_provider or built[0]
            meter_provider = meter_provider or built[1]
            logger_provider = logger_provider or built[2]
        self._tracer_provider: Any = tracer_provider
        self._meter_provider: Any = meter_provider
        self._logger_provider: Any = logger_provider
        self._tracer = self.get_tracer(_INSTRUMENTATION_NAME)
        self._meter = self.get_meter(_INSTRUMENTATION_NAME)
        if enabled and self._owned[0]:  # prices the helpers' and the instrumented clients' LLM calls
            tracer_provider.add_span_processor(LLMCostProcessor(self.get_meter("obslab.genai"), self._prices))
        buffers = self._outage_buffers()
        if buffers:  # obslab.outage.dropped{signal, reason}: what the outage buffers could not keep
            self._meter.create_observable_counter("obslab.outage.dropped", callbacks=[observe_drops(buffers)],
                                                  unit="{record}",
                                                  description="Spans and log records dropped during collector outages")
        genai = genai_handler(tracer_provider, meter_provider, logger_provider if enabled else _logs.NoOpLoggerProvider())
        self._agent = AgentInstruments(self._tracer, self._meter, genai, self._prices)

    def _build(self, span_exporter: Any, metric_exporter: Any, log_exporter: Any, metric_readers: tuple[Any, ...],
               traces: bool, metrics_: bool, logs: bool) -> Providers:
        """The providers this handle owns; the Prometheus endpoint starts here (stopped by _release)."""
        settings = self.settings
        extra_readers: tuple[Any, ...] = ()
        if metrics_ and settings.prometheus_port is not None:
            reader, self._stop_prometheus = start_prometheus_endpoint(settings.prometheus_port,
                                                                      redactor=self._redactor)
            extra_readers = (reader,)
        resource = build_resource(settings, self._redactor)
        built = self._built
        if traces:
            built[0], exporters = build_tracer_provider(settings, resource, span_exporter,
                                                        redactor=self._content_redactor)
            self._network(exporters, span_exporter, "traces")
        if metrics_:
            built[1], exporters = build_meter_provider(settings, resource, metric_exporter, metric_readers,
                                                       extra_readers, redactor=self._redactor)
            self._network(exporters, metric_exporter or metric_readers, "metrics")
        if logs:
            built[2], exporters = build_logger_provider(settings, resource, log_exporter,
                                                        redactor=self._content_redactor)
            self._network(exporters, log_exporter, "logs")
        for provider in built:
            if provider is not None:
                setattr(provider, _OURS, True)
        self._built_once = tuple(built)
        return built[0], built[1], built[2]

    def _network(self, exporters: list[Any], given: Any, signal: str) -> None:
        """Remember the OTLP exporters of ``signal`` and where they send (unless a test gave its own)."""
        if given:
            return
        for exporter in exporters:
            inner = exporter.exporter if isinstance(exporter, OutageBuffer) else exporter
            where = _export.address(inner) if _export.is_otlp(inner) else None
            if where is not None:
                self._network_exporters.append(exporter)
                self._collectors.add(where)

    def _outage_buffers(self) -> list[OutageBuffer]:
        return [exporter for exporter in self._network_exporters if isinstance(exporter, OutageBuffer)]

    # --- set-up of process-wide state, done once by init_telemetry -------------------------

    def _install(self) -> None:
        """Put the handle in place: instrumentation, global providers and propagators, the logging
        bridge, the exit hook. On failure, undoes what it did and re-raises."""
        if self._installed or not self.enabled:
            return
        try:
            # obslab's propagators setting, checked first: it may reject a name; without it, the
            # propagators the SDK read from OTEL_PROPAGATORS stay.
            textmap = propagator(self.settings.propagators) if self.settings.propagators is not None else None
            self._instrument_libraries()
            if self.settings.system_metrics:
                self._undo.append(register_system_metrics(self.get_meter("obslab.system"),
                                                          window=self.settings.metric_export_interval))
            if textmap is not None:
                previous_textmap = get_global_textmap()
                set_global_textmap(textmap)
                self._undo.append(lambda: set_global_textmap(previous_textmap))
            self._undo.append(web.install_trace_id_header())
            self._quiet.install()
            self._install_logging()
            self._set_global_providers()
            atexit.register(self.shutdown)
            self._undo.append(lambda: atexit.unregister(self.shutdown))
        except BaseException:
            self._uninstall()
            self._quiet.restore()
            self._release()
            raise
        self._installed = True

    def _install_logging(self) -> None:
        otlp = None
        if not self.settings.console_only and find_installed_bridge() is None:
            otlp = OTLPHandler(logger_provider=self._logger_provider)
        console = console_handler(self.settings, redactor=self._redactor)
        bridge = LoggingBridge(otlp, console, self.settings.log_level)
        self._log_handlers = bridge.handlers
        bridge.install()
        self._undo.append(bridge.uninstall)

    def _set_global_providers(self) -> None:
        providers = (self._tracer_provider, self._meter_provider, self._logger_provider)
        for signal, provider, owned in zip(SIGNALS, providers, self._owned):
            if owned:
                _globals.set_provider(signal, provider, retired=self._replaces)

    def _instrument_libraries(self) -> None:
        own = instrumentation.own_names(self.settings.instrument)
        if own:
            from obslab.data import DataInstrumentor  # imports nothing of pandas/NumPy until used

            data = DataInstrumentor(self.get_tracer("obslab.data"), self.get_meter("obslab.data"))
            self._undo.append(data.uninstrument)
            data.instrument(own)
        for instrumentor in instrumentation.instrument(self.settings.instrument, self._tracer_provider,
                                                       self._meter_provider, self._logger_provider):
            self._undo.append(instrumentor.uninstrument)

    def _uninstall(self) -> None:
        """Undo what install() changed in the application's process, newest first."""
        while self._undo:
            undo = self._undo.pop()
            try:
                undo()
            except Exception as error:
                _diagnostics.report("undoing the set-up", error)

    def _release(self) -> None:
        """Stop what the constructor started: the Prometheus endpoint and the providers it built."""
        if self._stop_prometheus is not None:
            self._stop_prometheus()
            self._stop_prometheus = None
        quiet = _diagnostics.QuietSdkLoggers()
        quiet.install()
        quiet.mute()  # nothing was emitted yet: the SDK's remarks about it are noise
        try:
            for exporter in self._network_exporters:
                exporter.shutdown()  # so that shutting the providers down waits on no collector
            for provider in self._built:
                if provider is not None:
                    provider.shutdown()
        finally:
            quiet.restore()
        self._network_exporters, self._built = [], [None, None, None]

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

    def create_histogram(self, name: str, description: str = "", unit: str = "ms",
                         boundaries: Sequence[float] | None = None) -> Histogram:
        """A histogram on the ``obslab`` meter (milliseconds unless told otherwise); ``boundaries``
        are its bucket boundaries (OpenTelemetry's advisory parameter), the SDK's default otherwise."""
        return self._meter.create_histogram(name, unit=unit, description=description,
                                            explicit_bucket_boundaries_advisory=boundaries)

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

    def trace_agent(self, name: str, model: str | None = None) -> AbstractContextManager[Span]:
        """See :meth:`obslab.agent.AgentInstruments.trace_agent`."""
        return self._agent.trace_agent(name, model)

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
        """Export what is buffered, in the calling thread; True when every signal was delivered.
        Returns at once when a collector refuses connections; otherwise each provider flushes within
        ``timeout`` s (default: shutdown_timeout) as far as it can tell, and an export already under
        way against a collector that never answers ends with the exporter's own timeout
        (``OTEL_EXPORTER_OTLP_TIMEOUT``)."""
        if not self.enabled:
            return True
        if _export.unreachable(self._collectors):
            return False
        try:
            return self._flush_all(timeout or self.settings.shutdown_timeout)
        except Exception as error:
            _diagnostics.report("flush", error)
            return False

    def shutdown(self, timeout: float | None = None) -> bool:
        """Give the application back its logging and patched functions, then flush and stop
        exporting; never takes longer than ``timeout`` s (default 2 s), and does not wait on a
        collector that cannot be reached. True when everything was delivered."""
        if not self.enabled or self._shutdown_done:
            return True
        self._shutdown_done = True
        self._uninstall()
        down = _export.unreachable(self._collectors)
        if down:
            self._quiet.mute()
            for exporter in self._network_exporters:
                exporter.shutdown()  # exports now fail at once (or go to the spool) instead of retrying
        # A collector that accepts connections and never answers would hold the exports until the
        # exporters' own timeout: past ``timeout``, the exporters are shut down, which ends them.
        interrupted = threading.Event()
        watchdog = threading.Timer(timeout or self.settings.shutdown_timeout, self._interrupt_exports, (interrupted,))
        watchdog.daemon = True
        watchdog.start()
        try:
            done = self._shutdown_all(timeout or self.settings.shutdown_timeout)
        except Exception as error:
            _diagnostics.report("shutdown", error)
            done = False
        finally:
            watchdog.cancel()
        done = done and not interrupted.is_set()
        if down or not done:
            self._report_unsent(down)
        if self._stop_prometheus is not None:
            self._stop_prometheus()
            self._stop_prometheus = None
        self._quiet.restore()
        return done and not down

    def _interrupt_exports(self, interrupted: threading.Event) -> None:
        """Shut the network exporters down (ending exports under way), on shutdown's deadline."""
        interrupted.set()
        self._quiet.mute()
        for exporter in self._network_exporters:
            try:
                exporter.shutdown()
            except Exception as error:
                _diagnostics.report("shutdown", error)

    def _flush_all(self, timeout: float) -> bool:
        millis = int(timeout * 1000)
        flushed = [provider.force_flush(millis) is not False
                   for provider in (self._tracer_provider, self._meter_provider, self._logger_provider)]
        return all([*flushed, *(buffer.force_flush(millis) for buffer in self._outage_buffers())])

    def _report_unsent(self, down: list[str]) -> None:
        """One stderr line on what could not be delivered at exit, and where it went."""
        buffers = self._outage_buffers()
        spooled = ", ".join(f"{b.spooled} {NOUNS[b.signal]}" for b in buffers if b.spooled)
        lost = ", ".join(f"{b.lost} {NOUNS[b.signal]}" for b in buffers if b.lost)
        where = f"collector {', '.join(down)} unreachable" if down else "collector too slow"
        if spooled:
            message = f"{where}: {spooled} written to {self.settings.spool_dir}, sent by the next start"
            message += f"; {lost} dropped" if lost else ""
        elif lost:
            message = f"{where}: unsent telemetry dropped ({lost}; OBSLAB_SPOOL_DIR keeps it for the next start)"
        else:
            message = f"{where}: unsent telemetry dropped"
        if down or lost or spooled:
            _diagnostics.notice("shutdown", message)

    def _shutdown_all(self, timeout: float) -> bool:
        delivered = self._flush_all(timeout) if not all(self._owned) else True
        for provider, owned in zip((self._tracer_provider, self._meter_provider, self._logger_provider), self._owned):
            if owned:  # adopted providers were flushed above; their owner shuts them down
                provider.shutdown()
        return delivered


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
    config_file: str | os.PathLike[str] | None = None,
    *,
    console_only: bool | None = None,
    otlp_protocol: str | None = None,
    propagators: Sequence[str] | None = None,
    privacy: bool | None = None,
    privacy_keys: Sequence[str] | None = None,
    prometheus_port: int | None = None,
    system_metrics: bool | None = None,
    instrument: str | Sequence[str] | None = None,
    env_file: str | os.PathLike[str] | None = None,
    prices: Mapping[str, Mapping[str, Mapping[str, float]]] | str | None = None,
    outage_buffer: int | None = None,
    spool_dir: str | os.PathLike[str] | None = None,
) -> Telemetry:
    """Set up traces, metrics and logs for this process and return the telemetry handle (a new
    one after ``shutdown()``).

    Arguments left as None come from the environment, a ``.env`` file (``env_file``, or ``.env``
    in the working directory), a YAML config file or defaults, in that order. A bad value raises
    ``ValueError`` naming the setting, the value and its source, and leaves nothing behind. A
    second call returns the first handle (with a warning if arguments differ).

    ``console_only`` prints all three signals to stdout and opens no connection; ``privacy`` masks
    secrets and personal data before export; ``prometheus_port`` serves ``/metrics`` on loopback;
    ``system_metrics`` adds CPU, memory and GC metrics; ``instrument`` turns on library
    instrumentors by name (``["fastapi", "requests", "pandas"]``) or all installed ones (``"auto"``),
    ``"openai"`` and ``"anthropic"`` among them; ``prices`` adds or overrides LLM prices
    (``{"openai": {"gpt-4o": {"input": 2.5, "output": 10}}}``, US dollars per million tokens).
    ``outage_buffer`` is how many spans and how many log records are kept while the collector is
    unreachable (10 000 each by default, 0 for none), sent in order when it answers again;
    ``spool_dir`` keeps what is still unsent at exit for the next process started with it.
    """
    from obslab.distro import ObslabConfigurator

    return ObslabConfigurator().configure(dict(locals()))


def _init(arguments: dict[str, Any], defaults: Mapping[str, Default] | None = None) -> Telemetry:
    """``init_telemetry`` with ``defaults`` below every other source (``auto_instrument``'s)."""
    global _handle
    with _handle_lock:
        retired: tuple[Any, ...] = ()
        if _handle is not None and _handle._shutdown_done and _handle.enabled:
            retired, _handle = tuple(_handle._built_once), None  # shut down: a new handle replaces it
        if _handle is not None:
            if _handle._arguments != arguments:
                warnings.warn("init_telemetry() was already called with other arguments; "
                              "returning the existing telemetry handle", RuntimeWarning, stacklevel=4)
            return _handle
        settings = load_settings(arguments, defaults=defaults)
        instrumentation.check_names(settings.instrument)
        if settings.disabled:
            _handle = Telemetry(settings, enabled=False, arguments=arguments)
            return _handle
        if settings.privacy and settings.privacy_secret is None:
            warnings.warn("privacy is on without OBSLAB_PRIVACY_SECRET: user ids are exported as [REDACTED]; "
                          "set a per-deployment secret to export keyed hashes that keep a user's requests "
                          "together", UserWarning, stacklevel=4)
        handle = Telemetry(settings, arguments=arguments,
                           adopted=_providers_set_up_elsewhere(settings, retired))
        handle._replaces = retired
        handle._install()
        _handle = handle
        return handle


def _providers_set_up_elsewhere(settings: Settings, retired: tuple[Any, ...] = ()) -> Providers | None:
    """The SDK providers already installed in this process (by ``opentelemetry-instrument``, or
    the application); None for a signal nobody set up (or set up by a handle now shut down, in
    ``retired``), which obslab then sets up itself."""
    from opentelemetry.sdk._logs import LoggerProvider
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.trace import TracerProvider

    current = (trace.get_tracer_provider(), metrics.get_meter_provider(), _logs.get_logger_provider())
    current = tuple(None if any(provider is old for old in retired) else provider for provider in current)
    found = tuple(provider if isinstance(provider, kind) and not getattr(provider, _OURS, False) else None
                  for provider, kind in zip(current, (TracerProvider, MeterProvider, LoggerProvider)))
    if not any(found):
        return None
    adopted = [signal for signal, provider in zip(SIGNALS, found) if provider is not None]
    needs = {"privacy": ("traces", "logs"), "prometheus_port": ("metrics",), "console_only": SIGNALS}
    for setting, signals in needs.items():
        clash = [signal for signal in signals if signal in adopted]
        if getattr(settings, setting) not in (None, False) and clash:
            raise ValueError(f"{setting}={getattr(settings, setting)!r}: OpenTelemetry {', '.join(clash)} were already "
                             "set up in this process (opentelemetry-instrument?), and obslab cannot add this to that "
                             "pipeline; run without opentelemetry-instrument to use it")
    capture = content_capture_mode()
    clash = [signal for signal in ("traces", "logs") if signal in adopted]
    if capture != "no_content" and clash:
        raise ValueError(f"OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT={capture!r}: OpenTelemetry "
                         f"{', '.join(clash)} were already set up in this process (opentelemetry-instrument?), and "
                         "obslab cannot mask LLM message content in that pipeline; run without "
                         "opentelemetry-instrument to capture content")
    logging.getLogger("obslab").info("OpenTelemetry %s already set up in this process: obslab uses those providers",
                                     ", ".join(adopted))
    return found[0], found[1], found[2]


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
