"""``telemetry_capture``: the code under test runs through obslab's real pipeline (privacy masking,
the GenAI processors, the log bridge) and what it exports is kept in memory for the test to read.

The capture's handle is installed as the process handle for one test: ``init_telemetry()`` and
``get_telemetry()`` in the code under test return it (``init_telemetry``'s arguments are then
ignored: the test chose the settings), OpenTelemetry's global providers are its own, and stdlib
logging reaches it through the root logger. Afterwards the handle is shut down and the process
handle, the global providers and the root logger's level are put back as they were.
"""

from __future__ import annotations

import importlib
import itertools
import logging
import tempfile
from pathlib import Path
from typing import Any, Iterable, Mapping

from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from obslab import _globals
from obslab import telemetry as telemetry_module
from obslab.config import Settings, load_settings

CAPTURE = "telemetry_capture"  # the handle's launcher: init_telemetry() returns it as it is
FIXED_TIME_NS = 1_700_000_000_000_000_000  # the deterministic clock: 2023-11-14T22:13:20Z, every reading
_CLOCKS = ("opentelemetry.sdk.trace", "opentelemetry.sdk._logs._internal")  # modules whose time_ns stamps records


class _SequentialIds:
    """Trace ids and span ids 1, 2, 3... (the deterministic mode's id generator)."""

    def __init__(self) -> None:
        self._traces, self._spans = itertools.count(1), itertools.count(1)

    def generate_trace_id(self) -> int:
        return next(self._traces)

    def generate_span_id(self) -> int:
        return next(self._spans)


def _matches(attributes: Mapping[str, Any] | None, wanted: Mapping[str, Any]) -> bool:
    attributes = attributes or {}
    return all(key in attributes and attributes[key] == value for key, value in wanted.items())


def _hex(value: int | None, width: int) -> str | None:
    return None if value is None else f"{value:0{width}x}"


class TelemetryCapture:
    """What obslab's pipeline exported during one test, with helpers to find it.

    ``configure()`` rebuilds the pipeline with other settings (``privacy=True``...) or in the
    deterministic mode; every helper flushes first, so what the code under test did is there.
    """

    def __init__(self) -> None:
        self.telemetry: telemetry_module.Telemetry | None = None
        self.deterministic = False
        self._spans = InMemorySpanExporter()
        self._logs = InMemoryLogRecordExporter()
        self._reader = InMemoryMetricReader()
        self._saved: dict[str, Any] = {}
        self._clock_undo: list[tuple[Any, Any]] = []

    # --- set-up ---------------------------------------------------------------------------------

    def configure(self, settings: Settings | None = None, *, deterministic: bool = False,
                  **arguments: Any) -> TelemetryCapture:
        """Build the pipeline from ``settings``, or from ``init_telemetry``'s ``arguments`` (the
        environment and ``.env`` files are not read: a test decides), replacing the one there was;
        what was captured so far is dropped. ``deterministic``: trace and span ids count 1, 2, 3...
        and every span and log timestamp is :data:`FIXED_TIME_NS`, so whole spans can be compared
        with an expected value (:meth:`as_dicts`)."""
        if settings is None:
            arguments.setdefault("service_name", "test-service")
            arguments.setdefault("sampling_ratio", 1.0)
            with tempfile.TemporaryDirectory() as empty:  # an empty .env: no file of the test's directory is read
                (Path(empty) / ".env").touch()
                settings = load_settings(arguments, environ={"OBSLAB_ENV_FILE": str(Path(empty) / ".env")})
        self._teardown_handle()
        self._spans, self._logs, self._reader = InMemorySpanExporter(), InMemoryLogRecordExporter(), InMemoryMetricReader()
        handle = telemetry_module.Telemetry(settings, span_exporter=self._spans, log_exporter=self._logs,
                                            metric_readers=(self._reader,))
        self.deterministic = deterministic
        if deterministic:
            generator = _SequentialIds()
            handle._tracer_provider.id_generator.generate_trace_id = generator.generate_trace_id
            handle._tracer_provider.id_generator.generate_span_id = generator.generate_span_id
            self._fix_clock()
        handle._launcher = CAPTURE
        self._take_globals()
        handle._install()
        telemetry_module._handle = handle
        root = logging.getLogger()
        self._saved.setdefault("root_level", root.level)
        root.setLevel(settings.log_level)
        self.telemetry = handle
        return self

    def _fix_clock(self) -> None:
        for name in _CLOCKS:
            module = importlib.import_module(name)
            self._clock_undo.append((module, module.time_ns))
            module.time_ns = lambda: FIXED_TIME_NS

    def _take_globals(self) -> None:
        """Remember the process handle and global providers (once), and free the globals for ours."""
        if "handle" not in self._saved:
            self._saved["handle"] = telemetry_module._handle
            self._saved["providers"] = {}
            for signal, (module_name, guard, current, _setter) in _globals._GLOBALS.items():
                module = importlib.import_module(module_name)
                self._saved["providers"][signal] = (getattr(module, current), getattr(module, guard)._done)
        for module_name, guard, current, _setter in _globals._GLOBALS.values():
            module = importlib.import_module(module_name)
            setattr(module, guard, type(getattr(module, guard))())  # a fresh set-once guard of the API's own kind
            setattr(module, current, None)

    def _teardown_handle(self) -> None:
        if self.telemetry is not None:
            self.telemetry.shutdown(1)
            self.telemetry = None
        while self._clock_undo:
            module, clock = self._clock_undo.pop()
            module.time_ns = clock

    def close(self) -> None:
        """Shut the handle down and put back what it changed in the process."""
        self._teardown_handle()
        if "handle" in self._saved:
            telemetry_module._handle = self._saved["handle"]
            for signal, (module_name, guard, current, _setter) in _globals._GLOBALS.items():
                provider, done = self._saved["providers"][signal]
                module = importlib.import_module(module_name)
                once = type(getattr(module, guard))()
                once._done = done
                setattr(module, guard, once)
                setattr(module, current, provider)
        if "root_level" in self._saved:
            logging.getLogger().setLevel(self._saved["root_level"])
        self._saved.clear()

    def clear(self) -> None:
        """Forget what was captured so far (metrics keep their cumulative values)."""
        self.flush()
        self._spans.clear()
        self._logs.clear()

    def flush(self) -> None:
        """Export what the pipeline holds (the helpers below do this first)."""
        if self.telemetry is not None:
            self.telemetry.force_flush(5)

    # --- spans ----------------------------------------------------------------------------------

    def spans(self, name: str | None = None, attributes: Mapping[str, Any] | None = None,
              **more: Any) -> list[ReadableSpan]:
        """The finished spans (in the order they ended) named ``name`` having all of ``attributes``
        (a mapping, for dotted keys) and ``more``."""
        self.flush()
        wanted = {**(attributes or {}), **more}
        return [span for span in self._spans.get_finished_spans()
                if (name is None or span.name == name) and _matches(span.attributes, wanted)]

    def span(self, name: str | None = None, attributes: Mapping[str, Any] | None = None, **more: Any) -> ReadableSpan:
        """The one span matching (see :meth:`spans`); AssertionError naming what was there otherwise."""
        found = self.spans(name, attributes, **more)
        if len(found) != 1:
            names = [span.name for span in self.spans()]
            raise AssertionError(f"{len(found)} spans named {name!r} with {dict(attributes or {}, **more)}; "
                                 f"captured: {names}")
        return found[0]

    def parent(self, span: ReadableSpan) -> ReadableSpan | None:
        """The captured parent of ``span`` (None for a root, or a parent from another process)."""
        if span.parent is None:
            return None
        return next((s for s in self.spans() if s.context.span_id == span.parent.span_id
                     and s.context.trace_id == span.context.trace_id), None)

    def children(self, span: ReadableSpan) -> list[ReadableSpan]:
        """The captured spans whose parent is ``span``, by start time."""
        found = [s for s in self.spans() if s.parent is not None and s.parent.span_id == span.context.span_id
                 and s.context.trace_id == span.context.trace_id]
        return sorted(found, key=lambda s: (s.start_time or 0, s.context.span_id))

    def tree(self, root: ReadableSpan | None = None) -> list[tuple[str, list]]:
        """The spans as nested ``(name, [children])`` tuples, children by start time: under ``root``
        when given (``[(root.name, [...])]``), else every span whose parent was not captured."""
        spans = self.spans()
        ids = {(s.context.trace_id, s.context.span_id) for s in spans}
        roots = [root] if root is not None else sorted(
            (s for s in spans if s.parent is None or (s.context.trace_id, s.parent.span_id) not in ids),
            key=lambda s: (s.start_time or 0, s.context.span_id))

        def branch(span: ReadableSpan) -> tuple[str, list]:
            return span.name, [branch(child) for child in self.children(span)]

        return [branch(span) for span in roots]

    def as_dict(self, span: ReadableSpan) -> dict[str, Any]:
        """A span as plain values (ids in hex), to compare whole spans with an expected value; in the
        deterministic mode its timestamps are :data:`FIXED_TIME_NS`, also those an instrumentation
        stamped from its own clock (Flask's server span passes its start time)."""
        if self.deterministic:
            return {**self._as_dict(span), "start_time": FIXED_TIME_NS, "end_time": FIXED_TIME_NS,
                    "events": [{**event, "timestamp": FIXED_TIME_NS} for event in self._as_dict(span)["events"]]}
        return self._as_dict(span)

    def _as_dict(self, span: ReadableSpan) -> dict[str, Any]:
        return {
            "name": span.name, "kind": span.kind.name,
            "trace_id": _hex(span.context.trace_id, 32), "span_id": _hex(span.context.span_id, 16),
            "parent_id": _hex(span.parent.span_id, 16) if span.parent else None,
            "start_time": span.start_time, "end_time": span.end_time,
            "status": span.status.status_code.name, "status_description": span.status.description,
            "attributes": dict(span.attributes or {}),
            "events": [{"name": e.name, "timestamp": e.timestamp, "attributes": dict(e.attributes or {})}
                       for e in span.events],
            "links": [{"trace_id": _hex(link.context.trace_id, 32), "span_id": _hex(link.context.span_id, 16),
                       "attributes": dict(link.attributes or {})} for link in span.links],
            "scope": span.instrumentation_scope.name if span.instrumentation_scope else None,
        }

    def as_dicts(self, name: str | None = None, attributes: Mapping[str, Any] | None = None,
                 **more: Any) -> list[dict[str, Any]]:
        """:meth:`as_dict` of each span :meth:`spans` finds."""
        return [self.as_dict(span) for span in self.spans(name, attributes, **more)]

    @property
    def resource(self) -> dict[str, Any]:
        """The resource attributes the spans carry (service.name...)."""
        spans = self.spans()
        return dict(spans[0].resource.attributes) if spans else {}

    # --- logs -----------------------------------------------------------------------------------

    def logs(self, span: ReadableSpan | None = None, body: str | None = None,
             attributes: Mapping[str, Any] | None = None, **more: Any) -> list[Any]:
        """The exported log records (OpenTelemetry ``LogRecord``: body, severity_text, attributes,
        trace_id, span_id), in order: only ``span``'s with ``span``, only those whose body contains
        ``body``, only those having ``attributes`` and ``more``."""
        self.flush()
        wanted = {**(attributes or {}), **more}
        records = [r.log_record for r in self._logs.get_finished_logs()]
        return [r for r in records
                if (span is None or (r.span_id == span.context.span_id and r.trace_id == span.context.trace_id))
                and (body is None or body in str(r.body)) and _matches(r.attributes, wanted)]

    def log_dict(self, record: Any) -> dict[str, Any]:
        """A log record as plain values (ids in hex); in the deterministic mode its timestamps are
        :data:`FIXED_TIME_NS`."""
        fixed = self.deterministic
        return {"body": record.body, "severity_text": record.severity_text,
                "severity_number": record.severity_number.value if record.severity_number else None,
                "trace_id": _hex(record.trace_id, 32) if record.trace_id else None,
                "span_id": _hex(record.span_id, 16) if record.span_id else None,
                "timestamp": FIXED_TIME_NS if fixed else record.timestamp,
                "attributes": dict(record.attributes or {})}

    # --- metrics --------------------------------------------------------------------------------

    def metric_points(self, name: str, attributes: Mapping[str, Any] | None = None, **more: Any) -> list[Any]:
        """The data points of metric ``name`` (cumulative, collected now) having ``attributes`` and
        ``more``: ``.value`` for counters and gauges, ``.count``/``.sum``/``.bucket_counts`` for
        histograms, ``.attributes``."""
        self.flush()
        wanted = {**(attributes or {}), **more}
        data = self._reader.get_metrics_data()
        return [point for rm in (data.resource_metrics if data else []) for sm in rm.scope_metrics
                for metric in sm.metrics if metric.name == name
                for point in metric.data.data_points if _matches(point.attributes, wanted)]

    def metric_value(self, name: str, attributes: Mapping[str, Any] | None = None, **more: Any) -> float:
        """The sum over the matching points of their value (counters, gauges) or count (histograms)."""
        return sum(point.value if hasattr(point, "value") else point.count
                   for point in self.metric_points(name, attributes, **more))

    @property
    def reader(self) -> InMemoryMetricReader:
        """The in-memory metric reader, for a test reading whole ``MetricsData`` (each collection
        empties the exemplar reservoirs)."""
        return self._reader

    def metrics(self) -> dict[str, list[tuple[dict[str, Any], float]]]:
        """Every metric recorded so far: ``{name: [(attributes, value or histogram count)]}``."""
        self.flush()
        out: dict[str, list[tuple[dict[str, Any], float]]] = {}
        data = self._reader.get_metrics_data()
        for metric in (m for rm in (data.resource_metrics if data else []) for sm in rm.scope_metrics
                       for m in sm.metrics):
            for point in metric.data.data_points:
                value = point.value if hasattr(point, "value") else point.count
                out.setdefault(metric.name, []).append((dict(point.attributes or {}), value))
        return out

    def metric_names(self) -> list[str]:
        """The names of every metric recorded so far."""
        self.flush()
        data = self._reader.get_metrics_data()
        return sorted({metric.name for rm in (data.resource_metrics if data else []) for sm in rm.scope_metrics
                       for metric in sm.metrics})


def span_names(spans: Iterable[ReadableSpan]) -> list[str]:
    """The names of ``spans``, in order."""
    return [span.name for span in spans]
