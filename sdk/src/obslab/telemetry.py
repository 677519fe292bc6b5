"""The telemetry handle users call: ``init_telemetry()`` makes it once, ``get_telemetry()`` returns it.
:func:`configure` is the one way a handle is made: ``init_telemetry()``, ``auto_instrument()`` and,
under ``opentelemetry-instrument``, :class:`obslab.distro.ObslabConfigurator` call it. Modules import
downward only: the distro imports this module, this module the pipeline and the process state.

The handle is thin and sits on top: :class:`~obslab.pipeline.Pipeline` builds and flushes the
providers, :class:`~obslab.process.ProcessState` installs them in the process. Set-up is all or nothing:
everything that can be refused (settings, propagators, instrumentors) is checked before anything
global changes, and if a step still fails, what was done is undone. ``shutdown()`` gives the
application back its logging configuration and patched functions first, then flushes within
``shutdown_timeout``, without waiting at all on a collector that refuses the connection.
"""

from __future__ import annotations

import logging
import os
import threading
import warnings
from contextlib import AbstractContextManager
from typing import Any, Mapping, NamedTuple, Sequence

from opentelemetry import _logs, trace
from opentelemetry.metrics import Counter, Histogram, Meter, UpDownCounter
from opentelemetry.trace import Span, SpanContext, Tracer

from obslab import _components, instrumentation, web
from obslab._outage import OutageBuffer
from obslab.agent import AgentInstruments
from obslab.config import Default, Settings, load_settings
from obslab.evaluations import Evaluations
from obslab.genai import genai_handler
from obslab.pipeline import Pipeline, Providers
from obslab.process import ProcessState, providers_set_up_elsewhere, sigterm_deferred

_INSTRUMENTATION_NAME = "obslab"

_handle: Telemetry | None = None  # the one telemetry handle of the process
_handle_lock = threading.Lock()


class Telemetry:
    """Tracer, meter and logger of one service, and the agent helpers built on them.

    A handle made with ``enabled=False`` (``OTEL_SDK_DISABLED=true``, or before
    ``init_telemetry``) works the same way and records nothing. ``adopted`` are providers set up
    elsewhere in the process, used instead of building ours; the exporters and readers given replace
    the ones the SDK configures (tests).
    """

    def __init__(self, settings: Settings, enabled: bool = True, *, span_exporter: Any = None,
                 metric_exporter: Any = None, log_exporter: Any = None, metric_readers: tuple[Any, ...] = (),
                 arguments: Mapping[str, Any] = (), adopted: Providers | None = None,
                 replaces: tuple[Any, ...] = (), launcher: Launcher | None = None) -> None:
        self.settings = settings
        self.enabled = enabled
        self._arguments = dict(arguments)
        self._launcher = launcher  # what set this handle up before the application ran
        self._shutdown_done = False
        resource = {"telemetry.auto.version": launcher.version} if launcher is not None and launcher.version else {}
        self._pipeline = Pipeline(settings, enabled, span_exporter=span_exporter, metric_exporter=metric_exporter,
                                  log_exporter=log_exporter, metric_readers=metric_readers, adopted=adopted,
                                  resource_attributes=resource)
        # Under opentelemetry-instrument, log records reach OTLP once the logging instrumentation loads
        # (ObslabDistro.load_instrumentor), as with opentelemetry-distro: not when it is turned off.
        self._process = ProcessState(self._pipeline, self.shutdown, retired=replaces,
                                     otlp_logs=launcher is None)
        self._tracer = self.get_tracer(_INSTRUMENTATION_NAME)
        self._meter = self.get_meter(_INSTRUMENTATION_NAME)
        genai = genai_handler(self._tracer_provider, self._meter_provider,
                              self._logger_provider if enabled else _logs.NoOpLoggerProvider())
        self._agent = AgentInstruments(self._tracer, self._meter, genai, self._pipeline.prices)
        self._evaluations = Evaluations(self.get_otel_logger("obslab.genai"), self.get_meter("obslab.genai"))

    # --- what the pipeline and the process state hold (tests and helpers read them) ----------

    @property
    def _tracer_provider(self) -> Any:
        return self._pipeline.tracer_provider

    @property
    def _meter_provider(self) -> Any:
        return self._pipeline.meter_provider

    @property
    def _logger_provider(self) -> Any:
        return self._pipeline.logger_provider

    @property
    def _redactor(self) -> Any:
        return self._pipeline.redactor

    @property
    def _network_exporters(self) -> list[Any]:
        return self._pipeline.network_exporters

    @property
    def _log_handlers(self) -> list[logging.Handler]:
        return self._process.log_handlers

    @property
    def _undo(self) -> list[Any]:
        return self._process.undo

    def _outage_buffers(self) -> list[OutageBuffer]:
        return self._pipeline.outage_buffers()

    def _install(self) -> None:
        """Install the handle in the process (see :meth:`obslab.process.ProcessState.install`)."""
        if self.enabled:
            self._process.install()

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
        return logging.getLogger(name or self.service_name)

    @property
    def service_name(self) -> str:
        """``service.name`` as exported (obslab's setting, else what the SDK's resource says)."""
        resource = getattr(self._tracer_provider, "resource", None)
        name = self.settings.service_name or (resource.attributes.get("service.name") if resource else None)
        return str(name or "unknown_service")

    def _export_log_records(self, code_attributes: bool = False, level: int | None = None) -> None:
        """Send the log records to OTLP from now on (the logging instrumentation's part, under
        ``opentelemetry-instrument``): with ``code.*`` attributes when asked, at ``level`` if given."""
        if self.enabled:
            self._process.export_log_records(code_attributes, level)

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
        return self._tracer.start_as_current_span(name, attributes=attributes or None)

    def instrument_app(self, app: Any) -> Any:
        """Instrument a FastAPI/Starlette or Flask app made before ``instrument=[...]`` took effect
        (its responses then carry ``X-Trace-ID``, and a server's shutdown of the app flushes the
        telemetry); returns the app."""
        return web.instrument_app(app, self._tracer_provider, self._meter_provider, flush=self.force_flush)

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

    def trace_agent(self, name: str, model: str | None = None, conversation_id: str | None = None
                    ) -> AbstractContextManager[Span]:
        """See :meth:`obslab.agent.AgentInstruments.trace_agent`."""
        return self._agent.trace_agent(name, model, conversation_id)

    def trace_llm_call(self, model: str, provider: str) -> AbstractContextManager[Span]:
        """See :meth:`obslab.agent.AgentInstruments.trace_llm_call`."""
        return self._agent.trace_llm_call(model, provider)

    def trace_tool_call(self, name: str, **attributes: Any) -> AbstractContextManager[Span]:
        """See :meth:`obslab.agent.AgentInstruments.trace_tool_call`."""
        return self._agent.trace_tool_call(name, **attributes)

    def record_llm_usage(self, model: str, provider: str, prompt_tokens: int, completion_tokens: int,
                         cost_usd: float | None = None, *, cache_read_tokens: int = 0,
                         cache_creation_tokens: int = 0, reasoning_tokens: int = 0) -> None:
        """See :meth:`obslab.agent.AgentInstruments.record_llm_usage`."""
        self._agent.record_llm_usage(model, provider, prompt_tokens, completion_tokens, cost_usd,
                                     cache_read_tokens=cache_read_tokens, cache_creation_tokens=cache_creation_tokens,
                                     reasoning_tokens=reasoning_tokens)

    def record_evaluation(self, name: str, *, score: float | None = None, label: str | None = None,
                          explanation: str | None = None, span: Span | SpanContext | None = None,
                          model: str | None = None, response_id: str | None = None,
                          error_type: str | None = None) -> None:
        """One evaluation result of a GenAI output: the conventions' ``gen_ai.evaluation.result`` event
        parented to the evaluated ``span`` (default: the current span), and the score in
        ``obslab.gen_ai.evaluation.score`` by name and model. See :mod:`obslab.evaluations`."""
        self._evaluations.record(name, score=score, label=label, explanation=explanation, span=span, model=model,
                                 response_id=response_id, error_type=error_type)

    def record_request(self, intent: str, duration_ms: float, ok: bool) -> None:
        """See :meth:`obslab.agent.AgentInstruments.record_request`."""
        self._agent.record_request(intent, duration_ms, ok)

    def record_error(self, error_type: str, component: str) -> None:
        """See :meth:`obslab.agent.AgentInstruments.record_error`."""
        self._agent.record_error(error_type, component)

    # --- flush and shutdown -----------------------------------------------------------------

    def force_flush(self, timeout: float | None = None) -> bool:
        """Export what is buffered, returning within ``timeout`` s (default: shutdown_timeout) plus a
        few milliseconds; True when every signal was delivered. What can be flushed is (the console
        exporters, and spans and log records into the outage buffer while the collector is
        unreachable); a collector that refuses connections is not waited on, and one that never
        answers holds neither the caller past its bound nor a thread per call."""
        if not self.enabled:
            return True
        return self._pipeline.flush(timeout or self.settings.shutdown_timeout)

    def shutdown(self, timeout: float | None = None) -> bool:
        """Give the application back its logging and patched functions, then flush and stop
        exporting; never takes longer than ``timeout`` s (default 2 s), and does not wait on a
        collector that cannot be reached. True when everything was delivered."""
        if not self.enabled or self._shutdown_done:
            return True
        self._shutdown_done = True
        self._process.uninstall()
        with sigterm_deferred():  # the exit's line is written before a SIGTERM ends the process
            return self._pipeline.shutdown(timeout or self.settings.shutdown_timeout)


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
    openai_agents_trace_export: bool | None = None,
    outage_buffer: int | None = None,
    outage_buffer_bytes: int | str | None = None,
    spool_dir: str | os.PathLike[str] | None = None,
) -> Telemetry:
    """Set up traces, metrics and logs for this process and return the telemetry handle (a new
    one after ``shutdown()``).

    Arguments left as None come from the environment (``OBSLAB_*``), a ``.env`` file (``env_file``,
    or ``.env`` in the working directory), a YAML config file or defaults, in that order; the
    standard ``OTEL_*`` variables are read by the OpenTelemetry SDK and exporters. A bad obslab
    value raises ``ValueError`` naming the setting, the value and its source, and leaves nothing
    behind; a bad ``OTEL_*`` value gives the SDK's warning and its default. A second call returns
    the first handle (with a warning if arguments differ). Under ``opentelemetry-instrument`` the
    same :func:`configure`, called by :class:`obslab.distro.ObslabConfigurator`, has made it already.

    ``console_only`` prints all three signals to stdout and opens no connection; ``privacy`` masks
    secrets and personal data before export; ``prometheus_port`` serves ``/metrics`` on loopback;
    ``system_metrics`` adds CPU, memory and GC metrics; ``instrument`` turns on library
    instrumentors by name (``["fastapi", "requests", "pandas"]``) or all installed ones (``"auto"``),
    ``"openai"`` and ``"anthropic"`` among them; ``prices`` adds or overrides LLM prices
    (``{"openai": {"gpt-4o": {"input": 2.5, "output": 10}}}``, US dollars per million tokens);
    ``openai_agents_trace_export`` keeps the OpenAI Agents SDK's own export of its traces to OpenAI
    beside OpenTelemetry's (``instrument=["openai_agents"]`` turns it off otherwise).
    ``outage_buffer`` is how many spans and how many log records are kept while the collector is
    unreachable (10 000 each by default, 0 for none), sent in order when it answers again, and
    ``outage_buffer_bytes`` bounds them in encoded bytes too (32 MiB per signal; the spool as well);
    ``spool_dir`` keeps what is still unsent at exit for the next process started with it.
    """
    return configure(dict(locals()))


class Launcher(NamedTuple):
    """What set obslab up before the application ran, and its version (``telemetry.auto.version``)."""

    name: str
    version: str | None = None


def configure(arguments: Mapping[str, Any], defaults: Mapping[str, Default] | None = None,
              launcher: Launcher | None = None) -> Telemetry:
    """Build the pipeline from ``arguments`` (``init_telemetry``'s; None means unset) over the
    environment, files and ``defaults`` (below every other source: ``auto_instrument``'s), install it
    in the process with the handle on top, and return the handle (the existing one if there is one).
    ``launcher``: set up by ``opentelemetry-instrument`` before the application ran."""
    global _handle
    arguments = dict(arguments)
    with _handle_lock:
        retired: tuple[Any, ...] = ()
        if _handle is not None and _handle._shutdown_done and _handle.enabled:
            retired, _handle = tuple(_handle._pipeline.built), None  # shut down: a new handle replaces it
            warnings.warn("init_telemetry() after shutdown(): tracers, meters and loggers obtained before "
                          "shutdown() record nothing (they belong to the providers shut down, see docs/sdk.md); "
                          "get them again from the new handle or the OpenTelemetry API", RuntimeWarning, stacklevel=4)
        if _handle is not None:
            if _handle._launcher == "telemetry_capture":  # obslab.testing: the test chose the settings
                return _handle
            if _handle._launcher is not None and launcher is None and any(v is not None for v in arguments.values()):
                warnings.warn(f"obslab was already set up by {_handle._launcher.name} from the environment; "
                              "init_telemetry()'s arguments are ignored (set them as OBSLAB_* or OTEL_* variables)",
                              RuntimeWarning, stacklevel=3)
            elif _handle._launcher is None and _handle._arguments != arguments:
                warnings.warn("init_telemetry() was already called with other arguments; "
                              "returning the existing telemetry handle", RuntimeWarning, stacklevel=3)
            return _handle
        settings = load_settings(arguments, defaults=defaults)
        instrumentation.check_names(settings.instrument)
        if settings.disabled:
            _handle = Telemetry(settings, enabled=False, arguments=arguments)
            return _handle
        _components.config_file_refused()
        if settings.privacy and settings.privacy_secret is None:
            warnings.warn("privacy is on without OBSLAB_PRIVACY_SECRET: user ids are exported as [REDACTED]; "
                          "set a per-deployment secret to export keyed hashes that keep a user's requests "
                          "together", UserWarning, stacklevel=3)
        with _components.building():
            handle = Telemetry(settings, arguments=arguments, adopted=providers_set_up_elsewhere(settings, retired),
                               replaces=retired, launcher=launcher)
            handle._install()
        _handle = handle
        return handle


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
