"""The parity harness's application, run in a subprocess: ``python driver.py MODE ROWS OUT``.

For each row of ROWS (a JSON list of ``{"id", "env"}``), the process environment becomes the
harness's base environment plus the row's variables; then the telemetry is set up one way (MODE):

- ``upstream``: what ``opentelemetry-instrument`` runs before the application (its own functions,
  in order: ``_load_distro``, ``configure``, ``_load_configurators``, ``_load_instrumentors``) with
  opentelemetry-distro's distro and configurator;
- ``obslab``: the same with obslab's distro and configurator;
- ``init``: ``obslab.init_telemetry()``;
- ``launched``: nothing: the driver runs under the real ``opentelemetry-instrument`` (one row), which
  shows that the three steps above are what the launcher does.

The application then starts spans under no parent and under sampled and unsampled remote parents,
one span past every limit, logs two records and counts once; what was set up and what reached the
in-process OTLP receiver is written as one flat observation per row to OUT (JSON). Then everything
is taken down, so that the next row starts as a new process would. Rows run in one process because a
process per row and per mode would take minutes.
"""

from __future__ import annotations

import json
import logging
import logging.config
import os
import sys
import time
import warnings
from importlib.metadata import entry_points
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "unit"))  # otlp_receiver

from opentelemetry import _logs, baggage, metrics, propagate, trace  # noqa: E402
from opentelemetry import context as otel_context  # noqa: E402
from opentelemetry.trace import Link, NonRecordingSpan, SpanContext, TraceFlags  # noqa: E402
from opentelemetry.util._once import Once  # noqa: E402

from otlp_receiver import OTLPReceiver  # noqa: E402

VARYING = {"service.instance.id", "process.pid", "process.parent_pid", "process.command", "process.command_line",
           "process.command_args", "process.executable.path", "process.owner", "process.runtime.description",
           "host.name", "host.arch"}
EXPORTER_FIELDS = ("_endpoint", "_insecure", "_timeout", "_headers", "_compression", "_certificate_file", "_client_key_file",
                   "_client_certificate_file", "_preferred_temporality", "_preferred_aggregation")
GLOBALS = (("opentelemetry.trace", "_TRACER_PROVIDER_SET_ONCE", "_TRACER_PROVIDER"),
           ("opentelemetry.metrics._internal", "_METER_PROVIDER_SET_ONCE", "_METER_PROVIDER"),
           ("opentelemetry._logs._internal", "_LOGGER_PROVIDER_SET_ONCE", "_LOGGER_PROVIDER"))
DISTROS = {"upstream": ("distro", "configurator"), "obslab": ("obslab", "obslab")}


class Warned(logging.Handler):
    """Counts the warnings logged while the telemetry is set up."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(f"{record.name}: {record.getMessage()}")


RECEIVER = "{receiver}"  # in row values and observations: this process's receiver port


def flat_exporter(exporter) -> str:
    """An exporter as its class and what it read from the environment (obslab's wrappers unwrapped)."""
    while type(exporter).__name__ == "OutageBuffer":
        exporter = exporter.exporter
    fields = {name.lstrip("_"): exporter.__dict__[name] for name in EXPORTER_FIELDS if name in exporter.__dict__}
    if "preferred_temporality" in fields:
        fields["preferred_temporality"] = sorted((k.__name__, v.name) for k, v in fields["preferred_temporality"].items())
    if "preferred_aggregation" in fields:
        fields["preferred_aggregation"] = sorted((k.__name__, type(v).__name__)
                                                 for k, v in fields["preferred_aggregation"].items())
    described = f"{type(exporter).__module__}.{type(exporter).__qualname__} {json.dumps(fields, default=str, sort_keys=True)}"
    return described.replace(os.environ["PARITY_RECEIVER_PORT"], RECEIVER)


def chain(exporter) -> list:
    """The exporter and what it wraps."""
    found = [exporter]
    while type(found[-1]).__name__ == "OutageBuffer":
        found.append(found[-1].exporter)
    return found


def upstream_class(handler) -> str:
    """The OpenTelemetry class ``handler`` is (obslab's handlers are upstream ones underneath)."""
    return next(f"{c.__module__}.{c.__name__}" for c in type(handler).__mro__ if c.__module__.startswith("opentelemetry"))


def batch_settings(processor) -> str:
    batch = getattr(processor, "_batch_processor", None)
    if batch is None:
        return type(processor).__name__
    return (f"{type(processor).__name__}(queue={batch._max_queue_size}, delay={batch._schedule_delay_millis}, "
            f"batch={batch._max_export_batch_size}, timeout={batch._export_timeout_millis})")


def export_processors(provider, signal: str) -> list:
    if signal == "traces":
        processors = provider._active_span_processor._span_processors
    else:
        processors = provider._multi_log_record_processor._log_record_processors
    return [p for p in processors if hasattr(p, "_batch_processor") or hasattr(p, "span_exporter")
            or type(p).__name__ in ("SimpleLogRecordProcessor",)]


def processor_exporter(processor):
    batch = getattr(processor, "_batch_processor", None)
    return batch._exporter if batch is not None else getattr(processor, "span_exporter",
                                                               getattr(processor, "_exporter", None))


def setup(mode: str) -> None:
    if mode == "init":
        import obslab

        obslab.init_telemetry()
        return
    from opentelemetry.instrumentation.auto_instrumentation._load import (
        _load_configurators,
        _load_distro,
        _load_instrumentors,
    )
    from opentelemetry.instrumentation.environment_variables import OTEL_PYTHON_CONFIGURATOR, OTEL_PYTHON_DISTRO

    os.environ[OTEL_PYTHON_DISTRO], os.environ[OTEL_PYTHON_CONFIGURATOR] = DISTROS[mode]
    distro = _load_distro()
    distro.configure()
    _load_configurators()
    _load_instrumentors(distro)


def remote(sampled: bool):
    parent = SpanContext(trace_id=0x1234, span_id=0x5678, is_remote=True,
                         trace_flags=TraceFlags(TraceFlags.SAMPLED if sampled else TraceFlags.DEFAULT))
    return trace.set_span_in_context(NonRecordingSpan(parent))


def observe(receiver: OTLPReceiver) -> dict:
    """What was set up, and what the application's telemetry exported."""
    seen: dict = {}
    providers = {"traces": trace.get_tracer_provider(), "metrics": metrics.get_meter_provider(),
                 "logs": _logs.get_logger_provider()}
    for signal, provider in providers.items():
        seen[f"provider.{signal}"] = f"{type(provider).__module__}.{type(provider).__name__}"
    tracer_provider, meter_provider, logger_provider = providers.values()
    sdk_traces = hasattr(tracer_provider, "_active_span_processor")
    sdk_logs = hasattr(logger_provider, "_multi_log_record_processor")
    sdk_metrics = hasattr(meter_provider, "_sdk_config")
    exporters: list = []
    signals: set = set()  # those with an exporter
    if sdk_traces:
        seen.update((f"resource.{k}", "<varies>" if k in VARYING else v)
                    for k, v in tracer_provider.resource.attributes.items())
        seen["sampler"] = tracer_provider.sampler.get_description()
        seen["id_generator"] = type(tracer_provider.id_generator).__qualname__
        seen["limits.traces"] = repr(tracer_provider._span_limits)
        for processor in export_processors(tracer_provider, "traces"):
            exporter = processor_exporter(processor)
            exporters.append(exporter)
            signals.add("traces")
            seen.setdefault("exporters.traces", []).append(f"{batch_settings(processor)} {flat_exporter(exporter)}")
    if sdk_logs:
        seen["limits.logs"] = repr(logger_provider._log_record_limits)
        for processor in export_processors(logger_provider, "logs"):
            exporter = processor_exporter(processor)
            exporters.append(exporter)
            signals.add("logs")
            seen.setdefault("exporters.logs", []).append(f"{batch_settings(processor)} {flat_exporter(exporter)}")
    if sdk_metrics:
        config = meter_provider._sdk_config
        seen["exemplar_filter"] = type(config.exemplar_filter).__name__
        seen["resource.metrics"] = "same" if not sdk_traces or config.resource == tracer_provider.resource else "other"
        for reader in meter_provider._metric_readers:
            exporter = getattr(reader, "_exporter", None)
            described = type(reader).__name__
            if exporter is not None:
                exporters.append(exporter)
                signals.add("metrics")
                described += (f"(interval={reader._export_interval_millis}, timeout={reader._export_timeout_millis}) "
                              f"{flat_exporter(exporter)}")
            seen.setdefault("exporters.metrics", []).append(described)
    for signal in ("traces", "metrics", "logs"):
        seen[f"exporters.{signal}"] = sorted(seen.get(f"exporters.{signal}", []))
    seen["log_handlers"] = sorted(upstream_class(h) for h in logging.getLogger().handlers
                                  if type(h).__module__.startswith(("opentelemetry", "obslab")))

    tracer = trace.get_tracer("parity.app")
    for name, parent in (("root", None), ("sampled_parent", remote(True)), ("unsampled_parent", remote(False))):
        span = tracer.start_span("work", context=parent)
        seen[f"sampling.{name}"] = [span.is_recording(), span.get_span_context().trace_flags.sampled]
        span.end()
    carrier: dict = {}
    with tracer.start_as_current_span("outgoing"):
        token = otel_context.attach(baggage.set_baggage("parity", "1"))
        propagate.inject(carrier)
        otel_context.detach(token)
    seen["propagation"] = sorted(carrier)

    ends = [chain(exporter)[-1] for exporter in exporters]
    to_receiver = bool(ends) and all(
        type(end).__module__.startswith("opentelemetry.exporter.otlp.proto.grpc") and end.__dict__.get("_insecure")
        and str(getattr(end, "_endpoint", "")).rstrip("/").rsplit(":", 1)[-1] == str(receiver.port) for end in ends)
    seen["exported"] = "to the receiver" if to_receiver else "not observed (no exporter or not all to the receiver)"
    if not to_receiver:
        for exporter in exporters:  # nothing to wait for at teardown: no export goes out
            for each in chain(exporter):
                try:
                    each.shutdown()
                except Exception:
                    pass
        return seen
    long = "x" * 300
    with tracer.start_as_current_span("keep limits", links=[Link(SpanContext(i + 1, i + 1, True)) for i in range(200)],
                                      attributes={f"a{i}": long for i in range(200)}) as span:
        for i in range(200):
            span.add_event(f"e{i}", {f"k{j}": long for j in range(5)})
        app_log = logging.getLogger("parity.app")
        app_log.warning("warned %s", "x", extra={"order": 7, "long": long, **{f"x{i}": i for i in range(200)}})
        app_log.info("informed")
    metrics.get_meter("parity.app").create_counter("parity.requests").add(1, {"route": "/"})
    for provider in providers.values():
        if hasattr(provider, "force_flush"):
            provider.force_flush(5000)
    # force_flush exports in the calling thread, and the receiver has what it answered for: no wait
    spans = [span for request in receiver.requests["traces"] for rs in request.resource_spans
             for ss in rs.scope_spans for span in ss.spans if span.name == "keep limits"]
    seen["exported.spans"] = [[len(s.attributes), s.dropped_attributes_count, len(s.events), s.dropped_events_count,
                               len(s.links), s.dropped_links_count,
                               max((len(a.value.string_value) for a in s.attributes), default=0)] for s in spans]
    for field, body in (("exported.logs", "warned x"), ("exported.logs.below_warning", "informed")):
        seen[field] = [[r["severity"], r["body"], len(r["attributes"]), sorted(k for k in r["attributes"]
                                                                               if not k.startswith("x")),
                        bool(r["trace_id"]), max((len(str(v)) for v in r["attributes"].values()), default=0)]
                       for r in receiver.log_records if r["body"].endswith(body)]
    seen["exported.metrics"] = "parity.requests" in receiver.metrics
    return seen


def teardown(mode: str, saved: dict) -> None:
    """Back to the state before the row, as for a new process."""
    if mode != "upstream":
        from obslab import telemetry

        handle = telemetry._handle
        if handle is not None and handle.enabled:
            handle._process.uninstall()
        telemetry._handle = None
    for module_name, _, current in GLOBALS:  # the providers set (the getters may raise on OTEL_PYTHON_*_PROVIDER)
        provider = getattr(sys.modules[module_name], current)
        if hasattr(provider, "shutdown"):
            try:
                provider.shutdown()
            except Exception:
                pass
    for module_name, guard, current in GLOBALS:
        module = sys.modules[module_name]
        setattr(module, guard, Once())
        setattr(module, current, None)
    for instrumentor in saved["instrumentors"]:
        if instrumentor.is_instrumented_by_opentelemetry:
            instrumentor.uninstrument()
    root = logging.getLogger()
    root.handlers[:] = saved["handlers"]
    root.setLevel(saved["level"])
    logging.basicConfig, logging.config.dictConfig, logging.config.fileConfig = saved["config"]
    logging.setLogRecordFactory(saved["factory"])
    propagate.set_global_textmap(saved["textmap"])
    os.environ.clear()
    os.environ.update(saved["environ"])


def instrumentors() -> list:
    found = []
    for entry_point in entry_points(group="opentelemetry_instrumentor"):
        try:
            found.append(entry_point.load()())
        except Exception:
            pass
    return found


def run(mode: str, rows: list[dict], base: dict[str, str]) -> dict:
    receiver = OTLPReceiver(int(base["PARITY_RECEIVER_PORT"])).start()
    root = logging.getLogger()
    saved = {"environ": dict(os.environ), "handlers": list(root.handlers), "level": root.level,
             "config": (logging.basicConfig, logging.config.dictConfig, logging.config.fileConfig),
             "factory": logging.getLogRecordFactory(), "textmap": propagate.get_global_textmap(),
             "instrumentors": instrumentors()}
    observations = {}
    for row in rows:
        started = time.monotonic()
        receiver.requests = {"traces": [], "metrics": [], "logs": []}
        receiver.log_records, receiver.metrics = [], []
        os.environ.update({k: v.replace(RECEIVER, base["PARITY_RECEIVER_PORT"]) for k, v in row["env"].items()})
        warned = Warned()  # on the libraries' loggers: a handler on the root would tell obslab that logging is set up
        for name in ("opentelemetry", "obslab"):
            logging.getLogger(name).addHandler(warned)
        seen: dict = {}
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:  # at process start, importing opentelemetry.propagate reads OTEL_PROPAGATORS
                if mode != "launched":  # else opentelemetry-instrument itself set everything up before
                    propagate.set_global_textmap(propagate._load_propagators())
                try:
                    if mode != "launched":
                        setup(mode)
                except Exception as error:  # opentelemetry-instrument logs it and runs the application
                    seen["raised"] = f"at start: {type(error).__name__}"
            except Exception as error:  # the application's own import fails, whatever the set-up
                seen["raised"] = f"at import: {type(error).__name__}"
            for name in ("opentelemetry", "obslab"):
                logging.getLogger(name).removeHandler(warned)
            if not seen.get("raised", "").startswith("at import"):
                try:
                    seen.update(observe(receiver))
                except Exception as error:
                    seen["observe"] = f"{type(error).__name__}: {error}"
        # what set-up warned about (but opentelemetry-instrument's remark that the other configurator installed
        # here was not loaded, and deprecations)
        seen["warned"] = sorted(m for m in warned.messages if not m.startswith("opentelemetry.instrumentation.auto_")) \
            + sorted(str(w.message) for w in caught if not issubclass(w.category, DeprecationWarning))
        observations[row["id"]] = {k: v for k, v in seen.items()}
        teardown(mode, saved)
        if os.environ.get("PARITY_TIMING"):
            print(f"{time.monotonic() - started:6.2f}s {row['id']}", file=sys.stderr, flush=True)
    receiver.stop()
    return observations


def main() -> None:
    mode, rows_path, out_path = sys.argv[1:4]
    rows = json.loads(Path(rows_path).read_text())
    observations = run(mode, rows, dict(os.environ))
    Path(out_path).write_text(json.dumps(observations, default=str, sort_keys=True))
    os._exit(0)  # the providers' exit hooks have nothing left to do


if __name__ == "__main__":
    main()
