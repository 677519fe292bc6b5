"""``obslab doctor --service``: each cause of missing data it can see in the environment an app reads
(tests/integration/test_doctor_service.py proves what it finds in the lab)."""

from __future__ import annotations

import socket

import pytest

from obslab.doctor_service import app_environment, environment_causes

LAB = {"OTLP_GRPC_PORT": "4317", "OTLP_HTTP_PORT": "4318", "SAMPLING_PERCENTAGE": "100"}


@pytest.fixture
def collector():
    """Something listening where the app sends: the lab's ports for these tests."""
    with socket.socket() as grpc, socket.socket() as http:
        grpc.bind(("127.0.0.1", 0))
        http.bind(("127.0.0.1", 0))
        grpc.listen()
        http.listen()
        yield {**LAB, "OTLP_GRPC_PORT": str(grpc.getsockname()[1]), "OTLP_HTTP_PORT": str(http.getsockname()[1])}


def test_an_app_sending_to_the_lab_has_no_cause(collector):
    port = collector["OTLP_GRPC_PORT"]
    assert environment_causes({"OTLP_ENDPOINT": f"127.0.0.1:{port}"}, collector) == []
    http = {"OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{collector['OTLP_HTTP_PORT']}",
            "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf"}
    assert environment_causes(http, collector) == []


@pytest.mark.parametrize("signal", ["TRACES", "METRICS", "LOGS"])
def test_an_exporter_set_to_none_is_named(collector, signal):
    env = {"OTLP_ENDPOINT": f"127.0.0.1:{collector['OTLP_GRPC_PORT']}", f"OTEL_{signal}_EXPORTER": "none"}
    [cause] = environment_causes(env, collector)
    assert cause.startswith(f"OTEL_{signal}_EXPORTER=none in the environment") and "unset it" in cause


def test_grpc_sent_to_the_http_port_is_named_with_the_port_to_use(collector):
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{collector['OTLP_HTTP_PORT']}"}
    [cause] = environment_causes(env, collector)
    assert "sends OTLP gRPC to" in cause and f"use port {collector['OTLP_GRPC_PORT']}" in cause


def test_http_sent_to_the_grpc_port_is_named_with_the_port_to_use(collector):
    env = {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": f"http://127.0.0.1:{collector['OTLP_GRPC_PORT']}/v1/traces",
           "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf"}
    [cause] = environment_causes(env, collector)
    assert "sends OTLP/HTTP to" in cause and f"use port {collector['OTLP_HTTP_PORT']}" in cause


def test_an_endpoint_that_is_not_the_lab_is_named(collector):
    [cause] = environment_causes({"OTLP_ENDPOINT": "collector.example.com:55680"}, collector)
    assert "not the lab's collector" in cause and "OTLP_ENDPOINT=127.0.0.1:" in cause


def test_nothing_listening_at_the_labs_port_is_named():
    with socket.socket() as s:  # a port nothing listens on, given as the lab's
        s.bind(("127.0.0.1", 0))
        port = str(s.getsockname()[1])
    [cause] = environment_causes({"OTLP_ENDPOINT": f"127.0.0.1:{port}"}, {**LAB, "OTLP_GRPC_PORT": port})
    assert cause.startswith("nothing listens at") and "obslab lab status" in cause


@pytest.mark.parametrize("sampler, argument", [("always_off", ""), ("parentbased_always_off", ""),
                                               ("traceidratio", "0"), ("parentbased_traceidratio", "0.0")])
def test_sampling_at_zero_in_the_sdk_is_named(collector, sampler, argument):
    env = {"OTLP_ENDPOINT": f"127.0.0.1:{collector['OTLP_GRPC_PORT']}", "OTEL_TRACES_SAMPLER": sampler,
           "OTEL_TRACES_SAMPLER_ARG": argument}
    [cause] = environment_causes(env, collector)
    assert cause.startswith(f"OTEL_TRACES_SAMPLER={sampler}")


def test_a_nonzero_ratio_is_no_cause(collector):
    env = {"OTLP_ENDPOINT": f"127.0.0.1:{collector['OTLP_GRPC_PORT']}", "OTEL_TRACES_SAMPLER": "traceidratio",
           "OTEL_TRACES_SAMPLER_ARG": "0.01"}
    assert environment_causes(env, collector) == []


def test_the_labs_sampling_at_zero_is_named(collector):
    env = {"OTLP_ENDPOINT": f"127.0.0.1:{collector['OTLP_GRPC_PORT']}"}
    [cause] = environment_causes(env, {**collector, "SAMPLING_PERCENTAGE": "0"})
    assert cause.startswith("SAMPLING_PERCENTAGE=0 in the lab's .env")


def test_the_apps_dotenv_is_read_under_the_process_environment(tmp_path, monkeypatch):
    (tmp_path / ".env").write_text("OTEL_LOGS_EXPORTER=none\nOTEL_TRACES_EXPORTER=none\n")
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "otlp")
    env = app_environment(str(tmp_path))
    assert env["OTEL_LOGS_EXPORTER"] == "none" and env["OTEL_TRACES_EXPORTER"] == "otlp"


def test_a_service_whose_span_metrics_series_reads_zero_yet_is_reported_as_accepted():
    """Prometheus' first sample of a new span-metrics series can read 0 (its start): the series exists only
    because the collector counted a span of the service, so the doctor says it was accepted."""
    import http.server
    import json
    import threading

    from obslab.doctor_service import diagnose_service

    class Prometheus(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            spans = "traces_spanmetrics_calls_total" in self.path
            result = [{"metric": {"service": "MyApp"}, "value": [0, "0"]}] if spans else []
            body = json.dumps({"status": "success", "data": {"result": result}}).encode()
            self.send_response(200)
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Prometheus)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        urls = {"prometheus": f"http://127.0.0.1:{server.server_port}"}
        lines = diagnose_service("MyApp", urls, ("tempo", "loki"), {}, LAB)
    finally:
        server.shutdown()
    assert lines[0].startswith("spans:   ok, the collector accepted spans of MyApp"), lines
