"""Issue 26, section 3: every bounded call returns within its bound (plus a few milliseconds), with
no thread left behind, against a collector that accepts connections and never answers (a plain
socket server, and a gRPC server whose handlers never return); and a flush while a network exporter
is unreachable still flushes what can be flushed (the console exporters).
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from concurrent import futures
from pathlib import Path

import grpc
import pytest
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2_grpc
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2_grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc

from lab import free_port
from obslab import init_telemetry
from test_flush_threads import SilentCollector

SLACK = 0.03  # seconds: "a few milliseconds", with room for a busy 2-core machine's scheduling
SDK = Path(__file__).resolve().parents[2] / "sdk" / "src"


class _Never:
    def __init__(self, released: threading.Event) -> None:
        self.released = released

    def Export(self, request, context):  # noqa: N802 - the gRPC method name
        self.released.wait(60)
        context.abort(grpc.StatusCode.UNAVAILABLE, "never answered")


class SilentGrpcCollector:
    """A gRPC OTLP server whose Export handlers never return (until the test ends)."""

    def __init__(self) -> None:
        self.released = threading.Event()
        self.port = free_port()
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=16, thread_name_prefix="silent-collector"))
        never = _Never(self.released)
        trace_service_pb2_grpc.add_TraceServiceServicer_to_server(never, self.server)
        metrics_service_pb2_grpc.add_MetricsServiceServicer_to_server(never, self.server)
        logs_service_pb2_grpc.add_LogsServiceServicer_to_server(never, self.server)
        self.server.add_insecure_port(f"127.0.0.1:{self.port}")
        self.server.start()

    def close(self) -> None:
        self.released.set()
        self.server.stop(0)


@pytest.fixture(params=["socket", "grpc"])
def silent(request):
    collector = SilentCollector() if request.param == "socket" else SilentGrpcCollector()
    yield collector
    collector.close()


def timed(call, *args):
    started = time.monotonic()
    result = call(*args)
    return result, time.monotonic() - started


def left_behind(before: set, timeout: float = 0.2) -> list[str]:
    """Threads started since ``before`` and still alive ``timeout`` s later (the silent collector's own
    request threads aside)."""
    deadline = time.monotonic() + timeout
    while True:
        left = [th.name for th in threading.enumerate() if th not in before and not th.name.startswith("silent-")]
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.01)


def test_force_flush_and_shutdown_return_within_their_bound_against_a_collector_that_never_answers(fresh, silent):
    before_init = set(threading.enumerate())
    t = init_telemetry("svc", otlp_endpoint=f"127.0.0.1:{silent.port}", metric_export_interval=60)
    counter = t.create_counter("work")
    logger = t.get_otel_logger("app")
    for i in range(5):
        with t.span(f"waiting-{i}"):
            logger.emit(body=f"line {i}")
            counter.add(1)
    took = []
    for bound in (0.05, 0.05, 0.2, 0.01, 0.05):
        result, elapsed = timed(t.force_flush, bound)
        assert result is False  # nothing was delivered
        took.append((bound, round(elapsed, 3)))
    print("force_flush bound, took:", took)
    assert all(elapsed <= bound + SLACK for bound, elapsed in took), took
    during = threading.active_count()
    for _ in range(50):
        t.force_flush(0.01)
    assert threading.active_count() <= during  # no thread per call
    result, elapsed = timed(t.shutdown, 0.3)
    print("shutdown(0.3) took", round(elapsed, 3))
    assert elapsed <= 0.3 + SLACK, elapsed
    assert left_behind(before_init) == []


CONSOLE_APP = """
import logging, os, sys
from obslab import init_telemetry
t = init_telemetry("svc", otlp_endpoint=sys.argv[1], enable_console_export=True, metric_export_interval=60)
t.create_counter("console.counter").add(3)
t.get_otel_logger("app").emit(body="console log line")
print("flushed:", t.force_flush(5), flush=True)
sys.stdout.flush()
os._exit(0)  # no exit flush: only what force_flush printed counts
"""


def test_force_flush_with_the_collector_unreachable_still_flushes_the_console_exporters(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "OBSLAB_"))}
    env.update(PYTHONPATH=str(SDK), OTEL_LOGS_EXPORTER="otlp,console")
    out = subprocess.run([sys.executable, "-c", CONSOLE_APP, f"127.0.0.1:{free_port()}"], capture_output=True,
                         text=True, cwd=tmp_path, env=env, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "flushed: False" in out.stdout  # the OTLP exporters could not deliver
    assert "console.counter" in out.stdout and "console log line" in out.stdout, out.stdout
