"""``obslab doctor``: send a probe trace, log and metric through the collector and follow each hop.

Prints one row per hop with the seconds it took to become visible, and returns non-zero naming
the first hop that failed and its likely cause. Endpoints come from the environment or ``.env``
(the lab's port variables); defaults are the lab's default ports on 127.0.0.1.
"""

from __future__ import annotations

import json
import logging
import os
import time
import urllib.parse
import urllib.request
import uuid
from dataclasses import dataclass
from typing import Callable

from dotenv import dotenv_values, find_dotenv

from obslab.telemetry import Telemetry
from obslab.config import load_settings

_DEFAULT_PORTS = {"OTLP_GRPC_PORT": "4317", "COLLECTOR_HEALTH_PORT": "13133", "TEMPO_PORT": "3200",
                  "LOKI_PORT": "3100", "PROMETHEUS_PORT": "9090", "GRAFANA_PORT": "3000"}


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


def _lab_env() -> dict[str, str]:
    path = find_dotenv(usecwd=True)
    values = {**_DEFAULT_PORTS, **{k: v for k, v in (dotenv_values(path) if path else {}).items() if v}}
    values.update({k: os.environ[k] for k in list(values) + ["OBSLAB_BIND_ADDRESS"] if os.environ.get(k)})
    return values


def run_doctor(timeout: float = 60.0, skip: tuple[str, ...] = ()) -> int:
    """Probe every hop; returns the process exit code (0 when all are visible)."""
    env = _lab_env()
    host = env.get("OBSLAB_BIND_ADDRESS", "127.0.0.1")
    host = "127.0.0.1" if host in ("0.0.0.0", "") else host
    url = {name: f"http://{host}:{env[port]}" for name, port in (
        ("collector", "COLLECTOR_HEALTH_PORT"), ("tempo", "TEMPO_PORT"), ("loki", "LOKI_PORT"),
        ("prometheus", "PROMETHEUS_PORT"), ("grafana", "GRAFANA_PORT"))}
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

    loki_query = urllib.parse.urlencode({"query": f'{{service_name="{service}"}} | trace_id="{trace_id}"',
                                         "start": str(int((time.time() - 600) * 1e9))})
    prom_query = urllib.parse.urlencode({"query": f'obslab_doctor_probes_total{{probe_id="{probe_id}"}}'})
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
    ]
    failed = None
    print(f"{'hop':12} {'status':8} seconds   (probe {probe_id}, trace {trace_id})")
    for hop in hops:
        if hop.name in skip:
            print(f"{hop.name:12} {'skipped':8}")
            continue
        while not hop.check():
            if time.monotonic() - started > timeout:
                break
            telemetry.force_flush(1)
            time.sleep(0.5)
        else:
            print(f"{hop.name:12} {'ok':8} {time.monotonic() - started:6.1f}")
            continue
        print(f"{hop.name:12} {'FAILED':8} {time.monotonic() - started:6.1f}  {hop.cause}")
        failed = failed or hop.name
    telemetry.shutdown(2)
    if failed:
        print(f"obslab doctor: the {failed} hop failed")
        return 1
    return 0
