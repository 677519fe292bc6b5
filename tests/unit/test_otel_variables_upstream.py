"""Issue 19, defects 4 to 6: the standard OTEL_* variables mean what opentelemetry-sdk makes of them.
Samplers are exactly the ones named; a value the SDK warns about and ignores never stops the
application; per-signal exporter settings apply."""

from __future__ import annotations

import logging
import time

import pytest
from opentelemetry import propagate, trace
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

from lab import free_port
from obslab import init_telemetry
from otlp_receiver import OTLPReceiver


def remote_parent(sampled: bool):
    parent = SpanContext(trace_id=0x1234, span_id=0x5678, is_remote=True,
                         trace_flags=TraceFlags(TraceFlags.SAMPLED if sampled else TraceFlags.DEFAULT))
    return trace.set_span_in_context(NonRecordingSpan(parent))


@pytest.mark.parametrize("sampler, arg, parent_sampled, recorded", [
    ("always_off", None, True, False),
    ("always_on", None, False, True),
    ("traceidratio", "0", True, False),
    ("traceidratio", "1", False, True),
    ("parentbased_always_off", None, True, True),  # the parent-based forms do follow the parent
    ("parentbased_always_on", None, False, False),
])
def test_the_sampler_named_is_the_sampler_used(fresh, monkeypatch, sampler, arg, parent_sampled, recorded):
    monkeypatch.setenv("OTEL_TRACES_SAMPLER", sampler)
    if arg is not None:
        monkeypatch.setenv("OTEL_TRACES_SAMPLER_ARG", arg)
    t = init_telemetry("svc", console_only=True)
    with t.tracer.start_as_current_span("work", context=remote_parent(parent_sampled)) as span:
        assert span.is_recording() is recorded


@pytest.mark.parametrize("variable, value", [
    ("OTEL_TRACES_SAMPLER", "parentbased_jaeger_remote"),
    ("OTEL_TRACES_SAMPLER_ARG", "half"),
    ("OTEL_RESOURCE_ATTRIBUTES", "team=payments,malformed"),
    ("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "true"),
    ("OTEL_EXPORTER_OTLP_TIMEOUT", "soon"),
    ("OTEL_EXPORTER_OTLP_PROTOCOL", "thrift"),
    ("OTEL_METRIC_EXPORT_INTERVAL", "often"),
])
def test_a_value_the_sdk_warns_about_never_stops_the_application(fresh, monkeypatch, caplog, variable, value):
    monkeypatch.setenv(variable, value)
    if variable == "OTEL_TRACES_SAMPLER_ARG":
        monkeypatch.setenv("OTEL_TRACES_SAMPLER", "traceidratio")
    t = init_telemetry("svc", otlp_endpoint="127.0.0.1:1")
    assert t.enabled
    with t.span("still traced") as span:
        assert span.is_recording()
    assert any(record.levelno >= logging.WARNING for record in caplog.records), caplog.text


def test_resource_attributes_keep_the_good_pairs_of_a_malformed_value(fresh, monkeypatch):
    monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", "team=payments,malformed")
    t = init_telemetry("svc", console_only=True)
    assert t._tracer_provider.resource.attributes["team"] == "payments"


def test_propagators_none_is_the_specifications_no_propagation(fresh, monkeypatch):
    import importlib

    monkeypatch.setenv("OTEL_PROPAGATORS", "none")
    importlib.reload(propagate)  # the SDK reads OTEL_PROPAGATORS when opentelemetry.propagate is imported
    try:
        t = init_telemetry("svc", console_only=True)
        carrier: dict[str, str] = {}
        with t.span("outgoing"):
            propagate.inject(carrier)
        assert carrier == {}
    finally:
        monkeypatch.delenv("OTEL_PROPAGATORS")
        importlib.reload(propagate)


def test_a_signals_own_insecure_setting_reaches_a_plaintext_collector(fresh, monkeypatch):
    receiver = OTLPReceiver(free_port()).start()
    try:
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", f"127.0.0.1:{receiver.port}")
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_INSECURE", "true")
        monkeypatch.setenv("OTEL_METRICS_EXPORTER", "none")
        monkeypatch.setenv("OTEL_LOGS_EXPORTER", "none")
        t = init_telemetry("svc")
        with t.span("over plain text"):
            pass
        assert t.force_flush(5)
        deadline = time.monotonic() + 5
        while not receiver.spans and time.monotonic() < deadline:
            time.sleep(0.05)
        assert [name for name, _ in receiver.spans] == ["over plain text"]
    finally:
        receiver.stop()


@pytest.mark.parametrize("signal", ["metrics", "logs"])
def test_an_exporter_set_to_none_exports_nothing_for_that_signal(fresh, monkeypatch, signal):
    monkeypatch.setenv(f"OTEL_{signal.upper()}_EXPORTER", "none")
    t = init_telemetry("svc", otlp_endpoint="127.0.0.1:1")
    exported = {getattr(exporter, "signal", "metrics") for exporter in t._network_exporters}  # buffers know theirs
    assert exported == {"traces", "metrics", "logs"} - {signal}
