"""Forwarding (otel-collector/forward/): with OBSLAB_FORWARD_OTLP_ENDPOINT set, the lab's collector
also sends every signal to a remote OTLP endpoint, through its own queue on disk; with
OBSLAB_FORWARD_ONLY=true, to the remote alone. The remote here is a second collector writing what it
receives to files (tests/forward-remote/). Exact counts: every span and log record carries a unique
seq, the counter's value is the number sent (tests/integration/otlp_stream.py).

The lab runs in its own compose project (the lab's compose files unchanged, plus the remote), so the
forwarding settings come from .env exactly as a user sets them.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import time
import uuid
from pathlib import Path

import pytest
import requests
from dotenv import dotenv_values

from conftest import SERVICES, WITNESSED, Lab, compose, eventually, settle
from lab import REPO, free_port, image, isolated_env
from otlp_stream import (Stream, counter_request, logs_request, post, spans_request, stored_counter, stored_logs,
                         stored_spans)
from witness import Witness, attributes

REMOTE_COMPOSE_FILE = REPO / "tests/forward-remote/docker-compose.yml"
SECRET = f"Bearer obslab-{secrets.token_hex(16)}"  # a credential that must never leak


class Remote:
    """What the remote endpoint received: spans, log records (distinct, by seq) and the counter."""

    def __init__(self, directory: Path) -> None:
        self.directory, self.files = directory, Witness(directory)

    def spans(self, service: str) -> int:
        return len({span["attributes"]["seq"] for span in self.files.spans(service)})

    def logs(self, service: str) -> int:
        return len({record["attributes"]["seq"] for record in self.files.logs(service)})

    def counter(self, service: str) -> int:
        path, best = self.directory / "metrics.jsonl", -1
        if path.exists():
            for line in path.read_text().splitlines():
                for resource in json.loads(line).get("resourceMetrics", []):
                    if attributes(resource.get("resource", {}).get("attributes", [])).get("service.name") != service:
                        continue
                    for scope in resource.get("scopeMetrics", []):
                        for metric in scope.get("metrics", []):
                            if metric.get("name") == "stream.records":
                                best = max([best, *(int(p["asInt"]) for p in metric["sum"]["dataPoints"])])
        return best


class ForwardingLab:
    def __init__(self, tmp: Path) -> None:
        self.project = f"obslabfwd{os.getpid()}"
        self.env_file = tmp / ".env"
        self.remote_dir, witness_dir = tmp / "remote", tmp / "witness"
        for directory in (self.remote_dir, witness_dir):
            directory.mkdir()
            directory.chmod(0o777)  # the collector image runs as 10001
        isolated_env(self.env_file, WITNESS_IMAGE=image("otel-collector"), WITNESS_DIR=str(witness_dir),
                     WITNESS_HEALTH_PORT=str(free_port()), REMOTE_IMAGE=image("otel-collector"),
                     REMOTE_DIR=str(self.remote_dir), REMOTE_HEALTH_PORT=str(free_port()),
                     OBSLAB_FORWARD_OTLP_ENDPOINT="http://remote-otlp:4318",
                     OBSLAB_FORWARD_OTLP_HEADERS=f"'{json.dumps({'Authorization': SECRET})}'",
                     OBSLAB_FORWARD_ONLY="false")
        self.env = {k: v or "" for k, v in dotenv_values(self.env_file).items()}
        self.lab = Lab(self.env_file, self.env, self.project)
        self.remote = Remote(self.remote_dir)

    def compose(self, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
        return compose(self.project, self.env_file, *args, timeout=timeout, extra_files=(REMOTE_COMPOSE_FILE,))

    def set_env(self, **values: str) -> None:
        text = self.env_file.read_text().splitlines()
        text = [line for line in text if line.split("=", 1)[0] not in values]
        self.env_file.write_text("\n".join(text + [f"{k}={v}" for k, v in values.items()]) + "\n")
        self.env.update(values)

    def container(self, service: str) -> str:
        return self.compose("ps", "-q", service).stdout.strip()


@pytest.fixture(scope="module")
def forwarding(tmp_path_factory) -> ForwardingLab:
    lab = ForwardingLab(tmp_path_factory.mktemp("forwarding"))
    try:
        lab.compose("up", "-d", "--wait", *SERVICES, "remote-otlp")
        eventually(lambda: requests.get(f"http://127.0.0.1:{lab.env['REMOTE_HEALTH_PORT']}", timeout=1).ok,
                   timeout=60, interval=0.2)
        eventually(lambda: requests.get(f"http://127.0.0.1:{lab.env['COLLECTOR_HEALTH_PORT']}", timeout=1).ok,
                   timeout=60, interval=0.2)
        yield lab
    finally:
        lab.compose("down", "-v", "--remove-orphans")


def _local(lab: Lab, service: str) -> dict[str, int]:
    try:
        return {"spans": stored_spans(lab, service), "logs": stored_logs(lab, service),
                "counter": stored_counter(lab, service)}
    except requests.RequestException:
        return {}


def _remote(remote: Remote, service: str) -> dict[str, int]:
    return {"spans": remote.spans(service), "logs": remote.logs(service), "counter": remote.counter(service)}


def test_the_remote_stopped_30s_loses_nothing_and_never_holds_back_the_local_backends(forwarding):
    service = f"forward-{uuid.uuid4().hex[:8]}"
    lab, remote = forwarding.lab, forwarding.remote
    local_during_outage = None
    with Stream(lab.otlp_http, service) as stream:
        time.sleep(5)
        forwarding.compose("stop", "remote-otlp")
        stopped = time.monotonic()
        try:
            time.sleep(20)
            # Still in the outage: the local backends have everything sent until a few seconds ago.
            sent_then = stream.sent
            local_during_outage = settle(lambda: _local(lab, service),
                                         lambda found: min(found.values(), default=-1) >= sent_then, timeout=10)
            remote_during_outage = _remote(remote, service)
            time.sleep(max(0.0, 30 - (time.monotonic() - stopped)))
        finally:
            forwarding.compose("up", "-d", "--wait", "remote-otlp")
        outage = time.monotonic() - stopped
        time.sleep(5)
    sent = stream.sent
    expected = {"spans": sent, "logs": sent, "counter": sent}
    local = settle(lambda: _local(lab, service), lambda found: found == expected, timeout=120)
    remote_stored = settle(lambda: _remote(remote, service), lambda found: found == expected, timeout=180)
    print(f"{service}: sent {sent} spans, {sent} log records, counter {sent}; remote stopped {outage:.0f} s: "
          f"local {local} ({'ingest witness for tempo/loki' if WITNESSED else 'tempo/loki'}), remote {remote_stored}; "
          f"during the outage, with {sent_then} sent: local {local_during_outage}, remote {remote_during_outage}")
    assert all(value >= sent_then for value in local_during_outage.values()), local_during_outage
    assert remote_during_outage["spans"] < sent_then and outage >= 30  # the remote really was away
    assert local == expected
    assert remote_stored == expected


def test_the_credentials_show_nowhere_docker_inspect_or_the_logs_can_read(forwarding):
    container = forwarding.container("otel-collector")
    logs = subprocess.run(["docker", "logs", container], capture_output=True, text=True, timeout=60)
    assert logs.returncode == 0 and "Everything is ready" in logs.stdout + logs.stderr
    assert SECRET not in logs.stdout + logs.stderr
    inspect = json.loads(subprocess.run(["docker", "inspect", container], capture_output=True, text=True,
                                        timeout=60, check=True).stdout)[0]
    assert SECRET not in json.dumps(inspect)  # not in the environment, command, labels, mounts...
    one_shot = forwarding.compose("ps", "-aq", "collector-data-owner").stdout.strip()  # exited: -a
    owner = json.loads(subprocess.run(["docker", "inspect", one_shot],
                                      capture_output=True, text=True, timeout=60, check=True).stdout)[0]
    assert SECRET not in json.dumps(owner)  # the one-shot that writes them gets them as a secret file
    written = subprocess.run(["docker", "run", "--rm", "-v", f"{forwarding.project}_collector-data:/v:ro",
                              "--entrypoint", "/bin/busybox", image("prometheus"),
                              "stat", "-c", "%a %u", "/v/forward-headers.yaml"],
                             capture_output=True, text=True, timeout=60)
    assert written.stdout.split() == ["400", "10001"], written.stdout + written.stderr  # the collector's alone
    printed = subprocess.run(["docker", "exec", container, "/otelcol-contrib", "print-config",
                              "--config=/etc/otelcol-contrib/config.yaml",
                              "--config=/etc/otelcol-contrib/forward/remote-only-false.yaml"],
                             capture_output=True, text=True, timeout=60)
    if printed.returncode == 0:  # the redacted view of the resolved config, where the image has the command
        assert "[REDACTED]" in printed.stdout and SECRET not in printed.stdout + printed.stderr


def test_forward_only_sends_every_signal_to_the_remote_alone(forwarding):
    forwarding.set_env(OBSLAB_FORWARD_ONLY="true")
    try:
        forwarding.compose("up", "-d", "--wait", "otel-collector")  # recreated: the command names the other file
        lab, remote = forwarding.lab, forwarding.remote
        eventually(lambda: requests.get(f"http://127.0.0.1:{lab.env['COLLECTOR_HEALTH_PORT']}", timeout=1).ok,
                   timeout=60, interval=0.2)
        service, count = f"forward-only-{uuid.uuid4().hex[:8]}", 500
        start = time.time_ns()
        for first in range(0, count, 100):
            assert post(lab.otlp_http, "traces", spans_request(service, first, 100), retry_for=60)
            assert post(lab.otlp_http, "logs", logs_request(service, first, 100), retry_for=60)
        assert post(lab.otlp_http, "metrics", counter_request(service, count, start), retry_for=60)
        expected = {"spans": count, "logs": count, "counter": count}
        remote_stored = settle(lambda: _remote(remote, service), lambda found: found == expected, timeout=120)
        time.sleep(16)  # a Prometheus scrape interval: the local backends had their chance
        local = _local(lab, service)
        print(f"{service}: forward-only, sent {count} spans, {count} log records, counter {count}; "
              f"remote {remote_stored}, local {local}")
        assert remote_stored == expected
        assert local == {"spans": 0, "logs": 0, "counter": -1}
    finally:
        forwarding.set_env(OBSLAB_FORWARD_ONLY="false")
        forwarding.compose("up", "-d", "--wait", "otel-collector")


@pytest.mark.parametrize("endpoint, only, file, ok", [
    ("", "false", "only-false.yaml", True),                       # the default: nothing added
    ("https://otlp.example.com/otlp", "false", "remote-only-false.yaml", True),
    ("https://otlp.example.com/otlp", "true", "remote-only-true.yaml", True),
    ("", "true", "only-true.yaml", False),                        # refused: forward-only, nowhere to send
])
def test_the_file_each_setting_selects_passes_otelcol_validate(tmp_path, endpoint, only, file, ok):
    """The compose file picks the file from the two settings; with the lab's config, the collector's
    own validate accepts the first three and refuses forward-only without an endpoint."""
    env_file = tmp_path / "lab.env"
    isolated_env(env_file, OBSLAB_FORWARD_OTLP_ENDPOINT=endpoint, OBSLAB_FORWARD_ONLY=only)
    rendered = subprocess.run(["docker", "compose", "-f", str(REPO / "docker-compose.observability.yml"),
                               "--env-file", str(env_file), "config", "--format", "json"],
                              capture_output=True, text=True, timeout=60)
    assert rendered.returncode == 0, rendered.stderr
    command = json.loads(rendered.stdout)["services"]["otel-collector"]["command"]
    assert command[-1] == f"--config=/etc/otelcol-contrib/forward/{file}"
    headers = tmp_path / "forward-headers.yaml"  # as collector-data-owner writes it on the collector's volume
    headers.write_text('{"Authorization": "Bearer x"}')
    headers.chmod(0o644)
    result = subprocess.run(["docker", "run", "--rm", "-v", f"{REPO}/otel-collector:/etc/otelcol-contrib:ro",
                             "-v", f"{headers}:/var/lib/otelcol/forward-headers.yaml:ro",
                             "-e", "SAMPLING_PERCENTAGE=100", "-e", "SLOW_TRACE_MS=1000", "-e", "DEFAULT_ENVIRONMENT=dev",
                             "-e", f"OBSLAB_FORWARD_OTLP_ENDPOINT={endpoint}",
                             image("otel-collector"), "validate", *command], capture_output=True, text=True, timeout=120)
    output = result.stdout + result.stderr
    assert (result.returncode == 0) == ok, output
    if not ok:
        assert "at least one endpoint must be specified" in output
