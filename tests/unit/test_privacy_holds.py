"""Issue 26, section 2: with privacy on, credentials in URLs and connection strings, signed-URL query
parameters and secrets in exception messages never reach an exporter nor the console; masking keeps
the SDK's dropped counts and attribute length limits."""

from __future__ import annotations

import io
import json
import logging

import pytest
from hypothesis import Phase, example, given, settings, strategies as st
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Link

from obslab import telemetry as telemetry_module
from obslab.config import Settings
from obslab.privacy import MASK, Redactor
from test_privacy import CollectedMetrics

PASSWORD = "hunter2pw"
DEPLOYMENT_SECRET = "9f2c4e1a7b3d8f60c5e2a9d4b7f1e3c8a6d0b2f4e7c9a1d3"

# (written by the application, as the HTTP semantic conventions' url.full rule has it exported)
URLS = [
    (f"https://bob:{PASSWORD}@api.example.com/v1/items?q=1",
     "https://REDACTED:REDACTED@api.example.com/v1/items?q=1"),
    (f"mysql://app:{PASSWORD}@db.internal.example.com:3306/shop",
     "mysql://REDACTED:REDACTED@db.internal.example.com:3306/shop"),
    (f"amqp://guest:{PASSWORD}@rabbit:5672/vhost", "amqp://REDACTED:REDACTED@rabbit:5672/vhost"),
    (f"redis://:{PASSWORD}@localhost:6379/0", "redis://REDACTED:REDACTED@localhost:6379/0"),
    (f"postgresql://svc:{PASSWORD}@10.0.0.5/orders", "postgresql://REDACTED:REDACTED@10.0.0.5/orders"),
    (f"https://{PASSWORD}@github.com/org/repo.git", "https://REDACTED:REDACTED@github.com/org/repo.git"),
]
# The conventions' list of query keys whose values are redacted (case-sensitive), key kept.
SIGNED = [
    (f"https://bucket.s3.amazonaws.com/a.txt?AWSAccessKeyId=AKIAEXAMPLE&Expires=1&Signature={PASSWORD}",
     "https://bucket.s3.amazonaws.com/a.txt?AWSAccessKeyId=REDACTED&Expires=1&Signature=REDACTED"),
    (f"https://acct.blob.core.windows.net/c/b?sv=2020-08-04&sp=r&sig={PASSWORD}",
     "https://acct.blob.core.windows.net/c/b?sv=2020-08-04&sp=r&sig=REDACTED"),
    (f"https://storage.googleapis.com/b/o?X-Goog-Algorithm=GOOG4-RSA-SHA256&X-Goog-Signature={PASSWORD}#top",
     "https://storage.googleapis.com/b/o?X-Goog-Algorithm=GOOG4-RSA-SHA256&X-Goog-Signature=REDACTED#top"),
    (f"https://b.s3.amazonaws.com/k?X-Amz-Credential=AKIA%2F2013&X-Amz-Signature={PASSWORD}&color=blue",
     "https://b.s3.amazonaws.com/k?X-Amz-Credential=REDACTED&X-Amz-Signature=REDACTED&color=blue"),
]


@pytest.mark.parametrize(("url", "expected"), URLS + SIGNED)
def test_urls_are_exported_as_the_http_conventions_redact_url_full(url, expected):
    assert Redactor().value("url.full", url) == expected


@pytest.mark.parametrize(("url", "expected"), URLS + SIGNED)
def test_credentials_in_urls_inside_free_text_are_redacted_and_the_host_kept(url, expected):
    assert Redactor().text(f"connect to {url} failed: timeout") == f"connect to {expected} failed: timeout"


def test_an_e_mail_address_is_still_masked_next_to_a_redacted_url():
    masked = Redactor().text(f"bob@example.com calls redis://:{PASSWORD}@cache.example.com:6379")
    assert masked == f"{MASK} calls redis://REDACTED:REDACTED@cache.example.com:6379"


def test_an_e_mail_address_in_a_url_query_is_masked():
    assert Redactor().text("https://x.example.com/u?email=bob@example.com&page=2") == \
        f"https://x.example.com/u?email={MASK}&page=2"


def test_signed_url_keys_are_matched_case_sensitively_as_the_conventions_say():
    assert Redactor().value("url.full", "https://x.example.com/p?SIG=abc&signature=def") == \
        "https://x.example.com/p?SIG=abc&signature=def"


@pytest.fixture
def private(monkeypatch, app_logging_at_info):
    """``private(**settings)``: a handle with privacy on, exporting in memory, console captured."""
    handles = []

    def make(**overrides):
        spans, logs, metrics = InMemorySpanExporter(), InMemoryLogRecordExporter(), CollectedMetrics()
        settings = Settings(**{"service_name": "private-svc", "privacy": True, "privacy_secret": DEPLOYMENT_SECRET,
                               **overrides})
        handle = telemetry_module.Telemetry(settings, span_exporter=spans, log_exporter=logs, metric_exporter=metrics)
        handle._install()
        monkeypatch.setattr(telemetry_module, "_handle", handle)
        handles.append(handle)
        console = next(h for h in handle._log_handlers if isinstance(h, logging.StreamHandler))
        console.setStream(io.StringIO())
        return handle, spans, logs, metrics, console.stream

    yield make
    for handle in handles:
        handle.shutdown(1)


@pytest.mark.parametrize(("url", "expected"), URLS[:4] + SIGNED[:1])
def test_credentials_in_urls_are_masked_in_every_signal(private, url, expected):
    handle, spans, logs, metrics, console = private()
    with handle.span("query", **{"url.full": url, "db.connection_string": url}) as span:
        span.add_event("retry", {"target": url})
        logging.getLogger("app").warning("cannot reach %s", url)
    handle.create_counter("connections").add(1, {"server": url})
    handle.force_flush(5)
    (exported,) = spans.get_finished_spans()
    assert exported.attributes["url.full"] == expected and exported.attributes["db.connection_string"] == expected
    assert exported.events[0].attributes["target"] == expected
    (record,) = [r.log_record for r in logs.get_finished_logs()]
    assert record.body == f"cannot reach {expected}"
    points = [p for batch in metrics.batches for rm in batch.resource_metrics for sm in rm.scope_metrics
              for m in sm.metrics if m.name == "connections" for p in m.data.data_points]
    assert dict(points[0].attributes) == {"server": expected}
    assert PASSWORD not in console.getvalue() and expected in console.getvalue()


def test_credentials_in_otel_resource_attributes_are_masked(fresh, monkeypatch):
    monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", f"db.url=mysql://app:{PASSWORD}@db.example.com:3306/shop")
    monkeypatch.setenv("OBSLAB_PRIVACY_SECRET", DEPLOYMENT_SECRET)
    from obslab import init_telemetry
    handle = init_telemetry("svc", otlp_endpoint="127.0.0.1:1", privacy=True)
    resource = handle._tracer_provider.resource
    assert resource.attributes["db.url"] == "mysql://REDACTED:REDACTED@db.example.com:3306/shop"


def _fail_with_secret():
    raise ConnectionError(f"auth failed for redis://:{PASSWORD}@cache:6379 with token={PASSWORD}")


@pytest.mark.parametrize("json_logs", [False, True])
def test_secrets_in_exception_messages_never_reach_the_console(private, json_logs):
    handle, _, logs, _, console = private(json_logs=json_logs)
    log = logging.getLogger("app")
    try:
        _fail_with_secret()
    except ConnectionError:
        log.exception("request failed")
    handle.force_flush(5)
    printed = console.getvalue()
    assert "ConnectionError: auth failed for redis://REDACTED:REDACTED@cache:6379" in printed.replace("\\n", "\n")
    assert PASSWORD not in printed
    (record,) = [r.log_record for r in logs.get_finished_logs()]
    assert PASSWORD not in json.dumps(dict(record.attributes), default=str)
    if json_logs:
        assert "ConnectionError" in json.loads(printed.splitlines()[0])["exception"]


@pytest.mark.parametrize("json_logs", [False, True])
def test_a_traceback_already_formatted_by_another_handler_is_masked_on_the_console(private, json_logs):
    _, _, _, _, console = private(json_logs=json_logs)
    record = logging.LogRecord("app", logging.ERROR, __file__, 1, "failed", None, None)
    record.exc_text = f"Traceback (most recent call last):\nValueError: password={PASSWORD}"
    logging.getLogger("app").handle(record)
    assert "ValueError: password=" in console.getvalue() and PASSWORD not in console.getvalue()


@pytest.mark.parametrize("json_logs", [False, True])
def test_stack_info_is_masked_on_the_console(private, json_logs):
    _, _, _, _, console = private(json_logs=json_logs)
    logging.getLogger("app").warning("where", stack_info=True)  # api_key=hunter2pw (this line is printed)
    printed = console.getvalue()
    assert "Stack (most recent call last)" in printed and PASSWORD not in printed


def test_secrets_in_an_exception_recorded_on_a_span_are_masked(private):
    handle, spans, _, _, _ = private()
    with pytest.raises(ConnectionError), handle.span("call"):
        _fail_with_secret()
    handle.force_flush(5)
    (exported,) = spans.get_finished_spans()
    assert PASSWORD not in exported.to_json()
    assert "redis://REDACTED:REDACTED@cache:6379" in exported.events[0].attributes["exception.message"]


# --- masking keeps the SDK's limits and dropped counts ---------------------------------------

LIMITS = {"OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT": "3", "OTEL_ATTRIBUTE_COUNT_LIMIT": "3", "OTEL_SPAN_EVENT_COUNT_LIMIT": "2",
          "OTEL_SPAN_LINK_COUNT_LIMIT": "1", "OTEL_EVENT_ATTRIBUTE_COUNT_LIMIT": "1",
          "OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT": "6", "OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT": "6"}


@pytest.fixture
def limited(monkeypatch):
    for name, value in LIMITS.items():
        monkeypatch.setenv(name, value)


def _crowded_span(handle):
    """A span over every limit: 5 attributes (3 kept), 4 events (2 kept, 2 attributes each, 1 kept),
    2 links (1 kept); the values masking makes longer than the length limit (a user id's keyed hash)."""
    upstream = handle.tracer.start_span("upstream")
    upstream.end()
    links = [Link(upstream.get_span_context(), {"user.id": "al"})] * 2
    with handle.tracer.start_as_current_span("crowded", links=links) as span:
        span.set_attributes({"a": 1, "b": 2, "user.id": "al", "password": "pw", "customer_id": "c1"})
        for i in range(4):
            span.add_event(f"e{i}", {"x": i, "user.id": "al"})
        span.set_attribute("gen_ai.usage.cache_write.input_tokens", 7)  # gets an alias, where there is room


@pytest.mark.parametrize("privacy", [True, False])
def test_masked_spans_keep_their_dropped_counts_and_the_length_limit(private, limited, privacy):
    handle, spans, _, _, _ = private(privacy=privacy)
    _crowded_span(handle)
    handle.force_flush(5)
    crowded = next(s for s in spans.get_finished_spans() if s.name == "crowded")
    assert (crowded.dropped_attributes, crowded.dropped_events, crowded.dropped_links) == (3, 2, 1)
    assert len(crowded.attributes) == 3 and len(crowded.events) == 2 and len(crowded.links) == 1
    assert [e.dropped_attributes for e in crowded.events] == [1, 1]
    assert crowded.links[0].dropped_attributes == 0
    values = [*crowded.attributes.values(), *(v for e in crowded.events for v in e.attributes.values()),
              *crowded.links[0].attributes.values()]
    assert all(len(v) <= 6 for v in values if isinstance(v, str)), values
    if privacy:
        assert crowded.attributes["customer_id"] == "hmac-s" and crowded.links[0].attributes["user.id"] == "hmac-s"


def test_the_usage_alias_is_added_only_where_the_span_has_room(private, monkeypatch):
    monkeypatch.setenv("OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT", "2")
    handle, spans, _, _, _ = private(privacy=False)
    with handle.span("chat m", **{"gen_ai.usage.cache_write.input_tokens": 7}):
        pass
    with handle.span("full", a=1, **{"gen_ai.usage.cache_write.input_tokens": 7}):
        pass
    handle.force_flush(5)
    by_name = {s.name: s for s in spans.get_finished_spans()}
    assert by_name["chat m"].attributes["gen_ai.usage.cache_creation.input_tokens"] == 7
    assert dict(by_name["full"].attributes) == {"a": 1, "gen_ai.usage.cache_write.input_tokens": 7}
    assert by_name["full"].dropped_attributes == 0


@pytest.mark.filterwarnings("ignore::opentelemetry.sdk._logs.LogRecordDroppedAttributesWarning")
def test_masked_log_records_keep_their_dropped_count_and_the_length_limit(private, limited):
    handle, _, logs, _, _ = private()
    logging.getLogger("app").warning("hello", extra={"data": {"user.id": "al", "token": "t", "k1": 1, "k2": 2}})
    handle.force_flush(5)
    (record,) = logs.get_finished_logs()
    attributes = dict(record.log_record.attributes)
    assert len(attributes) == 3 and record.dropped_attributes > 0
    assert all(len(v) <= 6 for v in attributes.values() if isinstance(v, str)), attributes
    assert "al" not in attributes.values()


def _nested(shape, depth):
    inner = {"token": PASSWORD, "note": f"redis://:{PASSWORD}@cache:6379"}
    if shape == "json":  # a text holding a JSON document, as a log record's nested extra values are exported
        return "[" * depth + json.dumps(inner) + "]" * depth
    value = inner
    for _ in range(depth):
        value = {"k": value} if shape in ("data", "extra") else [value]
    return value


@pytest.mark.parametrize("json_logs", [False, True])
def test_deeply_nested_log_values_are_logged_without_raising_and_masked(private, json_logs):
    handle, _, logs, _, console = private(json_logs=json_logs)
    log = logging.getLogger("app")

    @settings(max_examples=20, deadline=None, phases=[Phase.explicit, Phase.generate])
    @example(depth=3000, shape="json")
    @example(depth=3000, shape="data")
    @given(depth=st.integers(1, 4000), shape=st.sampled_from(["data", "extra", "list", "json"]))
    def logs_without_raising(depth, shape):
        value = _nested(shape, depth)
        log.warning("deep value", extra={"data": {"v": value}} if shape == "data" else {"v": value})
        handle.force_flush(5)
        printed = console.getvalue()
        assert printed.rstrip().splitlines()[-1] and "deep value" in printed
        exported = [repr(dict(r.log_record.attributes)) for r in logs.get_finished_logs()]
        assert PASSWORD not in printed and not [e for e in exported if PASSWORD in e]

    logs_without_raising()


@pytest.mark.parametrize("value", [f"token='{PASSWORD}' \"end".encode(), {f"password='{PASSWORD}' \"x\""}])
def test_a_quoted_secret_in_a_nested_log_value_is_masked_once_escaped_as_text(private, value):
    # nested values are exported as JSON text, bytes and sets inside as their repr: with both kinds of
    # quotes in it, a repr escapes its own quote (token=\'...\')
    handle, _, logs, _, console = private()
    logging.getLogger("app").warning("nested", extra={"data": {"deep": {"list": [{"detail": value}]}}})
    handle.force_flush(5)
    exported = [json.dumps(dict(r.log_record.attributes), default=str) for r in logs.get_finished_logs()]
    assert exported and not [e for e in exported if PASSWORD in e], exported
    assert PASSWORD not in console.getvalue()
