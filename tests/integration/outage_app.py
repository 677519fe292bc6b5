#!/usr/bin/env python3
"""A steady application for the collector-outage tests and benchmark: RATE times a second, a span
and a log record carrying a unique ``record.id``, and a counter incremented by one; runs until a line
(or end of file) arrives on stdin, then exits normally, flushing through obslab's exit hook.

Each second's spans are children of one ``outage.second`` span, whose trace id is printed as a JSON
line (``{"second": n, "trace_id": ..., "latency_us": [each emit's latency]}``), so that the spans can be fetched from Tempo by trace id.
The last line holds the totals and the emit latency: ``{"emitted": n, "p50_ms": ..., "p99_ms": ...}``.

Run: OTLP_ENDPOINT=127.0.0.1:4317 python outage_app.py SERVICE [RATE] [--raw]
``--raw`` uses the OpenTelemetry SDK set up by hand (no obslab), for the benchmark's comparison.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import threading
import time


def obslab_pipeline(service: str):
    from obslab import init_telemetry

    telemetry = init_telemetry(service, metric_export_interval=float(os.environ.get("METRIC_INTERVAL", "2")))
    return telemetry.tracer, telemetry.create_counter("outage.records", "records the app emitted")


def raw_pipeline(service: str):
    """The OpenTelemetry SDK with its OTLP gRPC exporters, as its documentation sets it up."""
    from opentelemetry import trace
    from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter
    from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
    from opentelemetry.instrumentation.logging.handler import LoggingHandler
    from opentelemetry.sdk._logs import LoggerProvider
    from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    endpoint = os.environ["OTLP_ENDPOINT"]
    resource = Resource.create({"service.name": service})
    tracer_provider = TracerProvider(resource=resource)
    tracer_provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint, insecure=True)))
    trace.set_tracer_provider(tracer_provider)
    interval = float(os.environ.get("METRIC_INTERVAL", "2")) * 1000
    meter_provider = MeterProvider(resource=resource, metric_readers=[PeriodicExportingMetricReader(
        OTLPMetricExporter(endpoint=endpoint, insecure=True), export_interval_millis=interval)])
    logger_provider = LoggerProvider(resource=resource)
    logger_provider.add_log_record_processor(BatchLogRecordProcessor(OTLPLogExporter(endpoint=endpoint,
                                                                                     insecure=True)))
    logging.getLogger().addHandler(LoggingHandler(logger_provider=logger_provider))
    logging.getLogger().setLevel(logging.INFO)
    counter = meter_provider.get_meter("outage").create_counter("outage.records")
    return tracer_provider.get_tracer("outage"), counter


def main() -> None:
    service = sys.argv[1]
    rate = int(sys.argv[2]) if len(sys.argv) > 2 and sys.argv[2].isdigit() else 50
    tracer, counter = (raw_pipeline if "--raw" in sys.argv else obslab_pipeline)(service)
    log = logging.getLogger("outage.app")
    stop = threading.Event()
    threading.Thread(target=lambda: (sys.stdin.readline(), stop.set()), daemon=True).start()

    emitted, latencies, second = 0, [], 0
    this_second: list[int] = []
    started = time.monotonic()
    while not stop.is_set():
        with tracer.start_as_current_span("outage.second", attributes={"second": second}) as parent:
            trace_id = f"{parent.get_span_context().trace_id:032x}"
            for _ in range(rate):
                due = started + emitted / rate
                pause = due - time.monotonic()
                if pause > 0:
                    time.sleep(pause)
                t = time.perf_counter()
                with tracer.start_as_current_span("outage.op", attributes={"record.id": emitted}):
                    log.info("outage record %d", emitted)
                    counter.add(1)
                latencies.append(time.perf_counter() - t)
                this_second.append(round(latencies[-1] * 1e6))
                emitted += 1
        print(json.dumps({"second": second, "trace_id": trace_id, "latency_us": this_second}), flush=True)
        this_second = []
        second += 1
    latencies.sort()
    print(json.dumps({"emitted": emitted, "seconds": second,
                      "p50_ms": latencies[len(latencies) // 2] * 1000,
                      "p99_ms": latencies[int(len(latencies) * 0.99)] * 1000,
                      "max_ms": latencies[-1] * 1000}), flush=True)


if __name__ == "__main__":
    main()
