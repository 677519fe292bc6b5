"""Issue 19, defect 7: init_telemetry() after shutdown() gives a working handle, not the dead one."""

from __future__ import annotations

import subprocess
import sys

AGAIN = """
import logging
from opentelemetry import trace
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from obslab import init_telemetry

first = init_telemetry("svc", console_only=True)
first.shutdown(0.5)
second = init_telemetry("svc", console_only=True)
exporter = InMemorySpanExporter()
second._tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
with second.span("by the handle"):
    pass
with trace.get_tracer("app").start_as_current_span("by the global API"):
    pass
bridged = bool(second._log_handlers) and all(h in logging.getLogger().handlers for h in second._log_handlers)
print(second is not first, sorted(s.name for s in exporter.get_finished_spans()), bridged)
second.shutdown(0.5)
"""


def test_init_after_shutdown_records_again_through_the_handle_the_global_api_and_logging(tmp_path):
    out = subprocess.run([sys.executable, "-c", AGAIN], capture_output=True, text=True, cwd=tmp_path, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "True ['by the global API', 'by the handle'] True", out.stdout


BEFORE = """
import warnings
from opentelemetry import trace
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from obslab import init_telemetry

first = init_telemetry("svc", console_only=True)
early = trace.get_tracer("app.module")  # a module-level tracer, used while the first handle lived
with early.start_as_current_span("first life"):
    pass
first.shutdown(0.5)
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    second = init_telemetry("svc", console_only=True)
print("WARNINGS:", "|".join(str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)))
exporter = InMemorySpanExporter()
second._tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
with early.start_as_current_span("kept tracer"):
    pass
with trace.get_tracer("app.module").start_as_current_span("tracer got again"):
    pass
print("SPANS:", sorted(s.name for s in exporter.get_finished_spans()))
second.shutdown(0.5)
"""


def test_a_second_init_after_shutdown_warns_that_earlier_tracers_stay_inert(tmp_path):
    """Tracers bind to their provider at creation and a shut-down provider cannot be restarted
    (docs/sdk.md says why obslab does not put a proxy in front of them): the second init says so, and
    a tracer obtained again records."""
    out = subprocess.run([sys.executable, "-c", BEFORE], capture_output=True, text=True, cwd=tmp_path, timeout=60)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    warning = next(line for line in lines if line.startswith("WARNINGS:"))
    assert "obtained before shutdown() record nothing" in warning and "get them again" in warning, out.stdout
    assert next(line for line in lines if line.startswith("SPANS:")) == "SPANS: ['tracer got again']"
