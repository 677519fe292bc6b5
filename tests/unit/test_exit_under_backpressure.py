"""At exit under collector backpressure (a collector refusing with "sending queue is full" as
RESOURCE_EXHAUSTED, or UNAVAILABLE while it accepts connections), the SDK keeps trying up to
``shutdown_timeout``, and every log record an application emitted is delivered, spooled (and
delivered by the next start), or counted in the one stderr line of the exit: never lost silently,
also when the outage buffer overflowed before the exit.

The application is a subprocess that logs N records and returns (the exit handler shuts obslab
down); the collector is an in-process gRPC OTLP server (:mod:`otlp_receiver`).
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import grpc
import pytest

from lab import free_port
from otlp_receiver import OTLPReceiver

SDK = Path(__file__).resolve().parents[2] / "sdk" / "src"
CODES = [grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.UNAVAILABLE]
SLACK = 2.0  # seconds past shutdown_timeout for the interpreter's own exit on a busy 2-core machine

# Logs N records ("record <i>"), prints when it is done emitting (the exit starts), and returns.
_APP = """
import logging, sys, time
from obslab import init_telemetry
init_telemetry(service_name="exit-backpressure", otlp_endpoint=sys.argv[1])
log = logging.getLogger("app")
for i in range(int(sys.argv[2])):
    log.warning("record %d", i)
print(time.time(), flush=True)
"""


# Appended to _APP: the application waits a while before it returns.
_LINGER = """
time.sleep(float(sys.argv[3]))
print(time.time(), flush=True)
"""
# Appended to _APP: the application ends by a SIGTERM it leaves to its default (docker stop).
_SIGTERM = """
import os, signal
os.kill(os.getpid(), signal.SIGTERM)
time.sleep(60)
"""


def _run(port: int, count: int, tmp_path: Path, tail: str = "", returncode: int = 0, args: tuple[str, ...] = (),
         **settings: str) -> tuple[subprocess.CompletedProcess, float, float]:
    """Run the application (``tail`` appended to it); its output, when it began to exit and when it had
    exited (time.time())."""
    env = {**os.environ, "PYTHONPATH": str(SDK), "OTEL_METRICS_EXPORTER": "none", "OTEL_TRACES_EXPORTER": "none",
           **settings}
    run = subprocess.run([sys.executable, "-c", _APP + tail, f"http://127.0.0.1:{port}", str(count), *args],
                         capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)
    ended = time.time()
    assert run.returncode == returncode, run.stderr[-2000:]
    run.stderr = "\n".join(line for line in run.stderr.splitlines() if line.startswith("obslab"))  # not the console's
    return run, float(run.stdout.split()[-1]), ended


def _reported(stderr: str) -> int:
    """The log records the exit line says were not delivered (0 when there is no such line)."""
    lines = [line for line in stderr.splitlines() if "not delivered" in line]
    assert len(lines) <= 1, lines
    if not lines:
        return 0
    match = re.search(r"not delivered: (?:[^;]*?)(\d+) log records", lines[0])
    assert match, lines[0]
    return int(match.group(1))


def _delivered(receiver: OTLPReceiver) -> list[str]:
    with receiver._lock:
        return list(receiver.logs)


@pytest.fixture
def collector():
    receiver = OTLPReceiver(free_port()).start()
    yield receiver
    receiver.stop()


@pytest.mark.parametrize("code", CODES, ids=lambda code: code.name)
def test_exit_keeps_trying_through_backpressure_and_delivers_every_record(collector, tmp_path, code):
    """Refused for 3 s after the first export, most of it after the application finished: the exit
    retries and every record arrives, once, with no report of a loss (as many records as the SDK's
    batch queue holds: it drops beyond, which the other tests count)."""
    count = 2000
    collector.refuse_logs(code, 3.0)
    run, _, _ = _run(collector.port, count, tmp_path, OBSLAB_SHUTDOWN_TIMEOUT="20")
    delivered = _delivered(collector)
    assert collector.refused > 0
    assert sorted(delivered) == sorted(f"record {i}" for i in range(count)), (len(delivered), run.stderr)
    assert _reported(run.stderr) == 0, run.stderr


@pytest.mark.parametrize("buffer", ["10000", "500"], ids=["buffer-holds-all", "buffer-overflows"])
@pytest.mark.parametrize("code", CODES, ids=lambda code: code.name)
def test_exit_under_endless_backpressure_tries_until_the_timeout_and_reports_every_record_it_did_not_deliver(
        collector, tmp_path, code, buffer):
    """Refused until the end: the exit spends about ``shutdown_timeout`` trying (refused after the
    application's last record, and the process ends in that time), and what was delivered plus what the
    exit line reports is exactly what was emitted, also when the outage buffer dropped the oldest."""
    count, timeout = 3000, 3.0
    collector.refuse_logs(code)
    run, exiting, ended = _run(collector.port, count, tmp_path, OBSLAB_SHUTDOWN_TIMEOUT=str(timeout),
                               OBSLAB_OUTAGE_BUFFER=buffer)
    delivered = _delivered(collector)
    assert timeout * 0.9 < ended - exiting < timeout + SLACK, run.stderr
    assert collector.last_refused > exiting, "the exit did not try"
    assert len(delivered) + _reported(run.stderr) == count, (len(delivered), run.stderr)


@pytest.mark.parametrize("code", CODES, ids=lambda code: code.name)
def test_exit_under_endless_backpressure_spools_what_it_did_not_deliver_and_the_next_start_delivers_it(
        collector, tmp_path, code):
    """With a spool directory, what the refusing collector did not take is written there, and the next
    starts (the collector accepting again) deliver exactly that, each record once; what never reached
    the spool (dropped on the SDK's full batch queue) is in the exit line: together, every record."""
    count = 3000
    spool = tmp_path / "spool"
    collector.refuse_logs(code)
    first, _, _ = _run(collector.port, count, tmp_path, OBSLAB_SHUTDOWN_TIMEOUT="2", OBSLAB_SPOOL_DIR=str(spool))
    spooled = re.search(r"(\d+) log records written to", first.stderr)
    assert spooled, first.stderr
    collector.refusal = None
    # The next starts deliver the spool (one start sends what it can before its own exit; what is left waits
    # for the one after): a few short-lived starts, then every spooled record is in, once.
    for _ in range(4):
        second, _, _ = _run(collector.port, 0, tmp_path, OBSLAB_SHUTDOWN_TIMEOUT="10", OBSLAB_SPOOL_DIR=str(spool))
        if len(_delivered(collector)) >= int(spooled.group(1)):
            break
    delivered = _delivered(collector)
    assert len(delivered) == len(set(delivered)) == int(spooled.group(1)), (len(delivered), first.stderr,
                                                                             second.stderr)
    assert len(delivered) + _reported(first.stderr) == count, first.stderr
    assert _reported(second.stderr) == 0, second.stderr
    assert not list(spool.glob("*.pb"))


class _Stalled:
    """A port that accepts every connection and never answers (a collector hung, or a proxy in front of
    one that stopped), from ``after`` seconds on (refusing connections before); the connections it holds."""

    def __init__(self, after: float = 0.0) -> None:
        self.port, self.held, self._server = free_port(), [], None
        self._closed = threading.Event()
        threading.Thread(target=self._serve, args=(after,), daemon=True).start()
        if not after:
            while self._server is None:
                time.sleep(0.01)

    def _serve(self, after: float) -> None:
        if self._closed.wait(after):
            return
        self._server = socket.create_server(("127.0.0.1", self.port))
        while True:
            try:
                self.held.append(self._server.accept()[0])
            except OSError:  # closed
                return

    def close(self) -> None:
        self._closed.set()
        if self._server is not None:
            self._server.close()
        for connection in self.held:
            connection.close()


@pytest.fixture
def stalled_collector():
    stalled = _Stalled()
    yield stalled.port, stalled.held
    stalled.close()


@pytest.mark.parametrize("ending", ["returns", "sigterm"])
@pytest.mark.parametrize("protocol", ["grpc", "http/protobuf"])
def test_exit_while_the_collector_accepts_and_never_answers_ends_within_the_timeout_and_reports_every_record(
        stalled_collector, tmp_path, protocol, ending):
    """An export under way when the exit begins never gets an answer: the exit still ends within
    ``shutdown_timeout`` (not the exporter's own 10 s timeout), by return or by SIGTERM, with the outage
    buffer overflowing, and its line reports every record (none was delivered)."""
    port, held = stalled_collector
    count, timeout = 3000, 3.0
    run, exiting, ended = _run(port, count, tmp_path, tail=_SIGTERM if ending == "sigterm" else "",
                               returncode=-signal.SIGTERM if ending == "sigterm" else 0,
                               OBSLAB_SHUTDOWN_TIMEOUT=str(timeout), OBSLAB_OUTAGE_BUFFER="500",
                               OTEL_EXPORTER_OTLP_PROTOCOL=protocol)
    assert held, "the application never connected"
    assert ended - exiting < timeout + SLACK, run.stderr
    assert _reported(run.stderr) == count, run.stderr


@pytest.mark.parametrize("protocol", ["grpc", "http/protobuf"])
def test_exit_while_the_outage_buffer_sends_to_a_collector_that_stopped_answering_reports_every_record(
        tmp_path, protocol):
    """The collector refuses connections (the records go to the outage buffer), then accepts them and
    never answers: the exit comes while the buffer's background sender waits on it. The exit ends within
    ``shutdown_timeout`` and its line counts every record, the batch under way included."""
    count, timeout = 1000, 3.0
    stalled = _Stalled(after=1.5)
    try:
        run, exiting, ended = _run(stalled.port, count, tmp_path, tail=_LINGER, args=("3",),
                                   OBSLAB_SHUTDOWN_TIMEOUT=str(timeout), OTEL_BLRP_SCHEDULE_DELAY="100",
                                   OTEL_EXPORTER_OTLP_PROTOCOL=protocol)
        assert stalled.held, "the buffer never tried the stalled collector"
    finally:
        stalled.close()
    assert ended - exiting < timeout + SLACK, run.stderr
    assert _reported(run.stderr) == count, run.stderr


def test_a_sigterm_during_the_exit_flush_waits_for_its_report_then_ends_the_process(stalled_collector, tmp_path):
    """The application has returned and the exit flush waits on a collector that never answers when a
    SIGTERM comes (``docker stop``): the process still ends by SIGTERM, within ``shutdown_timeout``, and
    after the exit's line reporting every record (it used to end at once, without the line)."""
    port, _ = stalled_collector
    count, timeout = 3000, 3.0
    env = {**os.environ, "PYTHONPATH": str(SDK), "OTEL_METRICS_EXPORTER": "none", "OTEL_TRACES_EXPORTER": "none",
           "OBSLAB_SHUTDOWN_TIMEOUT": str(timeout)}
    with open(tmp_path / "stderr", "w") as stderr:  # a file: the console lines would fill a pipe nobody reads
        app = subprocess.Popen([sys.executable, "-c", _APP, f"http://127.0.0.1:{port}", str(count)], env=env,
                               cwd=tmp_path, stdout=subprocess.PIPE, stderr=stderr, text=True)
        try:
            exiting = float(app.stdout.readline())
            time.sleep(1.0)
            app.send_signal(signal.SIGTERM)
            returncode = app.wait(60)
        finally:
            if app.poll() is None:
                app.kill()
            app.stdout.close()
    ended = time.time()
    lines = "\n".join(line for line in (tmp_path / "stderr").read_text().splitlines() if line.startswith("obslab"))
    assert returncode == -signal.SIGTERM, lines
    assert ended - exiting < timeout + SLACK, lines
    assert _reported(lines) == count, lines
