"""Spans and metrics for pandas and NumPy work (``instrument=["pandas", "numpy"]``).

Traced: ``pd.read_*`` readers, boolean-mask filtering (``df[df.value > 10]``), ``groupby``
aggregations, ``np.mean`` and ``np.median``. Span attributes and metric names are the
autotelemetry seed's. The wrappers return what the library returned, untouched, and only one
level is traced: pandas calling itself (or NumPy) inside a traced operation adds no span.
``uninstrument()`` puts every original function back.
"""

from __future__ import annotations

import threading
import time
from functools import wraps
from typing import Any, Callable

from opentelemetry.metrics import Meter
from opentelemetry.trace import Span, Tracer

_READERS = ("read_csv", "read_table", "read_json", "read_parquet", "read_excel", "read_feather", "read_sql")
_AGGREGATIONS = ("agg", "aggregate", "mean", "median", "sum", "count", "min", "max", "std", "var", "size")
_NUMPY = ("mean", "median")
_MISSING = object()


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
        self.processing_time = meter.create_histogram("data.processing.time", unit="ms",
                                                      description="Time spent in data operations")
        self.size = meter.create_histogram("data.size", unit="By", description="Memory size of data read")

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
                self._patch(np, name, self._numpy_wrapper(getattr(np, name), name))

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
                self._patch(pd, name, self._reader_wrapper(getattr(pd, name), name))
        original_getitem = pd.DataFrame.__getitem__
        instrumentor = self

        @wraps(original_getitem)
        def getitem(frame: Any, key: Any) -> Any:
            is_mask = (isinstance(key, (pd.Series, np.ndarray)) and key.dtype == bool)
            if not is_mask or instrumentor._busy():
                return original_getitem(frame, key)
            with instrumentor._operation("pandas.filter", "filter") as (span, done):
                result = original_getitem(frame, key)
                kept, total = len(result), len(frame)
                done(input_rows=total, output_rows=kept)
                span.set_attribute("pandas.filtered_rows", total - kept)
                instrumentor.filtered_rows.add(total - kept, {"operation": "filter"})
                return result

        self._patch(pd.DataFrame, "__getitem__", getitem)
        for cls in (DataFrameGroupBy, SeriesGroupBy):
            for name in _AGGREGATIONS:
                if hasattr(cls, name):
                    self._patch(cls, name, self._groupby_wrapper(getattr(cls, name), name))

    def _reader_wrapper(self, original: Callable[..., Any], name: str) -> Callable[..., Any]:
        @wraps(original)
        def read(*args: Any, **kwargs: Any) -> Any:
            if self._busy():
                return original(*args, **kwargs)
            with self._operation(f"pandas.{name}", name) as (span, done):
                frame = original(*args, **kwargs)
                if hasattr(frame, "shape"):
                    rows, memory = len(frame), _memory_bytes(frame)
                    span.set_attributes({"pandas.rows": rows, "pandas.columns": _columns(frame),
                                         "pandas.memory_bytes": memory})
                    self.raw_rows.add(rows, {"operation": name})
                    self.size.record(memory, {"operation": name})
                done()
                return frame
        return read

    def _groupby_wrapper(self, original: Callable[..., Any], name: str) -> Callable[..., Any]:
        @wraps(original)
        def aggregate(grouped: Any, *args: Any, **kwargs: Any) -> Any:
            if self._busy():
                return original(grouped, *args, **kwargs)
            with self._operation(f"pandas.groupby.{name}", f"groupby.{name}") as (_span, done):
                result = original(grouped, *args, **kwargs)
                done(input_rows=len(grouped.obj), output_rows=len(result))
                return result
        return aggregate

    # --- numpy ----------------------------------------------------------------------------

    def _numpy_wrapper(self, original: Callable[..., Any], name: str) -> Callable[..., Any]:
        import numpy as np

        @wraps(original)
        def compute(a: Any, *args: Any, **kwargs: Any) -> Any:
            if self._busy():
                return original(a, *args, **kwargs)
            with self._operation(f"numpy.{name}", f"numpy.{name}") as (span, done):
                span.set_attribute("numpy.input_size", int(np.size(a)))
                result = original(a, *args, **kwargs)
                done()
                return result
        return compute

    # --- shared ---------------------------------------------------------------------------

    def _patch(self, owner: Any, name: str, wrapper: Callable[..., Any]) -> None:
        self._patches.append((owner, name, vars(owner).get(name, _MISSING) if isinstance(owner, type)
                              else getattr(owner, name)))
        setattr(owner, name, wrapper)

    def _busy(self) -> bool:
        return getattr(self._active, "depth", 0) > 0

    def _operation(self, span_name: str, operation: str) -> "_Operation":
        return _Operation(self, span_name, operation)


class _Operation:
    """One traced data operation: a span, the recursion guard, timing and the row metrics."""

    def __init__(self, owner: DataInstrumentor, span_name: str, operation: str) -> None:
        self._owner, self._span_name, self._operation = owner, span_name, operation

    def __enter__(self) -> tuple[Span, Callable[..., None]]:
        owner = self._owner
        owner._active.depth = getattr(owner._active, "depth", 0) + 1
        self._scope = owner._tracer.start_as_current_span(self._span_name)
        self._span = self._scope.__enter__()
        self._started = time.perf_counter()
        return self._span, self._done

    def _done(self, input_rows: int | None = None, output_rows: int | None = None) -> None:
        elapsed_ms = (time.perf_counter() - self._started) * 1e3
        attributes = {"operation": self._operation}
        self._span.set_attribute("processing_time_ms", round(elapsed_ms, 3))
        self._owner.processing_time.record(elapsed_ms, attributes)
        if input_rows is not None:
            self._span.set_attributes({"pandas.input_rows": input_rows, "pandas.output_rows": output_rows})
            self._owner.processed_rows.add(output_rows, attributes)

    def __exit__(self, *exc: Any) -> None:
        self._owner._active.depth -= 1
        self._scope.__exit__(*exc)


def _memory_bytes(frame: Any) -> int:
    usage = frame.memory_usage(index=True, deep=False)
    return int(usage.sum() if hasattr(usage, "sum") else usage)


def _columns(frame: Any) -> int:
    return frame.shape[1] if len(frame.shape) > 1 else 1
