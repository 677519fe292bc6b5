"""Issue 19, defect 8: a traced generator's span lasts until the generator is exhausted, and spans
made while it runs (in its body or by what it calls) are its children."""

from __future__ import annotations

import asyncio

import pytest

from obslab import traced
from opentelemetry.trace import StatusCode


def test_a_traced_generator_spans_its_iteration_and_parents_what_it_does(recorded):
    tracer = recorded.handle.tracer

    @traced
    def rows(n):
        for i in range(n):
            with tracer.start_as_current_span(f"row {i}"):
                yield i

    produced = rows(3)
    assert recorded.spans() == ()  # made, not run: no span has ended yet
    assert list(produced) == [0, 1, 2]
    spans = {s.name: s for s in recorded.spans()}
    parent = next(s for name, s in spans.items() if name.endswith("rows"))
    for i in range(3):
        assert spans[f"row {i}"].parent.span_id == parent.context.span_id
    assert parent.end_time >= max(spans[f"row {i}"].end_time for i in range(3))


def test_the_consumer_of_a_traced_generator_is_not_inside_its_span(recorded):
    tracer = recorded.handle.tracer

    @traced
    def numbers():
        yield 1
        yield 2

    with tracer.start_as_current_span("consumer") as consumer:
        for _ in numbers():
            with tracer.start_as_current_span("handling"):
                pass
    handling = [s for s in recorded.spans() if s.name == "handling"]
    assert [s.parent.span_id for s in handling] == [consumer.get_span_context().span_id] * 2


def test_a_traced_generator_keeps_send_return_value_and_exceptions(recorded):
    @traced
    def echo():
        received = yield "ready"
        while received != "stop":
            received = yield received.upper()
        return "done"

    gen = echo()
    assert next(gen) == "ready" and gen.send("a") == "A"
    with pytest.raises(StopIteration) as stop:
        gen.send("stop")
    assert stop.value.value == "done"

    @traced
    def failing():
        yield 1
        raise KeyError("boom")

    with pytest.raises(KeyError):
        list(failing())
    failed = next(s for s in recorded.spans() if s.name.endswith("failing"))
    assert failed.status.status_code is StatusCode.ERROR


def test_a_generator_closed_early_ends_its_span(recorded):
    @traced
    def endless():
        while True:
            yield 1

    gen = endless()
    next(gen)
    gen.close()
    assert [s.name for s in recorded.spans() if s.name.endswith("endless")]


def test_a_traced_async_generator_spans_its_iteration_and_parents_what_it_does(recorded):
    tracer = recorded.handle.tracer

    @traced
    async def pages(n):
        for i in range(n):
            await asyncio.sleep(0)
            with tracer.start_as_current_span(f"page {i}"):
                yield i

    async def consume():
        return [page async for page in pages(2)]

    assert asyncio.run(consume()) == [0, 1]
    spans = {s.name: s for s in recorded.spans()}
    parent = next(s for name, s in spans.items() if name.endswith("pages"))
    assert all(spans[f"page {i}"].parent.span_id == parent.context.span_id for i in range(2))
    assert parent.end_time >= spans["page 1"].end_time
