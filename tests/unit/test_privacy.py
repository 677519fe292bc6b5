"""Privacy masking: off by default; when on, secrets and personal data never reach an exporter."""

import hashlib
import hmac
import io
import logging

import pytest
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter
from opentelemetry.sdk.metrics.export import InMemoryMetricReader, MetricExporter, MetricExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from obslab import telemetry as telemetry_module
from obslab.config import Settings
from obslab.privacy import MASK, Redactor
from obslab.telemetry import Telemetry

SECRET = "s3cr3t-hunter2"
DEPLOYMENT_SECRET = "9f2c4e1a7b3d8f60c5e2a9d4b7f1e3c8a6d0b2f4e7c9a1d3"
JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U"


@pytest.fixture
def private(monkeypatch, app_logging_at_info):
    """A handle with privacy on (plus one extra key), exporting in memory."""
    spans, logs = InMemorySpanExporter(), InMemoryLogRecordExporter()
    settings = Settings(service_name="private-svc", privacy=True, privacy_keys=("customer_note",),
                        privacy_secret=DEPLOYMENT_SECRET)
    handle = telemetry_module.Telemetry(settings, span_exporter=spans, log_exporter=logs,
                                        metric_readers=(InMemoryMetricReader(),))
    handle._install()
    monkeypatch.setattr(telemetry_module, "_handle", handle)
    yield handle, spans, logs
    handle.shutdown(1)


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


def keyed(user: str) -> str:
    return "hmac-sha256:" + hmac.new(DEPLOYMENT_SECRET.encode(), user.encode(), hashlib.sha256).hexdigest()


def test_user_ids_are_replaced_by_a_keyed_hash_no_dictionary_reverses(private):
    handle, spans, _ = private
    with handle.span("order", **{"user.id": "alice", "enduser.id": "bob", "order.id": "o-1"}):
        pass
    handle.force_flush(5)
    attrs = dict(spans.get_finished_spans()[0].attributes)
    assert attrs["user.id"] == keyed("alice") and attrs["enduser.id"] == keyed("bob")
    assert hashlib.sha256(b"alice").hexdigest() not in str(attrs)  # the plain hash a dictionary reverses
    assert attrs["order.id"] == "o-1"


def test_without_a_deployment_secret_user_ids_are_masked_not_hashed():
    assert Redactor().value("user.id", "alice") == MASK


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
    with pytest.warns(UserWarning, match="privacy is on without OBSLAB_PRIVACY_SECRET: user ids are exported as"):
        settings = init_telemetry("svc", otlp_endpoint="127.0.0.1:1").settings
    assert settings.privacy and settings.privacy_keys == ("iban", "customer_note")
    assert Redactor(settings.privacy_keys).value("billing.iban", "FR76 3000") == MASK



# --- issue 10: every exported name and attribute is masked; ids are keyed hashes ------------


class CollectedMetrics(MetricExporter):
    """A metric exporter that keeps what it is given (the SDK has only an in-memory reader)."""

    def __init__(self):
        super().__init__()
        self.batches = []

    def export(self, metrics_data, timeout_millis=10_000, **kwargs):
        self.batches.append(metrics_data)
        return MetricExportResult.SUCCESS

    def force_flush(self, timeout_millis=10_000):
        return True

    def shutdown(self, timeout_millis=30_000, **kwargs):
        pass


def test_span_names_resource_and_metric_attributes_are_masked(app_logging_at_info):
    spans, metrics = InMemorySpanExporter(), CollectedMetrics()
    settings = Settings(service_name="private-svc", privacy=True, privacy_secret=DEPLOYMENT_SECRET,
                        resource_attributes={"owner.email": "ops@example.com", "deploy.token": SECRET})
    handle = Telemetry(settings, span_exporter=spans, metric_exporter=metrics, log_exporter=InMemoryLogRecordExporter())
    try:
        with handle.span("reset password for bob@example.com"):
            pass
        handle.create_counter("logins").add(1, {"user.id": "alice", "note": "mail bob@example.com", "api_key": SECRET})
        handle.force_flush(5)
    finally:
        handle.shutdown(1)
    (span,) = spans.get_finished_spans()
    assert span.name == f"reset password for {MASK}"
    assert span.resource.attributes["owner.email"] == MASK and span.resource.attributes["deploy.token"] == MASK
    points = [point for batch in metrics.batches for rm in batch.resource_metrics for sm in rm.scope_metrics
              for metric in sm.metrics if metric.name == "logins" for point in metric.data.data_points]
    assert dict(points[-1].attributes) == {"user.id": keyed("alice"), "note": f"mail {MASK}", "api_key": MASK}
    assert "ops@example.com" not in repr(metrics.batches)


def test_prometheus_endpoint_masks_label_values(fresh, monkeypatch):
    import requests

    from lab import free_port
    from obslab import init_telemetry

    monkeypatch.setenv("OBSLAB_PRIVACY_SECRET", DEPLOYMENT_SECRET)
    port = free_port()
    t = init_telemetry("svc", otlp_endpoint="127.0.0.1:1", privacy=True, prometheus_port=port)
    t.create_counter("logins").add(1, {"user.id": "alice", "email": "alice@example.com"})
    body = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    assert "alice" not in body and keyed("alice") in body


@pytest.mark.parametrize("secret", ["short", "a" * 40, "changeme" * 5])
def test_a_weak_privacy_secret_is_refused_without_being_printed(secret):
    from obslab.config import load_settings
    with pytest.raises(ValueError) as err:
        load_settings({}, environ={"OBSLAB_PRIVACY_SECRET": secret})
    assert "OBSLAB_PRIVACY_SECRET" in str(err.value) and "too weak" in str(err.value)
    assert secret not in str(err.value)


def test_long_numeric_ids_are_not_taken_for_card_numbers():
    start = 1_732_240_000_000_000_000  # nanosecond timestamps: 19 digits, a tenth of them Luhn-valid
    ids = [str(start + i * 7_919) for i in range(2000)] + [str(1_732_240_000_000 + i) for i in range(2000)]
    assert [i for i in ids if Redactor.text(i) != i] == []
    for card in ("4111 1111 1111 1111", "5555-5555-5555-4444", "378282246310005", "6011111111111117",
                 "3530111333300000", "2223003122003222"):
        assert Redactor.text(f"paid with {card}") == f"paid with {MASK}", card
