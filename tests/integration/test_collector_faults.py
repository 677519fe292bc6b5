"""Faults beyond a stopped service, each with exact counts: the collector killed with SIGKILL, its
memory_limiter refusing a burst, a backend answering 503 for a while, a backend that accepts slowly, its
queue volume filling up.

Every span and log record carries a unique seq (otlp_stream.py) and is sent again, as an SDK's exporter
does, until the collector accepts it; what the backends hold is then counted against what was sent.
Where the ingest witness stands in for Tempo and Loki, it is what is slowed, cut and counted. The
collector is put back as the lab runs it after each test that changes it.
"""

from __future__ import annotations

import concurrent.futures
import os
import pathlib
import re
import subprocess
import sys
import threading
import time
import uuid

import pytest
import requests

from conftest import REPO, compose, eventually, settle
from otlp_stream import REFUSALS, Stream, logs_request, post, spans_request, stored_logs, stored_spans
from test_collector_queues import _all_stored

FAULTS = REPO / "tests/faults"


def _container(lab, service: str) -> str:
    return lab.compose("ps", "-q", service).stdout.strip()


def _pid(lab, service: str) -> str:
    """The host pid of a service's main process: its network namespace is where faults are injected."""
    return subprocess.run(["docker", "inspect", "-f", "{{.State.Pid}}", _container(lab, service)],
                          capture_output=True, text=True, check=True).stdout.strip()


def _in_netns(lab, service: str, *command: str) -> subprocess.CompletedProcess:
    """Run a host tool (iptables, tc, python) inside a service container's network namespace."""
    return subprocess.run(["nsenter", "-t", _pid(lab, service), "-n", *command], capture_output=True, text=True,
                          timeout=60)


def _collector_with(lab, *overlays: str) -> None:
    """Recreate the lab's collector with test-only compose files added (none: as the lab runs it)."""
    compose(lab.project, lab.env_file, "up", "-d", "--no-deps", "--wait", "otel-collector",
            extra_files=tuple(FAULTS / name for name in overlays))
    eventually(lambda: requests.get(f"http://127.0.0.1:{lab.env['COLLECTOR_HEALTH_PORT']}", timeout=1).ok,
               timeout=60, interval=0.2)


def _refusals() -> dict:
    return dict(REFUSALS)


def _new_refusals(before: dict) -> dict:
    return {status: count - before.get(status, 0) for status, count in REFUSALS.items()
            if count > before.get(status, 0)}


def test_the_collector_killed_with_sigkill_mid_stream_loses_nothing(lab):
    """No orderly shutdown: the file_storage database is reopened after an unclean stop, and what was
    acknowledged before the kill (on disk) and what the sender retried after it all arrive, once."""
    service = f"sigkill-{uuid.uuid4().hex[:8]}"
    with Stream(lab.otlp_http, service) as stream:
        time.sleep(5)
        lab.compose("kill", "-s", "SIGKILL", "otel-collector")
        time.sleep(2)
        lab.compose("up", "-d", "--no-deps", "--wait", "otel-collector")
        time.sleep(5)
    _all_stored(lab, service, stream.sent)


def test_the_memory_limiter_refuses_a_burst_and_the_retried_data_is_all_stored(lab):
    """A memory_limiter that refuses above 20 MiB of heap: a burst of 100,000 log records and 20,000
    spans in requests of 5,000, four at a time, crosses it; the refused requests are sent again, as the
    SDK's exporters do on 503, and every record is stored exactly once."""
    service = f"memlimit-{uuid.uuid4().hex[:8]}"
    logs, spans, per_request = 100_000, 20_000, 5_000
    requests_ = [("logs", logs_request(service, first, per_request)) for first in range(0, logs, per_request)]
    requests_ += [("traces", spans_request(service, first, per_request)) for first in range(0, spans, per_request)]
    _collector_with(lab, "docker-compose.memory-low.yml")
    before = _refusals()
    try:
        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            accepted = list(pool.map(lambda r: post(lab.otlp_http, r[0], r[1], retry_for=180), requests_))
        refused = _new_refusals(before)
        print(f"{service}: the memory_limiter refused {refused} requests of the burst; all retried")
        assert all(accepted)
        assert refused.get(503, 0) > 0 and set(refused) == {503}, refused
        assert eventually(lambda: stored_logs(lab, service) == logs, timeout=180)
        assert eventually(lambda: stored_spans(lab, service) == spans, timeout=180)
    finally:
        _collector_with(lab)


def _loki_endpoint_answers(lab, switch: str) -> None:
    """Cut ("on") or restore ("off") the witness's inner hop (tests/ingest-witness/config.yaml): while cut,
    Loki's endpoint answers 503 to every request."""
    rule = ["INPUT", "-i", "lo", "-p", "tcp", "--dport", "3102", "-j", "REJECT", "--reject-with", "tcp-reset"]
    result = _in_netns(lab, "ingest-witness", "iptables", "-A" if switch == "on" else "-D", *rule)
    assert result.returncode == 0, result.stderr


# One log record POSTed to Loki's endpoint from inside the witness's network namespace: its status.
_PROBE = """
import json, urllib.request, urllib.error
body = {"resourceLogs": [{"resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "probe"}}]},
                          "scopeLogs": [{"logRecords": [{"body": {"stringValue": "probe"}}]}]}]}
request = urllib.request.Request("http://127.0.0.1:3100/otlp/v1/logs", data=json.dumps(body).encode(),
                                 method="POST", headers={"Content-Type": "application/json"})
try:
    print(urllib.request.urlopen(request, timeout=10).status)
except urllib.error.HTTPError as error:
    print(error.code)
"""


@pytest.mark.usefixtures("witness")
def test_a_backend_answering_503_for_30s_loses_nothing(lab, witness):
    """Loki's endpoint (the witness) answers 503 for 30 s; the collector keeps the logs in its queue and
    retries them, so the sender never notices and every record arrives once the backend takes them."""
    service = f"answers503-{uuid.uuid4().hex[:8]}"
    probe = lambda: _in_netns(lab, "ingest-witness", sys.executable, "-c", _PROBE).stdout.strip()  # noqa: E731
    before = _refusals()
    with Stream(lab.otlp_http, service) as stream:
        time.sleep(3)
        _loki_endpoint_answers(lab, "on")
        try:
            assert probe() == "503"
            time.sleep(2)  # what was in flight has landed
            held = len(witness.logs(service))
            time.sleep(28)
            assert len(witness.logs(service)) == held, "records reached the witness while it answered 503"
        finally:
            _loki_endpoint_answers(lab, "off")
        assert probe() == "200"
        time.sleep(3)
    print(f"{service}: Loki's endpoint answered 503 for 30 s; the sender saw {_new_refusals(before) or 'no refusal'}")
    assert _new_refusals(before) == {}  # the collector's disk queue absorbed it
    _all_stored(lab, service, stream.sent)


# An application on the obslab SDK: N log records, 2,000 a second, then shutdown (which waits for its
# buffer up to OBSLAB_SHUTDOWN_TIMEOUT). Arguments: service, collector endpoint (host:port), N.
_APP = """
import logging, sys, time
from obslab import init_telemetry
service, endpoint, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
telemetry = init_telemetry(service_name=service, otlp_endpoint=endpoint)
log = logging.getLogger("slow-backend")
for i in range(count):
    log.info("slow backend record %d", i)
    if i % 200 == 199:
        time.sleep(0.1)
telemetry.shutdown()
"""


def _collector_counter(lab, name: str) -> float:
    """The collector's own counter ``name`` (summed), read at once from its :8888 inside the compose
    network (Prometheus' image has wget; the collector's has no shell)."""
    text = subprocess.run(["docker", "exec", _container(lab, "prometheus"), "wget", "-q", "-O", "-",
                           "http://otel-collector:8888/metrics"], capture_output=True, text=True, timeout=30).stdout
    return sum(float(line.rpartition(" ")[2]) for line in text.splitlines()
               if line.split("{")[0].split(" ")[0] in (name, f"{name}_total"))


@pytest.mark.usefixtures("witness")
def test_a_backend_that_accepts_slowly_pushes_back_to_the_sdk_which_reports_it_and_nothing_accepted_is_lost(
        lab, witness, tmp_path):
    """Loki's endpoint (the witness) takes data at 256 kbit/s for 20 s (a rate limit on its inner hop),
    behind a collector whose Loki queue holds 4 requests: the queue fills, the collector refuses with
    "sending queue is full", and the application's SDK says on stderr that it keeps the records until the
    collector answers. Every record the collector accepted is stored, exactly, and every record the SDK
    did not deliver is counted in its exit line: stored + reported == emitted."""
    service, count = f"slow-{uuid.uuid4().hex[:8]}", 20_000
    _collector_with(lab, "docker-compose.slow-backend.yml")
    # tbf (token bucket): the kernel's netem may be absent. The burst holds one packet of lo's 64 KiB MTU.
    slow = ["tc", "qdisc", "add", "dev", "lo", "root", "tbf", "rate", "256kbit", "burst", "70kb", "latency", "2s"]
    assert _in_netns(lab, "ingest-witness", *slow).returncode == 0
    try:
        err_file = (tmp_path / "stderr").open("w")  # a file, not a pipe: the app's console lines would fill a pipe
        app = subprocess.Popen(
            [sys.executable, "-c", _APP, service, lab.otlp, str(count)], cwd=tmp_path, text=True,
            stdout=subprocess.DEVNULL, stderr=err_file,
            env={"PATH": "/usr/bin:/bin", "OBSLAB_OUTAGE_BUFFER": "100000", "OTEL_BLRP_MAX_QUEUE_SIZE": "100000",
                 "OBSLAB_SHUTDOWN_TIMEOUT": "150"})
        time.sleep(20)
        _in_netns(lab, "ingest-witness", "tc", "qdisc", "del", "dev", "lo", "root")
        app.wait(timeout=240)
        stderr = (tmp_path / "stderr").read_text()
        refused = _collector_counter(lab, "otelcol_receiver_refused_log_records")
        accepted = _collector_counter(lab, "otelcol_receiver_accepted_log_records")
        stored = settle(lambda: stored_logs(lab, service), lambda found: found >= accepted, timeout=180)
    finally:
        _in_netns(lab, "ingest-witness", "tc", "qdisc", "del", "dev", "lo", "root")  # gone already: harmless
        _collector_with(lab)
    said = [line for line in stderr.splitlines() if line.startswith("obslab")]
    unsent = [re.search(r"not delivered: [^;]*?(\d+) log records", line) for line in said]
    reported = sum(int(match.group(1)) for match in unsent if match)
    print(f"{service}: {count} log records emitted while Loki's endpoint was slow; the collector refused "
          f"{refused:.0f} (sending queue full) and accepted {accepted:.0f}; {stored} stored; the SDK reported "
          f"{reported} not delivered; it said {said}")
    assert app.returncode == 0, stderr[-2000:]
    assert refused > 0
    assert any("sending queue is full" in line for line in said), said
    assert any("keeping up to 100000 log records (OBSLAB_OUTAGE_BUFFER) until the collector answers" in line
               for line in said), said
    assert stored == accepted
    assert stored + reported == count, said


class _VolumeWatch(threading.Thread):
    """The most a project's volume (a tmpfs the collector has mounted) held, sampled every 0.1 s while
    running, and what each of its queue files holds on disk at the end (bbolt never shrinks a file)."""

    def __init__(self, lab, name: str) -> None:
        super().__init__(daemon=True)
        self.path = subprocess.run(["docker", "volume", "inspect", "-f", "{{.Mountpoint}}", f"{lab.project}_{name}"],
                                   capture_output=True, text=True, check=True).stdout.strip()
        stat = os.statvfs(self.path)
        self.size = stat.f_blocks * stat.f_frsize
        self.peak, self.files, self._done = 0, {}, threading.Event()

    def run(self) -> None:
        while not self._done.wait(0.1):
            stat = os.statvfs(self.path)
            self.peak = max(self.peak, (stat.f_blocks - stat.f_bfree) * stat.f_frsize)

    def stop(self) -> None:
        self._done.set()
        self.join()
        queue = pathlib.Path(self.path, "queue")
        self.files = {path.name: path.stat().st_blocks * 512 for path in queue.iterdir()} if queue.is_dir() else {}


@pytest.mark.usefixtures("witness")
def test_a_queue_volume_filling_up_is_refused_before_the_disk_is_full_and_nothing_is_lost(lab, witness):
    """The collector's queues on a 16 MiB volume, bounded at 3 MiB each (the lab's sizer, bytes; the lab's
    bound is 256 MiB), the backends (the witness) stopped, and 30 MB of log records and as much of spans
    sent: each queue refuses (503) once it holds its bound, before the volume is full, and the sender sends
    again, as the SDK's exporters do. Backends back, the queues drain: every record is stored, exactly,
    and no write of the collector failed. (With queues counted in requests, the lab's before, the volume
    filled and accepted log records and spans were lost: docs/outages.md.)"""
    service, count, per_request = f"queuefull-{uuid.uuid4().hex[:8]}", 30_000, 200
    pad = "x" * 1000  # ~1 KB a record: 30 MB of logs and as much of spans, in requests of ~200 KB
    requests_ = [("logs", logs_request(service, first, per_request, body=f"queue full {{seq}} {pad}"))
                 for first in range(0, count, per_request)]
    requests_ += [("traces", spans_request(service, first, per_request, name=f"GET /full {pad}"))
                  for first in range(0, count, per_request)]
    _collector_with(lab, "docker-compose.queue-full.yml")
    before, volume = _refusals(), _VolumeWatch(lab, "collector-data-16m")
    try:
        lab.compose("stop", "ingest-witness")
        volume.start()
        deadline = time.monotonic() + 120  # for every request together: a collector that keeps refusing fails fast
        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            results = pool.map(lambda r: post(lab.otlp_http, r[0], r[1], retry_for=deadline - time.monotonic()),
                               requests_)
            try:
                eventually(lambda: _new_refusals(before), timeout=30, interval=0.2)
                time.sleep(3)  # the senders keep being refused: the queues are at their bound
                refused = _new_refusals(before)
            finally:
                lab.compose("start", "ingest-witness")
            accepted = list(results)
        logs = settle(lambda: stored_logs(lab, service), lambda n: n >= count, timeout=90)
        spans = settle(lambda: stored_spans(lab, service), lambda n: n >= count, timeout=90)
        volume.stop()
        collector_log = lab.compose("logs", "otel-collector").stdout
    finally:
        _collector_with(lab)
        subprocess.run(["docker", "volume", "rm", f"{lab.project}_collector-data-16m"], capture_output=True)
    full = [line for line in collector_log.splitlines() if "no space left" in line]
    print(f"{service}: {count} log records and as many spans sent while the backends were stopped; refused "
          f"{refused}; the {volume.size / 2**20:.0f} MiB volume held at most {volume.peak / 2**20:.1f} MiB (queue "
          f"files: { {name: f'{size / 2**20:.1f} MiB' for name, size in volume.files.items()} }); stored {logs} "
          f"log records, {spans} spans; 'no space left' in the collector's log: {len(full)}")
    assert all(accepted)
    assert refused.get(503, 0) > 0, refused
    assert (logs, spans) == (count, count)
    assert full == [], full[:3]
    assert volume.peak < volume.size
