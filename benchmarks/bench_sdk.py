#!/usr/bin/env python3
"""obslab vs the raw OpenTelemetry SDK set up the same way, in one run.

Run: .venv/bin/python benchmarks/bench_sdk.py
Prints per-operation medians (µs of CPU time of the calling thread) for span start/end, counter add,
a log record inside a span, the obslab/raw ratio of CPU time and of wall-clock time (medians of the
ratios of paired rounds, each round timing the raw SDK and then obslab back to back, so that the load
of a busy machine hits both sides of a ratio alike), the shutdown time of each with no collector
listening, and the process exit time (from the app's last statement to the end of the process,
flushing at exit) with the collector unreachable and with it up (then also what reached it).
Both sides export to the same in-memory / discarding exporters so that only the hot path counts;
the shutdown and exit figures use real OTLP gRPC exporters.
"""
from __future__ import annotations

import logging
import statistics
import subprocess
import sys
import time
from pathlib import Path

from opentelemetry.instrumentation.logging.handler import LoggingHandler
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor, InMemoryLogRecordExporter
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased

from obslab.config import Settings
from obslab.logs import OTLPHandler
from obslab.telemetry import Telemetry

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from lab import free_port  # noqa: E402
from unit.otlp_receiver import OTLPReceiver  # noqa: E402

N, REPEAT = 2000, 31
EMITTED = 200  # spans and log records emitted before exit


def _timed(operation, number: int) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the calling thread) of ``number`` calls."""
    wall, cpu = time.perf_counter(), time.thread_time()
    for _ in range(number):
        operation()
    return time.perf_counter() - wall, time.thread_time() - cpu


def paired(raw, ob) -> tuple[float, float, float, float]:
    """Alternating rounds of the raw SDK and obslab: the medians of the calling thread's CPU µs per
    operation (what the application's thread spends; other processes on a busy machine do not count),
    the median of the rounds' CPU ratios and of their wall-clock ratios (each round times both sides
    back to back, so that drift hits both sides of a ratio alike)."""
    raw_runs, ob_runs = [], []
    for _ in range(REPEAT):
        raw_runs.append(_timed(raw, N))
        ob_runs.append(_timed(ob, N))
    cpu_ratio = statistics.median(o[1] / r[1] for r, o in zip(raw_runs, ob_runs))
    wall_ratio = statistics.median(o[0] / r[0] for r, o in zip(raw_runs, ob_runs))
    return (statistics.median(r[1] for r in raw_runs) / N * 1e6, statistics.median(o[1] for o in ob_runs) / N * 1e6,
            cpu_ratio, wall_ratio)


def raw_sdk():
    tracer = TracerProvider(sampler=ParentBased(TraceIdRatioBased(1.0)), resource=Resource.create({}))
    tracer.add_span_processor(BatchSpanProcessor(InMemorySpanExporter(), max_queue_size=N * REPEAT * 4))
    meter = MeterProvider(metric_readers=[InMemoryMetricReader()])
    logs = LoggerProvider()
    logs.add_log_record_processor(BatchLogRecordProcessor(InMemoryLogRecordExporter()))
    return tracer.get_tracer("bench"), meter.get_meter("bench"), LoggingHandler(logger_provider=logs)


def obslab_sdk():
    handle = Telemetry(Settings(service_name="bench"), span_exporter=InMemorySpanExporter(),
                       log_exporter=InMemoryLogRecordExporter(), metric_readers=(InMemoryMetricReader(),))
    return handle, handle.get_tracer("bench"), handle.get_meter("bench"), OTLPHandler(logger_provider=handle._logger_provider)


def bench_hot_paths() -> list[tuple[str, float, float, float, float]]:
    raw_tracer, raw_meter, raw_handler = raw_sdk()
    handle, ob_tracer, ob_meter, ob_handler = obslab_sdk()
    raw_counter, ob_counter = raw_meter.create_counter("c"), handle.create_counter("c")
    rows = []

    def span(tracer):
        return lambda: tracer.start_span("op").end()

    rows.append(("span start+end", *paired(span(raw_tracer), span(ob_tracer))))
    def ctx_span(tracer):
        def run():
            with tracer.start_as_current_span("op"):
                pass
        return run

    rows.append(("with current span", *paired(ctx_span(raw_tracer), lambda: _obslab_span(handle))))
    rows.append(("counter add", *paired(lambda: raw_counter.add(1, {"k": "v"}), lambda: ob_counter.add(1, {"k": "v"}))))

    def log_in_span(tracer, handler):
        logger = logging.Logger("bench")
        logger.addHandler(handler)

        def run():
            with tracer.start_as_current_span("op"):
                logger.info("hello %s", "world", extra={"data": {"k": 1}})
        return run

    rows.append(("log record inside span", *paired(log_in_span(raw_tracer, raw_handler),
                                                   log_in_span(ob_tracer, ob_handler))))
    return rows


def _obslab_span(handle: Telemetry) -> None:
    with handle.span("op"):
        pass


SHUTDOWN_RAW = """
import time
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
p = TracerProvider(); p.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint="127.0.0.1:1", insecure=True)))
p.get_tracer("b").start_span("x").end()
t = time.monotonic(); p.shutdown(); print(time.monotonic() - t)
"""
SHUTDOWN_OBSLAB = """
import time
from obslab import init_telemetry
t0 = init_telemetry("bench", otlp_endpoint="127.0.0.1:1")
with t0.span("x"): pass
t = time.monotonic(); t0.shutdown(); print(time.monotonic() - t)
"""


def bench_shutdown(code: str) -> tuple[float, float]:
    """(shutdown() seconds, whole process seconds) with no collector listening."""
    started = time.monotonic()
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120).stdout
    return float(out.strip().splitlines()[-1]), time.monotonic() - started


EXIT_RAW = """
import logging, sys, time
from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter
from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.instrumentation.logging.handler import LoggingHandler
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
endpoint = sys.argv[1]
tracer_provider = TracerProvider()  # shutdown_on_exit=True: the SDK flushes at exit itself
tracer_provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint, insecure=True)))
meter_provider = MeterProvider(metric_readers=[PeriodicExportingMetricReader(
    OTLPMetricExporter(endpoint=endpoint, insecure=True), export_interval_millis=60000)])
logger_provider = LoggerProvider()
logger_provider.add_log_record_processor(BatchLogRecordProcessor(OTLPLogExporter(endpoint=endpoint, insecure=True)))
logging.getLogger().addHandler(LoggingHandler(logger_provider=logger_provider))
logging.getLogger().setLevel(logging.INFO)
tracer, counter = tracer_provider.get_tracer("bench"), meter_provider.get_meter("bench").create_counter("bench.ops")
for i in range(EMITTED):
    with tracer.start_as_current_span("op"):
        logging.getLogger("bench").info("line %d", i)
        counter.add(1)
print(time.time(), flush=True)
"""
EXIT_OBSLAB = """
import logging, sys, time
from obslab import init_telemetry
telemetry = init_telemetry("bench", otlp_endpoint=sys.argv[1], metric_export_interval=60)
counter = telemetry.create_counter("bench.ops")
for i in range(EMITTED):
    with telemetry.span("op"):
        logging.getLogger("bench").info("line %d", i)
        counter.add(1)
print(time.time(), flush=True)
"""


def bench_exit(code: str, endpoint: str) -> float:
    """Seconds from the app's last statement to the end of its process (the exit flush included)."""
    out = subprocess.run([sys.executable, "-c", code.replace("EMITTED", str(EMITTED)), endpoint],
                         capture_output=True, text=True, timeout=120)
    ended = time.time()
    return ended - float(out.stdout.strip().splitlines()[-1])


def bench_exits() -> list[tuple[str, float, float, str]]:
    """(label, exit s with the collector unreachable, exit s with it up, what reached it)."""
    rows = []
    for label, code in (("raw SDK", EXIT_RAW), ("obslab", EXIT_OBSLAB)):
        down = statistics.median(bench_exit(code, f"127.0.0.1:{free_port()}") for _ in range(5))
        receiver = OTLPReceiver(free_port()).start()
        try:
            up = bench_exit(code, f"127.0.0.1:{receiver.port}")
            spans, logs = len(receiver.spans), sum(body.startswith("line ") for body in receiver.logs)
            delivered = f"{spans}/{EMITTED} spans, {logs}/{EMITTED} logs, metric {'yes' if receiver.metrics else 'no'}"
        finally:
            receiver.stop()
        rows.append((label, down, up, delivered))
    return rows


def main() -> None:
    raw_header, ob_header = "raw SDK \u00b5s", "obslab \u00b5s"
    print(f"{'operation (CPU of the calling thread)':40} {raw_header:>11} {ob_header:>10} {'ratio':>6} {'wall ratio':>10}")
    for name, raw, ob, ratio, wall_ratio in bench_hot_paths():
        print(f"{name:40} {raw:11.2f} {ob:10.2f} {ratio:6.2f} {wall_ratio:10.2f}")
    for label, code in (("raw SDK", SHUTDOWN_RAW), ("obslab", SHUTDOWN_OBSLAB)):
        shutdown, process = bench_shutdown(code)
        print(f"shutdown, no collector, {label:8}: shutdown() {shutdown:5.2f} s, whole process {process:5.2f} s")
    for label, down, up, delivered in bench_exits():
        print(f"process exit, {label:8}: collector unreachable {down:5.2f} s (target <= 0.2 s for obslab); "
              f"collector up {up:5.2f} s, delivered {delivered}")


if __name__ == "__main__":
    main()
