"""Masking of secrets and personal data before telemetry leaves the process (off by default).

Turned on with ``privacy=True`` (``OBSLAB_PRIVACY=true``, or ``privacy.enabled`` in YAML), it
rewrites span names, attributes and events, log bodies and attributes, metric attributes (OTLP,
console and the Prometheus endpoint) and the resource:

- the value of any key that names a secret (``password``, ``token``, ``api_key``,
  ``authorization``, ``cookie``... plus ``privacy_keys``) -> ``[REDACTED]``;
- user-identifying keys (``user.id``, ``enduser.id``, ``customer_id``...) -> ``hmac-sha256:<hex>``,
  keyed with the deployment's ``OBSLAB_PRIVACY_SECRET``, so one user's requests still group
  together while no dictionary of ids can reverse it; ``[REDACTED]`` when no secret is set;
- values that look like secrets wherever they appear: URL credentials and signed-URL parameters
  (as the HTTP conventions redact ``url.full``: ``REDACTED:REDACTED@host``, ``sig=REDACTED``),
  authorization values of any scheme, JWTs, provider API keys, payment card numbers (issuer prefix,
  length and Luhn checked), e-mail addresses, ``password=...`` pairs in free text (console
  tracebacks and stack traces included).

Where it happens: log records through the SDK's own hook, a log record processor placed before the
exporters' (:class:`MaskingLogProcessor`), which masks the SDK's record in place as it is emitted;
spans in the export threads, on one faithful copy (:func:`copy_span`: the SDK 1.45.1 has no public
hook that can change a span's attributes once they are final, its ``_on_ending`` is private and
called after the attributes are frozen), which keeps the dropped counts and the attribute limits;
metric batches in the export threads, on copies. The application's own span objects are never
changed. A span or metric batch that cannot be masked is dropped, a log record withheld (body
masked, attributes dropped), never exported as it is.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import hmac
import json
import re
from typing import Any, Callable, Iterable, Mapping, Sequence, TypeVar

from opentelemetry.attributes import BoundedAttributes
from opentelemetry.sdk._logs import LogRecordProcessor, ReadWriteLogRecord
from opentelemetry.sdk.metrics.export import MetricsData
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan, SpanLimits
from opentelemetry.sdk.util import BoundedList
from opentelemetry.trace import Link, Status

from obslab._diagnostics import report

MASK = "[REDACTED]"
SENSITIVE_KEYS = (
    "password", "passwd", "secret", "token", "api_key", "apikey", "authorization", "auth",
    "cookie", "set_cookie", "session_id", "sessionid", "private_key", "credential", "credentials",
    "access_key", "client_secret", "ssn", "credit_card", "card_number",
)
_USER_KEY = re.compile(r"(^|_)(user|enduser|customer|account|client)_?id$")
# Where a secret may start: a word boundary, or after the ``\n``, ``\t``, ``\r`` escapes of a JSON or
# repr text (``"ctx\\n4111..."``), whose letter would otherwise hide the boundary.
_START = r"(?:\b|(?<=\\[nrt]))"
# A secret-naming key (``password``, ``OPENAI_API_KEY``, ``"token"``...) followed by ``=`` or ``:`` and
# its value, quoted or not (quotes escaped too, as a repr or JSON text escapes them), as in query strings,
# JSON, Python reprs, env files and headers.
_SECRET_WORDS = (r"password|passwd|pwd|secret|token|api[_-]?key|apikey|authorization|access[_-]?key"
                 r"|private[_-]?key|credentials?")
_KEY_VALUE = re.compile(rf"(?i){_START}([\w.-]*?(?:{_SECRET_WORDS})(?:[_.-]?(?:key|value|string|hash))?)(\\?[\"']?\s*[=:]\s*\\?[\"']?)((?:[^\s,;&\\\"'}}]|\\(?![\"']))+)")
# Each pattern with the lowercase fragments one of which its match must contain: a text holding none
# of them is not searched (most attribute values are short plain words).
_VALUE_PATTERNS = (
    # Every HTTP authorization scheme carries credentials, not only Bearer.
    (re.compile(_START + r"(?i:(bearer|basic|digest|negotiate|ntlm)\s+[A-Za-z0-9\-._~+/]{6,}=*)"),
     lambda m: f"{m.group(1)} {MASK}", ("bearer", "basic", "digest", "negotiate", "ntlm")),
    # An Authorization header of any other scheme (Token, ApiKey, SSWS...): its credentials.
    (re.compile(_START + r"(?i:((?:proxy-)?authorization[\"']?\s*[:=]\s*[\"']?)(?!\[REDACTED\]|[^\s\"',;]+\s+\[REDACTED\])"
                r"(?:([A-Za-z][A-Za-z0-9._~+/-]*)\s+)?[^\s\"',;]+)"),
     lambda m: f"{m.group(1)}{m.group(2) + ' ' if m.group(2) else ''}{MASK}", ("authorization",)),
    (re.compile(_START + r"eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+"), MASK, ("eyj",)),
    # Provider API keys by their prefixes: OpenAI/Anthropic (sk-...), GitHub, AWS, Slack, Google.
    (re.compile(_START + r"(?:sk-[A-Za-z0-9_-]{16,}|gh[pousr]_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{30,}"
                r"|AKIA[0-9A-Z]{16}|xox[abposr]-[A-Za-z0-9-]{10,}|AIza[0-9A-Za-z_-]{35})"), MASK,
     ("sk-", "gh", "akia", "xox", "aiza")),
    # E-mail addresses, ``@`` also percent-encoded (a query string); not the ``REDACTED@host`` left by
    # the URL rule below.
    (re.compile(r"(?<![A-Za-z0-9._%+-])(?!REDACTED@)[A-Za-z0-9._%+-]+(?:@|%40)[A-Za-z0-9.-]+\.[A-Za-z]{2,}"), MASK,
     ("@", "%40")),
)
_KEY_VALUE_HINTS = ("pass", "pwd", "secret", "token", "key", "authorization", "credential")
# The HTTP semantic conventions' rule for ``url.full``, applied to every URL in every text: credentials
# (``scheme://user:password@host``) become ``REDACTED:REDACTED``, and the values of the query keys the
# rule lists (matched case-sensitively, key kept) become ``REDACTED``. On top of the conventions' list,
# the signature and credential parameters of AWS SigV4 and Google V4 signed URLs.
URL_MASK = "REDACTED"
SIGNED_URL_KEYS = ("AWSAccessKeyId", "Signature", "sig", "X-Goog-Signature",  # the conventions' list
                   "X-Amz-Signature", "X-Amz-Credential", "X-Amz-Security-Token", "X-Goog-Credential")
_URL = re.compile(r"\b([A-Za-z][A-Za-z0-9+.-]*://)(?:([^\s/?#@\"'<>]*)@)?([^\s\"'<>]*)")
_SIGNED_PARAM = re.compile(rf"([?&;](?:{'|'.join(map(re.escape, SIGNED_URL_KEYS))})=)[^&;#\s\"'<>]*")
# The same keys in a query without its URL (``url.query``, ``http.target``, a log line): the
# conventions redact ``url.query`` as ``url.full``.
_QUERY_PARAM = re.compile(rf"((?:(?<![\w.-])|(?<=\\[nrt]))(?:{'|'.join(map(re.escape, SIGNED_URL_KEYS))})=)[^&;#\s\"'<>]*")
# Database statements: every quoted literal may be a password or personal data.
_STATEMENT_KEYS = frozenset({"db_statement", "db_query_text"})
_SQL_LITERAL = re.compile(r"'(?:[^']|'')*'")
_CARD = re.compile(_START + r"(?:\d[ -]?){12,18}\d\b")
# Issuer prefixes and lengths of payment cards: a Luhn-valid number must also start and be as long
# as a card, so long numeric ids (nanosecond timestamps, snowflake ids) are left alone.
_CARD_ISSUERS = (
    (re.compile(r"4"), (13, 16, 19)),  # Visa
    (re.compile(r"5[1-5]|222[1-9]|22[3-9]\d|2[3-6]\d\d|27[01]\d|2720"), (16,)),  # Mastercard
    (re.compile(r"3[47]"), (15,)),  # American Express
    (re.compile(r"6011|64[4-9]|65"), (16, 19)),  # Discover
    (re.compile(r"30[0-5]|3[689]"), (14, 16)),  # Diners Club
    (re.compile(r"352[89]|35[3-8]"), (16, 19)),  # JCB
    (re.compile(r"62"), (16, 17, 18, 19)),  # UnionPay
)

_MAX_DEPTH = 32  # levels of nested log values inspected; deeper ones are masked whole
_KEY_CACHE_LIMIT = 4096  # attribute keys whose kind is remembered; past it the cache starts again
Batch = TypeVar("Batch")


class Redactor:
    """Masks sensitive keys and secret-looking values; shared by every signal (its only state, the
    kind of each key seen, is a cache)."""

    def __init__(self, extra_keys: Iterable[str] = (), secret: str | None = None) -> None:
        words = sorted({_normalize(k) for k in (*SENSITIVE_KEYS, *extra_keys)}, key=len, reverse=True)
        self._sensitive = re.compile(rf"(^|_)({'|'.join(map(re.escape, words))})(_|$)")
        self._secret = secret.encode() if secret else None
        self._kinds: dict[str, str] = {}

    def attributes(self, attributes: Mapping[str, Any] | None, _depth: int = 0) -> dict[str, Any]:
        """A masked copy of ``attributes``."""
        return {key: self.value(key, value, _depth) for key, value in (attributes or {}).items()}

    def value(self, key: str, value: Any, _depth: int = 0) -> Any:
        """The value to export for ``key``."""
        kind = self._kinds.get(key)
        if kind is None:
            kind = self._kind(key)
        if kind == "secret":
            return MASK
        if kind == "user" and value not in (None, ""):
            return self.user_id(value)
        if kind == "statement" and isinstance(value, str):
            return self.text(_SQL_LITERAL.sub("?", value))
        return self.scrub(value, _depth)

    def _kind(self, key: str) -> str:
        """What ``key`` names: a ``secret``, a ``user`` id, a database ``statement``, or ``data``
        (remembered: an application uses few keys, each many times)."""
        name = _normalize(str(key))
        kind = ("secret" if self._sensitive.search(name) else "user" if _USER_KEY.search(name)
                else "statement" if name in _STATEMENT_KEYS else "data")
        if len(self._kinds) >= _KEY_CACHE_LIMIT:
            self._kinds.clear()
        self._kinds[key] = kind
        return kind

    def user_id(self, value: Any) -> str:
        """A user id as its keyed hash (``[REDACTED]`` without a secret)."""
        if self._secret is None:
            return MASK
        return "hmac-sha256:" + hmac.new(self._secret, str(value).encode(), hashlib.sha256).hexdigest()

    def scrub(self, value: Any, _depth: int = 0) -> Any:
        """``value`` with secret-looking parts masked (strings, bytes, lists and dicts, recursively; a
        JSON object or array in a string as the structure it holds); what is nested deeper than
        ``_MAX_DEPTH`` levels is masked whole, never inspected by a recursion that could exhaust the stack."""
        if isinstance(value, str):
            if value[:1] in ("{", "[") and value[-1:] in ("}", "]"):
                value = self._json(value, _depth)  # a log record's nested ``extra`` values are exported as JSON
            return self.text(value)
        if isinstance(value, bytes):  # a valid attribute value, exported as it is: masked as UTF-8 text
            decoded = value.decode("utf-8", "replace")
            masked = self.text(decoded)
            return value if masked == decoded else masked.encode()
        if isinstance(value, (Mapping, list, tuple)) and _depth >= _MAX_DEPTH:
            return MASK
        if isinstance(value, Mapping):
            return self.attributes(value, _depth + 1)
        if isinstance(value, (list, tuple)):
            return type(value)(self.scrub(v, _depth + 1) for v in value)
        return value

    @staticmethod
    def text(text: str) -> str:
        """Free text with URL credentials and signatures (as the HTTP conventions redact ``url.full``),
        tokens, JWTs, card numbers, e-mail addresses and ``key=secret`` masked."""
        if "://" in text:
            text = _URL.sub(_mask_url, text)
        if "=" in text:
            text = _QUERY_PARAM.sub(rf"\g<1>{URL_MASK}", text)
        lowered = text.lower()
        for pattern, replacement, hints in _VALUE_PATTERNS:
            if any(hint in lowered for hint in hints):
                text = pattern.sub(replacement, text)
        if ("=" in text or ":" in text) and any(hint in lowered for hint in _KEY_VALUE_HINTS):
            text = _KEY_VALUE.sub(_mask_value, text)
        return _CARD.sub(lambda m: MASK if _is_card_number(m.group()) else m.group(), text)

    def _json(self, text: str, depth: int) -> str:
        """``text`` with the values of a JSON document masked by their keys and as text (its escapes,
        ``\\n`` before a secret, no longer hide it); ``text`` itself when it is no JSON or nothing changed."""
        try:
            document = json.loads(text)
        except (ValueError, RecursionError):  # no JSON, or one nested past the decoder's own limit
            return text
        masked = self.scrub(document, depth)
        return text if masked == document else json.dumps(masked)

    def span(self, span: ReadableSpan, limits: SpanLimits | None = None,
             extra: Mapping[str, Any] | None = None) -> ReadableSpan:
        """A masked copy of a finished span (name, attributes, events, links, status description),
        with ``extra`` attributes added; see :func:`copy_span`."""
        return copy_span(span, limits, name=self.text, attributes=self.attributes, extra=extra)

    def log_record(self, record: ReadWriteLogRecord) -> None:
        """Mask a log record being emitted, in place (the SDK's own record, before any exporter
        has it): its body and its attributes, through the record's own bounded attributes (so
        its limits and dropped count hold)."""
        source = record.log_record
        source.body = self.scrub(source.body)
        if source.attributes:
            mask_in_place(source.attributes, self.value)

    def metrics(self, data: MetricsData) -> MetricsData:
        """A copy of a metrics batch with every data point's attributes masked."""
        def points(metric: Any) -> Any:
            masked = [dataclasses.replace(point, attributes=self.attributes(point.attributes))
                      for point in metric.data.data_points]
            return dataclasses.replace(metric, data=dataclasses.replace(metric.data, data_points=masked))

        return dataclasses.replace(data, resource_metrics=[
            dataclasses.replace(rm, scope_metrics=[
                dataclasses.replace(sm, metrics=[points(metric) for metric in sm.metrics])
                for sm in rm.scope_metrics])
            for rm in data.resource_metrics])

    def resource(self, resource: Resource) -> Resource:
        """A masked copy of a resource."""
        return Resource(self.attributes(resource.attributes), resource.schema_url)


def mask_exports(exporter: Any, mask: Callable[[Batch], Batch | None], empty: Batch) -> Any:
    """Make ``exporter`` send ``mask(batch)`` instead of each batch; a batch that cannot be masked is
    reported and replaced by ``empty``, never sent as it is. The exporter keeps its class, so its
    own settings (metric temporality and aggregation, read by the SDK from the exporter) still hold."""
    send = exporter.export

    @functools.wraps(send)
    def export(batch: Batch, *args: Any, **kwargs: Any) -> Any:
        try:
            masked = mask(batch)
        except Exception as error:
            report("privacy masking", error)
            masked = empty
        return send(masked, *args, **kwargs)

    exporter.export = export
    return exporter


class MaskingLogProcessor(LogRecordProcessor):
    """The SDK's log record hook: masks each record as it is emitted, before the processors after
    it (the batch processors of the exporters) see it. A record that cannot be masked is withheld:
    its body masked and its attributes dropped (counted as dropped)."""

    def __init__(self, redactor: Redactor) -> None:
        self._redactor = redactor

    def on_emit(self, log_record: ReadWriteLogRecord) -> None:
        try:
            self._redactor.log_record(log_record)
        except Exception as error:
            report("privacy masking", error)
            _withhold(log_record)

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


def copy_span(span: ReadableSpan, limits: SpanLimits | None = None, *, name: Callable[[str], str] = str,
              attributes: Callable[[Mapping[str, Any]], Mapping[str, Any]] | None = None,
              extra: Mapping[str, Any] | None = None) -> ReadableSpan:
    """A finished span as the exporters receive it, with ``name`` applied to its name, its events'
    names and its status description, ``attributes`` to its own, its events' and its links'
    attributes, and ``extra`` attributes added while the span has room for them. The copy keeps
    everything else: the dropped attribute, event and link counts, and the limits of ``limits``
    (the tracer provider's), so that a masked value is cut to the attribute length limit as the
    SDK cuts any value."""
    limits = limits or SpanLimits()
    keep: Callable[[Mapping[str, Any]], Mapping[str, Any]] = attributes or dict

    def bounded(values: Mapping[str, Any] | None, count: int | None, length: int | None, dropped: int,
                more: Mapping[str, Any] | None = None) -> BoundedAttributes:
        masked = dict(keep(values or {}))
        for key, value in (more or {}).items():
            if count is None or len(masked) < count:
                masked.setdefault(key, value)
        result = BoundedAttributes(count, masked, immutable=True, max_value_len=length)
        result.dropped += dropped
        return result

    events = BoundedList.from_seq(limits.max_events, [
        Event(name(event.name), bounded(event.attributes, limits.max_event_attributes, limits.max_attribute_length,
                                        event.dropped_attributes), event.timestamp)
        for event in span.events])
    events.dropped += span.dropped_events
    links = BoundedList.from_seq(limits.max_links, [
        Link(link.context, bounded(link.attributes, limits.max_link_attributes, limits.max_attribute_length,
                                   link.dropped_attributes))
        for link in span.links])
    links.dropped += span.dropped_links
    status = span.status
    if status.description:
        status = Status(status.status_code, name(status.description))
    return ReadableSpan(
        name=name(span.name), context=span.context, parent=span.parent, resource=span.resource,
        attributes=bounded(span.attributes, limits.max_span_attributes, limits.max_span_attribute_length,
                           span.dropped_attributes, extra),
        events=events, links=links, kind=span.kind, status=status, start_time=span.start_time,
        end_time=span.end_time, instrumentation_scope=span.instrumentation_scope)


def mask_in_place(attributes: Any, mask: Callable[[str, Any], Any]) -> None:
    """Set every attribute of a log record being emitted to its masked value, in its order (a bounded mapping cleans and cuts it)."""
    for key, value in list(attributes.items()):
        attributes[key] = mask(key, value)


def _withhold(log_record: ReadWriteLogRecord) -> None:
    source = log_record.log_record
    source.body = MASK
    attributes = source.attributes
    if attributes:
        count = len(attributes)
        for key in list(attributes):
            del attributes[key]
        if isinstance(attributes, BoundedAttributes):
            attributes.dropped += count


def each(mask: Callable[[Any], Any]) -> Callable[[Sequence[Any]], list[Any]]:
    """Mask every item of a batch, dropping (and reporting) an item that cannot be masked."""
    def mask_batch(batch: Sequence[Any]) -> list[Any]:
        masked = []
        for item in batch:
            try:
                masked.append(mask(item))
            except Exception as error:
                report("privacy masking", error)
        return masked
    return mask_batch


def _mask_url(match: re.Match[str]) -> str:
    """A URL with its credentials and its signed-URL query values redacted (HTTP conventions)."""
    scheme, userinfo, rest = match.groups()
    credentials = "" if userinfo is None else f"{URL_MASK}:{URL_MASK}@"
    return scheme + credentials + _SIGNED_PARAM.sub(rf"\g<1>{URL_MASK}", rest)


def _mask_value(match: re.Match[str]) -> str:
    """``key=value`` with the value masked (left alone when it is already a mask)."""
    value = match.group(3)
    if match.string.startswith(f" {MASK}", match.end()):
        return match.group(0)  # an authorization scheme, its credentials masked already
    if value.startswith((MASK[:-1], URL_MASK)) or value.lower() in ("bearer", "basic", "digest", "negotiate", "ntlm"):
        return match.group(0)
    return match.group(1) + match.group(2) + MASK


def _normalize(key: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", key.lower()).strip("_")


def _is_card_number(candidate: str) -> bool:
    digits = "".join(c for c in candidate if c.isdigit())
    if not any(issuer.match(digits) and len(digits) in lengths for issuer, lengths in _CARD_ISSUERS):
        return False
    total = 0
    for i, digit in enumerate(int(c) for c in reversed(digits)):
        if i % 2:
            digit = digit * 2 - 9 if digit > 4 else digit * 2
        total += digit
    return total % 10 == 0
