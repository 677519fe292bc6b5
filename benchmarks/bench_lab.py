#!/usr/bin/env python3
"""The lab under load: throughput, loss, freshness, start time and memory, in one run.

Run: .venv/bin/python benchmarks/bench_lab.py [--duration 20] [--use-running ENV_FILE] [--json]

1. Builds OpenTelemetry's load generator telemetrygen from its published Go module, the version of the
   collector image in docker-compose.observability.yml (or, where the Go module proxy does not serve that
   version, the newest it serves below it, remembered in ~/.cache/obslab/telemetrygen/refused-v<version>:
   delete that file to try again), into ~/.cache/obslab/telemetrygen/v<version>/; later runs reuse the
   binary and need no network.
2. Starts an isolated lab (compose project obslabbench<pid>, free ports from tests/lab.py isolated_env,
   `up -d --wait`, timed until every service is healthy and the collector's health port answers), or
   drives the lab of --use-running ENV_FILE. An isolated lab is always removed with `down -v`.
3. Runs one phase per load, each --duration seconds, with its own service names so that every backend
   count is exact: telemetrygen traces (2 workers, unthrottled); telemetrygen logs (two processes of one
   worker: Loki keeps one of two records with the same stream, timestamp and line, which two workers of
   one process can produce); metrics from two OTLP/HTTP generator processes of this script (many series,
   one point per series per round, so that no two points of a series share a millisecond: Prometheus
   refuses a whole request holding such a pair, and telemetrygen's metrics mode writes one series as
   fast as it can; --metrics-load telemetrygen runs it anyway); the obslab SDK in a subprocess
   emitting spans, logs and counter increments as fast as it can.
   During the first three phases, probes sent over OTLP/HTTP measure how long a record takes from emit
   to queryable: a trace by id in Tempo, a line with a unique id in Loki, a gauge with a unique value in
   Prometheus. docker stats is sampled all along, the collector's own metrics (:8888, read from inside
   the compose network) before and after each phase and every few seconds during it.
4. Prints, per phase: records generated, accepted by the collector, stored by the backend (Tempo: span
   metrics of its metrics-generator, traces_spanmetrics_calls_total, minus the spans its ingester
   discarded, tempo_discarded_spans_total; Loki: count_over_time; Prometheus:
   count_over_time of samples), whether accepted == stored, and the sustained rates (sent to the
   collector per second of load; stored per second from the phase's start until the collector's
   exporters had sent everything); freshness p50/p99; start time; idle, peak and final memory per
   service. Then a verdict per target (PASS/MISS with the figure) and, where one is missed, what helps
   find the bottleneck: CPU per service per phase, exporter queue sizes, send and enqueue failures,
   receiver refusals, HTTP 429s seen by the collector, Loki's and Tempo's own discarded counters.

Exit status 0 when every target passes, 1 otherwise. With --use-running, "accepted" counts every record
the collector received during a phase, other senders' included; the stored counts stay this run's own.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import re
import secrets
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path

import requests
from dotenv import dotenv_values

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))
from lab import compose_files, image, isolated_env  # noqa: E402

CACHE = Path(os.environ.get("OBSLAB_CACHE", Path.home() / ".cache" / "obslab"))
TELEMETRYGEN_MODULE = "github.com/open-telemetry/opentelemetry-collector-contrib/cmd/telemetrygen"
SERVICES = ("otel-collector", "tempo", "loki", "prometheus", "grafana")
GIB = 1024 ** 3

TARGET_SPANS_PER_S = 40_000
TARGET_LOGS_PER_S = 200_000
TARGET_FRESHNESS_P99_S = 2.0
TARGET_IDLE_BYTES = 1 * GIB

# What each signal is called in the collector's own metrics (otelcol_receiver_accepted_<item>...).
ITEM = {"traces": "spans", "logs": "log_records", "metrics": "metric_points"}

CHILDREN: list[subprocess.Popen] = []  # load generators still running, ended on any exit


def say(msg: str) -> None:
    print(f"[bench] {msg}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------
# telemetrygen, built from its Go module and cached by version


def _version_key(version: str) -> tuple[int, ...]:
    return tuple(int(x) for x in re.findall(r"\d+", version))


def _go(args: list[str], gobin: Path | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "GOFLAGS": "-mod=mod", "GOTOOLCHAIN": "local", "GOWORK": "off"}
    if gobin:
        env["GOBIN"] = str(gobin)
    with tempfile.TemporaryDirectory() as cwd:  # outside any go.mod
        return subprocess.run(["nice", "-n", "10", "go", *args], cwd=cwd, env=env, capture_output=True,
                              text=True, timeout=1800)


def telemetrygen(collector_version: str) -> tuple[Path, str]:
    """(binary, version): the collector's version, else the newest the Go module proxy serves below it."""
    root = CACHE / "telemetrygen"
    refused = root / f"refused-v{collector_version}"  # remembers a version the proxy does not serve
    version = refused.read_text().strip() if refused.exists() else collector_version
    binary = root / f"v{version}" / "telemetrygen"
    if binary.exists():
        return binary, version
    say(f"building telemetrygen v{version} from its Go module (once; cached in {binary.parent})")
    result = _go(["install", f"{TELEMETRYGEN_MODULE}@v{version}"], gobin=binary.parent)
    if result.returncode != 0 and "not available" in result.stderr + result.stdout:
        listed = _go(["list", "-m", "-versions", TELEMETRYGEN_MODULE]).stdout.split()[1:]
        older = [v.lstrip("v") for v in listed if _version_key(v) <= _version_key(collector_version)]
        if not older:
            raise SystemExit(f"the Go module proxy serves no telemetrygen <= v{collector_version}")
        version = max(older, key=_version_key)
        root.mkdir(parents=True, exist_ok=True)
        refused.write_text(version + "\n")
        say(f"telemetrygen v{collector_version} is not served by the Go module proxy: using v{version}")
        return telemetrygen(collector_version)
    if result.returncode != 0:
        raise SystemExit(f"go install telemetrygen@v{version} failed:\n{result.stderr[-3000:]}")
    return binary, version


# ---------------------------------------------------------------------------------------------
# The lab: an isolated compose project, or one already running


@dataclass
class Lab:
    env: dict[str, str]
    project: str
    env_file: Path
    files: list[Path]
    isolated: bool

    def url(self, port_var: str) -> str:
        return f"http://127.0.0.1:{self.env[port_var]}"

    @property
    def otlp_grpc(self) -> str:
        return f"127.0.0.1:{self.env['OTLP_GRPC_PORT']}"

    def compose(self, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
        files = [a for path in self.files for a in ("-f", str(path))]
        return subprocess.run(["docker", "compose", *files, "-p", self.project, "--env-file", str(self.env_file),
                               *args], capture_output=True, text=True, timeout=timeout)

    def containers(self) -> dict[str, str]:
        """service -> container id, from the compose labels (works for any project)."""
        out = subprocess.run(["docker", "ps", "--filter", f"label=com.docker.compose.project={self.project}",
                              "--format", '{{.ID}}\t{{.Label "com.docker.compose.service"}}'],
                             capture_output=True, text=True, timeout=30).stdout
        return {svc: cid for cid, svc in (line.split("\t") for line in out.splitlines() if "\t" in line)}


def isolated_lab(workdir: Path) -> Lab:
    """A lab of its own: compose project obslabbench<pid>, free ports, a random Grafana password."""
    env_file = workdir / ".env"
    return Lab(isolated_env(env_file), f"obslabbench{os.getpid()}", env_file, compose_files(), isolated=True)


def compose_up(lab: Lab) -> float:
    """`up -d --wait`; returns the seconds from `up` to every service healthy and the collector's
    health port answering (the collector image has nothing to run a compose healthcheck with)."""
    say(f"starting an isolated lab (project {lab.project}, {', '.join(p.name for p in lab.files)})")
    started = time.monotonic()
    result = lab.compose("up", "-d", "--wait")
    if result.returncode != 0:
        raise RuntimeError(f"docker compose up failed:\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}")
    wait_for(lambda: requests.get(lab.url("COLLECTOR_HEALTH_PORT"), timeout=1).ok, 60, "collector health")
    return time.monotonic() - started


def running_lab(env_file: Path, project: str) -> Lab:
    env = {k: v or "" for k, v in dotenv_values(env_file).items()}
    lab = Lab(env, project, env_file.resolve(), compose_files(), isolated=False)
    if not lab.containers():
        raise SystemExit(f"no running containers of compose project {project!r} (see --project)")
    wait_for(lambda: requests.get(lab.url("COLLECTOR_HEALTH_PORT"), timeout=1).ok, 30, "collector health")
    return lab


def wait_for(check, timeout: float, what: str, interval: float = 0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = check()
            if value:
                return value
        except (requests.RequestException, ValueError, KeyError):
            pass
        time.sleep(interval)
    raise RuntimeError(f"{what}: not ready after {timeout:.0f} s")


# ---------------------------------------------------------------------------------------------
# The collector's own metrics (:8888 inside the compose network)


def parse_metrics(text: str) -> list[tuple[str, dict[str, str], float]]:
    """Prometheus text format -> (name, labels, value)."""
    samples = []
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        match = re.match(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)", line)
        if match:
            labels = dict(re.findall(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"', match.group(3) or ""))
            try:
                samples.append((match.group(1), labels, float(match.group(4))))
            except ValueError:
                pass
    return samples


def collector_metrics(lab: Lab) -> list[tuple[str, dict[str, str], float]]:
    """Read http://otel-collector:8888/metrics with wget from a container on the same network (the
    collector image has no shell); Prometheus' and Grafana's images have one."""
    containers = lab.containers()
    for service, wget in (("prometheus", "wget"), ("grafana", "wget"), ("tempo", "/busybox/wget")):
        if service in containers:
            try:  # (busybox wget's -T crashes in these images: the subprocess timeout bounds it instead)
                result = subprocess.run(["docker", "exec", containers[service], wget, "-q", "-O", "-",
                                         "http://otel-collector:8888/metrics"], capture_output=True, text=True,
                                        timeout=20)
            except subprocess.TimeoutExpired:
                continue
            if result.returncode == 0 and result.stdout:
                return parse_metrics(result.stdout)
    raise RuntimeError("cannot read the collector's metrics from inside the compose network")


def metric_sum(samples, base: str, **labels: str) -> float:
    """Sum of every series named ``base`` (with or without the _total suffix) whose labels match."""
    names = {base, base + "_total"}
    return sum(v for n, lab, v in samples if n in names and all(lab.get(k) == x for k, x in labels.items()))


def by_label(samples, base: str, label: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for n, lab, v in samples:
        if n in (base, base + "_total"):
            out[lab.get(label, "")] = out.get(lab.get(label, ""), 0) + v
    return out


def refusals(samples) -> dict[str, float]:
    """Error answers the collector's exporters got from the backends (detailed telemetry level: client
    request duration histograms by status), e.g. HTTP 429 from Loki, gRPC RESOURCE_EXHAUSTED from Tempo.
    The exporters retry them; only what fails for good counts in otelcol_exporter_send_failed_*."""
    out: dict[str, float] = {}
    for n, labels, v in samples:
        if n.endswith("_count") and n.startswith(("http_client", "rpc_client")):
            code = labels.get("http_response_status_code") or labels.get("rpc_response_status_code") or \
                labels.get("rpc_grpc_status_code") or labels.get("error_type")
            if code and code not in ("OK", "0") and not code.startswith("2"):
                where = labels.get("server_address") or labels.get("rpc_method", "").split(".")[-1]
                key = f"{code} answers to the collector ({where})"
                out[key] = out.get(key, 0) + v
    return out


def backend_metrics(lab: Lab) -> dict[str, float]:
    """Records the backends refused themselves (their own /metrics, published ports)."""
    out = {}
    for port, name in (("LOKI_PORT", "loki_discarded_samples_total"), ("TEMPO_PORT", "tempo_discarded_spans_total"),
                       ("TEMPO_PORT", "tempo_metrics_generator_spans_discarded_total")):
        try:
            samples = parse_metrics(requests.get(f"{lab.url(port)}/metrics", timeout=5).text)
        except requests.RequestException:
            continue
        for reason, value in by_label(samples, name.removesuffix("_total"), "reason").items():
            out[f"{name}{{reason={reason}}}"] = value
    return out


# ---------------------------------------------------------------------------------------------
# Sampling during the run: docker stats, the collector's queue sizes


@dataclass
class Sample:
    t: float
    cpu: dict[str, float]  # service -> % of one core
    mem: dict[str, float]  # service -> bytes


def _bytes(text: str) -> float:
    match = re.match(r"([\d.]+)\s*([A-Za-z]*)", text.strip())
    number, unit = float(match.group(1)), match.group(2).lower()
    scale = {"b": 1, "kib": 1024, "mib": 1024 ** 2, "gib": GIB, "kb": 1e3, "mb": 1e6, "gb": 1e9}
    return number * scale.get(unit, 1)


def docker_stats(lab: Lab) -> Sample:
    ids = {cid: svc for svc, cid in lab.containers().items()}
    out = subprocess.run(["docker", "stats", "--no-stream", "--format", "{{.ID}}\t{{.CPUPerc}}\t{{.MemUsage}}",
                          *ids], capture_output=True, text=True, timeout=60).stdout
    sample = Sample(time.time(), {}, {})
    for line in out.splitlines():
        cid, cpu, mem = line.split("\t")
        service = next((s for c, s in ids.items() if c.startswith(cid) or cid.startswith(c)), cid)
        sample.cpu[service] = float(cpu.rstrip("%") or 0)
        sample.mem[service] = _bytes(mem.split("/")[0])
    return sample


class Monitor(threading.Thread):
    """docker stats all along (each call takes about 2 s), and the collector's exporter queue sizes."""

    def __init__(self, lab: Lab) -> None:
        super().__init__(daemon=True)
        self.lab, self.stop = lab, threading.Event()
        self.stats: list[Sample] = []
        self.queues: list[tuple[float, dict[str, float]]] = []

    def run(self) -> None:
        queue_reader = threading.Thread(target=self._queues, daemon=True)
        queue_reader.start()
        while not self.stop.is_set():
            try:
                self.stats.append(docker_stats(self.lab))
            except (subprocess.SubprocessError, ValueError, AttributeError):
                time.sleep(1)

    def _queues(self) -> None:
        while not self.stop.wait(3):
            try:
                samples = collector_metrics(self.lab)
                self.queues.append((time.time(), by_label(samples, "otelcol_exporter_queue_size", "exporter")))
            except (RuntimeError, subprocess.SubprocessError):
                pass

    def between(self, start: float, end: float) -> list[Sample]:
        return [s for s in self.stats if start <= s.t <= end]


# ---------------------------------------------------------------------------------------------
# Freshness probes: one record at a time, polled until queryable


def _ids() -> tuple[str, str]:
    return secrets.token_hex(16), secrets.token_hex(8)


def _resource(service: str) -> dict:
    return {"attributes": [{"key": "service.name", "value": {"stringValue": service}}]}


class Prober(threading.Thread):
    """Sends one probe about every ``interval`` s while the load runs; records emit -> queryable seconds."""

    def __init__(self, lab: Lab, signal_name: str, service: str, interval: float = 1.0, timeout: float = 30.0):
        super().__init__(daemon=True)
        self.lab, self.signal, self.service = lab, signal_name, service
        self.interval, self.timeout = interval, timeout
        self.stop = threading.Event()
        self.latencies: list[float] = []
        self.sent = 0
        self.lost = 0
        self.session = requests.Session()

    def run(self) -> None:
        while not self.stop.is_set():
            started = time.monotonic()
            try:
                latency = self.probe()
            except StopIteration:  # the phase ended before this probe was sent
                break
            except requests.RequestException:
                latency = None
            if latency is None:
                self.lost += 1
            else:
                self.latencies.append(latency)
            self.stop.wait(max(0.0, self.interval - (time.monotonic() - started)))

    def probe(self) -> float | None:
        now_ns, marker = time.time_ns(), uuid.uuid4().hex
        trace_id, span_id = _ids()
        value = self.sent + 1 + int(time.time())  # unique per probe and per run
        body, check = {
            "traces": (
                {"resourceSpans": [{"resource": _resource(self.service), "scopeSpans": [{"spans": [{
                    "traceId": trace_id, "spanId": span_id, "name": "bench-probe", "kind": 1,
                    "startTimeUnixNano": str(now_ns), "endTimeUnixNano": str(now_ns + 1000)}]}]}]},
                lambda: self.session.get(f"{self.lab.url('TEMPO_PORT')}/api/traces/{trace_id}", timeout=5).status_code == 200),
            "logs": (
                {"resourceLogs": [{"resource": _resource(self.service), "scopeLogs": [{"logRecords": [{
                    "timeUnixNano": str(now_ns), "body": {"stringValue": f"bench probe {marker}"}}]}]}]},
                lambda: bool(loki_query(self.lab, f'{{service_name="{self.service}"}} |= "{marker}"',
                                        start_ns=now_ns - 60 * 10**9, session=self.session, limit=1))),
            "metrics": (
                {"resourceMetrics": [{"resource": _resource(self.service), "scopeMetrics": [{"metrics": [{
                    "name": "obslabbench.probe", "gauge": {"dataPoints": [{
                        "timeUnixNano": str(now_ns), "asInt": str(value)}]}}]}]}]},
                lambda: any(float(r["value"][1]) == value for r in promql(
                    self.lab, f'obslabbench_probe{{job="{self.service}"}}', session=self.session))),
        }[self.signal]
        if self.stop.is_set():
            raise StopIteration
        emitted = time.monotonic()
        self.session.post(f"{self.lab.url('OTLP_HTTP_PORT')}/v1/{self.signal}", json=body, timeout=10).raise_for_status()
        self.sent += 1
        while time.monotonic() - emitted < self.timeout:
            try:
                if check():
                    return time.monotonic() - emitted
            except (requests.RequestException, KeyError, ValueError):
                pass
            time.sleep(0.05)
        return None


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)  # nearest rank
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


# ---------------------------------------------------------------------------------------------
# Backend queries and counts


def loki_query(lab: Lab, query: str, start_ns: int, session=requests, limit: int = 1) -> list:
    response = session.get(f"{lab.url('LOKI_PORT')}/loki/api/v1/query_range", timeout=10, params={
        "query": query, "start": str(start_ns), "end": str(time.time_ns() + 10**9), "limit": str(limit)})
    response.raise_for_status()
    return response.json()["data"]["result"]


def promql(lab: Lab, query: str, session=requests) -> list:
    response = session.get(f"{lab.url('PROMETHEUS_PORT')}/api/v1/query", params={"query": query}, timeout=30)
    response.raise_for_status()
    return response.json()["data"]["result"]


def _range(since: float) -> str:
    return f"{int(time.time() - since) + 60}s"


def stored_count(lab: Lab, signal_name: str, prefix: str, since: float) -> int:
    """Records of the services named ``prefix``* that the backend holds (exact, by service name)."""
    if signal_name == "traces":  # spans the metrics-generator saw, by service (counters are absolute)
        result = promql(lab, f'sum(traces_spanmetrics_calls_total{{service=~"{prefix}.*"}})')
    elif signal_name == "logs":
        response = requests.get(f"{lab.url('LOKI_PORT')}/loki/api/v1/query", timeout=120, params={
            "query": f'sum(count_over_time({{service_name=~"{prefix}.*"}}[{_range(since)}]))'})
        response.raise_for_status()
        result = response.json()["data"]["result"]
    else:  # samples of the run's series, but target_info (one per resource and request) and Tempo's
        result = promql(lab, f'sum(count_over_time({{job=~"(.+/)?{prefix}.*", __name__!~"target_info|traces_.*"}}[{_range(since)}]))')
    return int(float(result[0]["value"][1])) if result else 0


# ---------------------------------------------------------------------------------------------
# Load generators


def start_telemetrygen(binary: Path, signal_name: str, lab: Lab, service: str, duration: int, workers: int,
                       run_id: str, extra: list[str]) -> subprocess.Popen:
    cmd = [str(binary), signal_name, "--otlp-insecure", "--otlp-endpoint", lab.otlp_grpc,
           "--workers", str(workers), "--rate", "0", "--duration", f"{duration}s", "--service", service,
           "--otlp-attributes", f'obslab.bench.run="{run_id}"', *extra]
    process = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    CHILDREN.append(process)
    return process


def telemetrygen_generated(process: subprocess.Popen, signal_name: str) -> int:
    """Records a telemetrygen process generated, from its own log lines (one per worker)."""
    _, stderr = process.communicate(timeout=600)
    if process.returncode != 0:
        say(f"telemetrygen {signal_name} exited {process.returncode}: {stderr.strip().splitlines()[-1:]}")
    key = {"traces": "traces", "logs": "logs", "metrics": "metrics"}[signal_name]
    return sum(int(n) for n in re.findall(rf'{signal_name} generated.*?"{key}":\s*(\d+)', stderr))


def start_self(mode: str, result_file: Path, **options) -> subprocess.Popen:
    """This script in one of its load modes, in a subprocess (its own interpreter and GIL)."""
    cmd = [sys.executable, __file__, f"--_{mode}", "--_result", str(result_file)]
    for key, value in options.items():
        cmd += [f"--_{key.replace('_', '-')}", str(value)]
    process = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                               cwd=result_file.parent)  # an empty directory: no .env is read there
    CHILDREN.append(process)
    return process


def self_result(process: subprocess.Popen, result_file: Path) -> dict:
    _, stderr = process.communicate(timeout=900)
    if process.returncode != 0 or not result_file.exists():
        raise RuntimeError(f"load process failed ({process.returncode}):\n{stderr[-3000:]}")
    return json.loads(result_file.read_text())


def metrics_load(endpoint: str, service: str, worker: int, series: int, duration: float) -> dict:
    """OTLP/HTTP protobuf requests of ``series`` gauge points each, one per series, round after round,
    every round at a later millisecond: every point is a sample Prometheus can store."""
    from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest

    request = ExportMetricsServiceRequest()
    resource_metrics = request.resource_metrics.add()
    attribute = resource_metrics.resource.attributes.add()
    attribute.key, attribute.value.string_value = "service.name", service
    metric = resource_metrics.scope_metrics.add().metrics.add()
    metric.name = "obslabbench.load"
    points = []
    for k in range(series):
        point = metric.gauge.data_points.add()
        label = point.attributes.add()
        label.key, label.value.string_value = "series", f"{worker}-{k}"
        points.append(point)
    session = requests.Session()
    url = f"{endpoint}/v1/metrics"
    headers = {"Content-Type": "application/x-protobuf"}
    sent = failed = rounds = 0
    last_ms = 0
    deadline = time.monotonic() + duration
    while time.monotonic() < deadline:
        ms = max(time.time_ns() // 10**6, last_ms + 1)
        last_ms = ms
        for point in points:
            point.time_unix_nano = ms * 10**6
            point.as_int = rounds
        response = session.post(url, data=request.SerializeToString(), headers=headers, timeout=30)
        rounds += 1
        if response.ok:
            sent += series
        else:
            failed += series
    return {"points": sent, "failed": failed, "rounds": rounds}


def sdk_load(endpoint: str, service: str, duration: float) -> dict:
    """The obslab SDK as an application would use it, as fast as one Python thread goes."""
    os.environ.update({"OTEL_METRIC_EXPORT_INTERVAL": "1000", "OBSLAB_SHUTDOWN_TIMEOUT": "120"})
    from obslab import init_telemetry

    telemetry = init_telemetry(service_name=service, otlp_endpoint=endpoint)
    tracer, log = telemetry.get_tracer("obslab.bench"), telemetry.get_logger("obslab.bench")
    counter = telemetry.create_counter("obslabbench.sdk.operations", "Operations of the SDK load", "1")
    count = 0
    deadline = time.monotonic() + duration
    while time.monotonic() < deadline:
        with tracer.start_as_current_span("bench.operation"):
            log.info("bench line %d", count)  # a distinct line each time: Loki never merges two
            counter.add(1, {"series": str(count % 100)})
        count += 1
    telemetry.shutdown()
    return {"spans": count, "logs": count, "adds": count}


# ---------------------------------------------------------------------------------------------
# A phase: one load, counted at the collector and in the backend


@dataclass
class Phase:
    name: str
    signals: list[str]
    start: float = 0.0
    load_end: float = 0.0
    drained: float = 0.0
    generated: dict[str, int | None] = field(default_factory=dict)
    accepted: dict[str, int] = field(default_factory=dict)
    refused: dict[str, int] = field(default_factory=dict)
    sent: dict[str, int] = field(default_factory=dict)
    failed: dict[str, int] = field(default_factory=dict)
    stored: dict[str, int] = field(default_factory=dict)
    freshness: dict[str, dict] = field(default_factory=dict)
    counters: dict[str, float] = field(default_factory=dict)  # deltas of the diagnostic counters


def _collector_counts(samples, signal_name: str) -> dict[str, float]:
    item = ITEM[signal_name]
    return {
        "accepted": metric_sum(samples, f"otelcol_receiver_accepted_{item}"),
        "refused": metric_sum(samples, f"otelcol_receiver_refused_{item}")
        + metric_sum(samples, f"otelcol_receiver_failed_{item}"),
        "sent": metric_sum(samples, f"otelcol_exporter_sent_{item}"),
        "failed": metric_sum(samples, f"otelcol_exporter_send_failed_{item}")
        + metric_sum(samples, f"otelcol_exporter_enqueue_failed_{item}"),
    }


def _diagnostics(samples) -> dict[str, float]:
    out = {}
    for base in ("otelcol_exporter_send_failed", "otelcol_exporter_enqueue_failed", "otelcol_receiver_refused"):
        for n, labels, v in samples:
            if n.startswith(base):
                key = f"{n.removesuffix('_total')}{{{labels.get('exporter') or labels.get('receiver', '')}}}"
                out[key] = out.get(key, 0) + v
    out.update(refusals(samples))
    return out


def run_phase(phase: Phase, lab: Lab, start_load, probe_services: dict[str, str], monitor: Monitor,
              prefix: str, settle: float) -> Phase:
    before = collector_metrics(lab)
    before_backends = backend_metrics(lab)
    probers = [Prober(lab, s, svc) for s, svc in probe_services.items()]
    phase.start = time.time()
    finish_load = start_load()
    for prober in probers:
        prober.start()
    generated = finish_load()  # waits for the load to end
    phase.load_end = time.time()
    for prober in probers:  # no new probe; the one in flight may still be waiting for its record
        prober.stop.set()
    phase.generated = generated

    # Drained: every record the collector accepted has left its exporters (sent or failed).
    deadline = time.monotonic() + 180
    while True:
        after = collector_metrics(lab)
        done = True
        for s in phase.signals:
            b, a = _collector_counts(before, s), _collector_counts(after, s)
            delta = {k: int(a[k] - b[k]) for k in a}
            phase.accepted[s], phase.refused[s] = delta["accepted"], delta["refused"]
            phase.sent[s], phase.failed[s] = delta["sent"], delta["failed"]
            done &= delta["sent"] + delta["failed"] >= delta["accepted"]
        if done or time.monotonic() > deadline:
            break
        time.sleep(1)
    phase.drained = time.time()
    for prober in probers:
        prober.join()
        phase.freshness[prober.signal] = {
            "probes": prober.sent, "not_found": prober.lost,
            "p50": percentile(prober.latencies, 50), "p99": percentile(prober.latencies, 99)}
        # probes are records of the phase too (their services share its prefix)
        phase.generated[prober.signal] = (phase.generated.get(prober.signal) or 0) + prober.sent
    diag_before, diag_after = _diagnostics(before), _diagnostics(after)
    phase.counters = {k: v - diag_before.get(k, 0) for k, v in diag_after.items() if v - diag_before.get(k, 0)}
    backends_after = backend_metrics(lab)
    phase.counters.update({k: v - before_backends.get(k, 0) for k, v in backends_after.items()
                           if v - before_backends.get(k, 0)})

    # Stored: poll each backend until it holds what was sent, or its count stops moving.
    for s in phase.signals:
        wait = settle * (4 if s == "traces" else 1)  # span metrics reach Prometheus every 15 s
        last, last_change, deadline = -1, time.monotonic(), time.monotonic() + max(180, wait * 2)
        while time.monotonic() < deadline:
            try:
                count = stored_count(lab, s, f"{prefix}-{phase.name}", phase.start - 5)
            except (requests.RequestException, KeyError, ValueError, IndexError) as exc:
                say(f"{s} count failed: {exc}")
                count = last
            if count != last:
                last, last_change = count, time.monotonic()
            if count >= phase.sent[s] or time.monotonic() - last_change > wait:
                break
            time.sleep(2)
        phase.stored[s] = max(last, 0)
    if "traces" in phase.signals:
        # Span metrics count what Tempo's distributor received; spans its ingester then dropped (live
        # traces or trace size limits: every reason but rate_limited, which refuses them before) are not stored.
        # Spans the metrics-generator skipped (arriving more than its 30 s slack after they ended) are
        # stored all the same, uncounted by the span metrics.
        phase.stored["traces"] = max(0, phase.stored["traces"] - int(sum(
            v for k, v in phase.counters.items()
            if k.startswith("tempo_discarded_spans_total") and "reason=rate_limited" not in k)) + int(sum(
            v for k, v in phase.counters.items() if k.startswith("tempo_metrics_generator_spans_discarded_total"))))
    return phase


# ---------------------------------------------------------------------------------------------
# Report


def rate(count: int, seconds: float) -> float:
    return count / seconds if seconds > 0 else 0.0


def phase_rows(phase: Phase, duration: int) -> list[dict]:
    rows = []
    for s in phase.signals:
        load_s = phase.load_end - phase.start
        to_drained = max(phase.drained - phase.start, load_s)
        rows.append({
            "phase": phase.name, "signal": s, "generated": phase.generated.get(s),
            "accepted": phase.accepted[s], "refused": phase.refused[s], "export_failed": phase.failed[s],
            "stored": phase.stored[s], "equal": phase.accepted[s] == phase.stored[s],
            "sent_per_s": rate(phase.accepted[s] + phase.refused[s], load_s),
            "stored_per_s": rate(phase.stored[s], to_drained), "load_s": load_s, "drain_s": phase.drained - phase.load_end,
        })
    return rows


def fmt(value, digits: int = 0) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return f"{value:,}"


def verdicts(rows: list[dict], phases: list[Phase], idle: dict[str, float]) -> list[dict]:
    row = {(r["phase"], r["signal"]): r for r in rows}
    out = []
    for key, target, what in ((("traces", "traces"), TARGET_SPANS_PER_S, "spans/s"),
                              (("logs", "logs"), TARGET_LOGS_PER_S, "log records/s")):
        r = row[key]
        lost = r["accepted"] - r["stored"]
        ok = r["stored_per_s"] >= target and lost == 0
        out.append((f">= {target:,} {what} stored, nothing lost", ok,
                    f"{r['stored_per_s']:,.0f} {what} stored; accepted {r['accepted']:,}, stored {r['stored']:,} "
                    f"(lost {lost:,}; refused at the receiver, the sender's to retry: {r['refused']:,})"))
    fresh = {s: f for p in phases for s, f in p.freshness.items()}
    for s, name in (("traces", "Tempo"), ("logs", "Loki")):
        f = fresh.get(s, {})
        ok = f.get("p99") is not None and f["p99"] <= TARGET_FRESHNESS_P99_S and not f.get("not_found")
        figure = "no probe found" if f.get("p99") is None else f"p99 {f['p99']:.2f} s"
        out.append((f"{name} freshness p99 <= {TARGET_FRESHNESS_P99_S:g} s", ok,
                    f"{figure} over {f.get('probes', 0)} probes, {f.get('not_found', 0)} not found in 30 s"))
    total = sum(idle.values())
    out.append(("all five services idle <= 1 GiB", total <= TARGET_IDLE_BYTES and len(idle) == len(SERVICES),
                f"{total / 2**20:,.0f} MiB ({len(idle)} services measured)"))
    return [{"target": name, "pass": ok, "figure": figure} for name, ok, figure in out]


def print_report(report: dict) -> None:
    p = print
    p(f"\nobslab lab benchmark: telemetrygen v{report['telemetrygen']}, {report['duration']} s per phase, "
      f"{'isolated lab' if report['isolated'] else 'running lab ' + report['project']}")
    if not report["isolated"]:
        p("(a running lab: accepted counts whatever else the collector received during each phase)")
    if report.get("start_s") is not None:
        p(f"lab start: {report['start_s']:.1f} s from `docker compose up` to all services healthy")
    p(f"\n{'phase':8} {'signal':8} {'generated':>11} {'accepted':>11} {'stored':>11} {'equal':>6} "
      f"{'sent/s':>10} {'stored/s':>10} {'drain s':>8}")
    for r in report["rows"]:
        p(f"{r['phase']:8} {r['signal']:8} {fmt(r['generated']):>11} {fmt(r['accepted']):>11} {fmt(r['stored']):>11} "
          f"{'yes' if r['equal'] else 'NO':>6} {fmt(r['sent_per_s']):>10} {fmt(r['stored_per_s']):>10} "
          f"{r['drain_s']:8.1f}")
    p("(accepted: by the collector's receiver; stored: Tempo span metrics minus the spans Tempo's ingester"
      "\n discarded, Loki count_over_time, Prometheus samples;"
      "\n sent/s: reaching the collector per second of load; stored/s: from the phase's start until the collector"
      "\n had sent everything; generated > accepted: dropped in the generator, e.g. a full span queue)")
    p(f"\n{'freshness (emit -> queryable)':30} {'p50 s':>7} {'p99 s':>7} {'probes':>7} {'not found':>10}")
    for s, name in (("traces", "Tempo, trace by id"), ("logs", "Loki, line with an id"),
                    ("metrics", "Prometheus, unique gauge value")):
        f = report["freshness"].get(s)
        if f:
            p(f"{name:30} {fmt(f['p50'], 2):>7} {fmt(f['p99'], 2):>7} {f['probes']:>7} {f['not_found']:>10}")
    p(f"\n{'memory MiB':16} {'idle':>7} {'peak':>7} {'end':>7}")
    for svc in SERVICES:
        m = report["memory"].get(svc, {})
        p(f"{svc:16} " + " ".join(f"{m[k] / 2**20:7.0f}" if m.get(k) is not None else f"{'-':>7}"
                                  for k in ("idle", "peak", "end")))
    p(f"{'total':16} " + " ".join(
        f"{sum(m.get(k) or 0 for m in report['memory'].values()) / 2**20:7.0f}" for k in ("idle", "peak", "end")))
    p("\nverdict")
    for v in report["verdicts"]:
        p(f"  {'PASS' if v['pass'] else 'MISS'}  {v['target']}: {v['figure']}")
    if not all(v["pass"] for v in report["verdicts"]):
        p("\nwhere to look (per phase: CPU % of one core, average / peak, from docker stats; then the changes of"
          "\n the collector's and the backends' counters: refusals counted there may have been retried since)")
        for name, diag in report["diagnostics"].items():
            cpu = "  ".join(f"{svc} {a:.0f}/{m:.0f}" for svc, (a, m) in diag["cpu"].items())
            p(f"  {name:8} cpu: {cpu}")
            if diag["queue_peak"]:
                p(f"  {'':8} exporter queue size, peak: "
                  + ", ".join(f"{e} {v:,.0f}" for e, v in diag["queue_peak"].items()))
            for key, value in diag["counters"].items():
                p(f"  {'':8} {key}: {value:,.0f}")


def diagnostics(phase: Phase, monitor: Monitor) -> dict:
    samples = monitor.between(phase.start, phase.drained)
    cpu = {}
    for svc in SERVICES:
        values = [s.cpu[svc] for s in samples if svc in s.cpu]
        if values:
            cpu[svc] = (statistics.mean(values), max(values))
    peaks: dict[str, float] = {}
    for t, queues in monitor.queues:
        if phase.start <= t <= phase.drained:
            for exporter, size in queues.items():
                peaks[exporter] = max(peaks.get(exporter, 0), size)
    return {"cpu": cpu, "queue_peak": peaks, "counters": phase.counters}


def memory(monitor: Monitor, idle_until: float, end_from: float) -> dict[str, dict]:
    out = {}
    for svc in SERVICES:
        idle = [s.mem[svc] for s in monitor.stats if s.t <= idle_until and svc in s.mem]
        every = [s.mem[svc] for s in monitor.stats if svc in s.mem]
        end = [s.mem[svc] for s in monitor.stats if s.t >= end_from and svc in s.mem]
        out[svc] = {"idle": statistics.median(idle) if idle else None, "peak": max(every) if every else None,
                    "end": end[-1] if end else None}
    return out


# ---------------------------------------------------------------------------------------------


def bench(args, workdir: Path) -> dict:
    version = image("otel-collector").rpartition(":")[2]
    binary, tg_version = telemetrygen(version)
    start_s = None
    if args.use_running:
        lab = running_lab(Path(args.use_running), args.project)
    else:
        lab = args._lab = isolated_lab(workdir)  # known before `up`: removed even if `up` fails
        start_s = compose_up(lab)
    if lab.env.get("SAMPLING_PERCENTAGE", "100") != "100":
        say(f"SAMPLING_PERCENTAGE={lab.env['SAMPLING_PERCENTAGE']}: Tempo stores fewer spans than accepted")
    monitor = Monitor(lab)
    monitor.start()
    say(f"lab up{f' in {start_s:.1f} s' if start_s else ''}; measuring idle memory for {args.idle} s")
    time.sleep(args.idle)
    idle_until = time.time()
    run_id = uuid.uuid4().hex[:8]
    prefix = f"bench-{run_id}"
    d = args.duration
    loads_dir = workdir / "load"
    loads_dir.mkdir()
    phases: list[Phase] = []

    def telemetrygen_load(signal_name: str, processes: list[tuple[str, int]], extra: list[str]):
        def start():
            procs = [start_telemetrygen(binary, signal_name, lab, svc, d, workers, run_id, extra)
                     for svc, workers in processes]
            per_record = 1 + args.child_spans if signal_name == "traces" else 1
            return lambda: {signal_name: sum(telemetrygen_generated(p, signal_name) for p in procs) * per_record}
        return start

    def self_load(mode: str, runs: list[dict], collect):
        def start():
            procs = [(start_self(mode, loads_dir / f"{mode}-{i}.json", **options), loads_dir / f"{mode}-{i}.json")
                     for i, options in enumerate(runs)]
            return lambda: collect([self_result(p, f) for p, f in procs])
        return start

    batch = ["--batch-size", str(args.batch_size)]
    loads = [
        ("traces", ["traces"], telemetrygen_load("traces", [(f"{prefix}-traces", 2)],
                                                 ["--child-spans", str(args.child_spans), *batch])),
        ("logs", ["logs"], telemetrygen_load("logs", [(f"{prefix}-logs-w{i}", 1) for i in range(2)], batch)),
    ]
    if args.metrics_load == "telemetrygen":
        loads.append(("metrics", ["metrics"], telemetrygen_load(
            "metrics", [(f"{prefix}-metrics", 2)], ["--metric-type", "Gauge", "--otlp-metric-name", "obslabbench.tg", *batch])))
    else:
        loads.append(("metrics", ["metrics"], self_load(
            "metrics-load", [{"endpoint": lab.url("OTLP_HTTP_PORT"), "service": f"{prefix}-metrics-w{i}", "worker": i,
                              "series": args.series, "duration": d} for i in range(2)],
            lambda results: {"metrics": sum(r["points"] for r in results)})))
    loads.append(("sdk", ["traces", "logs", "metrics"], self_load(
        "sdk-load", [{"endpoint": lab.otlp_grpc, "service": f"{prefix}-sdk", "duration": d}],
        lambda results: {"traces": results[0]["spans"], "logs": results[0]["logs"], "metrics": None})))

    for name, signals, start in loads:
        say(f"phase {name}: {d} s of load, then counting")
        probes = {name: f"{prefix}-{name}-probe"} if name in ITEM else {}
        phase = run_phase(Phase(name, signals), lab, start, probes, monitor, prefix, args.settle)
        phases.append(phase)
        for r in phase_rows(phase, d):
            say(f"  {r['signal']}: accepted {r['accepted']:,}, stored {r['stored']:,}, "
                f"{r['stored_per_s']:,.0f}/s stored")
    end_from = time.time()
    time.sleep(5)
    monitor.stop.set()
    monitor.join(timeout=10)
    rows = [r for p in phases for r in phase_rows(p, d)]
    mem = memory(monitor, idle_until, end_from)
    idle = {svc: m["idle"] for svc, m in mem.items() if m["idle"] is not None}
    return {
        "telemetrygen": tg_version, "duration": d, "isolated": lab.isolated, "project": lab.project,
        "run_id": run_id, "start_s": start_s, "rows": rows,
        "freshness": {s: f for p in phases for s, f in p.freshness.items()},
        "memory": mem, "verdicts": verdicts(rows, phases, idle),
        "diagnostics": {p.name: diagnostics(p, monitor) for p in phases},
        "phases": [asdict(p) for p in phases],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=int, default=20, help="seconds of load per phase (default 20)")
    parser.add_argument("--use-running", metavar="ENV_FILE", help="drive the running lab whose ports this .env names")
    parser.add_argument("--project", default="obslab", help="compose project of --use-running (default obslab)")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of the tables")
    parser.add_argument("--idle", type=float, default=10, help="seconds of idle memory sampling before the load")
    parser.add_argument("--settle", type=float, default=10,
                        help="seconds a backend count must stay unchanged before it is taken as final (x4 for Tempo)")
    parser.add_argument("--child-spans", type=int, default=1, help="telemetrygen child spans per trace (default 1)")
    parser.add_argument("--batch-size", type=int, default=4000,
                        help="telemetrygen records per export (default 4000; its own default, 100, makes the "
                             "generator the bottleneck: one export round trip per 100 records per worker; "
                             "1000 brought 22k spans/s to the collector, 4000 brings 36k)")
    parser.add_argument("--series", type=int, default=2000, help="series per metrics generator (2 generators)")
    parser.add_argument("--metrics-load", choices=("otlp", "telemetrygen"), default="otlp",
                        help="metrics from this script's OTLP generator (default) or telemetrygen (one series)")
    for hidden in ("metrics-load", "sdk-load"):
        parser.add_argument(f"--_{hidden}", action="store_true", help=argparse.SUPPRESS)
    for hidden in ("result", "endpoint", "service", "worker", "series", "duration"):
        parser.add_argument(f"--_{hidden}", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args._metrics_load or args._sdk_load:  # a load process started by this script
        if args._metrics_load:
            result = metrics_load(args._endpoint, args._service, int(args._worker), int(args._series),
                                  float(args._duration))
        else:
            result = sdk_load(args._endpoint, args._service, float(args._duration))
        Path(args._result).write_text(json.dumps(result))
        return 0

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # so that `finally` removes the lab
    args._lab = None
    with tempfile.TemporaryDirectory(prefix="obslab-bench-") as workdir:
        try:
            report = bench(args, Path(workdir))
        finally:
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            for child in CHILDREN:
                if child.poll() is None:
                    child.kill()
            if args._lab is not None:
                say(f"removing the lab (docker compose -p {args._lab.project} down -v)")
                result = args._lab.compose("down", "-v", "--remove-orphans")
                if result.returncode != 0:
                    say(f"down failed: {result.stderr[-1000:]}")
    if args.json:
        print(json.dumps(report, indent=2, default=str))
    else:
        print_report(report)
    return 0 if all(v["pass"] for v in report["verdicts"]) else 1


if __name__ == "__main__":
    sys.exit(main())
