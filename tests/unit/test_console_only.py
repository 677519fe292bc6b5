"""Zero-infrastructure mode (mini-telemetry seed): every signal on stdout, no connection attempted."""

import io
import json
import os
import socket
import subprocess
import sys
import textwrap

import pytest

from obslab import TelemetryTools

APP = textwrap.dedent("""
    import logging
    from obslab import init_telemetry
    t = init_telemetry("console-svc", console_only=CONSOLE_ONLY, metric_export_interval=60)
    with t.span("parent", order_id="o-1"):
        with t.span("child") as span:
            span.add_event("checkpoint", {"progress": "50%"})
            t.create_counter("orders.processed", "Orders processed").add(3, {"kind": "web"})
            logging.getLogger("app").info("order done")
    t.shutdown()
""")


@pytest.fixture
def listener():
    """A TCP port that records whether anybody tried to connect to it."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        sock.setblocking(False)
        yield sock


def connection_attempted(sock: socket.socket) -> bool:
    try:
        sock.accept()[0].close()
        return True
    except BlockingIOError:
        return False


def run_app(port: int, console_only: str, env: dict | None = None) -> subprocess.CompletedProcess:
    environ = {**os.environ, "OTEL_EXPORTER_OTLP_ENDPOINT": f"127.0.0.1:{port}", "OBSLAB_SHUTDOWN_TIMEOUT": "1",
               **(env or {})}
    return subprocess.run([sys.executable, "-c", APP.replace("CONSOLE_ONLY", console_only)], env=environ,
                          capture_output=True, text=True, timeout=60, cwd=os.path.dirname(__file__))


def test_console_only_prints_all_three_signals_to_stdout_and_connects_nowhere(listener):
    result = run_app(listener.getsockname()[1], "True")
    assert result.returncode == 0, result.stderr
    assert not connection_attempted(listener)
    lines = result.stdout.splitlines()
    spans = [json.loads(line) for line in lines if line.startswith('{"name"') and '"parent_id"' in line]
    by_name = {s["name"]: s for s in spans}
    child, parent = by_name["child"], by_name["parent"]
    assert child["parent_id"] == parent["context"]["span_id"]
    assert child["context"]["trace_id"] == parent["context"]["trace_id"]
    assert parent["attributes"] == {"order_id": "o-1"} and child["events"][0]["name"] == "checkpoint"
    assert child["start_time"] and child["end_time"] and child["status"]["status_code"] == "UNSET"
    metrics = [json.loads(line) for line in lines if '"resource_metrics"' in line]
    points = [(m["name"], p) for batch in metrics for rm in batch["resource_metrics"]
              for sm in rm["scope_metrics"] for m in sm["metrics"] for p in m["data"]["data_points"]]
    value = next(p for name, p in points if name == "orders.processed")
    assert value["value"] == 3 and value["attributes"] == {"kind": "web"} and value["time_unix_nano"] > 0
    trace_id = child["context"]["trace_id"].removeprefix("0x")
    assert any("order done" in line and f"trace_id={trace_id}" in line for line in lines), result.stdout


def test_console_only_from_the_environment_variable(listener):
    result = run_app(listener.getsockname()[1], "None", {"OBSLAB_CONSOLE_ONLY": "true"})
    assert result.returncode == 0, result.stderr
    assert '"name": "parent"' in result.stdout.replace('":"', '": "') or '"name":"parent"' in result.stdout
    assert not connection_attempted(listener)


def test_without_console_only_the_collector_endpoint_is_dialled(listener):
    """The check above can fail: the same app does connect when the mode is off."""
    result = run_app(listener.getsockname()[1], "False")
    assert result.returncode == 0, result.stderr
    assert connection_attempted(listener)


def test_telemetry_tools_is_an_alias_over_the_process_handle(fresh):
    tools = TelemetryTools("tools-svc", "1.2.3", "staging", console_only=True)
    assert tools.telemetry.settings.service_version == "1.2.3"
    assert tools.telemetry.settings.environment == "staging"
    with tools.get_tracer("orders").start_as_current_span("s") as span:
        assert span.get_span_context().is_valid
    (reader,) = tools.telemetry._meter_provider._metric_readers  # console-only: the console exporter
    reader._exporter.out = io.StringIO()
    tools.get_meter("orders").create_counter("tools.orders.counted").add(3)
    tools.telemetry.force_flush(2)
    assert '"name": "tools.orders.counted"' in reader._exporter.out.getvalue()
    assert tools.get_logger("orders").name == "orders"
    with pytest.warns(RuntimeWarning, match="already called"):
        assert TelemetryTools("other").telemetry is tools.telemetry
