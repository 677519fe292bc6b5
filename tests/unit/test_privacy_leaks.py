"""Issue 19, defect 1: with privacy on, secrets written the ways real code writes them are masked
(JSON keys, quoted values, any HTTP authorization scheme, provider API keys, SQL statements) and so
are span links' attributes."""

from __future__ import annotations

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Link

from obslab.privacy import MASK, Redactor, each, mask_exports

SECRET = "hunter2"
API_KEY = "sk-proj-Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4z"
DEPLOYMENT_SECRET = "9f2c4e1a7b3d8f60c5e2a9d4b7f1e3c8a6d0b2f4e7c9a1d3"


@pytest.mark.parametrize("text", [
    '{"password": "hunter2", "user": "bob"}',
    "{'password': 'hunter2'}",
    "password='hunter2'",
    'password="hunter2"',
    "db_password = 'hunter2'",
    "Authorization: Basic aHVudGVyMjpodW50ZXIy",
    "Authorization: Digest hunter2",
    f"OPENAI_API_KEY={API_KEY}",
    f"calling with {API_KEY}",
])
def test_secrets_in_free_text_are_masked_however_they_are_quoted(text):
    masked = Redactor().text(text)
    assert SECRET not in masked and "aHVudGVyMjpodW50ZXIy" not in masked and API_KEY not in masked, masked
    assert MASK in masked


@pytest.mark.parametrize("statement", [
    "ALTER USER app WITH PASSWORD 'hunter2'",
    "CREATE USER app IDENTIFIED BY 'hunter2'",
    "INSERT INTO users (name, password) VALUES ('bob', 'hunter2')",
    "UPDATE users SET password = 'hunter2' WHERE id = 3",
])
@pytest.mark.parametrize("key", ["db.statement", "db.query.text"])
def test_a_database_statement_holding_a_password_is_masked(key, statement):
    masked = Redactor().value(key, statement)
    assert SECRET not in masked, masked


def test_a_statement_without_literals_is_kept_as_it_is():
    assert Redactor().value("db.statement", "SELECT id FROM users WHERE id = ?") == "SELECT id FROM users WHERE id = ?"


def test_span_link_attributes_are_masked_and_user_ids_hashed():
    exporter = InMemorySpanExporter()
    redactor = Redactor(secret=DEPLOYMENT_SECRET)
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(mask_exports(exporter, each(redactor.span), [])))
    tracer = provider.get_tracer("t")
    with tracer.start_as_current_span("upstream") as upstream:
        context = upstream.get_span_context()
    with tracer.start_as_current_span("consumer", links=[Link(context, {"auth.token": SECRET, "user.id": "alice"})]):
        pass
    consumer = next(span for span in exporter.get_finished_spans() if span.name == "consumer")
    (link,) = consumer.links
    assert link.context == context
    assert link.attributes["auth.token"] == MASK
    assert link.attributes["user.id"] == redactor.user_id("alice") != "alice"
