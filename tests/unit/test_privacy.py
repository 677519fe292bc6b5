"""Privacy masking: off by default; when on, secrets and personal data never reach an exporter."""

import hashlib
import io
import logging

import pytest
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from obslab import telemetry as telemetry_module
from obslab.config import Settings
from obslab.logs import remove_handlers
from obslab.privacy import MASK, Redactor

SECRET = "s3cr3t-hunter2"
JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U"


@pytest.fixture
def private(monkeypatch):
    """A handle with privacy on (plus one extra key), exporting in memory."""
    spans, logs = InMemorySpanExporter(), InMemoryLogRecordExporter()
    settings = Settings(service_name="private-svc", privacy=True, privacy_keys=("customer_note",))
    handle = telemetry_module.Telemetry(settings, span_exporter=spans, log_exporter=logs,
                                        metric_readers=(InMemoryMetricReader(),))
    handle._install()
    monkeypatch.setattr(telemetry_module, "_handle", handle)
    yield handle, spans, logs
    remove_handlers()
    handle.shutdown(1)
    logging.getLogger().setLevel(logging.WARNING)


def test_secret_keys_and_values_are_masked_in_span_attributes_and_events(private):
    handle, spans, _ = private
    with handle.span("login", password=SECRET, **{"http.request.header.authorization": f"Bearer {SECRET}"}) as span:
        span.set_attribute("customer_note", "allergic to nuts")
        span.set_attribute("note", f"mail bob@example.com, card 4111 1111 1111 1111, token {JWT}")
        span.set_attribute("gen_ai.usage.input_tokens", 42)
        span.add_event("retry", {"api_key": SECRET, "attempt": 2})
    handle.force_flush(5)
    (exported,) = spans.get_finished_spans()
    attrs = dict(exported.attributes)
    assert attrs["password"] == MASK and attrs["http.request.header.authorization"] == MASK
    assert attrs["customer_note"] == MASK
    assert attrs["note"] == f"mail {MASK}, card {MASK}, token {MASK}"
    assert attrs["gen_ai.usage.input_tokens"] == 42  # "tokens" counts are not secrets
    assert dict(exported.events[0].attributes) == {"api_key": MASK, "attempt": 2}
    assert SECRET not in repr(exported.to_json())


def test_user_ids_are_replaced_by_their_sha256(private):
    handle, spans, _ = private
    with handle.span("order", **{"user.id": "alice", "enduser.id": "bob", "order.id": "o-1"}):
        pass
    handle.force_flush(5)
    attrs = dict(spans.get_finished_spans()[0].attributes)
    assert attrs["user.id"] == "sha256:" + hashlib.sha256(b"alice").hexdigest()
    assert attrs["enduser.id"] == "sha256:" + hashlib.sha256(b"bob").hexdigest()
    assert attrs["order.id"] == "o-1"


def test_log_body_and_attributes_are_masked_before_export(private):
    handle, _, logs = private
    console = next(h for h in handle._log_handlers if isinstance(h, logging.StreamHandler))
    console.setStream(io.StringIO())
    with handle.span("work"):
        logging.getLogger("app").warning("login with password=%s for bob@example.com", SECRET,
                                         extra={"data": {"token": SECRET, "rows": 3}, "session_id": SECRET})
    handle.force_flush(5)
    (record,) = [r.log_record for r in logs.get_finished_logs()]
    assert record.body == f"login with password={MASK} for {MASK}"
    assert record.attributes["token"] == MASK and record.attributes["session_id"] == MASK
    assert record.attributes["rows"] == 3
    printed = console.stream.getvalue()
    assert "login with password=" in printed and SECRET not in printed  # the console copy is masked too


def test_privacy_is_off_by_default(recorded):
    with recorded.handle.span("login", password=SECRET):
        pass
    assert dict(recorded.spans()[0].attributes) == {"password": SECRET}


def test_card_like_numbers_that_fail_the_luhn_check_are_kept():
    assert Redactor().text("order 1234 5678 9012 3456 shipped") == "order 1234 5678 9012 3456 shipped"
    assert Redactor().text("card 4111-1111-1111-1111") == f"card {MASK}"


def test_privacy_switch_from_the_environment(fresh, monkeypatch):
    monkeypatch.setenv("OBSLAB_PRIVACY", "true")
    monkeypatch.setenv("OBSLAB_PRIVACY_KEYS", "iban, customer_note")
    from obslab import init_telemetry
    settings = init_telemetry("svc", otlp_endpoint="127.0.0.1:1").settings
    assert settings.privacy and settings.privacy_keys == ("iban", "customer_note")
    assert Redactor(settings.privacy_keys).value("billing.iban", "FR76 3000") == MASK
