"""Process metrics of the autotelemetry seed, observed with the standard library only.

- ``system.cpu.usage`` (gauge, %): CPU time this process used since the previous collection,
  as a share of one core.
- ``system.memory.usage`` (gauge, bytes): resident set size (peak RSS where /proc is missing).
- ``system.gc.count`` (counter, per ``generation``): garbage collections run.
- ``system.gc.duration`` (counter, ms, per ``generation``): time spent in them.

The garbage-collector hook only adds numbers to a dict: recording into the SDK from inside a
collection could take a lock the interrupted thread already holds.
"""

from __future__ import annotations

import gc
import os
import resource
import time
from typing import Any, Callable, Iterable

from opentelemetry.metrics import CallbackOptions, Meter, Observation

_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def register_system_metrics(meter: Meter) -> Callable[[], None]:
    """Create the four instruments on ``meter``; returns the function that removes the GC hook."""
    gc_stats = _GcStats()
    cpu = _CpuUsage()
    meter.create_observable_gauge("system.cpu.usage", [cpu.observe], unit="%",
                                  description="CPU used by this process since the last collection")
    meter.create_observable_gauge("system.memory.usage", [_observe_memory], unit="By",
                                  description="Resident memory of this process")
    meter.create_observable_counter("system.gc.count", [gc_stats.observe_count], unit="{collection}",
                                    description="Garbage collections run")
    meter.create_observable_counter("system.gc.duration", [gc_stats.observe_duration], unit="ms",
                                    description="Time spent in garbage collection")
    gc.callbacks.append(gc_stats.hook)
    return lambda: gc.callbacks.remove(gc_stats.hook) if gc_stats.hook in gc.callbacks else None


class _CpuUsage:
    def __init__(self) -> None:
        self._last = (time.monotonic(), _cpu_seconds())

    def observe(self, options: CallbackOptions) -> Iterable[Observation]:
        now, used = time.monotonic(), _cpu_seconds()
        wall, cpu = now - self._last[0], used - self._last[1]
        self._last = (now, used)
        yield Observation(round(100.0 * cpu / wall, 2) if wall > 0 else 0.0)


class _GcStats:
    def __init__(self) -> None:
        self.counts = {g: 0 for g in range(3)}
        self.millis = {g: 0.0 for g in range(3)}
        self._started = 0.0

    def hook(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        else:
            generation = info.get("generation", 0)
            self.counts[generation] = self.counts.get(generation, 0) + 1
            self.millis[generation] = self.millis.get(generation, 0.0) + (time.perf_counter() - self._started) * 1e3

    def observe_count(self, options: CallbackOptions) -> Iterable[Observation]:
        return [Observation(n, {"generation": g}) for g, n in self.counts.items()]

    def observe_duration(self, options: CallbackOptions) -> Iterable[Observation]:
        return [Observation(ms, {"generation": g}) for g, ms in self.millis.items()]


def _cpu_seconds() -> float:
    times = os.times()
    return times.user + times.system


def _observe_memory(options: CallbackOptions) -> Iterable[Observation]:
    try:
        with open("/proc/self/statm", encoding="ascii") as statm:
            rss = int(statm.read().split()[1]) * _PAGE
    except OSError:
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    yield Observation(rss)
