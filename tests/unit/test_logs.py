import collections
import http.server
import io
import json
import logging
import logging.config
import subprocess
import sys
import threading

import pytest

from obslab import init_telemetry
from obslab.config import Settings, load_settings
from obslab.logs import OTLPHandler, console_handler
from obslab.telemetry import Telemetry


def test_log_inside_span_carries_trace_id(recorded):
    with recorded.handle.span("work") as span:
        logging.getLogger("app").info("inside")
        ctx = span.get_span_context()
    (record,) = [r for r in recorded.logs() if r.body == "inside"]
    assert record.trace_id == ctx.trace_id
    assert record.span_id == ctx.span_id


def test_log_outside_span_is_exported_without_trace_id(recorded):
    logging.getLogger("app").warning("outside")
    (record,) = [r for r in recorded.logs() if r.body == "outside"]
    assert record.trace_id == 0


def test_extra_data_and_plain_extra_keys_become_attributes(recorded):
    logging.getLogger("app").info("order", extra={"data": {"order_id": 42, "items": ["a", "b"]}, "user_tier": "gold"})
    (record,) = [r for r in recorded.logs() if r.body == "order"]
    assert record.attributes["order_id"] == 42
    assert list(record.attributes["items"]) == ["a", "b"]
    assert record.attributes["user_tier"] == "gold"
    assert "trace_id" not in record.attributes and "data" not in record.attributes


def test_dict_config_after_init_keeps_one_bridge_and_no_duplicates(recorded):
    otlp, console = recorded.handle._log_handlers
    console.setStream(io.StringIO())
    config = {"version": 1, "disable_existing_loggers": False, "root": {"level": "INFO", "handlers": []}}
    logging.config.dictConfig(config)
    logging.config.dictConfig(config)
    root = logging.getLogger().handlers
    assert (root.count(otlp), root.count(console)) == (1, 1)
    logging.getLogger("app").info("once")
    assert [r.body for r in recorded.logs()].count("once") == 1
    assert console.stream.getvalue().count(" - once") == 1


def test_sdk_internal_logs_never_reach_the_exporter(recorded):
    logging.getLogger("opentelemetry.exporter.otlp.proto.grpc.exporter").error("export failed for logs")
    logging.getLogger("grpc._channel").error("channel broken")
    assert recorded.logs() == []


def test_text_console_format_has_trace_and_span_ids(recorded):
    stream = io.StringIO()
    handler = console_handler(Settings(service_name="svc"), stream)
    logger = logging.getLogger("fmt")
    logger.addHandler(handler)
    try:
        with recorded.handle.span("s"):
            ids = recorded.handle.get_trace_context()
            logger.info("hello")
    finally:
        logger.removeHandler(handler)
    line = stream.getvalue().strip()
    assert f"trace_id={ids['trace_id']} span_id={ids['span_id']} - hello" in line


def test_json_console_format_is_one_object_per_line(recorded):
    stream = io.StringIO()
    handler = console_handler(Settings(service_name="svc", json_logs=True), stream)
    logger = logging.getLogger("fmtjson")
    logger.addHandler(handler)
    try:
        with recorded.handle.span("s"):
            ids = recorded.handle.get_trace_context()
            logger.info("hello", extra={"data": {"k": 1}})
    finally:
        logger.removeHandler(handler)
    entry = json.loads(stream.getvalue().strip())
    assert entry["message"] == "hello" and entry["trace_id"] == ids["trace_id"] and entry["k"] == 1


# --- issue 10: the logging bridge never harms the application ------------------------------


MISMATCHED = """
import logging
from obslab import init_telemetry
init_telemetry("svc", otlp_endpoint="127.0.0.1:1", privacy=PRIVACY, console_only=CONSOLE_ONLY)
logging.getLogger("app").warning("value %d", "x")
print("the application went on")
"""


@pytest.mark.parametrize("privacy", [False, True])
@pytest.mark.parametrize("console_only", [False, True])
def test_mismatched_log_arguments_never_raise_with_privacy_on_or_off(tmp_path, privacy, console_only):
    """Without obslab the standard library prints "--- Logging error ---" and goes on; so must we
    (a subprocess: pytest's own log capture raises on such a record)."""
    code = MISMATCHED.replace("PRIVACY", str(privacy)).replace("CONSOLE_ONLY", str(console_only))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, timeout=60)
    assert out.returncode == 0 and "the application went on" in out.stdout, out.stderr
    assert "--- Logging error ---" in out.stderr


class _CountingCollector(http.server.BaseHTTPRequestHandler):
    """Answers every OTLP/HTTP export with 200 and counts the requests per path."""

    counts: collections.Counter = collections.Counter()

    def do_POST(self):  # noqa: N802
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.counts[self.path] += 1
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


def test_http_client_records_about_each_export_are_not_exported_again(fresh, root_level):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _CountingCollector)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    _CountingCollector.counts.clear()
    settings = load_settings({"service_name": "loop", "otlp_protocol": "http/protobuf", "metric_export_interval": 60,
                              "otlp_endpoint": f"http://127.0.0.1:{server.server_port}", "log_level": "DEBUG"},
                             environ={})
    handle = Telemetry(settings)
    handle._install()
    root_level(logging.DEBUG)  # the application logs everything, urllib3's debug lines too
    try:
        logging.getLogger("app").info("the one application line")
        for _ in range(4):
            handle.force_flush(5)
    finally:
        handle.shutdown(2)
        server.shutdown()
    assert _CountingCollector.counts["/v1/logs"] == 1, _CountingCollector.counts


def test_after_shutdown_logging_configuration_is_the_applications_again(fresh):
    originals = (logging.basicConfig, logging.config.dictConfig, logging.config.fileConfig)
    handlers = list(logging.getLogger().handlers)
    telemetry = init_telemetry("svc", otlp_endpoint="127.0.0.1:1")
    assert logging.basicConfig is not originals[0]
    telemetry.shutdown(0.5)
    assert (logging.basicConfig, logging.config.dictConfig, logging.config.fileConfig) == originals
    assert logging.getLogger().handlers == handlers
    logging.basicConfig(force=True, stream=io.StringIO())  # reconfiguring later attaches nothing of obslab's
    try:
        assert not [h for h in logging.getLogger().handlers if isinstance(h, OTLPHandler)]
    finally:
        for handler in logging.getLogger().handlers[:]:
            if handler not in handlers:
                logging.getLogger().removeHandler(handler)
        for handler in handlers:
            if handler not in logging.getLogger().handlers:
                logging.getLogger().addHandler(handler)


def test_root_level_and_console_output_the_app_configured_are_left_alone(fresh, root_level):
    root = logging.getLogger()
    root_level(logging.DEBUG)
    app_console = logging.StreamHandler(sys.stderr)
    root.addHandler(app_console)
    try:
        telemetry = init_telemetry("svc", otlp_endpoint="127.0.0.1:1", log_level="INFO")
        assert root.level == logging.DEBUG
        printing = [h for h in root.handlers if type(h) is logging.StreamHandler and h.stream is sys.stderr]
        assert printing == [app_console]  # obslab's console handler would print every line a second time
        assert any(isinstance(h, OTLPHandler) for h in root.handlers)
        telemetry.shutdown(0.5)
        assert root.level == logging.DEBUG
    finally:
        root.removeHandler(app_console)


def test_unconfigured_root_logger_is_opened_to_log_level_and_put_back_at_shutdown(fresh, monkeypatch, root_level):
    root = logging.getLogger()
    monkeypatch.setattr(root, "handlers", [])  # as in a process where logging was never configured
    root_level(logging.WARNING)
    telemetry = init_telemetry("svc", otlp_endpoint="127.0.0.1:1", log_level="INFO")
    assert root.level == logging.INFO and len(root.handlers) == 2  # OTLP and console
    telemetry.shutdown(0.5)
    assert root.level == logging.WARNING and root.handlers == []


@pytest.mark.parametrize("shape", ["nested", "circular"])
def test_a_json_console_line_with_an_unencodable_extra_value_is_printed_without_raising(shape):
    import io

    from obslab.config import Settings
    from obslab.logs import console_handler

    value: dict = {}
    if shape == "circular":
        value["self"] = value
    else:
        inner = value
        for _ in range(5000):
            inner["k"] = {}
            inner = inner["k"]
    stream = io.StringIO()
    logger = logging.getLogger("app.json-console")
    handler = console_handler(Settings(service_name="svc", json_logs=True), stream=stream)
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.warning("order failed", extra={"payload": value, "order_id": "o-1"})  # logging re-raises RecursionError
    finally:
        logger.removeHandler(handler)
        logger.propagate = True
    line = json.loads(stream.getvalue())
    assert line["message"] == "order failed" and line["order_id"] == "o-1" and "not printable" in line["payload"]


@pytest.mark.parametrize("shape", ["nested", "circular"])
def test_an_unencodable_extra_value_does_not_lose_the_exported_record(recorded, shape):
    value: dict = {}
    if shape == "circular":
        value["self"] = value
    else:
        inner = value
        for _ in range(5000):
            inner["k"] = {}
            inner = inner["k"]
    logging.getLogger("app").warning("order failed", extra={"payload": value, "order_id": "o-1"})
    (record,) = [r for r in recorded.logs() if r.body == "order failed"]
    assert record.attributes["order_id"] == "o-1" and "not printable" in record.attributes["payload"]
