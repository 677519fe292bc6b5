"""Masking of secrets and personal data before telemetry leaves the process (off by default).

Turned on with ``privacy=True`` (``OBSLAB_PRIVACY=true``, or ``privacy.enabled`` in YAML), it
rewrites, in span attributes, span events, log bodies and log attributes:

- the value of any key that names a secret (``password``, ``token``, ``api_key``,
  ``authorization``, ``cookie``... plus ``privacy_keys``) -> ``[REDACTED]``;
- user-identifying keys (``user.id``, ``enduser.id``, ``customer_id``...) -> ``sha256:<hex>``, so
  one user's requests still group together;
- values that look like secrets wherever they appear: bearer tokens, JWTs, card numbers (Luhn
  checked), e-mail addresses, ``password=...`` pairs in free text.
"""

from __future__ import annotations

import hashlib
import logging
import re
from typing import Any, Iterable, Mapping, Sequence

from opentelemetry.sdk._logs import LogRecordProcessor, ReadWriteLogRecord
from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.trace import Status

MASK = "[REDACTED]"
SENSITIVE_KEYS = (
    "password", "passwd", "secret", "token", "api_key", "apikey", "authorization", "auth",
    "cookie", "set_cookie", "session_id", "sessionid", "private_key", "credential", "credentials",
    "access_key", "client_secret", "ssn", "credit_card", "card_number",
)
_USER_KEY = re.compile(r"(^|_)(user|enduser|customer|account|client)_?id$")
_KEY_VALUE = re.compile(r"(?i)\b(password|passwd|secret|token|api[_-]?key|authorization)(\s*[=:]\s*)([^\s,;&\"']+)")
_VALUE_PATTERNS = (
    (re.compile(r"(?i)\bbearer\s+[A-Za-z0-9\-._~+/]+=*"), "Bearer " + MASK),
    (re.compile(r"\beyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+"), MASK),
    (re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}"), MASK),
)
_CARD = re.compile(r"\b(?:\d[ -]?){12,18}\d\b")


class Redactor:
    """Masks sensitive keys and secret-looking values; pure, so it is shared by every signal."""

    def __init__(self, extra_keys: Iterable[str] = ()) -> None:
        words = sorted({_normalize(k) for k in (*SENSITIVE_KEYS, *extra_keys)}, key=len, reverse=True)
        self._sensitive = re.compile(rf"(^|_)({'|'.join(map(re.escape, words))})(_|$)")

    def attributes(self, attributes: Mapping[str, Any] | None) -> dict[str, Any]:
        """A masked copy of ``attributes``."""
        return {key: self.value(key, value) for key, value in (attributes or {}).items()}

    def value(self, key: str, value: Any) -> Any:
        """The value to export for ``key``."""
        name = _normalize(key)
        if self._sensitive.search(name):
            return MASK
        if _USER_KEY.search(name) and value not in (None, ""):
            return "sha256:" + hashlib.sha256(str(value).encode()).hexdigest()
        return self.scrub(value)

    def scrub(self, value: Any) -> Any:
        """``value`` with secret-looking parts masked (strings, lists and dicts, recursively)."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, Mapping):
            return self.attributes(value)
        if isinstance(value, (list, tuple)):
            return type(value)(self.scrub(v) for v in value)
        return value

    @staticmethod
    def text(text: str) -> str:
        """Free text with tokens, JWTs, card numbers, e-mail addresses and ``key=secret`` masked."""
        text = _KEY_VALUE.sub(lambda m: m.group(1) + m.group(2) + MASK, text)
        for pattern, replacement in _VALUE_PATTERNS:
            text = pattern.sub(replacement, text)
        return _CARD.sub(lambda m: MASK if _luhn_ok(m.group()) else m.group(), text)

    def span(self, span: ReadableSpan) -> ReadableSpan:
        """A masked copy of a finished span."""
        events = [Event(e.name, self.attributes(e.attributes), e.timestamp) for e in span.events]
        status = span.status
        if status.description:
            status = Status(status.status_code, self.text(status.description))
        return ReadableSpan(
            name=span.name, context=span.context, parent=span.parent, resource=span.resource,
            attributes=self.attributes(span.attributes), events=events, links=span.links, kind=span.kind,
            status=status, start_time=span.start_time, end_time=span.end_time,
            instrumentation_scope=span.instrumentation_scope)


class RedactingSpanExporter(SpanExporter):
    """Hands the wrapped exporter masked copies of the spans."""

    def __init__(self, exporter: SpanExporter, redactor: Redactor) -> None:
        self.exporter, self._redactor = exporter, redactor

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return self.exporter.export([self._redactor.span(span) for span in spans])

    def shutdown(self) -> None:
        self.exporter.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self.exporter.force_flush(timeout_millis)


class RedactingLogProcessor(LogRecordProcessor):
    """Masks each log record in place; added before the export processor."""

    def __init__(self, redactor: Redactor) -> None:
        self._redactor = redactor

    def on_emit(self, log_record: ReadWriteLogRecord) -> None:
        record = log_record.log_record
        record.body = self._redactor.scrub(record.body)
        if record.attributes:
            for key, value in list(record.attributes.items()):
                record.attributes[key] = self._redactor.value(key, value)

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


class RedactingFilter(logging.Filter):
    """Masks a stdlib record's message and extras, for the console handler."""

    def __init__(self, redactor: Redactor) -> None:
        super().__init__()
        self._redactor = redactor

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg, record.args = self._redactor.text(record.getMessage()), None
        for key, value in list(vars(record).items()):
            if key not in _STDLIB_FIELDS:
                setattr(record, key, self._redactor.value(key, value) if key != "data" else self._redactor.scrub(value))
        return True


_STDLIB_FIELDS = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime", "trace_id", "span_id"}


def _normalize(key: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", key.lower()).strip("_")


def _luhn_ok(candidate: str) -> bool:
    digits = [int(c) for c in candidate if c.isdigit()]
    total = 0
    for i, digit in enumerate(reversed(digits)):
        if i % 2:
            digit = digit * 2 - 9 if digit > 4 else digit * 2
        total += digit
    return total % 10 == 0
