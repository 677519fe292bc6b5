import subprocess
import sys
import time
import warnings

import pytest

from obslab import get_telemetry, init_telemetry, telemetry as telemetry_module


def test_get_telemetry_before_init_returns_a_working_noop_handle(fresh):
    t = get_telemetry()
    with t.span("x"), t.trace_llm_call("m", "p"):
        t.record_request("i", 1.0, True)
    assert t.enabled is False and t.get_trace_context() == {"trace_id": "", "span_id": ""}


def test_sdk_disabled_gives_noop_handle(fresh, monkeypatch):
    monkeypatch.setenv("OTEL_SDK_DISABLED", "true")
    t = init_telemetry("svc")
    assert t.enabled is False
    with t.span("x"):
        pass


def test_second_init_returns_same_handle_and_warns_when_arguments_differ(fresh):
    first = init_telemetry("svc", otlp_endpoint="127.0.0.1:1")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert init_telemetry("svc", otlp_endpoint="127.0.0.1:1") is first
    with pytest.warns(RuntimeWarning, match="already called"):
        assert init_telemetry("other", otlp_endpoint="127.0.0.1:1") is first
    assert get_telemetry() is first


def test_shutdown_with_no_collector_returns_without_hanging(fresh):
    t = init_telemetry("svc", otlp_endpoint="127.0.0.1:1")
    with t.span("x"):
        t.get_logger("a").warning("w")
    started = time.monotonic()
    t.shutdown()
    # The bound is the shutdown_timeout setting (2 s); the benchmark reports the exact figure.
    assert time.monotonic() - started < t.settings.shutdown_timeout + 1.0


def test_calls_never_raise_when_collector_is_down(fresh):
    t = init_telemetry("svc", otlp_endpoint="127.0.0.1:1")
    for i in range(50):
        with t.trace_agent_iteration(i), t.trace_llm_call("m", "p"):
            t.record_llm_usage("m", "p", 1, 1)
            t.get_logger("a").info("still fine")
    assert t.force_flush(0.5) in (True, False)


COEXIST = """
import sys
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
exporter, provider = InMemorySpanExporter(), TracerProvider()
provider.add_span_processor(SimpleSpanProcessor(exporter))
trace.set_tracer_provider(provider)  # what opentelemetry-instrument does before the app runs
import obslab
t = obslab.init_telemetry("svc", otlp_endpoint="127.0.0.1:1", privacy=PRIVACY)
with t.span("work"):
    pass
print(len(exporter.get_finished_spans()), t._exporters, trace.get_tracer_provider() is provider)
"""


def test_under_opentelemetry_instrument_the_existing_pipeline_is_used_not_a_second_one(tmp_path):
    out = subprocess.run([sys.executable, "-c", COEXIST.replace("PRIVACY", "None")], capture_output=True,
                         text=True, cwd=tmp_path, timeout=60)
    assert out.stdout.split() == ["1", "[]", "True"], out.stderr


def test_under_opentelemetry_instrument_privacy_is_refused_rather_than_silently_skipped(tmp_path):
    out = subprocess.run([sys.executable, "-c", COEXIST.replace("PRIVACY", "True")], capture_output=True,
                         text=True, cwd=tmp_path, timeout=60)
    assert out.returncode != 0 and "privacy=True: OpenTelemetry was already set up" in out.stderr


def test_unknown_propagator_is_refused_with_the_installed_ones_listed(fresh):
    with pytest.raises(ValueError, match="unknown propagator.*b3multi.*installed: baggage.*tracecontext"):
        init_telemetry("svc", otlp_endpoint="127.0.0.1:1", propagators=["tracecontext", "b3multi"])


def test_baggage_and_trace_context_are_propagated_in_w3c_headers(fresh):
    from opentelemetry import baggage, context
    from opentelemetry.propagate import inject
    t = init_telemetry("svc", otlp_endpoint="127.0.0.1:1")
    token = context.attach(baggage.set_baggage("tenant", "acme"))
    try:
        with t.span("outgoing"):
            headers: dict = {}
            inject(headers)
            trace_id = t.get_trace_context()["trace_id"]
    finally:
        context.detach(token)
    assert headers["traceparent"].split("-")[1] == trace_id
    assert headers["baggage"] == "tenant=acme"
