"""Issue 26, section 2: with privacy on, no generated secret, whatever its shape and whichever field of
whichever signal it is put in, is found in the exported OTLP bytes (encoded by the OTLP exporters'
own encoders) nor in the console output (spans and metrics on stdout, log lines in text or JSON)."""

from __future__ import annotations

import contextlib
import io
import logging
import string

from hypothesis import HealthCheck, Phase, given, settings, strategies as st
from opentelemetry._logs import LogRecord
from opentelemetry.exporter.otlp.proto.common._log_encoder import encode_logs
from opentelemetry.exporter.otlp.proto.common.metrics_encoder import encode_metrics
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk._logs.export import LogRecordExporter, LogRecordExportResult
from opentelemetry.sdk.metrics.export import MetricExporter, MetricExportResult
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.trace import Link, Status, StatusCode

from obslab import telemetry as telemetry_module
from obslab.config import Settings
from obslab.privacy import SIGNED_URL_KEYS

DEPLOYMENT_SECRET = "9f2c4e1a7b3d8f60c5e2a9d4b7f1e3c8a6d0b2f4e7c9a1d3"


class OTLPBytes(SpanExporter, LogRecordExporter, MetricExporter):
    """Keeps every batch it is given as the OTLP exporters would send it: protobuf bytes."""

    def __init__(self, encode):
        MetricExporter.__init__(self)
        self.encode, self.sent = encode, []

    def export(self, batch, *args, **kwargs):
        self.sent.append(self.encode(batch).SerializeToString())
        return SpanExportResult.SUCCESS if self.encode is encode_spans else (
            LogRecordExportResult.SUCCESS if self.encode is encode_logs else MetricExportResult.SUCCESS)

    def force_flush(self, timeout_millis=10_000):
        return True

    def shutdown(self, *args, **kwargs):
        pass


# --- generated secrets ----------------------------------------------------------------------

core = st.text(string.ascii_letters + string.digits, min_size=10, max_size=16).map(lambda s: f"Q{s}7")
SEPARATORS = st.sampled_from([" ", "\n", " (", " '", ' "', ", ", ": ", "\t"])
SECRET_KEYS = st.sampled_from(["password", "db.password", "X-Api-Key", "session_id", "auth.token", "client_secret",
                               "http.request.header.authorization", "aws.secret_access_key", "private_key"])


@st.composite
def card(draw):
    """A Luhn-valid Visa or Mastercard number, plain or grouped."""
    digits = [draw(st.sampled_from([4, 5]))] + ([1] if False else []) + draw(st.lists(st.integers(0, 9), min_size=14,
                                                                                        max_size=14))
    if digits[0] == 5:
        digits[1] = draw(st.integers(1, 5))
    total = 0
    for i, d in enumerate(reversed(digits)):
        if i % 2 == 0:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    number = "".join(map(str, digits + [(10 - total % 10) % 10]))
    separator = draw(st.sampled_from(["", " ", "-"]))
    shown = separator.join(number[i:i + 4] for i in range(0, 16, 4))
    return shown, [number, shown]


@st.composite
def secret_text(draw):
    """Free text holding one secret: (text, the strings that must never be exported)."""
    shape = draw(st.sampled_from(["bearer", "jwt", "url", "signed", "query", "card", "email", "key_value", "api_key"]))
    secret = draw(core)
    if shape == "bearer":
        text, secrets = f"{draw(st.sampled_from(['Bearer', 'bearer', 'Basic', 'Token', 'ApiKey', 'SSWS']))} {secret}", [secret]
        if not text.lower().startswith(("bearer", "basic")):
            text = f"Authorization: {text}"
    elif shape == "jwt":
        payload = draw(core)
        text, secrets = f"eyJhbGciOiJIUzI1NiJ9.eyJ{payload}.{secret}", [secret, payload]
    elif shape == "url":
        user = draw(st.one_of(st.just(""), core))
        scheme = draw(st.sampled_from(["https", "mysql", "postgresql", "amqp", "redis", "mongodb+srv"]))
        host = draw(st.sampled_from(["db", "localhost:6379", "db.internal.example.com:3306", "10.0.0.5"]))
        text, secrets = f"{scheme}://{user}:{secret}@{host}/app?x=1", [secret] + ([user] if user else [])
    elif shape == "signed":
        key = draw(st.sampled_from(SIGNED_URL_KEYS))
        text, secrets = f"https://bucket.example.com/o.bin?v=2&{key}={secret}&z=3", [secret]
    elif shape == "query":  # the query alone (url.query) or a URL without scheme and host (http.target)
        key = draw(st.sampled_from(SIGNED_URL_KEYS))
        form = draw(st.sampled_from(["{k}={v}&v=2", "v=2&{k}={v}", "/o.bin?{k}={v}&z=3", "/o.bin?v=2;{k}={v}"]))
        return form.format(k=key, v=secret), [secret]  # a whole attribute value, as url.query is
    elif shape == "card":
        text, secrets = draw(card())
    elif shape == "email":
        local = draw(core).lower()
        at = draw(st.sampled_from(["@", "%40"]))  # %40: percent-encoded, as in a query string (http.url)
        text, secrets = f"{local}{at}{draw(st.sampled_from(['example.com', 'mail.example.co.uk']))}", [local]
    elif shape == "key_value":
        key = draw(st.sampled_from(["password", "api_key", "token", "client-secret", "DB_PASSWORD", "access_key"]))
        form = draw(st.sampled_from(["{k}={v}", '"{k}": "{v}"', "{k}='{v}'", "{k}: {v}", "?{k}={v}&a=1"]))
        text, secrets = form.format(k=key, v=secret), [secret]
    else:
        text = draw(st.sampled_from([f"sk-proj-{secret}{secret}", f"AKIA{secret.upper()[:16].ljust(16, 'X')}"]))
        secrets = [text]
    before, after = draw(SEPARATORS), draw(SEPARATORS)
    return f"ctx{before}{text}{after}end", secrets


@st.composite
def secret_attribute(draw):
    """An attribute holding a secret: a secret-naming key, or any key with a secret in its text."""
    if draw(st.booleans()):
        value = draw(core)
        return draw(SECRET_KEYS), value, [value]
    text, secrets = draw(secret_text())
    value = draw(st.sampled_from([text, [text, "x"], text.encode()]))  # bytes: a valid attribute value
    keys = ["note", "url.full", "url.query", "http.target", "db.connection_string", "messaging.url", "detail"]
    return draw(st.sampled_from(keys)), value, secrets


class Secrets:
    def __init__(self, draw):
        self.all: list[str] = []
        self.draw = draw

    def text(self):
        text, secrets = self.draw(secret_text())
        self.all += secrets
        return text

    def attributes(self):
        key, value, secrets = self.draw(secret_attribute())
        self.all += secrets
        return {key: value, "plain": "kept"}


@settings(max_examples=150, deadline=None, phases=[Phase.generate],
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.data(), json_logs=st.booleans())
def test_no_generated_secret_reaches_the_otlp_bytes_or_the_console(app_logging_at_info, data, json_logs):
    secrets = Secrets(data.draw)
    spans, logs, metrics = OTLPBytes(encode_spans), OTLPBytes(encode_logs), OTLPBytes(encode_metrics)
    out, err = io.StringIO(), io.StringIO()
    resource = {**secrets.attributes(), "deploy.note": secrets.text()}
    config = Settings(service_name="svc", privacy=True, privacy_secret=DEPLOYMENT_SECRET, json_logs=json_logs,
                      enable_console_export=True, resource_attributes=resource)
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        handle = telemetry_module.Telemetry(config, span_exporter=spans, log_exporter=logs, metric_exporter=metrics)
        handle._install()
        try:
            _every_field_of_every_signal(handle, secrets)
        finally:
            handle.shutdown(5)
    exported = b"".join(spans.sent + logs.sent + metrics.sent)
    assert spans.sent and logs.sent and metrics.sent
    printed = out.getvalue() + err.getvalue()
    assert "kept" in printed and b"kept" in exported
    leaked = [s for s in secrets.all if s.encode() in exported or s in printed]
    assert leaked == [], (leaked, printed)


def _every_field_of_every_signal(handle, secrets: Secrets) -> None:
    tracer = handle.tracer
    with tracer.start_as_current_span("linked") as linked:
        pass
    link = Link(linked.get_span_context(), secrets.attributes())
    try:
        with tracer.start_as_current_span(secrets.text(), attributes=secrets.attributes(), links=[link]) as span:
            span.add_event(secrets.text(), secrets.attributes())
            span.set_status(Status(StatusCode.ERROR, secrets.text()))
            logging.getLogger("app").warning(secrets.text(), extra={"data": secrets.attributes()})
            logging.getLogger("app").error("failed %s", secrets.text(), extra=secrets.attributes())
            logging.getLogger("app").warning("nested", extra={"payload": {"inner": [secrets.text()]},
                                                              "data": {"deep": {"list": [secrets.attributes()]}}})
            try:
                raise ConnectionError(secrets.text())
            except ConnectionError:
                logging.getLogger("app").exception("request failed", stack_info=True)
            handle.get_otel_logger("events").emit(LogRecord(body=secrets.text(), attributes=secrets.attributes()))
            handle.create_counter("calls").add(1, secrets.attributes())
            raise RuntimeError(secrets.text())
    except RuntimeError:
        pass
