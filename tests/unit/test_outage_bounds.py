"""Issue 26, section 3: the outage buffer and the spool are bounded in bytes as well as in records
(spans carrying LLM messages are large), and what they keep is always the newest records, in order.

Property tests: whatever the sizes and batches generated, the encoded bytes held in memory and on
disk stay within ``outage_buffer_bytes`` and the records within ``outage_buffer``, and what is kept
is exactly a newest run of what was emitted (the oldest are dropped).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings, strategies as st
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SpanExportResult

from lab import free_port
from obslab import _spool
from obslab._outage import OutageBuffer
from obslab.config import load_settings

_TRACER = TracerProvider().get_tracer("bounds-test")


class Down:
    """The OTLP exporter while the collector is down."""

    def export(self, batch):
        return SpanExportResult.FAILURE

    def shutdown(self):
        pass


def make_spans(names_and_sizes):
    batch = []
    for name, size in names_and_sizes:
        span = _TRACER.start_span(name, attributes={"gen_ai.input.messages": "m" * size})
        span.end()
        batch.append(span)
    return batch


def queued_names(buffer: OutageBuffer) -> list[str]:
    return [span.name for item in buffer._items for rs in item.message.resource_spans
            for ss in rs.scope_spans for span in ss.spans]


def spooled(directory: Path) -> tuple[list[str], int]:
    names, nbytes = [], 0
    for path in sorted(directory.glob("traces-*.pb")):
        data = path.read_bytes()
        nbytes += len(data)
        request = ExportTraceServiceRequest.FromString(data)
        names += [span.name for rs in request.resource_spans for ss in rs.scope_spans for span in ss.spans]
    return names, nbytes


def is_newest_run(kept: list[str], emitted: list[str]) -> bool:
    return not kept or emitted[len(emitted) - len(kept):] == kept


batches = st.lists(st.lists(st.integers(min_value=0, max_value=6000), min_size=1, max_size=12), min_size=1, max_size=12)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(first=batches, second=batches, capacity=st.integers(min_value=1, max_value=60),
       max_bytes=st.integers(min_value=1, max_value=60_000))
# The second process trims the oldest file it took from the spool: its copy keeps that file's place.
@example(first=[[0, 0], [0]], second=[[0, 0]], capacity=4, max_bytes=1087)
def test_memory_and_spool_stay_within_the_bounds_keeping_the_newest(first, second, capacity, max_bytes):
    address = ("127.0.0.1", free_port())  # nothing listens: the collector is down
    emitted: list[str] = []
    with tempfile.TemporaryDirectory() as spool_dir:
        for run, sizes_per_batch in enumerate((first, second)):  # two processes, one after the other
            buffer = OutageBuffer(Down(), "traces", address, capacity, max_bytes=max_bytes, spool_dir=spool_dir,
                                  send_request=lambda request: False)
            for sizes in sizes_per_batch:
                named = [(f"r{run}-{len(emitted) + i}", size) for i, size in enumerate(sizes)]
                emitted += [name for name, _ in named]
                assert buffer.export(make_spans(named)) is SpanExportResult.SUCCESS
                assert buffer.buffered <= capacity and buffer.buffered_bytes <= max_bytes
                assert buffer.buffered_bytes == sum(item.message.ByteSize() for item in buffer._items)
                assert buffer.buffered == len(queued_names(buffer))
                assert is_newest_run(queued_names(buffer), emitted)
            in_memory = queued_names(buffer)
            buffer.shutdown(timeout_millis=100)
            names, nbytes = spooled(Path(spool_dir))
            assert len(names) <= capacity and nbytes <= max_bytes
            assert is_newest_run(names, emitted)
            assert names[len(names) - len(in_memory):] == in_memory or len(names) < len(in_memory)


@pytest.mark.parametrize("value, expected", [("33554432", 33554432), ("32MiB", 32 * 1024**2), ("500kB", 500_000),
                                             ("1 GiB", 1024**3), ("2_000", 2000)])
def test_the_byte_bound_reads_plain_numbers_and_units(value, expected):
    assert load_settings({}, environ={"OBSLAB_OUTAGE_BUFFER_BYTES": value}).outage_buffer_bytes == expected


@pytest.mark.parametrize("value", ["0", "-5", "lots", "1.5MiB", "12 parsecs", ""])
def test_a_bad_byte_bound_is_refused_naming_the_setting_and_the_value(value):
    if value == "":
        assert load_settings({}, environ={"OBSLAB_OUTAGE_BUFFER_BYTES": value}).outage_buffer_bytes == 32 * 1024**2
        return
    with pytest.raises(ValueError) as error:
        load_settings({}, environ={"OBSLAB_OUTAGE_BUFFER_BYTES": value})
    assert f"outage_buffer_bytes={value!r} (from environment variable OBSLAB_OUTAGE_BUFFER_BYTES)" in str(error.value)


def test_a_bad_byte_bound_given_as_an_argument_is_refused():
    with pytest.raises(ValueError, match=r"outage_buffer_bytes=True \(from argument\)"):
        load_settings({"outage_buffer_bytes": True}, environ={})


def test_a_record_larger_than_the_byte_bound_is_dropped_and_counted():
    buffer = OutageBuffer(Down(), "traces", ("127.0.0.1", free_port()), 100, max_bytes=1000,
                          send_request=lambda request: False)
    try:
        buffer.export(make_spans([("huge", 50_000), ("small", 10)]))
        assert queued_names(buffer) == ["small"] and buffer.dropped == 1
    finally:
        buffer.shutdown(timeout_millis=100)


def test_drop_oldest_bytes_removes_the_fewest_oldest_records():
    request = _spool.encode("traces", make_spans([(f"s{i}", 300) for i in range(10)]))
    total, one = request.ByteSize(), None
    removed = _spool.drop_oldest_bytes("traces", request, 1)
    assert removed == 1 and request.ByteSize() < total
    assert [s.name for s in request.resource_spans[0].scope_spans[0].spans] == [f"s{i}" for i in range(1, 10)]
