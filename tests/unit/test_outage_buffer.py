"""The outage buffer: what is emitted while the collector is unreachable is kept, in order, within
its capacity, and delivered when the collector answers again; what is unsent at exit goes to the
spool and is delivered by the next process.

The collector is a local OTLP gRPC receiver, started and stopped to make the outage. Waits poll
for an outcome with a generous deadline; no assertion is about time.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SpanExportResult

from lab import free_port, wait_for
from obslab import _outage
from obslab._export import build_exporters
from obslab._outage import OutageBuffer
from obslab.config import Settings, load_settings
from obslab.telemetry import Telemetry, init_telemetry
from otlp_receiver import OTLPReceiver

SDK = Path(__file__).resolve().parents[2] / "sdk" / "src"
UNIT = Path(__file__).resolve().parent


def spans(names):
    """Ended SDK spans named ``names``, as a batch processor hands them to its exporter."""
    tracer = TracerProvider().get_tracer("outage-test")
    batch = []
    for name in names:
        span = tracer.start_span(name)
        span.end()
        batch.append(span)
    return batch


def buffer_to(port: int, capacity: int = 10_000) -> OutageBuffer:
    settings = Settings(otlp_endpoint=f"127.0.0.1:{port}")
    return OutageBuffer(build_exporters(settings, "traces")[0], "traces", ("127.0.0.1", port), capacity)


def export_in_batches(buffer: OutageBuffer, total: int, size: int = 7) -> None:
    names = [f"s{i}" for i in range(total)]
    for start in range(0, total, size):
        assert buffer.export(spans(names[start:start + size])) is SpanExportResult.SUCCESS


@pytest.fixture
def port():
    return free_port()


@pytest.fixture
def receivers():
    """``receivers(port)`` starts a receiver (the collector coming back); all are stopped afterwards."""
    started = []

    def start(port: int) -> OTLPReceiver:
        started.append(OTLPReceiver(port).start())
        return started[-1]

    yield start
    for receiver in started:
        receiver.stop()


def test_spans_exported_while_the_collector_is_down_arrive_in_order_when_it_answers(port, receivers):
    buffer = buffer_to(port)
    try:
        export_in_batches(buffer, 70)
        assert buffer.buffered == 70
        receiver = receivers(port)
        buffer.export(spans(["after-return"]))  # queued behind the 70: never overtakes them
        assert wait_for(lambda: len(receiver.spans) == 71)
        assert [name for name, _ in receiver.spans] == [f"s{i}" for i in range(70)] + ["after-return"]
        assert buffer.buffered == 0 and buffer.dropped == 0
    finally:
        buffer.shutdown()


def test_beyond_the_capacity_exactly_the_oldest_are_dropped_and_one_line_names_the_count(port, receivers, capfd):
    buffer = buffer_to(port, capacity=25)
    try:
        export_in_batches(buffer, 70)  # 70 in batches of 7: the capacity cuts through a batch
        assert (buffer.buffered, buffer.dropped) == (25, 45)
        receiver = receivers(port)
        assert wait_for(lambda: len(receiver.spans) == 25 and buffer.buffered == 0)
        assert [name for name, _ in receiver.spans] == [f"s{i}" for i in range(45, 70)]
    finally:
        buffer.shutdown()
    lines = [line for line in capfd.readouterr().err.splitlines() if "dropped" in line]
    assert lines == ["obslab: traces: 45 spans dropped during the collector outage (the oldest, beyond "
                     "OBSLAB_OUTAGE_BUFFER=25); the rest were kept in order"]


def test_the_dropped_count_is_a_metric_per_signal(port, receivers, monkeypatch):
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "20")
    monkeypatch.setenv("OTEL_BLRP_SCHEDULE_DELAY", "20")
    reader = InMemoryMetricReader()
    handle = Telemetry(Settings(service_name="outage", otlp_endpoint=f"127.0.0.1:{port}", outage_buffer=10),
                       metric_readers=(reader,))
    try:
        logger = handle.get_otel_logger("outage-test")
        for i in range(16):
            with handle.span(f"s{i}"):
                logger.emit(body=f"l{i}")
        traces, logs = handle._outage_buffers()
        assert wait_for(lambda: traces.dropped + traces.buffered == 16 and logs.dropped + logs.buffered == 16)
        points = {(p.attributes["signal"], p.attributes["reason"]): p.value
                  for rm in reader.get_metrics_data().resource_metrics for sm in rm.scope_metrics
                  for m in sm.metrics if m.name == "obslab.outage.dropped" for p in m.data.data_points}
        assert points[("traces", "buffer_full")] == 6 and points[("logs", "buffer_full")] == 6
        receiver = receivers(port)
        assert wait_for(lambda: len(receiver.spans) == 10 and len(receiver.logs) == 10)
        assert receiver.logs == [f"l{i}" for i in range(6, 16)]
    finally:
        handle.shutdown(1)


class _BlockedExporter:
    """An exporter whose export hangs until released, like a collector that never answers."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.entered = threading.Event()
        self.exported: list[str] = []

    def export(self, batch):
        self.entered.set()
        self.release.wait()
        self.exported.extend(span.name for span in batch)
        return SpanExportResult.SUCCESS

    def shutdown(self):
        self.release.set()


def test_export_returns_at_once_while_another_export_is_blocked():
    blocked = _BlockedExporter()
    buffer = OutageBuffer(blocked, "traces", ("127.0.0.1", free_port()), 100)
    first = threading.Thread(target=buffer.export, args=(spans(["first"]),), daemon=True)
    first.start()
    assert blocked.entered.wait(30)
    safety = threading.Timer(30, blocked.release.set)  # so that a regression fails instead of hanging
    safety.start()
    try:
        for i in range(5):  # the batch processor's next exports: kept, not waiting on the blocked one
            assert buffer.export(spans([f"next{i}"])) is SpanExportResult.SUCCESS
        assert not blocked.release.is_set()  # they returned while the first export was still blocked
        assert buffer.buffered == 5
    finally:
        safety.cancel()
        buffer.shutdown()


def test_the_application_emits_without_waiting_while_the_collector_is_down(port, monkeypatch):
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "20")
    handle = Telemetry(Settings(service_name="outage", otlp_endpoint=f"127.0.0.1:{port}"))
    try:
        for i in range(500):
            with handle.span(f"s{i}"):
                pass
        traces = handle._outage_buffers()[0]
        assert wait_for(lambda: traces.buffered == 500)  # kept, in the background
    finally:
        handle.shutdown(1)


def test_the_grpc_exporter_leaves_unavailability_to_the_buffer():
    import grpc

    (buffered_exporter,) = build_exporters(Settings(otlp_endpoint="127.0.0.1:4317"), "traces")
    assert grpc.StatusCode.UNAVAILABLE not in buffered_exporter._retryable_error_codes
    (plain,) = build_exporters(Settings(otlp_endpoint="127.0.0.1:4317", outage_buffer=0), "traces")
    assert grpc.StatusCode.UNAVAILABLE in plain._retryable_error_codes  # no buffer: the exporter's own retries


def test_a_zero_buffer_leaves_the_exporters_as_they_were(port):
    handle = Telemetry(Settings(service_name="outage", otlp_endpoint=f"127.0.0.1:{port}", outage_buffer=0))
    try:
        assert handle._outage_buffers() == []
    finally:
        handle.shutdown(0.5)


def test_a_batch_the_reachable_collector_keeps_refusing_is_dropped_after_a_few_attempts(monkeypatch):
    monkeypatch.setattr(_outage, "MAX_BACKOFF", 0.01)

    class Refusing:
        attempts = 0

        def export(self, batch):
            Refusing.attempts += 1
            return SpanExportResult.FAILURE

        def shutdown(self):
            pass

    def refuse_request(request):  # the kept batch, sent again as an encoded request
        Refusing.attempts += 1
        return False

    receiver = OTLPReceiver(free_port()).start()  # accepts connections: the collector is reachable
    buffer = OutageBuffer(Refusing(), "traces", ("127.0.0.1", receiver.port), 100, send_request=refuse_request)
    try:
        buffer.export(spans(["poison"]))
        assert wait_for(lambda: buffer.rejected == 1)
        assert buffer.buffered == 0 and Refusing.attempts == 1 + _outage.REJECTED_AFTER
    finally:
        buffer.shutdown()
        receiver.stop()


@pytest.mark.parametrize("accepted", [False, True], ids=["refused", "accepted"])
def test_a_send_under_way_when_the_exit_begins_ends_before_shutdown_returns_and_a_refused_one_is_tried_again(
        accepted):
    """The background sender has taken the queue's one batch out to send when the exit begins (a queue
    of one batch: what an overflowing buffer holds). The exit waits for that attempt instead of taking
    the queue for empty: accepted, it is delivered before shutdown returns; refused, the exit tries it
    again and counts it before returning (the exit used to return at once, the attempt still under way:
    the batch neither tried again nor counted, and a spool file delivered but left on disk)."""
    taken, release, finished = threading.Event(), threading.Event(), threading.Event()
    attempts = []

    def send(request):  # the kept batch, sent as an encoded request: the first attempt is slow
        attempts.append(time.monotonic())
        if len(attempts) == 1:
            taken.set()
            release.wait(30)
            finished.set()
            return accepted
        return False

    class Refusing:  # the first export, sent at once
        def export(self, batch):
            return SpanExportResult.FAILURE

        def shutdown(self):
            pass

    receiver = OTLPReceiver(free_port()).start()  # accepts connections: the collector is reachable
    buffer = OutageBuffer(Refusing(), "traces", ("127.0.0.1", receiver.port), 100, send_request=send,
                          exit_timeout=2.0)
    slow = threading.Timer(0.3, release.set)  # the attempt ends while shutdown runs
    try:
        buffer.export(spans(["only"]))
        assert taken.wait(30) and buffer.buffered == 0  # out of the queue, being sent
        slow.start()
        buffer.shutdown()
        assert finished.is_set()  # shutdown returned after the attempt under way, not during it
        if accepted:
            assert (len(attempts), buffer.lost) == (1, 0)
        else:
            assert len(attempts) >= 2 and buffer.lost == 1  # tried again at exit, then counted
    finally:
        slow.cancel()
        release.set()
        receiver.stop()


@pytest.mark.parametrize("environ, fragment", [
    ({"OBSLAB_OUTAGE_BUFFER": "lots"}, "outage_buffer='lots' (from environment variable OBSLAB_OUTAGE_BUFFER)"),
    ({"OBSLAB_OUTAGE_BUFFER": "-1"}, "outage_buffer='-1' (from environment variable OBSLAB_OUTAGE_BUFFER)"),
    ({"OBSLAB_OUTAGE_BUFFER": "2.5"}, "outage_buffer='2.5' (from environment variable OBSLAB_OUTAGE_BUFFER)"),
])
def test_a_bad_buffer_size_is_refused_naming_the_setting(environ, fragment):
    with pytest.raises(ValueError) as error:
        load_settings({}, environ=environ)
    assert fragment in str(error.value) and "whole number of records" in str(error.value)


def test_the_buffer_size_comes_from_arguments_environment_and_yaml(tmp_path):
    config = tmp_path / "telemetry.yaml"
    config.write_text("outage_buffer: 300\nspool_dir: spool\n")
    from_yaml = load_settings({"config_file": str(config)}, environ={})
    assert from_yaml.outage_buffer == 300 and from_yaml.spool_dir == os.path.abspath("spool")
    assert load_settings({"config_file": str(config)}, environ={"OBSLAB_OUTAGE_BUFFER": "200"}).outage_buffer == 200
    assert load_settings({"outage_buffer": 100}, environ={"OBSLAB_OUTAGE_BUFFER": "200"}).outage_buffer == 100
    assert load_settings({}, environ={}).outage_buffer == _outage.DEFAULT_CAPACITY
    with pytest.raises(ValueError, match=r"outage_buffer=-5 \(from argument\)"):
        load_settings({"outage_buffer": -5}, environ={})


def test_a_spool_dir_that_cannot_be_written_is_refused(tmp_path):
    a_file = tmp_path / "file"
    a_file.write_text("")
    with pytest.raises(ValueError, match=r"spool_dir='.*file/spool' \(from environment variable OBSLAB_SPOOL_DIR\)"):
        load_settings({}, environ={"OBSLAB_SPOOL_DIR": str(a_file / "spool")})
    assert not (tmp_path / "spool").exists()
    load_settings({}, environ={"OBSLAB_SPOOL_DIR": str(tmp_path / "spool")})
    assert not (tmp_path / "spool").exists()  # nothing is created until something is spooled


def test_init_refuses_a_bad_buffer_size(fresh):
    with pytest.raises(ValueError, match=r"outage_buffer='x' \(from argument\)"):
        init_telemetry("svc", outage_buffer="x")


SHORT_JOB = textwrap.dedent("""
    import sys
    from obslab import init_telemetry
    telemetry = init_telemetry(sys.argv[1], otlp_endpoint=sys.argv[2], spool_dir=sys.argv[3])
    logger = telemetry.get_otel_logger("job")
    for i in range(int(sys.argv[4])):
        with telemetry.span(f"{sys.argv[1]}-{i}"):
            logger.emit(body=f"{sys.argv[1]}-line-{i}")
""")


def run_job(name: str, port: int, spool: Path, count: int) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "OBSLAB_"))}
    env["PYTHONPATH"] = os.pathsep.join([str(SDK), str(UNIT)])
    return subprocess.run([sys.executable, "-c", SHORT_JOB, name, f"127.0.0.1:{port}", str(spool), str(count)],
                          capture_output=True, text=True, timeout=120, env=env, cwd=spool.parent)


def test_a_job_run_during_an_outage_loses_nothing_the_next_start_sends_its_spool(port, tmp_path, receivers):
    spool = tmp_path / "spool"
    during = run_job("during", port, spool, 30)
    assert during.returncode == 0, during.stderr
    assert sorted(p.name.split("-")[0] for p in spool.glob("*.pb")) >= ["logs", "traces"]
    assert "30 spans, 30 log records written to" in during.stderr
    receiver = receivers(port)
    after = run_job("after", port, spool, 2)
    assert after.returncode == 0, after.stderr
    names = [name for name, _ in receiver.spans]
    assert names == [f"during-{i}" for i in range(30)] + ["after-0", "after-1"]
    assert receiver.logs == [f"during-line-{i}" for i in range(30)] + ["after-line-0", "after-line-1"]
    assert not list(spool.iterdir())  # every file was sent, and removed
