"""auto_instrument (autotelemetry seed): enums, JSON logs in production, Prometheus endpoint, system metrics."""

import gc
import socket
import time

import pytest
import requests

from lab import free_port
from obslab import Environment, LogLevel, auto_instrument, init_telemetry
from obslab.logs import JsonFormatter


def test_one_line_sets_up_everything_with_the_seed_arguments(fresh):
    port = free_port()
    t = auto_instrument("etl-svc", service_version="1.0.0", environment=Environment.PRODUCTION,
                        log_level=LogLevel.WARNING, prometheus_port=port, otlp_endpoint="127.0.0.1:1",
                        additional_attributes={"team": "data-engineering"}, instrument=[])
    s = t.settings
    assert (s.service_name, s.environment, s.log_level) == ("etl-svc", "production", "WARNING")
    assert s.json_logs and not s.enable_console_export and s.system_metrics
    assert s.resource_attributes == {"team": "data-engineering"}
    assert any(isinstance(h.formatter, JsonFormatter) for h in t._log_handlers)
    t.create_counter("app.requests.count", "Requests handled", "1").add(2, {"endpoint": "/api/data"})
    t.create_histogram("app.response.time", "Response time", "ms").record(42.5)
    gc.collect()
    body = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    assert 'app_requests_count_total{endpoint="/api/data"' in body
    assert "app_response_time_milliseconds_bucket" in body
    for name in ("process_cpu_time_seconds_total", "process_memory_usage_bytes", "cpython_gc_collections_total",
                 "obslab_gc_duration_milliseconds_total", "system_memory_usage_bytes"):
        assert name in body, name
    assert "system_cpu_usage" not in body  # the process's CPU is process.*, system.* is the host's


def test_development_also_prints_spans_and_metrics_to_the_console(fresh):
    t = auto_instrument("dev-svc", environment="development", otlp_endpoint="127.0.0.1:1", instrument=[],
                        system_metrics=False)
    assert t.settings.enable_console_export and not t.settings.json_logs


def test_prometheus_endpoint_binds_to_loopback_and_stops_at_shutdown(fresh):
    port = free_port()
    t = init_telemetry("svc", otlp_endpoint="127.0.0.1:1", prometheus_port=port)
    assert requests.get(f"http://127.0.0.1:{port}/metrics", timeout=5).ok
    t.shutdown()
    with pytest.raises(requests.ConnectionError):
        requests.get(f"http://127.0.0.1:{port}/metrics", timeout=5)


def test_busy_prometheus_port_names_the_port(fresh):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(ValueError, match=f"prometheus_port={port}: cannot listen on 127.0.0.1:{port}.*in use"):
            init_telemetry("svc", otlp_endpoint="127.0.0.1:1", prometheus_port=port)


@pytest.mark.parametrize("arguments, message", [
    ({"system_metrics": "maybe"}, "system_metrics='maybe' \\(from argument\\): expected true or false"),
    ({"log_level": "LOUD"}, "log_level='LOUD'"),
    ({"prometheus_port": -5}, "prometheus_port=-5.*between 1 and 65535"),
    ({"prometheus_port": 0}, "prometheus_port=0"),
    ({"instrument": ["fastapi", "kafka-magic"]}, "instrument='kafka-magic': unknown instrumentor"),
])
def test_bad_arguments_are_refused_before_anything_starts(fresh, arguments, message):
    with pytest.raises(ValueError, match=message):
        auto_instrument("svc", otlp_endpoint="127.0.0.1:1", **arguments)


def test_system_metrics_are_observed(recorded):
    from obslab.system import register_system_metrics
    remove = register_system_metrics(recorded.handle._meter_provider, recorded.handle.get_meter("obslab.system"))
    try:
        gc.collect()
        metrics = recorded.metrics()
    finally:
        remove()
    assert metrics["process.memory.usage"][0][1] > 1_000_000
    assert {a["type"] for a, _ in metrics["process.cpu.time"]} == {"user", "system"}
    assert sum(v for _, v in metrics["cpython.gc.collections"]) >= 1
    assert {a["generation"] for a, _ in metrics["obslab.gc.duration"]} == {"0", "1", "2"}
    assert {a["state"] for a, _ in metrics["system.memory.usage"]} >= {"used", "free"}  # the host's
    assert "system.cpu.usage" not in metrics and "system.gc.count" not in metrics


# --- issue 10: auto_instrument's defaults come last; process CPU is the same for every reader --


def test_auto_instrument_defaults_yield_to_the_environment_dotenv_and_yaml(fresh, monkeypatch, tmp_path):
    (tmp_path / "telemetry.yaml").write_text("log_level: WARNING\n")
    (tmp_path / ".env").write_text("OBSLAB_SYSTEM_METRICS=false\nOBSLAB_CONFIG=telemetry.yaml\n")
    monkeypatch.setenv("OBSLAB_ENVIRONMENT", "staging")
    monkeypatch.setenv("OBSLAB_INSTRUMENT", "numpy")
    s = auto_instrument("svc", otlp_endpoint="127.0.0.1:1").settings
    assert (s.environment, s.system_metrics, s.log_level, s.instrument) == ("staging", False, "WARNING", ("numpy",))
    assert not s.json_logs and not s.enable_console_export  # follow the environment they were given


def test_auto_instrument_without_any_setting_uses_the_seed_defaults(fresh):
    s = auto_instrument("svc", otlp_endpoint="127.0.0.1:1", instrument=[]).settings
    assert (s.environment, s.log_level, s.system_metrics, s.json_logs) == ("production", "INFO", True, True)
    assert s.sources["environment"] == "default"


def test_process_cpu_reads_the_same_for_every_metric_reader():
    """The process's CPU is the upstream cumulative process.cpu.time: every reader reads the same
    seconds, however many collect it (the rate is the share of one core)."""
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader

    from obslab.system import register_system_metrics

    readers = (InMemoryMetricReader(), InMemoryMetricReader())  # e.g. OTLP export and the Prometheus endpoint
    provider = MeterProvider(metric_readers=readers)
    remove = register_system_metrics(provider, provider.get_meter("t"))
    try:
        deadline = time.process_time() + 0.3
        while time.process_time() < deadline:
            pass
        first, second = (cpu_seconds(reader) for reader in readers)
    finally:
        remove()
        provider.shutdown()
    assert first >= 0.3 and second == pytest.approx(first, abs=0.05), (first, second)


def cpu_seconds(reader) -> float:
    data = reader.get_metrics_data()
    return sum(point.value for rm in data.resource_metrics for sm in rm.scope_metrics for metric in sm.metrics
               if metric.name == "process.cpu.time" for point in metric.data.data_points)


def test_system_metrics_are_given_back_at_shutdown(fresh):
    from opentelemetry.instrumentation.system_metrics import SystemMetricsInstrumentor

    t = init_telemetry("svc", otlp_endpoint="127.0.0.1:1", system_metrics=True)
    assert SystemMetricsInstrumentor().is_instrumented_by_opentelemetry
    t.shutdown(0.5)
    assert not SystemMetricsInstrumentor().is_instrumented_by_opentelemetry
