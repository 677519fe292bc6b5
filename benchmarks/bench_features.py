#!/usr/bin/env python3
"""Cost of obslab's data instrumentation and privacy masking, against plain code and the raw
OpenTelemetry SDK doing the same by hand, in one run.

Run: .venv/bin/python benchmarks/bench_features.py
Prints per-operation medians (µs). "raw SDK" wraps the pandas call in a hand-written span with the
same attributes and two data metrics; "obslab" is the patched pandas (span, attributes, data metrics). Privacy: the time the export thread
spends masking one span with six attributes, a span's hot path with privacy on and off, and a log record's
(masked as it is emitted, in the caller's thread) with privacy on and off.
"""
from __future__ import annotations

import statistics
import time
import timeit

import numpy as np
import pandas as pd
from opentelemetry._logs import LogRecord
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from obslab.config import Settings
from obslab.data import DataInstrumentor
from obslab.privacy import Redactor
from obslab.telemetry import Telemetry

N, REPEAT = 300, 7


def median_us(fn, number: int = N) -> float:
    return statistics.median(timeit.repeat(fn, number=number, repeat=REPEAT)) / number * 1e6


def handle(**settings) -> Telemetry:
    return Telemetry(Settings(service_name="bench", **settings), span_exporter=InMemorySpanExporter(),
                     log_exporter=InMemoryLogRecordExporter(), metric_readers=(InMemoryMetricReader(),))


def bench_data() -> list[tuple[str, float, float, float]]:
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"category": rng.choice(list("abcd"), 10_000), "value": rng.random(10_000)})
    raw_provider = TracerProvider()
    raw_provider.add_span_processor(BatchSpanProcessor(InMemorySpanExporter(), max_queue_size=100_000))
    raw_tracer = raw_provider.get_tracer("bench")
    raw_meter = MeterProvider(metric_readers=[InMemoryMetricReader()]).get_meter("bench")
    rows, time_ms = raw_meter.create_counter("data.processed.rows"), raw_meter.create_histogram("data.processing.time")
    ops = {
        "filter df[df.value > 0.5]": lambda: df[df["value"] > 0.5],
        "groupby(category).mean()": lambda: df.groupby("category").mean(),
        "np.median(10k values)": lambda: np.atleast_1d(np.median(df["value"].to_numpy())),
        "column access df['value']": lambda: df["value"],
    }
    plain = {name: median_us(op) for name, op in ops.items()}

    def by_hand(op):
        """What a user writes with the raw SDK for the same span attributes and data metrics."""
        def run():
            with raw_tracer.start_as_current_span("op") as span:
                started = time.perf_counter()
                result = op()
                elapsed = (time.perf_counter() - started) * 1e3
                span.set_attributes({"pandas.input_rows": len(df), "pandas.output_rows": len(result),
                                     "processing_time_ms": elapsed})
                rows.add(len(result), {"operation": "op"})
                time_ms.record(elapsed, {"operation": "op"})
                return result
        return run

    raw = {name: median_us(by_hand(op)) for name, op in ops.items()}
    telemetry = handle()
    instrumentor = DataInstrumentor(telemetry.get_tracer("bench"), telemetry.get_meter("bench"))
    instrumentor.instrument(("pandas", "numpy"))
    try:
        ops["np.median(10k values)"] = lambda: np.atleast_1d(np.median(df["value"].to_numpy()))  # patched median
        ob = {name: median_us(op) for name, op in ops.items()}
    finally:
        instrumentor.uninstrument()
    return [(name, plain[name], raw[name], ob[name]) for name in ops]


def bench_privacy() -> list[tuple[str, float]]:
    attributes = {"password": "hunter2", "user.id": "alice", "http.route": "/login",
                  "note": "mail bob@example.com", "order.id": "o-1", "gen_ai.usage.input_tokens": 42}
    rows = []
    for label, on in (("span with 6 attributes, privacy off", False), ("span with 6 attributes, privacy on", True)):
        tracer = handle(privacy=on).get_tracer("bench")
        rows.append((label, median_us(lambda: tracer.start_span("op", attributes=attributes).end(), 2000)))
    provider = TracerProvider()
    exporter = InMemorySpanExporter()
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    provider.get_tracer("b").start_span("op", attributes=attributes).end()
    span, redactor = exporter.get_finished_spans()[0], Redactor()
    rows.append(("masking one span (export thread)", median_us(lambda: redactor.span(span), 2000)))
    # A log record is masked as it is emitted (the SDK's log record processor hook), in the caller's thread.
    for label, on in (("log record with 4 attributes, privacy off", False),
                      ("log record with 4 attributes, privacy on", True)):
        logger = handle(privacy=on)._logger_provider.get_logger("bench")
        record = {"body": "login for bob@example.com", "attributes": {k: attributes[k] for k in list(attributes)[:4]}}
        rows.append((label, median_us(lambda: logger.emit(LogRecord(**record)), 2000)))
    return rows


def main() -> None:
    print(f"{'data operation':30} {'plain µs':>9} {'raw SDK µs':>11} {'obslab µs':>10} {'obslab/raw':>10}")
    for name, plain, raw, ob in bench_data():
        print(f"{name:30} {plain:9.1f} {raw:11.1f} {ob:10.1f} {ob / raw:10.2f}")
    for name, us in bench_privacy():
        print(f"{name:40} {us:8.2f} µs")


if __name__ == "__main__":
    main()
