"""The real lab for end-to-end tests: the compose file unchanged, an isolated project name,
free host ports, torn down (volumes included) after the session.

The lab runs what this machine has. Where the official Tempo or Loki image is absent (no registry,
and they are AGPL, so never built here), the ingest witness (tests/ingest-witness/) answers in
their place and the tests read what it received; each such test's id ends in ``[ingest-witness]``.
Tests marked ``official_images(...)`` need those services themselves (their APIs, Grafana): where
an image is absent they are not run, and one summary line names the missing images.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
import urllib.parse
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import pytest
import requests
import yaml

from lab import COMPOSE_FILE, REPO, engine_compose_files, free_port, image, image_tool
from obslab.testing.lab import LabConfig, ObslabLab, isolated_config
from witness import Witness

_tool = image_tool()
MISSING = _tool.missing_services(COMPOSE_FILE)  # service -> official image the engine lacks
WITNESSED = bool({"tempo", "loki"} & MISSING.keys())
MODE = "ingest-witness" if WITNESSED else "tempo-loki"
WITNESS_COMPOSE_FILE = REPO / "tests/ingest-witness/docker-compose.yml"
# Test-only: Alertmanager reaches the alert tests' webhook receiver on the host.
ALERTING_COMPOSE_FILE = REPO / "tests/alerting/docker-compose.yml"
COMPOSE_FILES = [COMPOSE_FILE, *engine_compose_files(), ALERTING_COMPOSE_FILE,
                 *([WITNESS_COMPOSE_FILE] if WITNESSED else [])]
# Alert settings of the test lab (.env, read by prometheus/render-alerting.sh): the rules' `for:` and their
# evaluation shortened by the settings made for it (the rules unchanged), an LLM budget any demo run
# crosses, and the webhook the alert tests listen on.
ALERT_TEST_SETTINGS = {"OBSLAB_ALERT_FOR": "5s", "OBSLAB_RULE_EVALUATION_INTERVAL": "5s",
                       "OBSLAB_LLM_BUDGET_USD_PER_DAY": "0.001"}
# Where the witness runs, it answers as both tempo and loki: neither of them runs beside it.
STANDS_IN = {"tempo", "loki"} if WITNESSED else set()
SERVICES = tuple([name for name in _tool.compose_images(COMPOSE_FILE)
                  if name not in MISSING.keys() | STANDS_IN and name not in _tool.one_shot_services(COMPOSE_FILE)]
                 + (["ingest-witness"] if WITNESSED else []))


class Lab(ObslabLab):
    """Endpoints and helpers of one running lab: obslab's own ``obslab_lab`` (the pytest plugin's), with
    the examples and the export failures the suite sends."""

    def __init__(self, env_file: Path, env: dict[str, str], project: str) -> None:
        super().__init__(env_file, env, project, list(COMPOSE_FILES), witnessed=WITNESSED)

    def compose(self, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
        return compose(self.project, self.env_file, *args, timeout=timeout)

    def run_demo(self, service: str, requests_count: int = 12, interval: float = 0.05, fake_llm: str | None = None,
                 **env: str) -> list[dict]:
        """Run the travel-agent example against this lab; returns its per-request JSON lines. ``fake_llm``
        ("both", "openai", "anthropic") adds the real clients' calls to the local fake LLM server."""
        result = subprocess.run(
            [sys.executable, str(REPO / "examples/travel_agent/main.py"), "--requests", str(requests_count),
             "--interval", str(interval), "--service-name", service, *(["--fake-llm", fake_llm] if fake_llm else [])],
            capture_output=True, text=True, timeout=300, cwd=self.env_file.parent,
            env={"PATH": "/usr/bin:/bin", "OTLP_ENDPOINT": self.otlp, **env})
        assert result.returncode == 0, result.stderr
        return [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]

    def run_etl(self, service: str, runs: int = 3, interval: float = 1.0, **env: str) -> list[dict]:
        """Run the ETL example against this lab; returns its per-run JSON lines."""
        result = subprocess.run(
            [sys.executable, str(REPO / "examples/etl/main.py"), "--runs", str(runs), "--rows", "2000",
             "--interval", str(interval), "--service-name", service],
            capture_output=True, text=True, timeout=300, cwd=self.env_file.parent,
            env={"PATH": "/usr/bin:/bin", "OTLP_ENDPOINT": self.otlp, "OBSLAB_METRIC_EXPORT_INTERVAL": "2", **env})
        assert result.returncode == 0, result.stderr
        return [json.loads(line) for line in result.stdout.splitlines() if line.startswith('{"run"')]

    @contextlib.contextmanager
    def web_api(self, service: str, *args: str, **env: str) -> Iterator[str]:
        """Serve the FastAPI example against this lab (``args``: more of its options); yields its base URL."""
        port = free_port()
        process = subprocess.Popen(
            [sys.executable, str(REPO / "examples/web_api/app.py"), "--port", str(port), "--service-name", service,
             *args],
            cwd=self.env_file.parent, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
            env={"PATH": "/usr/bin:/bin", "OTLP_ENDPOINT": self.otlp, **env})
        url = f"http://127.0.0.1:{port}"
        try:
            eventually(lambda: requests.get(f"{url}/docs", timeout=1).ok, timeout=30, interval=0.2)
            yield url
        finally:
            process.terminate()
            process.wait(timeout=30)

    def trace(self, trace_id: str) -> dict | None:
        """Tempo's answer for one trace (OTLP JSON), None while it has none."""
        response = requests.get(f"{self.tempo}/api/traces/{trace_id}", timeout=5)
        return response.json() if response.status_code == 200 else None

    def backend(self, name: str) -> str:
        """The compose service receiving what ``name`` ("tempo", "loki") would: the witness here, where it stands in."""
        return "ingest-witness" if self.witness and name in ("tempo", "loki") else name

    def loki_query(self, query: str) -> list[dict]:
        params = {"query": query, "start": str(int((time.time() - 3600) * 1e9)), "limit": "1000"}
        response = requests.get(f"{self.loki}/loki/api/v1/query_range?{urllib.parse.urlencode(params)}", timeout=5)
        response.raise_for_status()
        return response.json()["data"]["result"]

    def promql(self, query: str) -> list[dict]:
        response = requests.get(f"{self.prometheus}/api/v1/query", params={"query": query}, timeout=5)
        response.raise_for_status()
        return response.json()["data"]["result"]

    def value(self, query: str, default: float | None = 0.0) -> float | None:
        """The first value a PromQL instant query returns, ``default`` when it returns nothing."""
        result = self.promql(query)
        return float(result[0]["value"][1]) if result else default

    def send_log_loki_refuses(self) -> None:
        """One log record eight days old, sent over OTLP/HTTP: the collector accepts it and Loki
        refuses it (older than its one-week reject_old_samples_max_age), a real export failure."""
        too_old = str(int((time.time() - 8 * 86400) * 1e9))
        body = {"resourceLogs": [{
            "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "obslab-too-old"}}]},
            "scopeLogs": [{"logRecords": [{"timeUnixNano": too_old,
                                            "body": {"stringValue": "a record older than Loki accepts"}}]}]}]}
        requests.post(f"{self.otlp_http}/v1/logs", json=body, timeout=5).raise_for_status()

    def send_metric_prometheus_refuses(self) -> None:
        """One delta counter, sent over OTLP/HTTP: the collector accepts it and Prometheus refuses it
        (its OTLP receiver takes cumulative sums only), a real export failure where Loki does not run."""
        point = {"asInt": "1", "startTimeUnixNano": str(time.time_ns() - 10**9), "timeUnixNano": str(time.time_ns())}
        body = {"resourceMetrics": [{
            "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "obslab-delta"}}]},
            "scopeMetrics": [{"metrics": [{"name": "obslab.delta", "sum": {
                "dataPoints": [point], "aggregationTemporality": 1, "isMonotonic": True}}]}]}]}
        requests.post(f"{self.otlp_http}/v1/metrics", json=body, timeout=5).raise_for_status()


def compose(project: str, env_file: Path, *args: str, timeout: float = 600,
            extra_files: tuple[Path, ...] = ()) -> subprocess.CompletedProcess:
    """``docker compose`` on the lab's compose files (and ``extra_files``), for one project and env
    file; fails on error."""
    files = [arg for path in [*COMPOSE_FILES, *extra_files] for arg in ("-f", str(path))]
    cmd = ["docker", "compose", *files, "-p", project, "--env-file", str(env_file), *args]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, f"{' '.join(cmd)}\n{result.stdout}\n{result.stderr}"
    return result


def eventually(check, timeout: float = 90.0, interval: float = 1.0):
    """Poll ``check`` until it returns something truthy; return that, or fail after ``timeout``."""
    deadline, last_error = time.monotonic() + timeout, None
    while time.monotonic() < deadline:
        try:
            value = check()
            if value:
                return value
        except (requests.RequestException, OSError, KeyError, ValueError) as exc:
            last_error = exc
        time.sleep(interval)
    pytest.fail(f"not true after {timeout:.0f} s (last error: {last_error})")


def settle(check, done, timeout: float = 120.0):
    """Poll ``check()`` until ``done(value)`` (data still arriving), then return the value, done or
    not after ``timeout``: the caller asserts on it, so a failure shows what was there."""
    deadline = time.monotonic() + timeout
    value = check()
    while not done(value) and time.monotonic() < deadline:
        time.sleep(2)
        value = check()
    return value


@dataclass
class Workload:
    """What the demo workload sent: the services' names and the agent's requests (with trace ids)."""

    agent: str
    etl: str
    requests: list[dict]


@pytest.fixture(scope="session")
def workload(lab) -> Workload:
    """The lab's demo workload, once per session, for the dashboards and Grafana's links.

    It also makes the rare conditions panels show happen: export failures at the collector (a log
    record Loki refuses, a metric Prometheus refuses); LLM
    calls of the real OpenAI and Anthropic clients (to the fake LLM server), failed ones and one of a
    model without a price among them.
    """
    lab.send_log_loki_refuses()
    lab.send_metric_prometheus_refuses()
    etl = f"panels-etl-{uuid.uuid4().hex[:8]}"
    lab.run_etl(etl, runs=4, interval=2.5)  # long enough for rate() to have two samples
    agent = f"panels-{uuid.uuid4().hex[:8]}"
    return Workload(agent, etl, lab.run_demo(agent, requests_count=25, interval=0.3, fake_llm="both"))


@pytest.fixture(scope="session")
def obslab_lab_config(tmp_path_factory) -> LabConfig:
    """The suite's lab for obslab's ``obslab_lab`` fixture: the compose file unchanged plus the alert
    tests' file, an isolated project, free ports, the alert test settings; the witness where it stands in."""
    webhook_port = free_port()
    config = isolated_config(tmp_path_factory.mktemp("lab"), extra_files=(ALERTING_COMPOSE_FILE,),
                             project=f"obslabtest{os.getpid()}", **ALERT_TEST_SETTINGS,
                             ALERT_WEBHOOK_PORT=str(webhook_port),
                             OBSLAB_ALERT_WEBHOOK_URL=f"http://host.docker.internal:{webhook_port}/obslab-alerts")
    assert config.compose_files == COMPOSE_FILES and config.services == list(SERVICES), config
    return config


@pytest.fixture(scope="session")
def lab_env_file(obslab_lab_config) -> Path:
    return obslab_lab_config.env_file


@pytest.fixture(scope="session")
def docker_compose_project_name(obslab_lab_config) -> str:
    return obslab_lab_config.project


@pytest.fixture(scope="session")
def witness(lab) -> Witness:
    """What the ingest witness received in Tempo's and Loki's place (its tests run only where it does)."""
    assert lab.witness, "the witness runs where the official Tempo or Loki image is absent"
    return lab.witness


@pytest.fixture(scope="session", params=[MODE])
def lab(request, obslab_lab) -> Lab:
    """The running lab (obslab's ``obslab_lab``, started by pytest-docker); its parameter, in every test
    id, says whether Tempo and Loki or the ingest witness received what the collector sent."""
    lab = Lab(obslab_lab.env_file, obslab_lab.env, obslab_lab.project)
    lab.up_seconds = obslab_lab.up_seconds
    request.config.stash[UP_SECONDS] = lab.up_seconds
    return lab


UP_SECONDS = pytest.StashKey[float]()
NOT_RUN = pytest.StashKey[int]()
ABSENT = pytest.StashKey[dict]()


# Names official_images() also takes besides services: the official image of a component set the
# lab's local stand-in lacks (it is built with the lab's own components only). Name -> (image, what
# `otelcol-contrib components` must list: kind -> any of these names, for each entry).
COMPONENT_SETS = {"otel-collector-contrib": (image("otel-collector"), {
    "exporters": ("load_balancing", "loadbalancing"), "processors": ("tail_sampling",)})}
# Names official_images() also takes for official images no compose service runs (the configs of
# scaling/ for the backends' scalable modes): absent where the engine lacks the image.
OTHER_IMAGES = {"tempo-3": "grafana/tempo:3.0.3"}


def _absent_component_sets(names: set[str]) -> dict[str, str]:
    """Of ``names``, the component sets whose image lacks a component, with a line saying which."""
    absent = {}
    for name in names & COMPONENT_SETS.keys():
        image_name, needed = COMPONENT_SETS[name]
        result = subprocess.run(["docker", "run", "--rm", image_name, "components"], capture_output=True, text=True,
                                timeout=120)
        listed = yaml.safe_load(result.stdout) if result.returncode == 0 else {}
        have = {kind: {c.get("name") for c in (listed or {}).get(kind) or []} for kind in needed}
        lacking = [names_[0] for kind, names_ in needed.items() if not have[kind] & set(names_)]
        if lacking:
            absent[name] = f"{image_name} with {', '.join(lacking)} (the local stand-in lacks them)"
    for name in names & OTHER_IMAGES.keys():
        if subprocess.run(["docker", "image", "inspect", OTHER_IMAGES[name]], capture_output=True).returncode:
            absent[name] = OTHER_IMAGES[name]
    return absent


def pytest_collection_modifyitems(config, items) -> None:
    """Tests marked ``official_images(service, ...)`` are not run where one of those services'
    official image is absent: deselected (never passed, never skipped), counted in the summary.
    A name of COMPONENT_SETS counts as absent where the image present lacks those components."""
    wanted = {name for item in items for marker in item.iter_markers("official_images") for name in marker.args}
    absent = {**MISSING, **_absent_component_sets(wanted)}
    config.stash[ABSENT] = absent
    kept, not_run, witness_only = [], [], []
    for item in items:
        marker = item.get_closest_marker("official_images")
        if marker and set(marker.args) & absent.keys():
            not_run.append(item)
        elif "witness" in getattr(item, "fixturenames", ()) and not WITNESSED:
            witness_only.append(item)  # Tempo and Loki run here: their own tests cover the same ground
        else:
            kept.append(item)
    if not_run or witness_only:
        config.hook.pytest_deselected(items=not_run + witness_only)
        items[:] = kept
        config.stash[NOT_RUN] = len(not_run)


def pytest_terminal_summary(terminalreporter, config) -> None:
    """The lab's start time (a figure, not a timed assertion), and what was not run here."""
    if UP_SECONDS in config.stash:
        terminalreporter.write_line(f"lab: {len(SERVICES)} services ({', '.join(SERVICES)}) healthy "
                                    f"{config.stash[UP_SECONDS]:.1f} s after `docker compose up` (images present)")
    if config.stash.get(NOT_RUN, 0):
        absent = ", ".join(f"{image} ({service})" for service, image in config.stash.get(ABSENT, MISSING).items())
        terminalreporter.write_line(f"NOT RUN: {config.stash[NOT_RUN]} tests need official images absent on this "
                                    f"machine: {absent}; tools/images/build_images.py says how to provide them")
