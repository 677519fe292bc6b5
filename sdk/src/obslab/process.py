"""What a handle changes in the application's process: the global providers and propagators, library
instrumentation, system metrics, the ``X-Trace-ID`` hook, the logging bridge, the SDK loggers'
quieting and the exit hook (also run on a SIGTERM the process leaves to its default). One undo stack: a refused start and ``shutdown()`` give everything back,
newest first.
"""

from __future__ import annotations

import atexit
import contextlib
import dataclasses
import logging
import signal
import threading
from typing import Any, Callable, Iterator


from opentelemetry.propagate import get_global_textmap, set_global_textmap

from obslab import _components, _diagnostics, _globals, instrumentation, web
from obslab.config import SIGNALS, Settings
from obslab.genai import content_capture_mode
from obslab.logs import LoggingBridge, OTLPHandler, console_handler, find_installed_bridge
from obslab.pipeline import OURS, Pipeline, Providers
from obslab.system import register_system_metrics


_EXIT_HOOK = "_obslab_exit_hook"  # marks obslab's SIGTERM handler


@contextlib.contextmanager
def sigterm_deferred() -> Iterator[None]:
    """Inside: a SIGTERM the process leaves to its default waits until the end, then ends the process
    as it would have. The exit flush is bounded (``shutdown_timeout``): a SIGTERM arriving during it
    (``docker stop`` as the application returns) ended the process at once, without the exit's line
    on what was not delivered. Only the main thread can set a handler; elsewhere nothing changes."""
    if threading.current_thread() is not threading.main_thread() \
            or signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
        yield
        return
    received: list[int] = []
    signal.signal(signal.SIGTERM, lambda signum, frame: received.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        if received:
            signal.raise_signal(signal.SIGTERM)


class ProcessState:
    """Installs ``pipeline`` in the process (``install``) and takes it all back (``uninstall``).
    ``on_exit`` is what the exit hook calls; ``retired`` are providers of a shut-down handle that
    this one replaces as the globals. ``otlp_logs``: send the log records to OTLP from ``install()``
    on (else from :meth:`export_log_records`, under ``opentelemetry-instrument``)."""

    def __init__(self, pipeline: Pipeline, on_exit: Callable[[], Any], retired: tuple[Any, ...] = (),
                 otlp_logs: bool = True) -> None:
        self.pipeline = pipeline
        self.settings: Settings = pipeline.settings
        self.retired = retired
        self.otlp_logs = otlp_logs
        self.log_handlers: list[logging.Handler] = []
        self._bridge: LoggingBridge | None = None
        self.undo: list[Callable[[], Any]] = []  # what install() changed, undone newest first
        self._on_exit = on_exit
        self.installed = False

    def install(self) -> None:
        """Instrumentation, global providers and propagators, the logging bridge, the exit hook.
        On failure, undoes what it did, releases the pipeline and re-raises."""
        if self.installed:
            return
        pipeline = self.pipeline
        try:
            # obslab's propagators setting, checked first: it may reject a name; without it, the
            # propagators the SDK read from OTEL_PROPAGATORS when it was imported stay, unless that
            # variable came from the .env file (read after the import): then it is loaded now.
            textmap = None
            if self.settings.propagators is not None:
                textmap = _components.propagator(self.settings.propagators)
            elif "OTEL_PROPAGATORS" in self.settings.sources:
                textmap = _components.propagator_from_environment()
            self._instrument_libraries()
            if self.settings.system_metrics:
                self.undo.append(register_system_metrics(pipeline.meter_provider,
                                                         pipeline.meter_provider.get_meter("obslab.system")))
            if textmap is not None:
                previous_textmap = get_global_textmap()
                set_global_textmap(textmap)
                self.undo.append(lambda: set_global_textmap(previous_textmap))
            self.undo.append(web.install_trace_id_header())
            pipeline.quiet.install()
            self._install_logging()
            self._set_global_providers()
            atexit.register(self._on_exit)
            self.undo.append(lambda: atexit.unregister(self._on_exit))
            self._exit_hook_on_sigterm()
        except BaseException:
            self.uninstall()
            pipeline.quiet.restore()
            pipeline.release()
            raise
        self.installed = True

    def uninstall(self) -> None:
        """Undo what install() changed in the application's process, newest first."""
        while self.undo:
            undo = self.undo.pop()
            try:
                undo()
            except Exception as error:
                _diagnostics.report("undoing the set-up", error)

    def export_log_records(self, code_attributes: bool = False, level: int | None = None) -> None:
        """Send the log records to OTLP from now on (``code.*`` attributes when asked, at ``level``
        when given), unless they go there already."""
        if self._bridge is None or self._bridge.otlp is not None or self.settings.console_only \
                or find_installed_bridge() is not None:
            return
        self._bridge.add_otlp(OTLPHandler(logger_provider=self.pipeline.logger_provider,
                                          log_code_attributes=code_attributes), level)
        self.log_handlers = self._bridge.handlers

    def _install_logging(self) -> None:
        otlp = None
        if self.otlp_logs and not self.settings.console_only and find_installed_bridge() is None:
            otlp = OTLPHandler(logger_provider=self.pipeline.logger_provider)
        settings = self.settings
        if settings.service_name is None:  # the console's JSON lines name the service as exported
            resource = getattr(self.pipeline.tracer_provider, "resource", None)
            name = resource.attributes.get("service.name") if resource is not None else None
            settings = dataclasses.replace(settings, service_name=str(name or "unknown_service"))
        console = console_handler(settings, redactor=self.pipeline.redactor)
        bridge = LoggingBridge(otlp, console, self.settings.log_level)
        self.log_handlers = bridge.handlers
        bridge.install()
        self._bridge = bridge
        self.undo.append(bridge.uninstall)

    def _exit_hook_on_sigterm(self) -> None:
        """Run the exit hook on SIGTERM where the process leaves SIGTERM to its default, which ends it
        without ``atexit`` (``docker stop``, Kubernetes, and uvicorn, which re-raises the SIGTERM it
        caught once its graceful shutdown is done). The process then ends as SIGTERM ends it. An
        application's own SIGTERM handler is left alone; only the main thread can set one (so a handle
        shut down in another thread leaves its handler, which the next handle replaces)."""
        current = signal.getsignal(signal.SIGTERM)
        if threading.current_thread() is not threading.main_thread() \
                or (current is not signal.SIG_DFL and not getattr(current, _EXIT_HOOK, False)):
            return

        def on_sigterm(signum: int, frame: Any) -> None:
            try:
                self._on_exit()
            except Exception as error:
                _diagnostics.report("exit flush on SIGTERM", error)
            finally:
                signal.signal(signal.SIGTERM, signal.SIG_DFL)
                signal.raise_signal(signal.SIGTERM)

        setattr(on_sigterm, _EXIT_HOOK, True)
        signal.signal(signal.SIGTERM, on_sigterm)

        def give_back() -> None:
            if signal.getsignal(signal.SIGTERM) is on_sigterm and threading.current_thread() is threading.main_thread():
                signal.signal(signal.SIGTERM, signal.SIG_DFL)

        self.undo.append(give_back)

    def _set_global_providers(self) -> None:
        for signal, provider, owned in zip(SIGNALS, self.pipeline.providers, self.pipeline.owned):
            if owned:
                _globals.set_provider(signal, provider, retired=self.retired)

    def _instrument_libraries(self) -> None:
        tracer_provider, meter_provider, logger_provider = self.pipeline.providers
        own = instrumentation.own_names(self.settings.instrument)
        data_names = tuple(name for name in own if name in ("pandas", "numpy"))
        if data_names:
            from obslab.data import DataInstrumentor  # imports nothing of pandas/NumPy until used

            data = DataInstrumentor(tracer_provider.get_tracer("obslab.data"), meter_provider.get_meter("obslab.data"))
            self.undo.append(data.uninstrument)
            data.instrument(data_names)
        if "mcp" in own:
            from obslab import mcp_spans

            self.undo.append(mcp_spans.instrument(tracer_provider, self.pipeline.mcp_names))
        # the OpenAI Agents SDK's own export of its traces to OpenAI: off unless asked for
        options = {"openai_agents": {"disable_openai_trace_export": not self.settings.openai_agents_trace_export}}
        for instrumentor in instrumentation.instrument(self.settings.instrument, tracer_provider, meter_provider,
                                                       logger_provider, options):
            self.undo.append(instrumentor.uninstrument)


def providers_set_up_elsewhere(settings: Settings, retired: tuple[Any, ...] = ()) -> Providers | None:
    """The SDK providers already installed in this process (by the application, or
    ``opentelemetry-instrument`` with another distro); None for a signal nobody set up (or set up by
    a handle now shut down, in ``retired``), which obslab then sets up itself. A setting obslab
    cannot apply to providers it did not build raises ``ValueError``."""
    from opentelemetry.sdk._logs import LoggerProvider
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.trace import TracerProvider

    current = tuple(_globals.current(signal) for signal in SIGNALS)
    current = tuple(None if any(provider is old for old in retired) else provider for provider in current)
    found = tuple(provider if isinstance(provider, kind) and not getattr(provider, OURS, False) else None
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
