"""Process metrics of the autotelemetry seed, observed with the standard library only.

- ``system.cpu.usage`` (gauge, %): CPU time this process used over the last ``window`` seconds
  (the metric export interval), as a share of one core; the same for every metric reader.
- ``system.memory.usage`` (gauge, bytes): resident set size (peak RSS where /proc is missing).
- ``system.gc.count`` (counter, per ``generation``): garbage collections run.
- ``system.gc.duration`` (counter, ms, per ``generation``): time spent in them.

The garbage-collector hook only adds numbers to a dict: recording into the SDK from inside a
collection could take a lock the interrupted thread already holds.
"""

from __future__ import annotations

import collections
import gc
import os
import resource
import threading
import time
from typing import Any, Callable, Iterable

from opentelemetry.metrics import CallbackOptions, Meter, Observation

_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def register_system_metrics(meter: Meter, window: float = 15.0) -> Callable[[], None]:
    """Create the four instruments on ``meter``; returns the function that removes the GC hook."""
    gc_stats = _GcStats()
    cpu = _CpuUsage(window)
    meter.create_observable_gauge("system.cpu.usage", [cpu.observe], unit="%",
                                  description=f"CPU used by this process over the last {window:g} s, % of one core")
    meter.create_observable_gauge("system.memory.usage", [_observe_memory], unit="By",
                                  description="Resident memory of this process")
    meter.create_observable_counter("system.gc.count", [gc_stats.observe_count], unit="{collection}",
                                    description="Garbage collections run")
    meter.create_observable_counter("system.gc.duration", [gc_stats.observe_duration], unit="ms",
                                    description="Time spent in garbage collection")
    gc.callbacks.append(gc_stats.hook)
    return lambda: gc.callbacks.remove(gc_stats.hook) if gc_stats.hook in gc.callbacks else None


class _CpuUsage:
    """CPU share over a sliding window of samples taken at each observation: a reader collecting
    right after another one reads the same figure, not the CPU used between the two collections."""

    def __init__(self, window: float) -> None:
        self._window = window
        self._samples = collections.deque([(time.monotonic(), _cpu_seconds())])
        self._lock = threading.Lock()

    def observe(self, options: CallbackOptions) -> Iterable[Observation]:
        now, used = time.monotonic(), _cpu_seconds()
        with self._lock:
            # Keep the newest sample at least one window old, and every one after it.
            while len(self._samples) > 1 and now - self._samples[1][0] >= self._window:
                self._samples.popleft()
            then, used_then = self._samples[0]
            self._samples.append((now, used))
        wall = now - then
        yield Observation(round(100.0 * (used - used_then) / wall, 2) if wall > 0 else 0.0)


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
