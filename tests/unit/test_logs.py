import io
import json
import logging
import logging.config

from obslab.config import Settings
from obslab.logs import console_handler


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
    config = {"version": 1, "disable_existing_loggers": False, "root": {"level": "INFO", "handlers": []}}
    logging.config.dictConfig(config)
    logging.config.dictConfig(config)
    assert sum(h is recorded.handle._log_handlers[0] for h in logging.getLogger().handlers) == 1
    logging.getLogger("app").info("once")
    assert [r.body for r in recorded.logs()].count("once") == 1


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
