"""obslab's pytest plugin, telemetry_capture: the real pipeline in memory, helpers that find what it
exported, a deterministic mode, and a process put back as it was after each test."""

from __future__ import annotations

import logging
import subprocess
import sys
import textwrap
import time
import warnings

import pytest

from hypothesis import given, settings, strategies as st
from opentelemetry import _logs, metrics, trace

from obslab import get_telemetry, init_telemetry
from obslab import telemetry as telemetry_module
from obslab.testing.capture import FIXED_TIME_NS, TelemetryCapture

from lab import REPO


def run_pytest(tmp_path, source: str) -> subprocess.CompletedProcess:
    """A user's test file run by pytest in its own process (the plugin loaded by its entry point)."""
    (tmp_path / "test_user.py").write_text(textwrap.dedent(source))
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_user.py"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120)


def test_the_plugin_is_registered_and_inert_unless_a_fixture_is_used(tmp_path):
    result = run_pytest(tmp_path, """
        import logging
        import sys

        def test_plain():
            from opentelemetry import trace

            assert "obslab.testing.capture" not in sys.modules and "obslab.testing.lab" not in sys.modules
            # nor the SDK, nor OpenTelemetry's: a session using no fixture pays nothing for the plugin
            assert "obslab.telemetry" not in sys.modules and "opentelemetry.sdk" not in sys.modules
            assert type(trace.get_tracer_provider()).__name__ == "ProxyTracerProvider"
            assert not [h for h in logging.getLogger().handlers if "obslab" in type(h).__module__]
    """)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 passed" in result.stdout
    fixtures = subprocess.run([sys.executable, "-m", "pytest", "--fixtures", "-p", "no:cacheprovider", "test_user.py"],
                              cwd=tmp_path, capture_output=True, text=True, timeout=120).stdout
    assert "telemetry_capture -- " in fixtures and "obslab_lab [session scope] -- " in fixtures


def test_each_test_starts_clean_and_the_process_is_put_back_after_it(tmp_path):
    result = run_pytest(tmp_path, """
        import logging
        from opentelemetry import trace
        from obslab import get_telemetry

        def test_first(telemetry_capture):
            with trace.get_tracer("app").start_as_current_span("first"):
                logging.getLogger("app").info("inside first")
            assert [s.name for s in telemetry_capture.spans()] == ["first"]

        def test_second(telemetry_capture):
            assert telemetry_capture.spans() == [] and telemetry_capture.logs() == []

        def test_after():
            assert not get_telemetry().enabled
            assert type(trace.get_tracer_provider()).__name__ == "ProxyTracerProvider"
            assert not [h for h in logging.getLogger().handlers if "obslab" in type(h).__module__]
    """)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "3 passed" in result.stdout


def test_global_providers_handle_and_root_level_are_restored():
    root = logging.getLogger()
    before = (trace.get_tracer_provider(), metrics.get_meter_provider(), _logs.get_logger_provider(),
              telemetry_module._handle, root.level, list(root.handlers))
    capture = TelemetryCapture().configure(log_level="DEBUG")
    assert trace.get_tracer_provider() is capture.telemetry._tracer_provider
    assert metrics.get_meter_provider() is capture.telemetry._meter_provider
    assert get_telemetry() is capture.telemetry and root.level == logging.DEBUG
    capture.close()
    after = (trace.get_tracer_provider(), metrics.get_meter_provider(), _logs.get_logger_provider(),
             telemetry_module._handle, root.level, list(root.handlers))
    assert after == before


def test_init_telemetry_in_the_code_under_test_returns_the_capture_handle_without_a_warning(telemetry_capture):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        handle = init_telemetry(service_name="checkout", otlp_endpoint="collector:4317")
    assert handle is telemetry_capture.telemetry


def test_spans_are_found_by_name_and_attributes_and_their_tree(telemetry_capture):
    tracer = trace.get_tracer("app")
    with tracer.start_as_current_span("order") as order:
        for item in ("a", "b"):
            with tracer.start_as_current_span("item", attributes={"item.sku": item}):
                with tracer.start_as_current_span("db"):
                    pass
    order_span = telemetry_capture.span("order")
    b = telemetry_capture.span("item", {"item.sku": "b"})
    assert order_span.context.span_id == order.get_span_context().span_id
    assert telemetry_capture.parent(b) is order_span and telemetry_capture.parent(order_span) is None
    assert [s.attributes["item.sku"] for s in telemetry_capture.children(order_span)] == ["a", "b"]
    assert telemetry_capture.tree() == [("order", [("item", [("db", [])]), ("item", [("db", [])])])]
    assert len(telemetry_capture.spans("db")) == 2 and telemetry_capture.spans("item", {"item.sku": "c"}) == []


def test_span_names_a_missing_or_ambiguous_span(telemetry_capture):
    tracer = trace.get_tracer("app")
    for _ in range(2):
        with tracer.start_as_current_span("twice"):
            pass
    with pytest.raises(AssertionError, match=r"0 spans named 'absent' with \{\}; captured: \['twice', 'twice'\]"):
        telemetry_capture.span("absent")
    with pytest.raises(AssertionError, match="2 spans named 'twice'"):
        telemetry_capture.span("twice")


def test_the_log_records_of_a_span_and_the_log_bridge(telemetry_capture):
    log = logging.getLogger("shop")
    tracer = trace.get_tracer("app")
    log.info("before any span")
    with tracer.start_as_current_span("pay") as pay:
        log.warning("card declined", extra={"data": {"attempt": 2}})
    with tracer.start_as_current_span("ship"):
        log.info("shipped")
    records = telemetry_capture.logs(telemetry_capture.span("pay"))
    assert [(r.severity_text, r.body) for r in records] == [("WARN", "card declined")]
    assert records[0].trace_id == pay.get_span_context().trace_id and records[0].attributes["attempt"] == 2
    assert [r.body for r in telemetry_capture.logs(body="shipped")] == ["shipped"]
    assert len(telemetry_capture.logs()) == 3


def test_metric_points_by_name_and_attributes(telemetry_capture):
    meter = metrics.get_meter("app")
    orders = meter.create_counter("orders")
    latency = meter.create_histogram("latency", unit="ms")
    for region, n in (("eu", 3), ("us", 2), ("eu", 4)):
        orders.add(n, {"region": region})
        latency.record(n * 10.0, {"region": region})
    assert telemetry_capture.metric_value("orders", region="eu") == 7
    assert telemetry_capture.metric_value("orders") == 9
    [eu] = telemetry_capture.metric_points("latency", region="eu")
    assert (eu.count, eu.sum) == (2, 70.0)
    assert {"orders", "latency"} <= set(telemetry_capture.metric_names())


def test_privacy_masking_runs_in_the_captured_pipeline(telemetry_capture):
    telemetry_capture.configure(privacy=True)
    with get_telemetry().span("login", password="hunter2", **{"user.email": "ada@example.com"}):
        logging.getLogger("auth").warning("login with password=hunter2")
    span = telemetry_capture.span("login")
    assert span.attributes["password"] == "[REDACTED]" and "ada@example.com" not in str(span.attributes)
    assert "hunter2" not in str(telemetry_capture.logs()[0].body)


def test_the_genai_helpers_record_through_the_captured_pipeline(telemetry_capture):
    telemetry = get_telemetry()
    with telemetry.trace_llm_call("gpt-4o", "openai"):
        telemetry.record_llm_usage("gpt-4o", "openai", prompt_tokens=12, completion_tokens=30)
    span = telemetry_capture.span(attributes={"gen_ai.request.model": "gpt-4o"})
    assert span.attributes["gen_ai.provider.name"] == "openai"
    assert telemetry_capture.metric_value("agent.llm.tokens", token_type="completion") == 30


def _workload(capture: TelemetryCapture, names: list[str]) -> list[dict]:
    tracer = trace.get_tracer("app")
    with tracer.start_as_current_span("root"):
        for name in names:
            with tracer.start_as_current_span(name, attributes={"n": len(name)}):
                logging.getLogger("app").info(name)
    return capture.as_dicts() + [capture.log_dict(r) for r in capture.logs()]


@settings(max_examples=20, deadline=None)
@given(st.lists(st.text(alphabet="abcxyz", min_size=1, max_size=5), max_size=5))
def test_the_deterministic_mode_gives_the_same_whole_spans_every_run(names):
    runs = []
    for _ in range(2):
        capture = TelemetryCapture().configure(deterministic=True)
        try:
            runs.append(_workload(capture, names))
        finally:
            capture.close()
    assert runs[0] == runs[1]
    spans = [d for d in runs[0] if "span_id" in d and "kind" in d]
    assert sorted(int(d["span_id"], 16) for d in spans) == list(range(1, len(names) + 2))
    assert {d["trace_id"] for d in spans} == {"0" * 31 + "1"}
    assert {d["start_time"] for d in spans} == {d["end_time"] for d in spans} == {FIXED_TIME_NS}


def test_the_documented_example_test_passes_in_memory():
    """examples/web_api/test_app.py, as a user runs it (its lab test runs in the integration suite)."""
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                             "examples/web_api/test_app.py", "-k", "not lab"],
                            cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "4 passed" in result.stdout


def test_the_deterministic_mode_fixes_the_times_an_instrumentation_stamps_itself():
    """Flask's instrumentation passes its server span's start time from its own clock: whole spans of a
    request still compare equal from one run to the next."""
    from flask import Flask

    from obslab import init_telemetry

    def run() -> list[dict]:
        capture = TelemetryCapture().configure(deterministic=True)
        try:
            app = init_telemetry().instrument_app(Flask("shop"))
            app.add_url_rule("/buy/<item>", "buy", lambda item: {"ok": item})
            app.test_client().get("/buy/pen")
            time.sleep(0.01)
            return capture.as_dicts()
        finally:
            capture.close()

    first, second = run(), run()
    assert first == second and first
    assert {d["start_time"] for d in first} == {d["end_time"] for d in first} == {FIXED_TIME_NS}


def test_obslab_lab_on_a_running_lab_without_tempo_or_loki_says_so_at_once(tmp_path, monkeypatch):
    """A lab `obslab lab up` started where Tempo's and Loki's images are absent has no witness: its spans
    and logs cannot be read, which the helpers say at once instead of polling a closed port for a minute."""
    import json
    import os

    from obslab.lab import engine
    from obslab.testing.lab import ObslabLab, isolated_values, running_config, running_lab

    project = f"obslabunitrun{os.getpid()}"
    env_file = tmp_path / "lab.env"
    env_file.write_text("".join(f"{k}={v}\n" for k, v in isolated_values().items()))
    (tmp_path / "lab.json").write_text(json.dumps({"project": project, "env_file": str(env_file)}))
    monkeypatch.setenv("OBSLAB_HOME", str(tmp_path))
    prometheus = engine.compose_images(REPO / "docker-compose.observability.yml")["prometheus"]
    container = subprocess.run(["docker", "run", "-d", "--rm", "--network", "none", "--label",
                                f"com.docker.compose.project={project}", "--label",
                                "com.docker.compose.service=otel-collector", "--entrypoint", "/bin/sleep", prometheus,
                                "60"], capture_output=True, text=True, timeout=60).stdout.strip()
    try:
        config = running_config()
    finally:
        subprocess.run(["docker", "rm", "-f", container], capture_output=True, timeout=60)
    assert config is not None and config.project == project and not config.start
    with running_lab(config) as lab:
        assert isinstance(lab, ObslabLab)
        for read in (lambda: lab.spans("shop", timeout=20), lambda: lab.logs("shop", timeout=20)):
            started = time.monotonic()
            with pytest.raises(RuntimeError, match="does not run in the lab of compose project .* no ingest witness"):
                read()
            assert time.monotonic() - started < 2
