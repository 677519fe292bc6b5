"""Process and host metrics (``system_metrics=True``): opentelemetry-instrumentation-system-metrics for
what it measures, named as the semantic conventions name them (``process.*`` for this process,
``system.*`` only for the host), plus the time spent in garbage collection, which it does not measure.

- ``process.cpu.time`` (counter, s, by ``type`` user/system): CPU used by this process; its rate is
  the share of one core, the same whatever the number of metric readers.
- ``process.memory.usage`` (gauge, By): resident set size; ``process.thread.count``.
- ``cpython.gc.collections`` (counter, by ``generation``): garbage collections run.
- ``system.cpu.utilization`` and ``system.memory.usage`` (by ``state``): the host's.
- ``obslab.gc.duration`` (counter, ms, by ``generation``): time spent in garbage collection.

The garbage-collector hook only adds numbers to a dict: recording into the SDK from inside a
collection could take a lock the interrupted thread already holds.
"""

from __future__ import annotations

import gc
import time
from typing import Any, Callable, Iterable

from opentelemetry.instrumentation.system_metrics import SystemMetricsInstrumentor
from opentelemetry.metrics import CallbackOptions, Meter, Observation

# What the upstream instrumentor records (its configuration format: metric -> attribute values).
METRICS: dict[str, list[str] | None] = {
    "process.cpu.time": ["user", "system"],
    "process.memory.usage": None,
    "process.thread.count": None,
    "cpython.gc.collections": None,
    "system.cpu.utilization": ["idle", "user", "system", "irq"],
    "system.memory.usage": ["used", "free", "cached"],
}


def register_system_metrics(meter_provider: Any, meter: Meter) -> Callable[[], None]:
    """Turn on the upstream process and host metrics on ``meter_provider`` and obslab's GC time on
    ``meter``; returns the function that turns them off again (the upstream instrumentor is left
    alone when something else turned it on first)."""
    gc_stats = _GcDuration()
    meter.create_observable_counter("obslab.gc.duration", [gc_stats.observe], unit="ms",
                                    description="Time spent in garbage collection")
    gc.callbacks.append(gc_stats.hook)
    instrumentor = SystemMetricsInstrumentor(config=dict(METRICS))
    ours = not instrumentor.is_instrumented_by_opentelemetry
    if ours:
        instrumentor.instrument(meter_provider=meter_provider)

    def remove() -> None:
        if gc_stats.hook in gc.callbacks:
            gc.callbacks.remove(gc_stats.hook)
        if ours and instrumentor.is_instrumented_by_opentelemetry:
            instrumentor.uninstrument()
    return remove


class _GcDuration:
    def __init__(self) -> None:
        self.millis = {g: 0.0 for g in range(3)}
        self._started = 0.0

    def hook(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        else:
            generation = info.get("generation", 0)
            self.millis[generation] = self.millis.get(generation, 0.0) + (time.perf_counter() - self._started) * 1e3

    def observe(self, options: CallbackOptions) -> Iterable[Observation]:
        return [Observation(ms, {"generation": str(g)}) for g, ms in self.millis.items()]
