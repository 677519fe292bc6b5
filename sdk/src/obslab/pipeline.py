"""obslab's pipeline for one handle: the tracer, meter and logger providers built on the SDK (with the
exporters it configures from ``OTEL_*``, each behind an outage buffer, privacy masking, LLM cost),
and their flush and shutdown, bounded by the providers' and exporters' own timeouts. It knows
nothing of the process's globals: :mod:`obslab.process` installs it.
"""

from __future__ import annotations

import threading
import time
from typing import Any, Callable, Mapping

from opentelemetry.metrics import NoOpMeterProvider
from opentelemetry.trace import NoOpTracerProvider

from obslab import _diagnostics, _export
from obslab._flusher import Flusher
from obslab._outage import NOUNS, REJECTED_AFTER, OutageBuffer, QueueDrops, observe_drops
from obslab.config import Settings
from obslab.instrumentation import own_names
from obslab.genai import ContentRedactor, LLMCostProcessor, content_capture_mode
from obslab.logs import build_logger_provider
from obslab.mcp_spans import MCPSpanNames
from obslab.metrics import build_meter_provider
from obslab.prices import PriceTable, wait_for_prices, warm_up_prices
from obslab.privacy import Redactor
from obslab.prometheus import start_prometheus_endpoint
from obslab.resource import build_resource
from obslab.traces import build_tracer_provider

OURS = "obslab_owned"  # marks the SDK providers a pipeline built, so that no later handle adopts them
Providers = tuple[Any, Any, Any]  # tracer, meter and logger providers; None: not set up elsewhere


class Pipeline:
    """The providers of one handle: built here unless ``adopted`` (set up elsewhere in the process,
    by ``opentelemetry-instrument`` with another distro, say); nothing at all when not ``enabled``.
    Exporters and readers given as arguments replace the ones the SDK configures (tests)."""

    def __init__(self, settings: Settings, enabled: bool = True, *, span_exporter: Any = None,
                 metric_exporter: Any = None, log_exporter: Any = None, metric_readers: tuple[Any, ...] = (),
                 adopted: Providers | None = None, resource_attributes: Mapping[str, Any] | None = None) -> None:
        self.settings = settings
        self.resource_attributes = dict(resource_attributes or {})  # under obslab's settings: telemetry.auto.version
        self.quiet = _diagnostics.QuietSdkLoggers()  # the SDK's and gRPC's remarks, while installed
        self.redactor = Redactor(settings.privacy_keys, settings.privacy_secret) if settings.privacy else None
        # Spans and log records may carry LLM message content once it is turned on: masked even with privacy off.
        self.content_redactor = self.redactor
        if self.redactor is None and enabled and content_capture_mode() != "no_content":
            self.content_redactor = ContentRedactor(settings.privacy_keys, settings.privacy_secret)
        self.prices = PriceTable(settings.prices)
        if enabled:
            warm_up_prices()  # genai-prices' import and data, in the background: not on the first call's path
        self.network_exporters: list[Any] = []  # the OTLP exporters (or their outage buffers)
        self.collectors: set[tuple[str, int]] = set()  # where they send
        self.built: list[Any] = [None, None, None]  # the providers this pipeline made
        self._batch_queues: list[tuple[Any, OutageBuffer]] = []  # the SDK's batch processors, each with its buffer
        self._stop_prometheus: Callable[[], None] | None = None
        self._flushers = [Flusher(f"obslab-flush-{signal}") for signal in ("traces", "metrics", "logs")]
        tracer_provider, meter_provider, logger_provider = adopted or (None, None, None)
        self.owned = (tracer_provider is None, meter_provider is None, logger_provider is None)
        if not enabled:
            tracer_provider, meter_provider, self.owned = NoOpTracerProvider(), NoOpMeterProvider(), (False,) * 3
        else:
            try:
                self._build(span_exporter, metric_exporter, log_exporter, metric_readers, self.owned)
            except BaseException:
                self.release()
                raise
            tracer_provider = tracer_provider or self.built[0]
            meter_provider = meter_provider or self.built[1]
            logger_provider = logger_provider or self.built[2]
        self.tracer_provider: Any = tracer_provider
        self.meter_provider: Any = meter_provider
        self.logger_provider: Any = logger_provider
        self.mcp_names: MCPSpanNames | None = None  # turned on by instrument=["mcp"]
        if enabled and self.owned[0]:  # prices the helpers' and the instrumented clients' LLM calls
            tracer_provider.add_span_processor(LLMCostProcessor(meter_provider.get_meter("obslab.genai"), self.prices))
            if "mcp" in own_names(settings.instrument):  # only then: every span pays for a processor
                self.mcp_names = MCPSpanNames()
                tracer_provider.add_span_processor(self.mcp_names)
        buffers = self.outage_buffers()
        if buffers:  # obslab.outage.dropped{signal, reason}: what the outage buffers could not keep
            meter_provider.get_meter("obslab").create_observable_counter(
                "obslab.outage.dropped", callbacks=[observe_drops(buffers)], unit="{record}",
                description="Spans and log records dropped during collector outages")

    def _build(self, span_exporter: Any, metric_exporter: Any, log_exporter: Any, metric_readers: tuple[Any, ...],
               wanted: tuple[bool, bool, bool]) -> None:
        """The providers of the ``wanted`` signals, into ``built`` as they are made (so that release()
        shuts down what a failed step left); the Prometheus endpoint starts here (stopped by release)."""
        settings = self.settings
        traces, metrics_, logs = wanted
        built = self.built
        extra_readers: tuple[Any, ...] = ()
        if metrics_ and settings.prometheus_port is not None:
            reader, self._stop_prometheus = start_prometheus_endpoint(settings.prometheus_port, redactor=self.redactor)
            extra_readers = (reader,)
        resource = build_resource(settings, self.redactor, self.resource_attributes)
        if traces:
            built[0], exporters = build_tracer_provider(settings, resource, span_exporter,
                                                        redactor=self.content_redactor)
            self._remember(exporters, span_exporter)
        if metrics_:
            built[1], exporters = build_meter_provider(settings, resource, metric_exporter, metric_readers,
                                                       extra_readers, redactor=self.redactor)
            self._remember(exporters, metric_exporter or metric_readers)
        if logs:
            built[2], exporters = build_logger_provider(settings, resource, log_exporter,
                                                        redactor=self.content_redactor, meter_provider=built[1])
            self._remember(exporters, log_exporter)
        for provider in built:
            if provider is not None:
                setattr(provider, OURS, True)
        self._batch_queues = self._watch_batch_queues()

    def _watch_batch_queues(self) -> list[tuple[Any, OutageBuffer]]:
        """The SDK's batch processors in front of the outage buffers, each with its buffer; the records
        they drop on a full queue are counted there (for the exit's report)."""
        watched = []
        traces, logs = self.built[0], self.built[2]
        for signal, processors in (
                ("traces", getattr(getattr(traces, "_active_span_processor", None), "_span_processors", ())),
                ("logs", getattr(getattr(logs, "_multi_log_record_processor", None), "_log_record_processors", ()))):
            buffers = [buffer for buffer in self.outage_buffers() if buffer.signal == signal]
            if not buffers:
                continue
            for processor in processors:
                batch = getattr(processor, "_batch_processor", None)
                if batch is not None and hasattr(batch, "_metrics") and hasattr(batch, "_queue"):
                    batch._metrics = QueueDrops(batch._metrics, buffers[0])
                    watched.append((batch, buffers[0]))
        return watched

    def _remember(self, exporters: list[Any], given: Any) -> None:
        """Keep the OTLP exporters and where they send (unless a test gave its own)."""
        if given:
            return
        for exporter in exporters:
            inner = exporter.exporter if isinstance(exporter, OutageBuffer) else exporter
            where = _export.address(inner) if _export.is_otlp(inner) else None
            if where is not None:
                self.network_exporters.append(exporter)
                self.collectors.add(where)

    def outage_buffers(self) -> list[OutageBuffer]:
        """The outage buffers in front of the OTLP exporters."""
        return [exporter for exporter in self.network_exporters if isinstance(exporter, OutageBuffer)]

    @property
    def providers(self) -> Providers:
        """Tracer, meter and logger providers, built or adopted."""
        return self.tracer_provider, self.meter_provider, self.logger_provider

    # --- flush and shutdown ---------------------------------------------------------------

    def flush(self, timeout: float) -> bool:
        """Export what is buffered, within ``timeout`` s; True when every signal was delivered. Each
        signal flushes on its own worker (see :mod:`obslab._flusher`), so that a collector that never
        answers holds neither the caller past its bound nor the other signals, and the console
        exporters get their data while the collector is unreachable."""
        try:
            return self._flush_all(timeout)
        except Exception as error:
            _diagnostics.report("flush", error)
            return False

    def shutdown(self, timeout: float) -> bool:
        """Flush and stop exporting within ``timeout`` s, without waiting on a collector that cannot
        be reached; True when everything was delivered."""
        down = _export.unreachable(self.collectors, timeout=min(0.2, timeout / 4))
        if down:
            self.quiet.mute()
            for exporter in self.network_exporters:
                exporter.shutdown()  # exports now fail at once (or go to the spool) instead of retrying
        # A collector that accepts connections and never answers would hold the exports until the
        # exporters' own timeout: past ``timeout``, the exporters are shut down, which ends them.
        interrupted = threading.Event()
        watchdog = threading.Timer(timeout, self._interrupt_exports, (interrupted,))
        watchdog.daemon = True
        watchdog.start()
        try:
            done = self._shutdown_all(timeout)
        except Exception as error:
            _diagnostics.report("shutdown", error)
            done = False
        finally:
            watchdog.cancel()
            watchdog.join()  # fired, it spools what it stopped: counted before the report, done before the exit
        done = done and not interrupted.is_set()
        self._report_unsent(down)
        self._stop_endpoint()
        self.quiet.restore()
        for flusher in self._flushers:
            flusher.close()
        return done and not down

    def release(self) -> None:
        """Stop what building started (a refused start): the Prometheus endpoint and the providers."""
        self._stop_endpoint()
        quiet = _diagnostics.QuietSdkLoggers()
        quiet.install()
        quiet.mute()  # nothing was emitted yet: the SDK's remarks about it are noise
        try:
            for exporter in self.network_exporters:
                exporter.shutdown()  # so that shutting the providers down waits on no collector
            for provider in self.built:
                if provider is not None:
                    provider.shutdown()
        finally:
            quiet.restore()
        self.network_exporters = []

    def _stop_endpoint(self) -> None:
        if self._stop_prometheus is not None:
            self._stop_prometheus()
            self._stop_prometheus = None

    def _interrupt_exports(self, interrupted: threading.Event) -> None:
        """Shut the network exporters down (ending exports under way), on shutdown's deadline."""
        interrupted.set()
        self.quiet.mute()
        for exporter in self.network_exporters:
            try:
                exporter.shutdown()
            except Exception as error:
                _diagnostics.report("shutdown", error)

    def _flush_all(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        wait_for_prices(timeout)  # the LLM calls priced once the price data is in: recorded before export
        jobs = [flusher.submit(lambda signal=signal, provider=provider: self._flush_signal(signal, provider, deadline))
                for flusher, signal, provider in zip(self._flushers, ("traces", "metrics", "logs"), self.providers)]
        return all([job.wait(deadline) for job in jobs])

    def _flush_signal(self, signal: str, provider: Any, deadline: float) -> bool:
        """Flush one provider, then the outage buffer of its signal (on that signal's worker)."""
        try:
            with _export.flushing():
                flushed = provider.force_flush(max(int((deadline - time.monotonic()) * 1000), 1)) is not False
        except Exception as error:
            _diagnostics.report(f"{signal} flush", error)
            flushed = False
        for buffer in self.outage_buffers():
            if buffer.signal == signal:
                flushed = buffer.force_flush(max((deadline - time.monotonic()) * 1000, 1)) and flushed
        return flushed

    def _shutdown_all(self, timeout: float) -> bool:
        if all(self.owned):
            wait_for_prices(timeout)  # as _flush_all does: the calls priced late are recorded before the last export
        delivered = self._flush_all(timeout) if not all(self.owned) else True
        for provider, owned in zip(self.providers, self.owned):
            if owned:  # adopted providers were flushed above; their owner shuts them down
                provider.shutdown()
        for batch, buffer in self._batch_queues:  # what a processor still held past its own timeout
            buffer.lost += len(batch._queue)
        return delivered

    def _report_unsent(self, down: list[str]) -> None:
        """One stderr line at exit on every span and log record not delivered since the start: written
        to the spool, or counted per signal (unsent at exit, dropped beyond the outage buffer, refused)."""
        buffers = self.outage_buffers()
        spooled = ", ".join(f"{b.spooled} {NOUNS[b.signal]}" for b in buffers if b.spooled)
        missing = ", ".join(_not_delivered(b) for b in buffers if b.lost + b.dropped + b.rejected + b.queue_dropped)
        where = f"collector {', '.join(down)} unreachable" if down else "collector too slow or refusing"
        parts = [f"{spooled} written to {self.settings.spool_dir}, sent by the next start"] if spooled else []
        if missing:
            keeps = "" if self.settings.spool_dir else " (OBSLAB_SPOOL_DIR keeps what is unsent at exit)"
            parts.append(f"not delivered: {missing}{keeps}")
        if parts:
            _diagnostics.warn(f"shutdown: {where}: {'; '.join(parts)}")
        elif down:
            _diagnostics.notice("shutdown", f"{where}: unsent telemetry dropped")


def _not_delivered(buffer: OutageBuffer) -> str:
    """``N spans (x unsent at exit, y dropped beyond ..., z refused ...)`` for one outage buffer."""
    why = [f"{buffer.lost} unsent at exit"] if buffer.lost else []
    if buffer.dropped:
        why.append(f"{buffer.dropped} dropped beyond OBSLAB_OUTAGE_BUFFER={buffer.capacity}")
    if buffer.rejected:
        why.append(f"{buffer.rejected} refused {1 + REJECTED_AFTER} times")
    if buffer.queue_dropped:
        variable = "OTEL_BSP_MAX_QUEUE_SIZE" if buffer.signal == "traces" else "OTEL_BLRP_MAX_QUEUE_SIZE"
        why.append(f"{buffer.queue_dropped} dropped on the full batch queue ({variable})")
    total = buffer.lost + buffer.dropped + buffer.rejected + buffer.queue_dropped
    return f"{total} {NOUNS[buffer.signal]} ({', '.join(why)})"
