#!/usr/bin/env python3
"""The lab under load: throughput, loss, freshness, start time and memory, in one run.

Run: .venv/bin/python benchmarks/bench_lab.py [--duration 20] [--use-running ENV_FILE] [--json]
     .venv/bin/python benchmarks/bench_lab.py --compare REV [--duration 20] [--variant LABEL=PATH|REV ...]
         [--signals traces,logs] [--sampling-percentage N]

--compare REV: the collector's CPU per record, its config at git revision REV ("before") against the
working tree's otel-collector/config.yaml ("after"), in one isolated lab on the same collector image:
the collector is recreated with each config in turn and runs the traces and logs loads; per config and
signal it prints records accepted and stored (nothing lost when equal), the collector's CPU seconds
(its own otelcol_process_cpu_seconds, over the load and until its exporters had sent everything), CPU
seconds per million records, records per collector CPU second, and the top functions of a CPU profile
taken during the load from the pprof extension (:1777, read from inside the compose network).
--variant adds configs to the same run (a file, or config.yaml at a git revision); --signals picks the
loads; --sampling-percentage sets the collector's SAMPLING_PERCENTAGE for every config (below 100,
Tempo's endpoint gets the sampled share of the spans: "sampled" in place of "yes").

It measures what runs on this machine, chosen as the integration tests choose (tests/integration/conftest.py):
- Tempo and Loki mode, where the official grafana/tempo and grafana/loki images are present: the collector's
  traces and logs are counted where Tempo and Loki store them, as before.
- Ingest witness mode, where either image is absent (they are AGPL and never built here): the lab runs what
  it has (the collector, Prometheus) plus the tests' ingest witness (tests/ingest-witness/: the collector's own
  image answering on the compose network as `tempo` and `loki`, writing every request it receives to
  traces.jsonl / logs.jsonl in a folder of this run). The figures are then the collector's pipeline into
  Tempo's and Loki's endpoints and into the real Prometheus; they say nothing of Tempo's or Loki's own
  ingest rate or query latency, which need the official images. Every figure printed says which backend
  produced it ("stored by").

1. Builds OpenTelemetry's load generator telemetrygen from its published Go module, the version of the
   collector image in docker-compose.observability.yml (or, where the Go module proxy does not serve that
   version, the newest it serves below it, remembered in ~/.cache/obslab/telemetrygen/refused-v<version>:
   delete that file to try again), into ~/.cache/obslab/telemetrygen/v<version>/; later runs reuse the
   binary and need no network.
2. Starts an isolated lab (compose project obslabbench<pid>, free ports from tests/lab.py isolated_env,
   `up -d --wait` of the services whose images are present, plus the ingest witness in witness mode, timed
   until every service is healthy and the collector's (and the witness's) health port answers), or drives
   the lab of --use-running ENV_FILE (witness mode when that project runs an ingest-witness container, whose
   folder the env file names in WITNESS_DIR, as the tests' env file does). An isolated lab is always removed
   with `down -v`.
3. Runs one phase per load, each --duration seconds, with its own service names so that every backend
   count is exact: telemetrygen traces (2 workers, unthrottled); telemetrygen logs (two processes of one
   worker: Loki keeps one of two records with the same stream, timestamp and line, which two workers of
   one process can produce); metrics from two OTLP/HTTP generator processes of this script (many series,
   one point per series per round, so that no two points of a series share a millisecond: Prometheus
   refuses a whole request holding such a pair, and telemetrygen's metrics mode writes one series as
   fast as it can; --metrics-load telemetrygen runs it anyway); the obslab SDK in a subprocess
   emitting spans, logs and counter increments as fast as it can.
   During the first three phases, probes sent over OTLP/HTTP measure how long a record takes from emit
   to visible: a trace by id in Tempo, or its id in the witness's traces file; a line with a unique id in
   Loki, or in the witness's logs file (the witness flushes its files every 200 ms); a gauge with a unique
   value in Prometheus. docker stats is sampled all along, the collector's own metrics (:8888, read from
   inside the compose network) before and after each phase and every few seconds during it.
4. Prints, per phase: records generated, accepted by the collector, stored by the backend and which
   backend that is (Tempo: the spans its distributor received, tempo_distributor_spans_received_total,
   minus the spans its ingester discarded, tempo_discarded_spans_total, for the whole Tempo, not by service;
   Loki: count_over_time; ingest witness: the distinct records of the phase's services in its files, spans
   by span id, log records by service, timestamp and body, as Loki keeps one record of a stream per
   timestamp and line, with the records it got more than once beside; Prometheus: count_over_time of
   samples), whether accepted == stored, and the sustained rates (sent to the collector per second of load;
   stored per second from the phase's start until the collector's exporters had sent everything); records
   per second per collector core (accepted / the collector's CPU seconds from docker stats over the load and
   the drain); freshness p50/p99; start time; idle, peak and final memory per service. Then a verdict per
   target (PASS/MISS with the figure and the backend it comes from) and, where one is missed, what helps
   find the bottleneck: CPU per service per phase, exporter queue sizes, send and enqueue failures,
   receiver refusals, HTTP 429s seen by the collector, Loki's and Tempo's own discarded counters.

Exit status 0 when every target passes, 1 otherwise. With --use-running, "accepted" counts every record
the collector received during a phase, other senders' included; the stored counts stay this run's own
(but Tempo's, which counts every sender's spans).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import re
import resource
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
from lab import COMPOSE_FILE, engine_compose_files, free_port, image, image_tool, isolated_env  # noqa: E402

CACHE = Path(os.environ.get("OBSLAB_CACHE", Path.home() / ".cache" / "obslab"))
TELEMETRYGEN_MODULE = "github.com/open-telemetry/opentelemetry-collector-contrib/cmd/telemetrygen"
WITNESS = "ingest-witness"  # the tests' stand-in receiver for Tempo's and Loki's endpoints
WITNESS_COMPOSE_FILE = REPO / "tests/ingest-witness/docker-compose.yml"
GIB = 1024 ** 3

TARGET_SPANS_PER_S = 40_000
TARGET_LOGS_PER_S = 200_000
TARGET_FRESHNESS_P99_S = 2.0
TARGET_IDLE_BYTES = 1 * GIB
TARGET_SPANS_PER_CPU_S = 150_000  # --compare: records per collector CPU second, with nothing lost
TARGET_LOGS_PER_CPU_S = 500_000

# What each signal is called in the collector's own metrics (otelcol_receiver_accepted_<item>...).
ITEM = {"traces": "spans", "logs": "log_records", "metrics": "metric_points"}
TEMPO_RECEIVED = "tempo_distributor_spans_received_total"

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
class Mode:
    """What the lab runs here: Tempo and Loki, or the ingest witness at their endpoints."""

    witnessed: bool
    missing: dict[str, str]  # service -> official image the engine lacks
    services: list[str]      # compose services started: the lab's that run here, plus the witness

    @property
    def name(self) -> str:
        return "ingest-witness" if self.witnessed else "tempo-loki"

    @property
    def lab_services(self) -> list[str]:
        """The lab's own services that run here (the witness is a test instrument, not part of the lab)."""
        return [s for s in self.services if s != WITNESS]

    @property
    def files(self) -> list[Path]:
        return [COMPOSE_FILE, *engine_compose_files(), *([WITNESS_COMPOSE_FILE] if self.witnessed else [])]

    def stored_by(self, signal_name: str) -> str:
        if signal_name == "metrics":
            return "Prometheus"
        backend = {"traces": "Tempo", "logs": "Loki"}[signal_name]
        return f"ingest witness ({backend}'s endpoint)" if self.witnessed else backend


def lab_mode() -> Mode:
    """As the integration tests decide: where the official Tempo or Loki image is absent, the ingest
    witness answers as both `tempo` and `loki` (neither of them is started then, so that each name has
    one answer); every other service runs where its image is present."""
    tool = image_tool()
    missing = tool.missing_services(COMPOSE_FILE)
    for service in ("otel-collector", "prometheus"):
        if service in missing:
            raise SystemExit(f"{service}: {missing[service]} is absent; tools/images/build_images.py provides it")
    witnessed = bool({"tempo", "loki"} & missing.keys())
    once = tool.one_shot_services(COMPOSE_FILE)
    services = [name for name in tool.compose_images(COMPOSE_FILE)
                if name not in missing and name not in once and not (witnessed and name in ("tempo", "loki"))]
    return Mode(witnessed, missing, services + ([WITNESS] if witnessed else []))


@dataclass
class Lab:
    env: dict[str, str]
    project: str
    env_file: Path
    mode: Mode
    isolated: bool
    witness: WitnessFiles | None = None

    def url(self, port_var: str) -> str:
        return f"http://127.0.0.1:{self.env[port_var]}"

    @property
    def otlp_grpc(self) -> str:
        return f"127.0.0.1:{self.env['OTLP_GRPC_PORT']}"

    def compose(self, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
        files = [a for path in self.mode.files for a in ("-f", str(path))]
        return subprocess.run(["docker", "compose", *files, "-p", self.project, "--env-file", str(self.env_file),
                               *args], capture_output=True, text=True, timeout=timeout)

    def containers(self) -> dict[str, str]:
        """service -> container id, from the compose labels (works for any project)."""
        out = subprocess.run(["docker", "ps", "--filter", f"label=com.docker.compose.project={self.project}",
                              "--format", '{{.ID}}\t{{.Label "com.docker.compose.service"}}'],
                             capture_output=True, text=True, timeout=30).stdout
        return {svc: cid for cid, svc in (line.split("\t") for line in out.splitlines() if "\t" in line)}


def isolated_lab(workdir: Path, mode: Mode) -> Lab:
    """A lab of its own: compose project obslabbench<pid>, free ports, a random Grafana password, and in
    witness mode the witness's folder (writable by the collector image's user, 10001) and health port."""
    env_file = workdir / ".env"
    extra = {}
    if mode.witnessed:
        witness_dir = workdir / "witness"
        witness_dir.mkdir()
        witness_dir.chmod(0o777)
        extra = {"WITNESS_IMAGE": image("otel-collector"), "WITNESS_DIR": str(witness_dir),
                 "WITNESS_HEALTH_PORT": str(free_port())}
    env = isolated_env(env_file, **extra)
    return Lab(env, f"obslabbench{os.getpid()}", env_file, mode, isolated=True,
               witness=WitnessFiles(Path(env["WITNESS_DIR"])) if mode.witnessed else None)


def compose_up(lab: Lab) -> float:
    """`up -d --wait` of the services that run here; returns the seconds from `up` to every service
    healthy and the collector's (and the witness's) health port answering (the collector image has
    nothing to run a compose healthcheck with)."""
    say(f"starting an isolated lab (project {lab.project}, {', '.join(p.name for p in lab.mode.files)}; "
        f"services {', '.join(lab.mode.services)})")
    started = time.monotonic()
    result = lab.compose("up", "-d", "--wait", *lab.mode.services)
    if result.returncode != 0:
        raise RuntimeError(f"docker compose up failed:\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}")
    wait_for(lambda: requests.get(lab.url("COLLECTOR_HEALTH_PORT"), timeout=1).ok, 60, "collector health")
    if lab.mode.witnessed:
        wait_for(lambda: requests.get(lab.url("WITNESS_HEALTH_PORT"), timeout=1).ok, 60, "witness health")
    for name, port in (("tempo", "TEMPO_PORT"), ("loki", "LOKI_PORT")):  # Tempo has no healthcheck
        if name in lab.mode.services:
            wait_for(lambda port=port: requests.get(f"{lab.url(port)}/ready", timeout=1).ok, 120, f"{name} /ready")
    return time.monotonic() - started


def running_lab(env_file: Path, project: str) -> Lab:
    env = {k: v or "" for k, v in dotenv_values(env_file).items()}
    probe = Lab(env, project, env_file.resolve(), Mode(False, {}, []), isolated=False)
    running = probe.containers()
    if not running:
        raise SystemExit(f"no running containers of compose project {project!r} (see --project)")
    if WITNESS in running:
        if not env.get("WITNESS_DIR"):
            raise SystemExit(f"{project} runs an ingest witness, but {env_file} names no WITNESS_DIR to read it from")
        mode = Mode(True, {}, [s for s in running if s not in ("tempo", "loki", "collector-data-owner")])
    elif {"tempo", "loki"} <= running.keys():
        mode = Mode(False, {}, [s for s in running if s != "collector-data-owner"])
    else:
        raise SystemExit(f"{project} runs neither Tempo and Loki nor an ingest witness: nothing receives its "
                         "collector's traces and logs to count (the tests' env file and project run the witness)")
    lab = Lab(env, project, env_file.resolve(), mode, isolated=False,
              witness=WitnessFiles(Path(env["WITNESS_DIR"])) if mode.witnessed else None)
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
    collector image has no shell); Prometheus' and Grafana's images have one (Tempo's has none since 2.9.3)."""
    containers = lab.containers()
    for service, wget in (("prometheus", "wget"), ("grafana", "wget")):
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
    """Tempo's and Loki's own counters (their /metrics, published ports): the spans Tempo's distributor
    received, the records they refused themselves. None in witness mode: they do not run."""
    out: dict[str, float] = {}
    if lab.mode.witnessed:
        return out
    for port, name in (("LOKI_PORT", "loki_discarded_samples_total"), ("TEMPO_PORT", "tempo_discarded_spans_total"),
                       ("TEMPO_PORT", TEMPO_RECEIVED)):
        try:
            samples = parse_metrics(requests.get(f"{lab.url(port)}/metrics", timeout=5).text)
        except requests.RequestException:
            continue
        if name == TEMPO_RECEIVED:
            out[name] = metric_sum(samples, name.removesuffix("_total"))
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
    """Sends one probe about every ``interval`` s while the load runs; records emit -> queryable seconds
    (Tempo, Loki, Prometheus), or emit -> written to the witness's file (witness mode, traces and logs)."""

    def __init__(self, lab: Lab, signal_name: str, service: str, interval: float = 1.0, timeout: float = 30.0):
        super().__init__(daemon=True)
        self.lab, self.signal, self.service = lab, signal_name, service
        self.interval, self.timeout = interval, timeout
        self.stop = threading.Event()
        self.latencies: list[float] = []
        self.sent = 0
        self.lost = 0
        self.session = requests.Session()
        # In witness mode: what the witness's file for this signal gains from now on.
        self.watch = FileWatch(lab.witness.directory / f"{signal_name}.jsonl") \
            if lab.witness and signal_name in ("traces", "logs") else None

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
                (lambda: self.watch.seen(trace_id.encode())) if self.watch else
                (lambda: self.session.get(f"{self.lab.url('TEMPO_PORT')}/api/traces/{trace_id}", timeout=5).status_code == 200)),
            "logs": (
                {"resourceLogs": [{"resource": _resource(self.service), "scopeLogs": [{"logRecords": [{
                    "timeUnixNano": str(now_ns), "body": {"stringValue": f"bench probe {marker}"}}]}]}]},
                (lambda: self.watch.seen(marker.encode())) if self.watch else
                (lambda: bool(loki_query(self.lab, f'{{service_name="{self.service}"}} |= "{marker}"',
                                         start_ns=now_ns - 60 * 10**9, session=self.session, limit=1)))),
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


class FileWatch:
    """Whether a string appears in the complete lines a file gained since the watch began (the ingest
    witness writes one OTLP JSON request a line; a line still being written is read next time)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = path.stat().st_size if path.exists() else 0
        self.tail = b""

    def seen(self, needle: bytes) -> bool:
        if not self.path.exists():
            return False
        with self.path.open("rb") as file:
            file.seek(self.offset)
            data = file.read()
        self.offset += len(data)
        data = self.tail + data
        end = data.rfind(b"\n") + 1
        self.tail = data[end:]
        return needle in data[:end]


class WitnessFiles:
    """What the ingest witness wrote (traces.jsonl, logs.jsonl: OTLP JSON, one request a line), read as
    the files grow. Per service: the distinct records (spans by span id; log records by timestamp and
    body, within their service: what Loki keeps of a stream) and every record, duplicates included
    (a request the collector sent again after a time-out arrives twice)."""

    ITEMS = {"traces": ("resourceSpans", "scopeSpans", "spans"), "logs": ("resourceLogs", "scopeLogs", "logRecords")}

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._offset = {s: 0 for s in self.ITEMS}
        self._distinct: dict[str, dict[str, dict[str, set[int]]]] = {s: {} for s in self.ITEMS}
        self._received: dict[str, dict[str, int]] = {s: {} for s in self.ITEMS}
        self._lock = threading.Lock()

    def _read(self, signal_name: str) -> None:
        path = self.directory / f"{signal_name}.jsonl"
        if not path.exists():
            return
        resources_key, scopes_key, items_key = self.ITEMS[signal_name]
        distinct, received = self._distinct[signal_name], self._received[signal_name]
        with path.open("rb") as file:
            file.seek(self._offset[signal_name])
            for line in file:
                if not line.endswith(b"\n"):
                    break
                self._offset[signal_name] += len(line)
                for batch in json.loads(line).get(resources_key, []):
                    service = next((kv.get("value", {}).get("stringValue", "")
                                    for kv in batch.get("resource", {}).get("attributes", [])
                                    if kv.get("key") == "service.name"), "")
                    keys = distinct.setdefault(service, {})  # span ids, or body -> timestamps
                    count = 0
                    for scope in batch.get(scopes_key, []):
                        for item in scope.get(items_key, []):
                            if signal_name == "traces":
                                keys.setdefault("", set()).add(int(item.get("spanId") or "0", 16))
                            else:
                                body = item.get("body") or {}
                                text = body["stringValue"] if "stringValue" in body else json.dumps(body, sort_keys=True)
                                keys.setdefault(text, set()).add(int(item.get("timeUnixNano") or 0))
                            count += 1
                    received[service] = received.get(service, 0) + count

    def count(self, signal_name: str, prefix: str) -> tuple[int, int]:
        """(distinct records, records received) of the services whose name starts with ``prefix``."""
        with self._lock:
            self._read(signal_name)
            return (sum(len(keys) for s, by_body in self._distinct[signal_name].items() if s.startswith(prefix)
                        for keys in by_body.values()),
                    sum(n for s, n in self._received[signal_name].items() if s.startswith(prefix)))


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


def stored_count(lab: Lab, signal_name: str, prefix: str, since: float, baseline: dict[str, float]) -> tuple[int, int | None]:
    """(records stored, records received duplicates included, where known): in the ingest witness's files
    or Loki or Prometheus, those of the services named ``prefix``* (exact, by service name); in Tempo, the
    spans its distributor received since ``baseline`` (its counters before the phase), less those its
    ingester discarded (every reason but rate_limited, which refuses spans before they count as received)."""
    if lab.witness and signal_name in ("traces", "logs"):
        return lab.witness.count(signal_name, prefix)
    if signal_name == "traces":
        now = backend_metrics(lab)
        if TEMPO_RECEIVED not in now:
            raise ValueError("Tempo's /metrics did not answer")
        discarded = sum(v - baseline.get(k, 0) for k, v in now.items()
                        if k.startswith("tempo_discarded_spans_total") and "reason=rate_limited" not in k)
        return int(now[TEMPO_RECEIVED] - baseline.get(TEMPO_RECEIVED, 0) - discarded), None
    if signal_name == "logs":
        response = requests.get(f"{lab.url('LOKI_PORT')}/loki/api/v1/query", timeout=120, params={
            "query": f'sum(count_over_time({{service_name=~"{prefix}.*"}}[{_range(since)}]))'})
        response.raise_for_status()
        result = response.json()["data"]["result"]
    else:  # samples of the run's series, but target_info (one per resource and request) and the span
        # metrics the collector's span_metrics connector makes of the run's spans (traces_spanmetrics_*)
        result = promql(lab, f'sum(count_over_time({{job=~"(.+/)?{prefix}.*", __name__!~"target_info|traces_.*"}}[{_range(since)}]))')
    return (int(float(result[0]["value"][1])) if result else 0), None


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
    received: dict[str, int | None] = field(default_factory=dict)  # witness: records, duplicates included
    freshness: dict[str, dict] = field(default_factory=dict)
    counters: dict[str, float] = field(default_factory=dict)  # deltas of the diagnostic counters
    cores: dict[str, float] = field(default_factory=dict)  # service -> mean cores used, load and drain
    generator_cpu_s: float = 0.0  # CPU seconds of the load processes (telemetrygen, this script's)


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
    children_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    phase.start = time.time()
    finish_load = start_load()
    for prober in probers:
        prober.start()
    generated = finish_load()  # waits for the load to end (and reaps its processes)
    phase.load_end = time.time()
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    phase.generator_cpu_s = (children.ru_utime + children.ru_stime
                             - children_before.ru_utime - children_before.ru_stime)
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
        last, received, last_change = -1, None, time.monotonic()
        deadline = time.monotonic() + max(180, settle * 2)
        while time.monotonic() < deadline:
            try:
                count, received = stored_count(lab, s, f"{prefix}-{phase.name}", phase.start - 5, before_backends)
            except (requests.RequestException, KeyError, ValueError, IndexError) as exc:
                say(f"{s} count failed: {exc}")
                count = last
            if count != last:
                last, last_change = count, time.monotonic()
            if count >= phase.sent[s] or time.monotonic() - last_change > settle:
                break
            time.sleep(2)
        phase.stored[s] = max(last, 0)
        phase.received[s] = received
    return phase


# ---------------------------------------------------------------------------------------------
# Report


def rate(count: int, seconds: float) -> float:
    return count / seconds if seconds > 0 else 0.0


def phase_rows(phase: Phase, lab_mode_: Mode) -> list[dict]:
    rows = []
    window = phase.drained - phase.start
    collector_cpu_s = phase.cores.get("otel-collector", 0.0) * window  # CPU seconds over load and drain
    for s in phase.signals:
        load_s = phase.load_end - phase.start
        to_drained = max(window, load_s)
        received = phase.received.get(s)
        rows.append({
            "phase": phase.name, "signal": s, "generated": phase.generated.get(s),
            "accepted": phase.accepted[s], "refused": phase.refused[s], "export_failed": phase.failed[s],
            "stored": phase.stored[s], "equal": phase.accepted[s] == phase.stored[s],
            "stored_by": lab_mode_.stored_by(s),
            "received": received, "twice": None if received is None else received - phase.stored[s],
            "sent_per_s": rate(phase.accepted[s] + phase.refused[s], load_s),
            "stored_per_s": rate(phase.stored[s], to_drained), "load_s": load_s, "drain_s": phase.drained - phase.load_end,
            # the collector's CPU serves every signal of a phase: a per-core figure only for one-signal phases
            "collector_cores": phase.cores.get("otel-collector"),
            "per_core": rate(phase.accepted[s], collector_cpu_s) if len(phase.signals) == 1 and collector_cpu_s else None,
        })
    return rows


def fmt(value, digits: int = 0) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return f"{value:,}"


def lab_service_names() -> list[str]:
    """The lab's long-running services, as the compose file names them."""
    tool = image_tool()
    once = tool.one_shot_services(COMPOSE_FILE)
    return [name for name in tool.compose_images(COMPOSE_FILE) if name not in once]


def not_running(mode: Mode) -> dict[str, str]:
    """The lab's services that do not run in this benchmark, and why."""
    out = {}
    for service in lab_service_names():
        if service in mode.lab_services:
            continue
        if service in mode.missing:
            out[service] = f"{mode.missing[service]} absent"
        elif mode.witnessed and service in ("tempo", "loki"):
            out[service] = "the ingest witness answers in its place"
        else:
            out[service] = "not running in this project"
    return out


def verdicts(rows: list[dict], phases: list[Phase], idle: dict[str, float], mode: Mode) -> list[dict]:
    row = {(r["phase"], r["signal"]): r for r in rows}
    out = []
    stored = "received" if mode.witnessed else "stored"
    for key, target, what in ((("traces", "traces"), TARGET_SPANS_PER_S, "spans/s"),
                              (("logs", "logs"), TARGET_LOGS_PER_S, "log records/s")):
        r = row[key]
        lost = r["accepted"] - r["stored"]
        ok = r["stored_per_s"] >= target and lost == 0
        figure = (f"{r['stored_per_s']:,.0f} {what} {stored}; accepted {r['accepted']:,}, {stored} {r['stored']:,} "
                  f"(lost {lost:,}; refused at the receiver, the sender's to retry: {r['refused']:,}")
        if r["twice"] is not None:
            figure += f"; delivered more than once: {r['twice']:,}"
        figure += ")"
        if r["per_core"] is not None:
            figure += f"; {r['per_core']:,.0f} {what} per collector core"
        if mode.witnessed:
            backend = r["stored_by"].split("(")[1].split("'")[0]
            out.append((f">= {target:,} {what} delivered by the collector to {backend}'s endpoint (ingest witness), "
                        f"nothing lost", ok, figure + f"; says nothing of {backend}'s own ingest rate (official image absent)"))
        else:
            out.append((f">= {target:,} {what} stored by {r['stored_by']}, nothing lost", ok, figure))
    fresh = {s: f for p in phases for s, f in p.freshness.items()}
    for s in ("traces", "logs"):
        f = fresh.get(s, {})
        ok = f.get("p99") is not None and f["p99"] <= TARGET_FRESHNESS_P99_S and not f.get("not_found")
        figure = "no probe found" if f.get("p99") is None else f"p99 {f['p99']:.2f} s"
        figure += f" over {f.get('probes', 0)} probes, {f.get('not_found', 0)} not found in 30 s"
        backend = {"traces": "Tempo", "logs": "Loki"}[s]
        if mode.witnessed:
            out.append((f"{s} freshness p99 <= {TARGET_FRESHNESS_P99_S:g} s, emit -> written by the ingest witness "
                        f"({backend}'s endpoint)", ok,
                        figure + f"; {backend}'s own time to make a record queryable not included"))
        else:
            out.append((f"{backend} freshness p99 <= {TARGET_FRESHNESS_P99_S:g} s", ok, figure))
    services = mode.lab_services
    total = sum(idle.get(svc, 0) for svc in services)
    absent = not_running(mode)
    each = ", ".join(f"{svc} {idle[svc] / 2**20:,.0f}" for svc in services if svc in idle)
    figure = f"{total / 2**20:,.0f} MiB ({each})"
    if absent:
        figure += "; not running, not measured: " + ", ".join(f"{svc} ({why})" for svc, why in absent.items())
    if WITNESS in idle:
        figure += f"; the ingest witness, a test instrument, not counted: {idle[WITNESS] / 2**20:,.0f} MiB"
    name = "all five services idle <= 1 GiB" if not absent and len(services) == 5 else \
        f"the lab's services running here ({', '.join(services)}) idle <= 1 GiB"
    out.append((name, total <= TARGET_IDLE_BYTES and all(svc in idle for svc in services), figure))
    return [{"target": name, "pass": ok, "figure": figure} for name, ok, figure in out]


def print_report(report: dict) -> None:
    p = print
    p(f"\nobslab lab benchmark: telemetrygen v{report['telemetrygen']}, {report['duration']} s per phase, "
      f"{'isolated lab' if report['isolated'] else 'running lab ' + report['project']}")
    if report["mode"] == "ingest-witness":
        p("mode: ingest witness (as the tests choose it: the official Tempo or Loki image is absent here)")
        p(f"  running: {', '.join(report['services'])}; not running: "
          + ", ".join(f"{svc} ({why})" for svc, why in report["not_running"].items()))
        p("  traces and logs: what the collector delivered to Tempo's (tempo:4317, OTLP gRPC) and Loki's"
          "\n  (loki:3100/otlp/v1/logs) endpoints, counted in the files of the ingest witness answering there;"
          "\n  Tempo's and Loki's own ingest and query figures need their official images"
          "\n  metrics: stored by the real Prometheus")
    else:
        p(f"mode: Tempo and Loki (official images present); running: {', '.join(report['services'])}"
          + ("; not running: " + ", ".join(f"{svc} ({why})" for svc, why in report["not_running"].items())
             if report["not_running"] else ""))
    if not report["isolated"]:
        p("(a running lab: accepted counts whatever else the collector received during each phase)")
    if report.get("start_s") is not None:
        p(f"lab start: {report['start_s']:.1f} s from `docker compose up` to all services healthy "
          f"({', '.join(report['services'])})")
    p(f"\n{'phase':8} {'signal':8} {'generated':>11} {'accepted':>11} {'stored':>11} {'equal':>6} {'twice':>6} "
      f"{'sent/s':>10} {'stored/s':>10} {'drain s':>8}  stored by")
    for r in report["rows"]:
        p(f"{r['phase']:8} {r['signal']:8} {fmt(r['generated']):>11} {fmt(r['accepted']):>11} {fmt(r['stored']):>11} "
          f"{'sampled' if r['equal'] == 'sampled' else 'yes' if r['equal'] else 'NO':>7} {fmt(r['twice']):>6} {fmt(r['sent_per_s']):>10} "
          f"{fmt(r['stored_per_s']):>10} {r['drain_s']:8.1f}  {r['stored_by']}")
    p("(accepted: by the collector's receiver; stored: the distinct records in the ingest witness's files"
      "\n (spans by span id, log records by service, timestamp and body), Tempo's distributor's received spans"
      "\n minus those its ingester discarded, Loki count_over_time, Prometheus samples; twice: records the"
      "\n witness received more than once (a retried request), not counted in stored;"
      "\n sent/s: reaching the collector per second of load; stored/s: from the phase's start until the collector"
      "\n had sent everything; generated > accepted: dropped in the generator, e.g. a full span queue)")
    p(f"\n{'per collector core':18} {'signal':8} {'collector cores':>16} {'CPU s':>7} {'accepted/CPU s':>15}  "
      "other cores: services; load generators (during the load)")
    for name, diag in report["diagnostics"].items():
        rows = [r for r in report["rows"] if r["phase"] == name]
        cores = diag["cores"].get("otel-collector")
        window = rows[0]["load_s"] + rows[0]["drain_s"]
        others = ", ".join(f"{svc} {c:.2f}" for svc, c in diag["cores"].items() if svc != "otel-collector")
        generators = diag.get("generator_cores")
        p(f"{name:18} {rows[0]['signal'] if len(rows) == 1 else 'all':8} {fmt(cores, 2):>16} "
          f"{fmt(cores * window if cores is not None else None, 1):>7} "
          f"{fmt(rows[0]['per_core'] if len(rows) == 1 else None):>15}  {others}; {fmt(generators, 2)}")
    p("(cores: docker stats CPU %, mean of its samples over the load and the drain, / 100; accepted/CPU s:"
      "\n records per second per collector core, for one-signal phases; load generators: their processes' CPU"
      "\n time over the load, on the same cores)")
    p(f"\n{'freshness (emit -> visible)':52} {'p50 s':>7} {'p99 s':>7} {'probes':>7} {'not found':>10}")
    witnessed = report["mode"] == "ingest-witness"
    for s, name in (("traces", "ingest witness's file (Tempo's endpoint), trace id" if witnessed else "Tempo, trace by id"),
                    ("logs", "ingest witness's file (Loki's endpoint), line id" if witnessed else "Loki, line with an id"),
                    ("metrics", "Prometheus, unique gauge value")):
        f = report["freshness"].get(s)
        if f:
            p(f"{name:52} {fmt(f['p50'], 2):>7} {fmt(f['p99'], 2):>7} {f['probes']:>7} {f['not_found']:>10}")
    if witnessed:
        p("(the witness flushes its files every 200 ms)")
    p(f"\n{'memory MiB':16} {'idle':>7} {'peak':>7} {'end':>7}")
    for svc in report["services"]:
        m = report["memory"].get(svc, {})
        p(f"{svc:16} " + " ".join(f"{m[k] / 2**20:7.0f}" if m.get(k) is not None else f"{'-':>7}"
                                  for k in ("idle", "peak", "end")))
    lab_services = [svc for svc in report["services"] if svc != WITNESS]
    p(f"{'lab total':16} " + " ".join(
        f"{sum(report['memory'].get(svc, {}).get(k) or 0 for svc in lab_services) / 2**20:7.0f}"
        for k in ("idle", "peak", "end")) + ("   (without the ingest witness)" if witnessed else ""))
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


def diagnostics(phase: Phase, monitor: Monitor, services: list[str]) -> dict:
    samples = monitor.between(phase.start, phase.drained)
    cpu = {}
    for svc in services:
        values = [s.cpu[svc] for s in samples if svc in s.cpu]
        if values:
            cpu[svc] = (statistics.mean(values), max(values))
    peaks: dict[str, float] = {}
    for t, queues in monitor.queues:
        if phase.start <= t <= phase.drained:
            for exporter, size in queues.items():
                peaks[exporter] = max(peaks.get(exporter, 0), size)
    return {"cpu": cpu, "cores": {svc: a / 100 for svc, (a, _) in cpu.items()}, "queue_peak": peaks,
            "generator_cores": rate(phase.generator_cpu_s, phase.load_end - phase.start), "counters": phase.counters}


def memory(monitor: Monitor, idle_until: float, end_from: float, services: list[str]) -> dict[str, dict]:
    out = {}
    for svc in services:
        idle = [s.mem[svc] for s in monitor.stats if s.t <= idle_until and svc in s.mem]
        every = [s.mem[svc] for s in monitor.stats if svc in s.mem]
        end = [s.mem[svc] for s in monitor.stats if s.t >= end_from and svc in s.mem]
        out[svc] = {"idle": statistics.median(idle) if idle else None, "peak": max(every) if every else None,
                    "end": end[-1] if end else None}
    return out


# ---------------------------------------------------------------------------------------------


# ---------------------------------------------------------------------------------------------
# --compare: the collector's config at a git revision against the working tree's, CPU per record


def _config_at(rev: str) -> str:
    result = subprocess.run(["git", "-C", str(REPO), "show", f"{rev}:otel-collector/config.yaml"],
                            capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"--compare {rev}: {result.stderr.strip()}")
    return result.stdout


def use_collector_config(lab: Lab, workdir: Path, label: str, config_text: str, sampling: str | None = None) -> None:
    """Recreate the lab's collector with ``config_text`` mounted as its config (a compose overlay: same
    image, volumes, ports and environment, but SAMPLING_PERCENTAGE when ``sampling`` is given), and wait
    until it answers."""
    config = workdir / f"collector-{label}.yaml"
    config.write_text(config_text)
    overlay = workdir / f"compose-{label}.yml"
    service = {"volumes": [f"{config}:/etc/otelcol-contrib/config.yaml:ro"]}  # replaces that mount
    service["environment"] = {"SAMPLING_PERCENTAGE": sampling} if sampling else {}
    if label == "before":  # the Go runtime's defaults, as before the compose file set GOGC and GOMEMLIMIT
        service["environment"].update({"GOGC": "", "GOMEMLIMIT": ""})
    overlay.write_text(json.dumps({"services": {"otel-collector": service}}))  # JSON is YAML
    files = [a for path in [*lab.mode.files, overlay] for a in ("-f", str(path))]
    result = subprocess.run(["docker", "compose", *files, "-p", lab.project, "--env-file", str(lab.env_file),
                             "up", "-d", "--no-deps", "--wait", "otel-collector"], capture_output=True, text=True,
                            timeout=300)
    if result.returncode != 0:
        raise RuntimeError(f"collector with the {label} config did not start:\n{result.stderr[-2000:]}")
    wait_for(lambda: requests.get(lab.url("COLLECTOR_HEALTH_PORT"), timeout=1).ok, 60, "collector health")
    time.sleep(5)  # past its start-up work


class Profiler(threading.Thread):
    """One CPU profile of the collector (pprof extension, :1777 inside the compose network, fetched
    with wget from Prometheus' container), then ``go tool pprof -top`` of it: its top functions."""

    def __init__(self, lab: Lab, seconds: int, out: Path) -> None:
        super().__init__(daemon=True)
        self.lab, self.seconds, self.out, self.top = lab, seconds, out, []

    def run(self) -> None:
        container = self.lab.containers()["prometheus"]
        result = subprocess.run(["docker", "exec", container, "wget", "-q", "-O", "-",
                                 f"http://otel-collector:1777/debug/pprof/profile?seconds={self.seconds}"],
                                capture_output=True, timeout=self.seconds + 60)
        if result.returncode != 0 or not result.stdout:
            say(f"no profile: {result.stderr[-300:]!r}")
            return
        self.out.write_bytes(result.stdout)
        top = subprocess.run(["go", "tool", "pprof", "-top", "-nodecount=12", str(self.out)], capture_output=True,
                             text=True, timeout=120, env={**os.environ, "GOTOOLCHAIN": "local"})
        self.top = pprof_top(top.stdout)


def pprof_top(text: str) -> list[dict]:
    """The rows of ``go tool pprof -top``: flat flat% sum% cum cum% function -> flat %, cum %, function."""
    return [{"flat_pct": float(m.group(1)), "cum_pct": float(m.group(2)), "function": m.group(3).strip()}
            for m in re.finditer(r"^\s*\S+\s+([\d.]+)%\s+[\d.]+%\s+\S+\s+([\d.]+)%\s+(.+)$", text, re.M)]


def compare(args, workdir: Path) -> dict:
    """Before (the config at ``args.compare``) and after (the working tree's), each on the traces and the
    logs load, in one isolated lab; returns the rows of the comparison."""
    version = image("otel-collector").rpartition(":")[2]
    binary, tg_version = telemetrygen(version)
    lab = args._lab = isolated_lab(workdir, lab_mode())
    compose_up(lab)
    configs = {"before": _config_at(args.compare), "after": (REPO / "otel-collector/config.yaml").read_text()}
    for variant in args.variant:  # label=path or label=revision: more configs measured in the same run
        label, _, where = variant.partition("=")
        configs[label] = Path(where).read_text() if Path(where).is_file() else _config_at(where)
    loads = [load for load in (
        ("traces", [("traces", 2)], ["--child-spans", str(args.child_spans), "--batch-size", str(args.batch_size)]),
        ("logs", [(f"logs-w{i}", 1) for i in range(2)], ["--batch-size", str(args.batch_size)]))
        if load[0] in args.signals.split(",")]
    run_id = uuid.uuid4().hex[:8]
    rows = []
    for label, text in configs.items():
        use_collector_config(lab, workdir, label, text, args.sampling_percentage)
        for signal_name, processes, extra in loads:
            prefix = f"bench-{run_id}-{label}"
            services = [(f"{prefix}-{signal_name}-{name}", workers) for name, workers in processes]

            def start(signal_name=signal_name, services=services, extra=extra):
                procs = [start_telemetrygen(binary, signal_name, lab, svc, args.duration, workers, run_id, extra)
                         for svc, workers in services]
                per_record = 1 + args.child_spans if signal_name == "traces" else 1
                return lambda: {signal_name: sum(telemetrygen_generated(p, signal_name) for p in procs) * per_record}

            cpu_before = metric_sum(collector_metrics(lab), "otelcol_process_cpu_seconds")
            profiler = Profiler(lab, max(5, args.duration - 4), workdir / f"profile-{label}-{signal_name}.pb.gz")
            profiler.start()
            say(f"{label} config, {signal_name}: {args.duration} s of load, then counting")
            phase = run_phase(Phase(signal_name, [signal_name]), lab, start, {}, None, f"{prefix}-{signal_name}",
                              args.settle)
            cpu_s = metric_sum(collector_metrics(lab), "otelcol_process_cpu_seconds") - cpu_before
            profiler.join(timeout=120)
            accepted, stored = phase.accepted[signal_name], phase.stored[signal_name]
            rows.append({"config": label, "signal": signal_name, "generated": phase.generated.get(signal_name),
                         "accepted": accepted, "stored": stored, "equal": accepted == stored,
                         "load_s": phase.load_end - phase.start, "drain_s": phase.drained - phase.load_end,
                         "cpu_s": cpu_s, "cpu_s_per_million": cpu_s / (accepted / 1e6) if accepted else None,
                         "per_cpu_s": accepted / cpu_s if cpu_s else None, "top": profiler.top})
            say(f"  accepted {accepted:,}, stored {stored:,}, collector CPU {cpu_s:.1f} s "
                f"({rows[-1]['per_cpu_s'] or 0:,.0f} per CPU second)")
    sampled = args.sampling_percentage not in (None, "100")
    for row in rows:  # below 100, the spans stored are the sampled share: nothing lost is not measured
        row["equal"] = "sampled" if sampled and row["signal"] == "traces" else row["equal"]
    return {"compare": args.compare, "image": image("otel-collector"), "telemetrygen": tg_version,
            "duration": args.duration, "mode": lab.mode.name, "rows": rows, "sampling": args.sampling_percentage,
            "others": other_load()}


def other_load() -> str:
    """What else ran on this machine at the end of the run: the load average and the busiest processes."""
    top = subprocess.run(["ps", "-eo", "pcpu,comm", "--sort=-pcpu"], capture_output=True, text=True).stdout
    busiest = ", ".join(" ".join(line.split()[::-1]) for line in top.splitlines()[1:6])
    return f"load average {os.getloadavg()[0]:.2f} (1 min); busiest processes (CPU %): {busiest}"


def print_compare(report: dict) -> None:
    p = print
    p(f"collector {report['image']}, mode {report['mode']}, telemetrygen v{report['telemetrygen']}, "
      f"{report['duration']} s of load per signal; config before: otel-collector/config.yaml at {report['compare']}, "
      "after: the working tree's" + (f"; SAMPLING_PERCENTAGE={report['sampling']}" if report.get("sampling") else ""))
    p(f"\n{'config':12} {'signal':7} {'accepted':>11} {'stored':>11} {'equal':>7} {'CPU s':>7} "
      f"{'CPU s/million':>14} {'per CPU s':>10}")
    for r in report["rows"]:
        p(f"{r['config']:12} {r['signal']:7} {fmt(r['accepted']):>11} {fmt(r['stored']):>11} "
          f"{'sampled' if r['equal'] == 'sampled' else 'yes' if r['equal'] else 'NO':>7} {r['cpu_s']:7.1f} {fmt(r['cpu_s_per_million'], 2):>14} "
          f"{fmt(r['per_cpu_s']):>10}")
    for r in report["rows"]:
        p(f"\ntop functions, {r['config']} config, {r['signal']} (flat % of the profile's CPU samples, cum %):")
        for f in r["top"][:10]:
            p(f"  {f['flat_pct']:5.1f}% {f['cum_pct']:5.1f}%  {f['function']}")
    p(f"\nelse on this machine at the end: {report['others']}")


def bench(args, workdir: Path) -> dict:
    version = image("otel-collector").rpartition(":")[2]
    binary, tg_version = telemetrygen(version)
    start_s = None
    if args.use_running:
        lab = running_lab(Path(args.use_running), args.project)
    else:
        lab = args._lab = isolated_lab(workdir, lab_mode())  # known before `up`: removed even if `up` fails
        start_s = compose_up(lab)
    say(f"mode {lab.mode.name}: running {', '.join(lab.mode.services)}")
    if lab.env.get("SAMPLING_PERCENTAGE", "100") != "100":
        say(f"SAMPLING_PERCENTAGE={lab.env['SAMPLING_PERCENTAGE']}: {lab.mode.stored_by('traces')} gets fewer "
            "spans than accepted")
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

    services = lab.mode.services
    for name, signals, start in loads:
        say(f"phase {name}: {d} s of load, then counting")
        probes = {name: f"{prefix}-{name}-probe"} if name in ITEM else {}
        phase = run_phase(Phase(name, signals), lab, start, probes, monitor, prefix, args.settle)
        phase.cores = diagnostics(phase, monitor, services)["cores"]
        phases.append(phase)
        for r in phase_rows(phase, lab.mode):
            say(f"  {r['signal']}: accepted {r['accepted']:,}, stored {r['stored']:,} ({r['stored_by']}), "
                f"{r['stored_per_s']:,.0f}/s stored")
    end_from = time.time()
    time.sleep(5)
    monitor.stop.set()
    monitor.join(timeout=10)
    rows = [r for p in phases for r in phase_rows(p, lab.mode)]
    mem = memory(monitor, idle_until, end_from, services)
    idle = {svc: m["idle"] for svc, m in mem.items() if m["idle"] is not None}
    return {
        "telemetrygen": tg_version, "duration": d, "isolated": lab.isolated, "project": lab.project,
        "mode": lab.mode.name, "services": services, "not_running": not_running(lab.mode),
        "run_id": run_id, "start_s": start_s, "rows": rows,
        "freshness": {s: f for p in phases for s, f in p.freshness.items()},
        "memory": mem, "verdicts": verdicts(rows, phases, idle, lab.mode),
        "diagnostics": {p.name: diagnostics(p, monitor, services) for p in phases},
        "phases": [asdict(p) for p in phases],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=int, default=20, help="seconds of load per phase (default 20)")
    parser.add_argument("--use-running", metavar="ENV_FILE", help="drive the running lab whose ports this .env names")
    parser.add_argument("--project", default="obslab", help="compose project of --use-running (default obslab)")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of the tables")
    parser.add_argument("--compare", metavar="REV", help="the collector's config at git revision REV against the "
                                                         "working tree's: CPU per record and profiles (see above)")
    parser.add_argument("--variant", action="append", default=[], metavar="LABEL=PATH|REV",
                        help="--compare: one more collector config (a file, or config.yaml at a git revision) "
                             "measured in the same run (repeatable)")
    parser.add_argument("--sampling-percentage", metavar="N",
                        help="--compare: the collector's SAMPLING_PERCENTAGE for every config (default: .env's)")
    parser.add_argument("--signals", default="traces,logs", help="--compare: the loads run (default traces,logs)")
    parser.add_argument("--idle", type=float, default=10, help="seconds of idle memory sampling before the load")
    parser.add_argument("--settle", type=float, default=10,
                        help="seconds a backend count must stay unchanged before it is taken as final")
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
            report = compare(args, Path(workdir)) if args.compare else bench(args, Path(workdir))
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
    elif args.compare:
        print_compare(report)
    else:
        print_report(report)
    if args.compare:  # targets: per collector CPU second, with nothing lost
        after = {r["signal"]: r for r in report["rows"] if r["config"] == "after"}
        targets = {"traces": TARGET_SPANS_PER_CPU_S, "logs": TARGET_LOGS_PER_CPU_S}
        return 0 if all(r["equal"] for r in report["rows"]) and all(
            (row["per_cpu_s"] or 0) >= targets[signal] for signal, row in after.items()) else 1
    return 0 if all(v["pass"] for v in report["verdicts"]) else 1


if __name__ == "__main__":
    sys.exit(main())
