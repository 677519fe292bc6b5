"""``obslab_lab``: the lab for a test session, and helpers that wait until data arrives in it.

It uses a running lab (the one ``obslab lab up`` started) or starts one from the lab's files in an
isolated compose project with free host ports, through pytest-docker, and removes it (volumes
included) after the session. Where the official Tempo or Loki image is absent, the ingest witness
(the collector's own image writing what it receives to files) answers in their place, and the span
and log helpers read it.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import socket
import subprocess
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

from obslab.lab import engine
from obslab.lab.command import lab_values, read_record, user_dir
from obslab.lab.env import PORTS, read_env
from obslab.lab.files import COMPOSE_FILE, ENV_EXAMPLE, WITNESS_COMPOSE_FILE, lab_dir
from obslab.testing.witness import Witness, attributes


def free_port() -> int:
    """A TCP port nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class LabConfig:
    """Which lab ``obslab_lab`` uses: ``start`` it (``services`` from ``compose_files``), or the running one."""

    env_file: Path
    project: str
    compose_files: list[Path] = field(default_factory=list)
    services: list[str] = field(default_factory=list)
    start: bool = True
    witnessed: bool = False  # the ingest witness stands in for Tempo and Loki
    not_running: tuple[str, ...] = ()  # of a running lab: Tempo or Loki where their images are absent, with no witness


def missing_backends(compose_file: Path) -> dict[str, str]:
    """The lab's services whose official image the engine lacks (service -> image)."""
    return engine.missing_services(compose_file)


def isolated_values(**overrides: str) -> dict[str, str]:
    """``.env.example``'s values with free host ports, a random Grafana password and secret key and a
    network of its own (labs run in parallel), ``overrides`` on top."""
    values = read_env(lab_dir() / ENV_EXAMPLE)
    values.update({name: str(free_port()) for name in PORTS})
    values.update(GRAFANA_ADMIN_PASSWORD=secrets.token_urlsafe(16), GRAFANA_SECRET_KEY=secrets.token_urlsafe(32),
                  OBSLAB_NETWORK=f"obslabtest-{secrets.token_hex(4)}")
    values.update(overrides)
    return values


def isolated_config(directory: Path, extra_files: tuple[Path, ...] = (), project: str | None = None,
                    **overrides: str) -> LabConfig:
    """A lab of its own: ``.env.example`` with free host ports, a random Grafana password, a network
    and compose project of its own, written to ``directory``/.env (``overrides`` on top); the ingest
    witness added where Tempo or Loki is absent, writing to ``directory``/witness."""
    root = lab_dir()
    compose_file = root / COMPOSE_FILE
    missing = missing_backends(compose_file)
    witnessed = bool({"tempo", "loki"} & missing.keys())
    project = project or f"obslabtest{os.getpid()}"
    values = isolated_values(OBSLAB_NETWORK=f"{project}-net")
    if witnessed:
        witness_dir = directory / "witness"
        witness_dir.mkdir(parents=True, exist_ok=True)
        witness_dir.chmod(0o777)  # the witness runs as the collector image's user, 10001
        values.update(WITNESS_IMAGE=engine.compose_images(compose_file)["otel-collector"],
                      WITNESS_DIR=str(witness_dir), WITNESS_HEALTH_PORT=str(free_port()))
    values.update(overrides)
    env_file = directory / ".env"
    env_file.write_text("".join(f"{k}={v}\n" for k, v in values.items()))
    stands_in = {"tempo", "loki"} if witnessed else set()
    once = engine.one_shot_services(compose_file)
    services = [name for name in engine.compose_images(compose_file) if name not in missing.keys() | stands_in | once]
    files = [compose_file, *engine.engine_files(root), *extra_files, *([root / WITNESS_COMPOSE_FILE] if witnessed else [])]
    return LabConfig(env_file, project, files, services + (["ingest-witness"] if witnessed else []),
                     start=True, witnessed=witnessed)


def running_config() -> LabConfig | None:
    """The lab running now (started by ``obslab lab up``), or None."""
    record = read_record()
    project = record.get("project") or engine.project_name()
    running = engine.running_services(project) or set()
    if "otel-collector" not in running:
        return None
    env_file = Path(record.get("env_file") or user_dir() / ".env")
    witnessed = "ingest-witness" in running and bool(read_env(env_file).get("WITNESS_DIR"))
    return LabConfig(env_file, project, [lab_dir() / COMPOSE_FILE, *engine.engine_files(lab_dir())], start=False,
                     witnessed=witnessed,
                     not_running=() if witnessed else tuple(name for name in ("tempo", "loki") if name not in running))


def _get_json(url: str, timeout: float = 5.0) -> Any:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return json.loads(response.read() or b"null")


class ObslabLab:
    """Endpoints of one running lab and query helpers; the ``wait`` ones poll until data arrives."""

    def __init__(self, env_file: Path, env: dict[str, str], project: str, compose_files: list[Path] | None = None,
                 witnessed: bool = False, not_running: tuple[str, ...] = ()) -> None:
        self.env_file, self.env, self.project = env_file, env, project
        self.not_running = set(not_running)  # backends this lab lacks, with no witness in their place
        self.compose_files = compose_files or [lab_dir() / COMPOSE_FILE, *engine.engine_files(lab_dir())]
        host = engine.url_host(env.get("OBSLAB_BIND_ADDRESS"))
        self.tempo = f"http://{host}:{env['TEMPO_PORT']}"
        self.loki = f"http://{host}:{env['LOKI_PORT']}"
        self.prometheus = f"http://{host}:{env['PROMETHEUS_PORT']}"
        self.otlp = f"{host}:{env['OTLP_GRPC_PORT']}"  # OTLP gRPC, host:port (plain text)
        self.otlp_http = f"http://{host}:{env['OTLP_HTTP_PORT']}"
        self.grafana = f"http://{host}:{env['GRAFANA_PORT']}"
        self.alertmanager = f"http://{host}:{env['ALERTMANAGER_PORT']}"
        self.collector_health = f"http://{host}:{env['COLLECTOR_HEALTH_PORT']}"
        self.grafana_auth = (env.get("GRAFANA_ADMIN_USER", "admin"), env.get("GRAFANA_ADMIN_PASSWORD", ""))
        self.network = env.get("OBSLAB_NETWORK") or "obslab"
        self.up_seconds = 0.0
        # What reached Tempo's and Loki's endpoints, where the witness stands in for them.
        self.witness = Witness(Path(env["WITNESS_DIR"])) if witnessed else None

    def compose_command(self, *args: str) -> list[str]:
        """``docker compose`` on this lab's files, project and env file."""
        files = [arg for path in self.compose_files for arg in ("-f", str(path))]
        return ["docker", "compose", *files, "-p", self.project, "--env-file", str(self.env_file), *args]

    def compose(self, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
        result = subprocess.run(self.compose_command(*args), capture_output=True, text=True, timeout=timeout)
        assert result.returncode == 0, f"{' '.join(self.compose_command(*args))}\n{result.stdout}\n{result.stderr}"
        return result

    @property
    def sdk_environment(self) -> dict[str, str]:
        """The variables that point the obslab SDK (or any OpenTelemetry SDK) at this lab."""
        return {"OTLP_ENDPOINT": self.otlp, "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://{self.otlp}"}

    # --- Prometheus -----------------------------------------------------------------------------

    def promql(self, query: str) -> list[dict]:
        """A PromQL instant query's result now (possibly empty)."""
        params = urllib.parse.urlencode({"query": query})
        answer = _get_json(f"{self.prometheus}/api/v1/query?{params}")
        return answer["data"]["result"]

    def query(self, promql: str, timeout: float = 60.0, until: Callable[[list[dict]], bool] = bool) -> list[dict]:
        """A PromQL instant query, asked until its result satisfies ``until`` (not empty, by default)."""
        return wait(lambda: self.promql(promql), until, timeout, f"PromQL {promql}")

    def value(self, query: str, default: float | None = 0.0) -> float | None:
        """The first value a PromQL instant query returns now, ``default`` when it returns nothing."""
        result = self.promql(query)
        return float(result[0]["value"][1]) if result else default

    # --- traces ---------------------------------------------------------------------------------

    def trace(self, trace_id: str) -> dict | None:
        """Tempo's answer for one trace (OTLP JSON), None while it has none."""
        try:
            return _get_json(f"{self.tempo}/api/traces/{trace_id}")
        except Exception:  # 404 while Tempo has not got it
            return None

    def stored_spans(self, trace_id: str) -> list[dict]:
        """The spans of one trace as the trace backend got them (Tempo, or the witness where it stands
        in), flattened as the witness does: ``attributes`` a dict, ``resource`` and ``scope`` beside;
        de-duplicated by span id, as Tempo returns them."""
        if self.witness:
            spans = self.witness.trace(trace_id)
        else:
            spans = _flatten(self.trace(trace_id) or {})
        return list({span["spanId"]: span for span in spans}.values())

    def _service_spans(self, service: str) -> list[dict]:
        if self.witness:
            return self.witness.spans(service)
        params = urllib.parse.urlencode({"q": f'{{resource.service.name="{service}"}}', "limit": "1000",
                                         "start": str(int(time.time() - 3600)), "end": str(int(time.time() + 60))})
        found = _get_json(f"{self.tempo}/api/search?{params}").get("traces") or []
        spans = [span for hit in found for span in self.stored_spans(hit["traceID"])]
        return [span for span in spans if span["resource"].get("service.name") == service]

    def spans(self, service: str, count: int = 1, timeout: float = 60.0, name: str | None = None) -> list[dict]:
        """The spans of ``service`` (named ``name``) the trace backend received (Tempo where it runs,
        the ingest witness otherwise), once there are at least ``count``; flattened as :meth:`stored_spans`."""
        def found() -> list[dict]:
            return [span for span in self._service_spans(service) if name is None or span["name"] == name]

        self._backend_runs("tempo", "spans")

        return wait(found, lambda spans: len(spans) >= count, timeout,
                    f"{count} spans{f' named {name}' if name else ''} of {service}")

    # --- logs -----------------------------------------------------------------------------------

    def loki_query(self, query: str) -> list[dict]:
        """A LogQL range query over the last hour (Loki's streams)."""
        params = urllib.parse.urlencode({"query": query, "start": str(int((time.time() - 3600) * 1e9)),
                                         "limit": "1000"})
        return _get_json(f"{self.loki}/loki/api/v1/query_range?{params}")["data"]["result"]

    def _log_records(self, service: str) -> list[dict]:
        """``{"body", "trace_id", "span_id", "severity"}`` of each log record of ``service``."""
        if self.witness:
            return [{"body": str((r.get("body") or {}).get("stringValue", "")), "trace_id": r.get("traceId", ""),
                     "span_id": r.get("spanId", ""), "severity": r.get("severityText", "")}
                    for r in self.witness.logs(service)]
        records = []
        for stream in self.loki_query(f'{{service_name="{service}"}}'):
            labels = stream.get("stream", {})
            for entry in sorted(stream.get("values", [])):
                meta = entry[2] if len(entry) > 2 else {}
                meta = {**labels, **(meta.get("structuredMetadata", meta) if isinstance(meta, dict) else {})}
                records.append({"body": entry[1], "trace_id": meta.get("trace_id", ""),
                                "span_id": meta.get("span_id", ""),
                                "severity": meta.get("severity_text", meta.get("detected_level", ""))})
        return records

    def log_records(self, service: str, count: int = 1, timeout: float = 60.0) -> list[dict]:
        """The log records of ``service`` the log backend received (Loki where it runs, the witness
        otherwise), once there are at least ``count``: body, trace_id, span_id, severity."""
        self._backend_runs("loki", "log records")
        return wait(lambda: self._log_records(service), lambda records: len(records) >= count, timeout,
                    f"{count} log records of {service}")

    def logs(self, service: str, count: int = 1, timeout: float = 60.0) -> list[str]:
        """The log lines (bodies) of ``service``, once there are at least ``count``."""
        return [record["body"] for record in self.log_records(service, count, timeout)]

    def has_logs(self, service: str, trace_id: str | None = None, text: str | None = None) -> bool:
        """Whether the log backend got a record of ``service`` (in trace ``trace_id``, containing ``text``)
        now: asked of Loki, or of the witness where it stands in for Loki."""
        if self.witness:
            return any((trace_id is None or r["trace_id"] == trace_id) and (text is None or text in r["body"])
                       for r in self._log_records(service))
        query = f'{{service_name="{service}"}}' + (f' | trace_id="{trace_id}"' if trace_id else "")
        return bool(self.loki_query(query + (f" |= {json.dumps(text)}" if text else "")))


    def _backend_runs(self, backend: str, what: str) -> None:
        """Raise at once, naming the way out, where ``backend`` does not run in this lab and no witness stands in
        (instead of polling a port nothing listens on until the timeout)."""
        if backend in self.not_running:
            raise RuntimeError(f"{backend} does not run in the lab of compose project {self.project} (its image is "
                               f"absent) and no ingest witness stands in for it: its {what} cannot be read. Stop that "
                               "lab (obslab lab down) and obslab_lab starts one of its own with the witness, or "
                               "override obslab_lab_config with obslab.testing.lab.isolated_config(...)")


def _flatten(trace: dict) -> list[dict]:
    return [{**span, "attributes": attributes(span.get("attributes", [])),
             "resource": attributes(batch.get("resource", {}).get("attributes", [])),
             "scope": scope.get("scope", {}).get("name", "")}
            for batch in trace.get("batches", trace.get("resourceSpans", []))
            for scope in batch.get("scopeSpans", []) for span in scope.get("spans", [])]


def wait(check: Callable[[], Any], done: Callable[[Any], bool], timeout: float, what: str) -> Any:
    """Poll ``check()`` until ``done(value)``; return the value, or raise AssertionError showing the
    last one after ``timeout`` seconds."""
    deadline, value, error = time.monotonic() + timeout, None, None
    while True:
        try:
            value, error = check(), None
            if done(value):
                return value
        except Exception as exc:  # a backend not answering yet
            error = exc
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not there after {timeout:.0f} s "
                                 f"(last answer: {str(value)[:500] if error is None else error})")
        time.sleep(0.5)


@contextlib.contextmanager
def running_lab(config: LabConfig) -> Iterator[ObslabLab]:
    """The lab of ``config``: started (pytest-docker's compose up --wait, then the readiness of what
    compose cannot wait on) and removed afterwards, or the running one."""
    env = read_env(config.env_file) if config.start else lab_values(config.env_file)
    lab = ObslabLab(config.env_file, env, config.project, config.compose_files, config.witnessed, config.not_running)
    if not config.start:
        yield lab
        return
    try:
        from pytest_docker.plugin import get_docker_services
    except ImportError:  # pragma: no cover - the fixture names what to install
        raise RuntimeError("obslab_lab starts the lab with pytest-docker: pip install 'pytest-docker>=3'") from None
    started = time.monotonic()
    with get_docker_services("docker compose", [str(f) for f in config.compose_files], config.project,
                             [f"--env-file {config.env_file} up -d --wait {' '.join(config.services)}"],
                             [f"--env-file {config.env_file} down -v --remove-orphans"]):
        wait(lambda: urllib.request.urlopen(lab.collector_health, timeout=1).status == 200, bool, 60,
             "the collector's health check")
        if lab.witness:
            url = f"http://127.0.0.1:{env['WITNESS_HEALTH_PORT']}"
            wait(lambda: urllib.request.urlopen(url, timeout=1).status == 200, bool, 60, "the ingest witness")
        for name in {"tempo", "loki"} & set(config.services):  # Tempo has no healthcheck compose waits on
            url = f"{getattr(lab, name)}/ready"
            wait(lambda: urllib.request.urlopen(url, timeout=1).status == 200, bool, 120, f"{name}'s /ready")
        lab.up_seconds = time.monotonic() - started
        yield lab
