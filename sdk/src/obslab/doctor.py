"""``obslab doctor``: send a probe trace, log and metric through the collector and follow each hop.

Prints one row per hop with the seconds it took to become visible, and returns non-zero naming
the first hop that failed and its likely cause. A hop through a service that does not run on this
machine (``not_running``: Tempo, Loki or Grafana where their official images are absent) is
reported as "not running here", which is not a failure. Endpoints come from the environment or ``.env``
(the lab's port variables); defaults are the lab's default ports on 127.0.0.1. The Grafana hop
asks Grafana itself for the probe through each of its datasources, logging in with the
``GRAFANA_ADMIN_USER`` / ``GRAFANA_ADMIN_PASSWORD`` of ``.env``.

After the hops it lists the alerts firing now, asked of Alertmanager (``ALERTMANAGER_PORT``): severity,
name, since when, and each alert's summary, which names the service or component. Alerts inform, they
do not fail the doctor.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from dataclasses import dataclass
from typing import Callable

from dotenv import dotenv_values, find_dotenv

from obslab.telemetry import Telemetry
from obslab.config import load_settings

_DEFAULT_PORTS = {"OTLP_GRPC_PORT": "4317", "COLLECTOR_HEALTH_PORT": "13133", "TEMPO_PORT": "3200",
                  "LOKI_PORT": "3100", "PROMETHEUS_PORT": "9090", "GRAFANA_PORT": "3000",
                  "ALERTMANAGER_PORT": "9093"}
_SEVERITIES = ("critical", "warning", "info")


@dataclass
class Hop:
    name: str
    check: Callable[[], bool]
    cause: str


def _get_json(url: str, timeout: float = 3.0) -> dict | None:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return json.loads(response.read() or b"null")
    except Exception:  # any failure means "not visible yet"
        return None


class _Refused(Exception):
    """A definite answer that waiting will not change (asking again could lock the login)."""


def _grafana_has_data(url: str, user: str, password: str, query: dict) -> bool:
    """Whether Grafana's ``/api/ds/query`` returns at least one frame with values for ``query``.

    Raises ``_Refused`` when Grafana refuses the login: Grafana locks a user out for minutes after
    a few failed logins, so a wrong password is reported at once, not retried.
    """
    body = json.dumps({"from": "now-15m", "to": "now", "queries": [{"refId": "probe", **query}]}).encode()
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    request = urllib.request.Request(f"{url}/api/ds/query", data=body, method="POST", headers={
        "Content-Type": "application/json", "Authorization": f"Basic {token}"})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            frames = json.loads(response.read())["results"]["probe"].get("frames") or []
    except urllib.error.HTTPError as exc:
        if exc.code in (401, 403):
            raise _Refused(f"Grafana refused the login of {user!r} ({exc.code})") from None
        return False
    except Exception:  # any other failure means "not visible yet"
        return False
    return any(values for frame in frames for values in frame.get("data", {}).get("values", []))


def firing_alerts(alertmanager: str, not_running: tuple[str, ...] = ()) -> list[str]:
    """The lines that show the alerts firing now in the Alertmanager at ``alertmanager`` (its v2 API;
    silenced and inhibited ones left out), most severe first. An alert about a service that does not run
    here (a scrape target of Tempo or Loki where their images are absent) says so."""
    query = urllib.parse.urlencode({"active": "true", "silenced": "false", "inhibited": "false"})
    alerts = _get_json(f"{alertmanager}/api/v2/alerts?{query}")
    if alerts is None:
        return [f"alerts: Alertmanager {alertmanager} does not answer, the firing alerts cannot be shown"]
    alerts = [a for a in alerts if (a.get("status") or {}).get("state", "active") == "active"]
    if not alerts:
        return [f"alerts: none firing (Alertmanager {alertmanager})"]

    def rank(alert: dict) -> tuple:
        severity = alert["labels"].get("severity", "")
        order = _SEVERITIES.index(severity) if severity in _SEVERITIES else len(_SEVERITIES)
        return order, alert["labels"].get("alertname", ""), alert.get("startsAt", "")

    lines = [f"alerts: {len(alerts)} firing (Alertmanager {alertmanager})"]
    for alert in sorted(alerts, key=rank):
        labels = alert["labels"]
        summary = " ".join((alert.get("annotations") or {}).get("summary", "").split())
        if not summary:  # an alert from elsewhere: its labels say what it is about
            summary = ", ".join(f"{k}={v}" for k, v in sorted(labels.items()) if k not in ("alertname", "severity"))
        here = " (not running here)" if {labels.get("job"), labels.get("service")} & set(not_running) else ""
        since = alert.get("startsAt", "")[11:19]
        lines.append(f"  {labels.get('severity', '-'):9}{labels.get('alertname', '?'):30} since {since or '?'} UTC  "
                     f"{summary}{here}")
    return lines


def _lab_env() -> dict[str, str]:
    """The lab's ports and login: the ``.env`` of this directory (or above) where it names the lab's ports (a
    clone's), else the env file ``obslab lab up`` used; the environment wins. (An app's own ``.env``, where
    ``--service`` runs, names no lab port: it must not hide the lab's.)"""
    from obslab.lab.command import read_record

    here = find_dotenv(usecwd=True)
    recorded = read_record().get("env_file", "")
    if here and _DEFAULT_PORTS.keys() & dotenv_values(here).keys() or not (recorded and os.path.isfile(recorded)):
        path = here
    else:
        path = recorded
    values = {**_DEFAULT_PORTS, **{k: v for k, v in (dotenv_values(path) if path else {}).items() if v}}
    names = [*values, "OBSLAB_BIND_ADDRESS", "GRAFANA_ADMIN_USER", "GRAFANA_ADMIN_PASSWORD"]
    values.update({k: os.environ[k] for k in names if os.environ.get(k)})
    return values


def _wait_for(hop: Hop, telemetry: Telemetry, started: float, timeout: float) -> tuple[bool, str]:
    """Poll one hop until it sees the probe; (visible, cause of failure)."""
    try:
        while not hop.check():
            if time.monotonic() - started > timeout:
                return False, hop.cause
            telemetry.force_flush(1)
            time.sleep(0.5)
    except _Refused as exc:
        return False, f"{exc}: {hop.cause}"
    return True, ""


# The lab's services as compose names them, and the doctor's name of each hop through them
_LAB_SERVICES = {"otel-collector": "collector", "tempo": "tempo", "loki": "loki", "prometheus": "prometheus",
                 "alertmanager": "alertmanager", "grafana": "grafana"}


def detect_not_running(env: dict[str, str]) -> tuple[tuple[str, ...] | None, str]:
    """Which lab services do not run, as hop names, and who said so: the engine (the containers of the
    lab's compose project: ``COMPOSE_PROJECT_NAME``, else the one ``obslab lab up`` recorded, else
    ``obslab``), else, where the engine cannot be asked, what ``obslab lab up`` recorded. (None, "") when
    neither can tell (no container of that project: the lab may run under another project name, so every
    hop is probed)."""
    from obslab.lab import engine
    from obslab.lab.command import read_record

    record = read_record()
    project = _project(env)
    running = engine.running_services(project)
    if running:
        return tuple(hop for service, hop in _LAB_SERVICES.items() if service not in running), \
            f"the engine, compose project {project}"
    if running is None and record.get("project") == project and "not_running" in record:
        return tuple(_LAB_SERVICES.get(name, name) for name in record["not_running"]), "what obslab lab up recorded"
    return None, ""


def _project(env: dict[str, str]) -> str:
    """The lab's compose project: ``COMPOSE_PROJECT_NAME``, else the one ``obslab lab up`` recorded, else ``obslab``."""
    from obslab.lab import engine
    from obslab.lab.command import read_record

    return (os.environ.get("COMPOSE_PROJECT_NAME") or env.get("COMPOSE_PROJECT_NAME") or read_record().get("project")
            or engine.DEFAULT_PROJECT)


def _urls(env: dict[str, str]) -> dict[str, str]:
    from obslab.lab.engine import url_host

    host = url_host(env.get("OBSLAB_BIND_ADDRESS"))
    return {name: f"http://{host}:{env[port]}" for name, port in (
        ("collector", "COLLECTOR_HEALTH_PORT"), ("tempo", "TEMPO_PORT"), ("loki", "LOKI_PORT"),
        ("prometheus", "PROMETHEUS_PORT"), ("grafana", "GRAFANA_PORT"), ("alertmanager", "ALERTMANAGER_PORT"))}


def run_doctor(timeout: float = 60.0, not_running: tuple[str, ...] | None = None, service: str | None = None) -> int:
    """Probe every hop (or, with ``service``, say why that service's data may not show); returns the
    process exit code (0 when every hop that runs here sees the probe). ``not_running`` None: found
    out from the engine, or what ``obslab lab up`` recorded."""
    env = _lab_env()
    no_lab_seen = False  # the engine was asked and runs no container of the lab's project
    if not_running is None:
        found, source = detect_not_running(env)
        no_lab_seen = found is None
        if found is not None and "collector" in found:
            print(f"obslab doctor: the lab's collector is not running ({source}): obslab lab up")
            return 1
        not_running = found or ()
        if found:
            print(f"not running here ({source}): {', '.join(found)}")
    url = _urls(env)
    if no_lab_seen and service is None and _get_json(url["collector"]) is None:
        # No container of the lab's project, and no collector answers: no lab runs (60 s of probes would say no more).
        print(f"obslab doctor: no lab runs: no container of compose project {_project(env)} is seen and the "
              f"collector's health check {url['collector']} does not answer: obslab lab up")
        return 1
    if service is not None:
        from obslab.doctor_service import app_environment, diagnose_service

        lines = diagnose_service(service, url, not_running, app_environment(), env)
        print(f"obslab doctor --service {service}")
        print("\n".join(f"  {line}" for line in lines))
        return 0 if lines[0].startswith("spans:   ok") and not any(line.startswith("cause:") for line in lines) else 1
    host = url["collector"].split("//")[1].rsplit(":", 1)[0]
    probe_id = uuid.uuid4().hex[:12]
    service = "obslab-doctor"
    settings = load_settings({"service_name": service, "otlp_endpoint": f"{host}:{env['OTLP_GRPC_PORT']}",
                              "metric_export_interval": 1.0, "log_level": "INFO"}, environ={})
    telemetry = Telemetry(settings)
    telemetry._install()
    logger = logging.getLogger("obslab.doctor.probe")
    logger.propagate, logger.handlers = True, []
    with telemetry.span("obslab.doctor.probe", probe_id=probe_id):
        trace_id = telemetry.get_trace_context()["trace_id"]
        logger.warning("obslab doctor probe %s", probe_id)
    telemetry.create_counter("obslab.doctor.probes").add(1, {"probe_id": probe_id})
    started = time.monotonic()
    telemetry.force_flush(5)

    loki_expr = f'{{service_name="{service}"}} | trace_id="{trace_id}"'
    prom_expr = f'obslab_doctor_probes_total{{probe_id="{probe_id}"}}'
    loki_query = urllib.parse.urlencode({"query": loki_expr, "start": str(int((time.time() - 600) * 1e9))})
    prom_query = urllib.parse.urlencode({"query": prom_expr})
    grafana_login = (env.get("GRAFANA_ADMIN_USER", "admin"), env.get("GRAFANA_ADMIN_PASSWORD", ""))
    grafana_queries = {  # the probe, asked of Grafana through each of its datasources
        "tempo": {"datasource": {"uid": "tempo"}, "queryType": "traceql", "query": trace_id},
        "loki": {"datasource": {"uid": "loki"}, "expr": loki_expr, "queryType": "range"},
        "prometheus": {"datasource": {"uid": "prometheus"}, "expr": prom_expr, "instant": True},
    }
    hops = [
        Hop("collector", lambda: _get_json(url["collector"]) is not None,
            f"collector health check {url['collector']} does not answer: is the lab up?"),
        Hop("tempo", lambda: _get_json(f"{url['tempo']}/api/traces/{trace_id}") is not None,
            "trace not in Tempo: check the collector's traces pipeline and SAMPLING_PERCENTAGE"),
        Hop("loki", lambda: bool((_get_json(f"{url['loki']}/loki/api/v1/query_range?{loki_query}") or {})
                                 .get("data", {}).get("result")),
            "log not in Loki: check the collector's logs pipeline (otlp_http/loki)"),
        Hop("prometheus", lambda: bool((_get_json(f"{url['prometheus']}/api/v1/query?{prom_query}") or {})
                                       .get("data", {}).get("result")),
            "metric not in Prometheus: check --web.enable-otlp-receiver and the metrics pipeline"),
        Hop("grafana", lambda: (_get_json(f"{url['grafana']}/api/health") or {}).get("database") == "ok",
            f"Grafana {url['grafana']}/api/health does not answer ok"),
        *(Hop(f"grafana>{uid}", lambda query=query: _grafana_has_data(url["grafana"], *grafana_login, query),
              f"Grafana does not return the probe through its {uid} datasource: check the login "
              f"(GRAFANA_ADMIN_USER/PASSWORD in .env) and grafana/provisioning/datasources")
          for uid, query in grafana_queries.items()),
    ]
    failed = None
    print(f"{'hop':18} {'status':8} seconds   (probe {probe_id}, trace {trace_id})")
    for hop in hops:
        if set(hop.name.split(">")) & set(not_running):
            print(f"{hop.name:18} not running here")
            continue
        visible, cause = _wait_for(hop, telemetry, started, timeout)
        status = "ok" if visible else "FAILED"
        print(f"{hop.name:18} {status:8} {time.monotonic() - started:6.1f}" + ("" if visible else f"  {cause}"))
        if not visible:
            failed = failed or hop.name
    telemetry.shutdown(2)
    if "alertmanager" in not_running:
        print("alerts: Alertmanager not running here")
    else:
        print("\n".join(firing_alerts(url["alertmanager"], not_running)))
    if failed:
        print(f"obslab doctor: the {failed} hop failed")
        return 1
    return 0
