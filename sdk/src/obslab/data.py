"""Spans and metrics for pandas and NumPy work (``instrument=["pandas", "numpy"]``).

Traced: ``pd.read_*`` readers, boolean-mask filtering (``df[df.value > 10]``), ``groupby``
aggregations, ``np.mean`` and ``np.median``. Span attributes and metric names are the
autotelemetry seed's. The wrappers return what the library returned, untouched, and only one
level is traced: pandas calling itself (or NumPy) inside a traced operation adds no span.
``uninstrument()`` puts every original function back. The telemetry part of a wrapper never
raises into the caller: if it fails, the call is made and returned as if it were not traced.
"""

from __future__ import annotations

import threading
import time
from functools import wraps
from typing import Any, Callable

from opentelemetry import context, trace
from opentelemetry.metrics import Meter
from opentelemetry.trace import Span, Status, StatusCode, Tracer

from obslab._diagnostics import guarded

_READERS = ("read_csv", "read_table", "read_json", "read_parquet", "read_excel", "read_feather", "read_sql")
_AGGREGATIONS = ("agg", "aggregate", "mean", "median", "sum", "count", "min", "max", "std", "var", "size")
_NUMPY = ("mean", "median")
_MISSING = object()
# Histogram bucket boundaries (advisory): from sub-millisecond NumPy calls to minute-long reads,
# and from kilobytes to a hundred gigabytes.
PROCESSING_TIME_MS = (0.1, 0.5, 1, 5, 10, 50, 100, 500, 1000, 5000, 10000, 60000, 300000)
SIZE_BYTES = (1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11)

Args, Kwargs = tuple[Any, ...], dict[str, Any]
Describe = Callable[[str, Args, Kwargs, Any], dict[str, Any]]  # (operation, args, kwargs, result) -> attributes


class DataInstrumentor:
    """Patches pandas and/or NumPy; one instance per telemetry handle."""

    def __init__(self, tracer: Tracer, meter: Meter) -> None:
        self._tracer = tracer
        self._patches: list[tuple[Any, str, Any]] = []
        self._active = threading.local()
        self.raw_rows = meter.create_counter("data.raw.rows", unit="1", description="Rows read from sources")
        self.processed_rows = meter.create_counter(
            "data.processed.rows", unit="1", description="Rows produced by filters and aggregations")
        self.filtered_rows = meter.create_counter("data.filtered.rows", unit="1",
                                                  description="Rows removed by filters")
        self.processing_time = meter.create_histogram(
            "data.processing.time", unit="ms", description="Time spent in data operations",
            explicit_bucket_boundaries_advisory=PROCESSING_TIME_MS)
        self.size = meter.create_histogram("data.size", unit="By", description="Memory size of data read",
                                           explicit_bucket_boundaries_advisory=SIZE_BYTES)

    def instrument(self, libraries: tuple[str, ...] = ("pandas", "numpy")) -> None:
        """Patch the named libraries (``pandas``, ``numpy``); they must be importable."""
        unknown = set(libraries) - {"pandas", "numpy"}
        if unknown:
            raise ValueError(f"DataInstrumentor.instrument({', '.join(sorted(unknown))}): expected pandas or numpy")
        if "pandas" in libraries:
            self._instrument_pandas()
        if "numpy" in libraries:
            import numpy as np
            for name in _NUMPY:
                self._patch(np, name, self._traced(getattr(np, name), f"numpy.{name}", f"numpy.{name}",
                                                   self._numpy_size))

    def uninstrument(self) -> None:
        """Restore every patched function."""
        for owner, name, original in reversed(self._patches):
            if original is _MISSING:
                delattr(owner, name)
            else:
                setattr(owner, name, original)
        self._patches.clear()

    # --- pandas ---------------------------------------------------------------------------

    def _instrument_pandas(self) -> None:
        import numpy as np
        import pandas as pd
        from pandas.core.groupby import DataFrameGroupBy, SeriesGroupBy

        for name in _READERS:
            if hasattr(pd, name):
                self._patch(pd, name, self._traced(getattr(pd, name), f"pandas.{name}", name, self._read_rows))
        original_getitem = pd.DataFrame.__getitem__
        traced_filter = self._traced(original_getitem, "pandas.filter", "filter", self._filter_rows)

        @guarded("pandas/NumPy instrumentation", default=False)
        def is_mask(key: Any) -> bool:
            return isinstance(key, (pd.Series, np.ndarray)) and key.dtype == bool

        @wraps(original_getitem)
        def getitem(frame: Any, key: Any) -> Any:
            if is_mask(key):
                return traced_filter(frame, key)
            return original_getitem(frame, key)

        self._patch(pd.DataFrame, "__getitem__", getitem)
        for cls in (DataFrameGroupBy, SeriesGroupBy):
            for name in _AGGREGATIONS:
                if hasattr(cls, name):
                    self._patch(cls, name, self._traced(getattr(cls, name), f"pandas.groupby.{name}",
                                                        f"groupby.{name}", self._aggregate_rows))

    def _read_rows(self, operation: str, args: Args, kwargs: Kwargs, frame: Any) -> dict[str, Any]:
        if not hasattr(frame, "shape"):
            return {}
        rows, memory = len(frame), _memory_bytes(frame)
        self.raw_rows.add(rows, {"operation": operation})
        self.size.record(memory, {"operation": operation})
        return {"pandas.rows": rows, "pandas.columns": _columns(frame), "pandas.memory_bytes": memory}

    def _filter_rows(self, operation: str, args: Args, kwargs: Kwargs, result: Any) -> dict[str, Any]:
        total, kept = len(args[0]), len(result)
        self.processed_rows.add(kept, {"operation": operation})
        self.filtered_rows.add(total - kept, {"operation": operation})
        return {"pandas.input_rows": total, "pandas.output_rows": kept, "pandas.filtered_rows": total - kept}

    def _aggregate_rows(self, operation: str, args: Args, kwargs: Kwargs, result: Any) -> dict[str, Any]:
        self.processed_rows.add(len(result), {"operation": operation})
        return {"pandas.input_rows": len(args[0].obj), "pandas.output_rows": len(result)}

    # --- numpy ----------------------------------------------------------------------------

    @staticmethod
    def _numpy_size(operation: str, args: Args, kwargs: Kwargs, result: Any) -> dict[str, Any]:
        import numpy as np

        data = args[0] if args else kwargs.get("a")
        return {"numpy.input_size": int(np.size(data))}

    # --- shared ---------------------------------------------------------------------------

    def _patch(self, owner: Any, name: str, wrapper: Callable[..., Any]) -> None:
        self._patches.append((owner, name, vars(owner).get(name, _MISSING) if isinstance(owner, type)
                              else getattr(owner, name)))
        setattr(owner, name, wrapper)

    def _traced(self, original: Callable[..., Any], span_name: str, operation: str,
                describe: Describe) -> Callable[..., Any]:
        """``original`` as one traced operation: a span, ``processing_time_ms`` and the
        ``data.processing.time`` metric, plus what ``describe(operation, args, kwargs, result)``
        records and returns as span attributes. Calls made while another operation runs are not
        traced. Whatever the telemetry does, the caller gets what ``original`` returns or raises."""
        @wraps(original)
        def traced(*args: Any, **kwargs: Any) -> Any:
            if getattr(self._active, "busy", False):
                return original(*args, **kwargs)
            entered = self._enter(span_name)
            self._active.busy = True
            started = time.perf_counter()
            try:
                result = original(*args, **kwargs)
            except BaseException as error:
                self._active.busy = False
                if entered is not None:
                    self._exit(entered, started, operation, lambda: {}, error)
                raise
            self._active.busy = False
            if entered is not None:
                self._exit(entered, started, operation, lambda: describe(operation, args, kwargs, result))
            return result
        return traced

    @guarded("pandas/NumPy instrumentation")
    def _enter(self, span_name: str) -> tuple[Span, object]:
        span = self._tracer.start_span(span_name)
        return span, context.attach(trace.set_span_in_context(span))

    @guarded("pandas/NumPy instrumentation")
    def _exit(self, entered: tuple[Span, object], started: float, operation: str,
              describe: Callable[[], dict[str, Any]], error: BaseException | None = None) -> None:
        span, token = entered
        try:
            context.detach(token)
            elapsed_ms = (time.perf_counter() - started) * 1e3
            self.processing_time.record(elapsed_ms, {"operation": operation})
            if error is not None:
                span.record_exception(error)
                span.set_status(Status(StatusCode.ERROR, f"{type(error).__name__}: {error}"))
            else:
                span.set_attributes({**describe(), "processing_time_ms": round(elapsed_ms, 3)})
        finally:
            span.end()


def _memory_bytes(frame: Any) -> int:
    usage = frame.memory_usage(index=True, deep=False)
    return int(usage.sum() if hasattr(usage, "sum") else usage)


def _columns(frame: Any) -> int:
    return frame.shape[1] if len(frame.shape) > 1 else 1
