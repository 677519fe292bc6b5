"""``obslab doctor --service NAME``: why don't I see my service?

A few lines, each ending with the next thing to check:

- the causes it can see in the environment it reads (the process environment over the ``.env`` of the
  working directory, as the SDK reads them): an exporter set to ``none``, an endpoint that is not the
  lab's collector or is its other protocol's port (gRPC to 4318, HTTP to 4317), nothing listening
  there, sampling at 0 (``OTEL_TRACES_SAMPLER``, or the lab's ``SAMPLING_PERCENTAGE``);
- whether the collector accepted spans from NAME (its span metrics' ``service`` label, in
  Prometheus), and whether a name differing only by case was seen instead;
- what the collector's receivers accepted and refused in all (its own counters);
- whether NAME's metrics reached Prometheus (the ``job`` label OTLP gives them), its traces Tempo
  and its logs Loki where they run, or the ingest witness where it stands in for them (the
  repository's tests); where neither runs, the line says so.
"""

from __future__ import annotations

import json
import os
import re
import socket
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any, Mapping

from dotenv import dotenv_values

_SIGNALS = ("TRACES", "METRICS", "LOGS")
_OFF_SAMPLERS = {"always_off"}
_RATIO_SAMPLERS = {"traceidratio", "parentbased_traceidratio"}


def _get_json(url: str, timeout: float = 3.0) -> Any:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return json.loads(response.read() or b"null")
    except Exception:  # the backend does not answer: the caller says so
        return None


def app_environment(directory: str = ".") -> dict[str, str]:
    """What an obslab app started in ``directory`` reads: its ``.env``, under the process environment."""
    path = os.path.join(directory, ".env")
    values = {k: v for k, v in (dotenv_values(path) if os.path.isfile(path) else {}).items() if v}
    values.update({k: v for k, v in os.environ.items() if v})
    return values


def _endpoint(env: Mapping[str, str]) -> tuple[str, str, str]:
    """(endpoint, its source variable, protocol) the SDK sends spans to."""
    protocol = (env.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") or env.get("OTEL_EXPORTER_OTLP_PROTOCOL") or "grpc")
    for name in ("OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT"):
        if env.get(name):
            return env[name], name, protocol.strip().lower()
    default = "http://localhost:4318" if protocol.startswith("http") else "http://localhost:4317"
    return default, "the default", protocol.strip().lower()


def environment_causes(env: Mapping[str, str], lab: Mapping[str, str]) -> list[str]:
    """The causes of missing data visible in ``env`` (what the app reads) and ``lab`` (the lab's
    .env values: ports, SAMPLING_PERCENTAGE), one line each with what to do."""
    causes = []
    for signal in _SIGNALS:
        value = env.get(f"OTEL_{signal}_EXPORTER", "")
        if value.strip().lower() == "none":
            causes.append(f"OTEL_{signal}_EXPORTER=none in the environment: the SDK exports no {signal.lower()}; "
                          f"unset it (or set it to otlp)")
    endpoint, source, protocol = _endpoint(env)
    url = urllib.parse.urlsplit(endpoint if "://" in endpoint else f"http://{endpoint}")
    host, port = url.hostname or "localhost", url.port
    grpc_port, http_port = lab.get("OTLP_GRPC_PORT", "4317"), lab.get("OTLP_HTTP_PORT", "4318")
    where = f"{endpoint} ({source})"
    if protocol == "grpc" and str(port) == http_port:
        causes.append(f"the SDK sends OTLP gRPC to {where}, the collector's OTLP/HTTP port: use port {grpc_port}, "
                      "or OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf")
    elif protocol.startswith("http") and str(port) == grpc_port:
        causes.append(f"the SDK sends OTLP/HTTP to {where}, the collector's gRPC port: use port {http_port}, "
                      "or OTEL_EXPORTER_OTLP_PROTOCOL=grpc")
    elif str(port) not in (grpc_port, http_port):
        causes.append(f"the SDK sends to {where}, which is not the lab's collector (gRPC {grpc_port}, HTTP "
                      f"{http_port}): set OTLP_ENDPOINT=127.0.0.1:{grpc_port}")
    elif not _listens(host, port):
        causes.append(f"nothing listens at {where}: is the lab up (obslab lab status)? From a container, the "
                      f"collector is otel-collector:4317 on the lab's network")
    sampler = env.get("OTEL_TRACES_SAMPLER", "").strip().lower()
    argument = env.get("OTEL_TRACES_SAMPLER_ARG", "").strip()
    if sampler in _OFF_SAMPLERS or sampler == "parentbased_always_off":
        causes.append(f"OTEL_TRACES_SAMPLER={sampler}: no span is sampled; unset it")
    elif sampler in _RATIO_SAMPLERS and _is_zero(argument):
        causes.append(f"OTEL_TRACES_SAMPLER={sampler} with OTEL_TRACES_SAMPLER_ARG={argument}: sampling at 0, "
                      "no span is kept; set the ratio above 0 (1.0 keeps all)")
    if _is_zero(lab.get("SAMPLING_PERCENTAGE", "")):
        causes.append("SAMPLING_PERCENTAGE=0 in the lab's .env: the collector keeps no trace (span metrics still "
                      "count them); set it above 0 and restart the collector")
    return causes


def _is_zero(value: str) -> bool:
    try:
        return float(value) == 0
    except ValueError:
        return False


def _listens(host: str, port: int | None) -> bool:
    try:
        with socket.create_connection((host, port or 4317), timeout=1):
            return True
    except OSError:
        return False


def _promql(prometheus: str, query: str) -> list[dict] | None:
    answer = _get_json(f"{prometheus}/api/v1/query?{urllib.parse.urlencode({'query': query})}")
    return None if answer is None else answer.get("data", {}).get("result", [])


def _regex(text: str) -> str:
    """``text`` matched literally by a PromQL regex inside a double-quoted string."""
    return re.escape(text).replace("\\", "\\\\").replace('"', '\\"')


def _seen_spans(prometheus: str, service: str) -> tuple[dict[str, float], list[str]] | None:
    """Calls counted by the span metrics over the last hour, by service, for ``service`` in any case;
    and the other services seen (the busiest first). None when Prometheus does not answer."""
    mine = _promql(prometheus, f'sum by (service) (traces_spanmetrics_calls_total{{service=~"(?i){_regex(service)}"}})')
    others = _promql(prometheus, "topk(5, sum by (service) (traces_spanmetrics_calls_total))")
    if mine is None or others is None:
        return None
    counts: dict[str, float] = {}
    for row in mine:
        counts.setdefault(row["metric"].get("service", ""), float(row["value"][1]))
    return counts, [row["metric"].get("service", "") for row in others]


def _collector_counters(prometheus: str) -> str:
    """What the collector's receivers accepted and refused in all (its own counters, scraped by
    Prometheus), as one phrase; empty when Prometheus has none."""
    parts = []
    for signal, name in (("spans", "spans"), ("log_records", "log records"), ("metric_points", "metric points")):
        # the collector's names as Prometheus scrapes them (without _total), or with _total (other set-ups)
        accepted = _promql(prometheus, f"sum(otelcol_receiver_accepted_{signal}) or "
                                       f"sum(otelcol_receiver_accepted_{signal}_total)")
        refused = _promql(prometheus, f"sum(otelcol_receiver_refused_{signal}) or "
                                      f"sum(otelcol_receiver_refused_{signal}_total)")
        if accepted:
            parts.append(f"{float(accepted[0]['value'][1]):.0f} {name}"
                         + (f" (refused {float(refused[0]['value'][1]):.0f})"
                            if refused and float(refused[0]["value"][1]) else ""))
    return ", ".join(parts)


def _witness(lab: Mapping[str, str]) -> Any:
    """The ingest witness's reader where it stands in for Tempo and Loki (the repository's tests), else None."""
    directory = lab.get("WITNESS_DIR", "")
    if not directory or not os.path.isdir(directory):
        return None
    from obslab.testing.witness import Witness

    return Witness(Path(directory))


def diagnose_service(service: str, urls: Mapping[str, str], not_running: tuple[str, ...], env: Mapping[str, str],
                     lab: Mapping[str, str]) -> list[str]:
    """The lines answering "why don't I see ``service``", each with the next thing to check."""
    lines = []
    seen = _seen_spans(urls["prometheus"], service)
    if seen is None:
        lines.append(f"spans:   Prometheus {urls['prometheus']} does not answer: is the lab up? (obslab lab status)")
    else:
        counts, others = seen
        other_case = sorted(name for name in counts if name != service)
        if service in counts:  # a series exists once a span was counted (its first sample may still read 0)
            lines.append(f"spans:   ok, the collector accepted spans of {service} ({counts[service]:.0f} in the span "
                         f"metrics, service label)")
        elif other_case:
            lines.append(f"spans:   none from {service}, but from {', '.join(other_case)}: the service name differs "
                         f"by case; use the same spelling everywhere (OTEL_SERVICE_NAME)")
        else:
            seen_names = ", ".join(name for name in others if name) or "none"
            lines.append(f"spans:   none from {service} reached the collector (services seen: {seen_names}): check "
                         f"the service name, then the causes below")
    counters = _collector_counters(urls["prometheus"])
    if counters:
        lines.append(f"collector: accepted {counters}, from every service since it started")
    metric_rows = _promql(urls["prometheus"], f'count by (job) ({{job=~"(.+/)?{_regex(service)}"}})')
    if metric_rows:
        jobs = ", ".join(sorted(row["metric"].get("job", "") for row in metric_rows))
        lines.append(f"metrics: ok, {sum(float(r['value'][1]) for r in metric_rows):.0f} series of {service} in "
                     f"Prometheus (job {jobs})")
    elif metric_rows is not None:
        lines.append(f"metrics: none of {service} in Prometheus: does the app record any? the SDK exports every "
                     f"metric_export_interval (15 s by default)")
    witness = _witness(lab)
    if "tempo" in not_running and witness is not None:
        count = len(witness.spans(service))
        lines.append(f"traces:  {'ok, ' if count else ''}the ingest witness (in Tempo's place) received {count} spans "
                     f"of {service}" + ("" if count else ": check SAMPLING_PERCENTAGE and obslab lab logs otel-collector"))
    elif "tempo" in not_running:
        lines.append("traces:  Tempo not running here: the span metrics above are what the collector counted")
    else:
        query = urllib.parse.urlencode({"tags": f"service.name={service}", "start": int(time.time() - 3600),
                                        "end": int(time.time()) + 60, "limit": 1})
        found = _get_json(f"{urls['tempo']}/api/search?{query}")
        if found is None:
            lines.append(f"traces:  Tempo {urls['tempo']} does not answer: obslab lab logs tempo")
        else:
            ok = bool(found.get("traces"))
            lines.append(f"traces:  {'ok, Tempo has traces of' if ok else 'Tempo has no trace of'} {service}"
                         + ("" if ok else ": check SAMPLING_PERCENTAGE and obslab lab logs otel-collector"))
    if "loki" in not_running and witness is not None:
        count = len(witness.logs(service))
        lines.append(f"logs:    {'ok, ' if count else ''}the ingest witness (in Loki's place) received {count} log "
                     f"records of {service}" + ("" if count else ": does the app log at INFO or above inside obslab "
                                                                  "(log_level)?"))
    elif "loki" in not_running:
        lines.append("logs:    Loki not running here: its logs cannot be looked for")
    else:
        query = urllib.parse.urlencode({"query": f'{{service_name="{service}"}}',
                                        "start": str(int((time.time() - 3600) * 1e9)), "limit": "1"})
        found = _get_json(f"{urls['loki']}/loki/api/v1/query_range?{query}")
        if found is None:
            lines.append(f"logs:    Loki {urls['loki']} does not answer: obslab lab logs loki")
        else:
            ok = bool(found.get("data", {}).get("result"))
            lines.append(f"logs:    {'ok, Loki has log lines of' if ok else 'Loki has no log line of'} {service}"
                         + ("" if ok else ": does the app log at INFO or above inside obslab (log_level)?"))
    causes = environment_causes(env, lab)
    lines += [f"cause:   {cause}" for cause in causes]
    if not causes:
        lines.append("causes:  none seen in this environment (exporters, endpoint, protocol port, sampling): run the "
                     "doctor where the app runs, with its environment")
    return lines
