"""The lab's ``.env``: the checks every value passes before anything starts, and its creation from
``.env.example`` with a random Grafana admin password and secret key. ``obslab lab`` and ``tools/check_env.py`` both
use these, so a value refused by one is refused by the other."""
from __future__ import annotations

import ipaddress
import os
import re
import secrets
import shutil
import urllib.parse
from pathlib import Path

import yaml
from dotenv import dotenv_values

PORTS = ("GRAFANA_PORT", "TEMPO_PORT", "LOKI_PORT", "PROMETHEUS_PORT", "OTLP_GRPC_PORT", "OTLP_HTTP_PORT",
         "COLLECTOR_HEALTH_PORT", "ALERTMANAGER_PORT")
_DURATION = re.compile(r"^(\d+(ms|s|m|h|d|w|y))+$")
# SAMPLING_PERCENTAGE and SLOW_TRACE_MS only as plain ASCII decimals, which the collector reads as Python does: it
# (its OTTL conditions and YAML) reads a leading zero as octal, and refuses exponents and underscores.
_PERCENTAGE = re.compile(r"(0|[1-9][0-9]?|100)(\.[0-9]+)?\Z")
_WHOLE = re.compile(r"[1-9][0-9]*\Z")
# Grafana's public default secret_key (conf/defaults.ini): anyone can decrypt what it encrypts.
GRAFANA_DEFAULT_SECRET_KEY = "SW2YcwTIb9zpOOhoPsMm"
_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400, "y": 365 * 86400}


def _seconds(duration: str) -> float:
    """A Go/Prometheus duration such as 1h30m or 15d, in seconds."""
    return sum(int(n) * _SECONDS[unit] for n, unit in re.findall(r"(\d+)(ms|s|m|h|d|w|y)", duration))


def problems(env: dict[str, str]) -> list[str]:
    """Every problem in ``env``, each naming the variable and its bad value."""
    found = []
    for name in PORTS:
        value = env.get(name, "")
        if not (value.isascii() and value.isdigit()) or not 0 < int(value) < 65536:  # "²".isdigit(), int() refuses it
            found.append(f"{name}={value!r}: must be a port number between 1 and 65535")
    ports = [env.get(n) for n in PORTS]
    for name in PORTS:
        if env.get(name, "").isascii() and env.get(name, "").isdigit() and ports.count(env[name]) > 1:
            found.append(f"{name}={env[name]!r}: the same port is given to another service")
    pct = env.get("SAMPLING_PERCENTAGE", "")
    if not (_PERCENTAGE.match(pct) and float(pct) <= 100):
        found.append(f"SAMPLING_PERCENTAGE={pct!r}: must be a number between 0 and 100 written plainly, such as "
                     "10 or 2.5 (no leading zero, sign, exponent or space: the collector reads 0100 as 64)")
    slow = env.get("SLOW_TRACE_MS") or ""  # empty or absent: the compose file's default, 1000
    if slow and not _WHOLE.match(slow):
        found.append(f"SLOW_TRACE_MS={slow!r}: must be a whole number of milliseconds, 1 or more, without a "
                     "leading zero (the collector's tail sampling keeps every trace slower than it; it reads "
                     "01000 as 512)")
    bind = env.get("OBSLAB_BIND_ADDRESS", "")
    try:
        loopback = ipaddress.ip_address(bind).is_loopback
    except ValueError:
        found.append(f"OBSLAB_BIND_ADDRESS={bind!r}: must be an IP address such as 127.0.0.1")
        loopback = True
    anonymous = env.get("GRAFANA_ANONYMOUS_ENABLED", "").lower()
    if anonymous not in ("true", "false"):
        found.append(f"GRAFANA_ANONYMOUS_ENABLED={anonymous!r}: must be true or false")
    elif anonymous == "true" and not loopback:
        found.append(f"GRAFANA_ANONYMOUS_ENABLED=true with OBSLAB_BIND_ADDRESS={bind!r}: anonymous access "
                     "is only allowed when the lab binds to loopback; set it to false")
    for name in ("TEMPO_RETENTION", "LOKI_RETENTION", "PROMETHEUS_RETENTION"):
        if not _DURATION.match(env.get(name, "")):
            found.append(f"{name}={env.get(name, '')!r}: must be a duration such as 1h, 168h or 15d")
    found += _alert_problems(env)
    if not env.get("GRAFANA_ADMIN_PASSWORD"):
        found.append("GRAFANA_ADMIN_PASSWORD is empty: set a password")
    found += _secret_key_problems(env.get("GRAFANA_SECRET_KEY", ""))
    for name in ("GRAFANA_ADMIN_PASSWORD", "GRAFANA_SECRET_KEY", "OBSLAB_ALERT_WEBHOOK_URL"):
        if "$" in env.get(name, ""):  # compose reads `ab$cd` as `ab` + the value of $cd: not what is checked here
            found.append(f"{name} (value not shown) contains $, which docker compose expands as a variable in an "
                         "env file (Grafana or Alertmanager would get other text): choose one without $")
    return found + forwarding_problems(env)


def forwarding_problems(env: dict[str, str]) -> list[str]:
    """The forwarding settings (otel-collector/forward/). A header's value is never printed."""
    found = []
    endpoint = env.get("OBSLAB_FORWARD_OTLP_ENDPOINT", "")
    if endpoint:
        url = urllib.parse.urlsplit(endpoint)
        if url.scheme not in ("http", "https") or not url.hostname or url.query or url.fragment:
            found.append(f"OBSLAB_FORWARD_OTLP_ENDPOINT={endpoint!r}: must be an OTLP/HTTP base URL such as "
                         "https://otlp.example.com/otlp (https:// for TLS) or http://gateway:4318")
    only = env.get("OBSLAB_FORWARD_ONLY", "")
    if only not in ("", "true", "false"):
        found.append(f"OBSLAB_FORWARD_ONLY={only!r}: must be true or false")
    elif only == "true" and not endpoint:
        found.append("OBSLAB_FORWARD_ONLY=true without OBSLAB_FORWARD_OTLP_ENDPOINT: set the endpoint "
                     "telemetry should go to, or OBSLAB_FORWARD_ONLY=false")
    headers = env.get("OBSLAB_FORWARD_OTLP_HEADERS", "")
    if headers:
        try:
            parsed = yaml.safe_load(headers)
        except yaml.YAMLError:
            parsed = None
        if not isinstance(parsed, dict) or not all(isinstance(k, str) and isinstance(v, (str, int, float))
                                                   for k, v in parsed.items()):
            found.append("OBSLAB_FORWARD_OTLP_HEADERS (value not shown): must be a JSON map of header names to "
                         "values in single quotes, e.g. '{\"Authorization\": \"Basic <token>\"}'")
        elif not endpoint:
            found.append("OBSLAB_FORWARD_OTLP_HEADERS is set but OBSLAB_FORWARD_OTLP_ENDPOINT is empty")
    return found


def _alert_problems(env: dict[str, str]) -> list[str]:
    """The alerting settings, as prometheus/render-alerting.sh reads them (it refuses the same values)."""
    found = []
    availability = env.get("OBSLAB_SLO_AVAILABILITY", "")
    if not re.fullmatch(r"\d+(\.\d+)?", availability) or not 0 < float(availability) <= 99.999:
        found.append(f"OBSLAB_SLO_AVAILABILITY={availability!r}: must be a percentage above 0 and at most 99.999")
    latency = env.get("OBSLAB_SLO_LATENCY_MS", "")
    if not re.fullmatch(r"\d+(\.\d+)?", latency) or float(latency) <= 0:
        found.append(f"OBSLAB_SLO_LATENCY_MS={latency!r}: must be a number of milliseconds above 0")
    budget = env.get("OBSLAB_LLM_BUDGET_USD_PER_DAY", "")
    if budget and (not re.fullmatch(r"\d+(\.\d+)?", budget) or float(budget) <= 0):
        found.append(f"OBSLAB_LLM_BUDGET_USD_PER_DAY={budget!r}: must be an amount of US dollars above 0, "
                     "or empty (no budget alert)")
    webhook = env.get("OBSLAB_ALERT_WEBHOOK_URL", "")
    if webhook and not re.match(r"https?://.", webhook):
        found.append(f"OBSLAB_ALERT_WEBHOOK_URL={webhook!r}: must be an http:// or https:// URL, or empty")
    for name in ("OBSLAB_ALERT_FOR", "OBSLAB_RULE_EVALUATION_INTERVAL"):
        value = env.get(name, "")
        if value and not re.fullmatch(r"\d+(ms|s|m|h)", value):
            found.append(f"{name}={value!r}: must be a duration such as 10s, 5m or 1h, or empty")
    return found


def _secret_key_problems(key: str) -> list[str]:
    """GRAFANA_SECRET_KEY encrypts Grafana's datasource secrets: never Grafana's public default, never short.
    Its value is never printed."""
    if not key:
        return ["GRAFANA_SECRET_KEY is empty: set one (python3 tools/check_env.py generates it into a .env without one)"]
    if key == GRAFANA_DEFAULT_SECRET_KEY:
        return ["GRAFANA_SECRET_KEY (value not shown) is Grafana's public default: anyone can decrypt what it "
                "encrypts; set a random one of 32 characters or more"]
    if len(key) < 32:
        return [f"GRAFANA_SECRET_KEY (value not shown) has {len(key)} characters: set a random one of 32 or more"]
    return []


def warnings(env: dict[str, str]) -> list[str]:
    """Settings that work but may surprise: logs or metrics kept longer than the traces they link to."""
    found = []
    traces = env.get("TEMPO_RETENTION", "")
    for name in ("LOKI_RETENTION", "PROMETHEUS_RETENTION"):
        value = env.get(name, "")
        if _DURATION.match(traces) and _DURATION.match(value) and _seconds(value) > _seconds(traces):
            found.append(f"{name}={value!r} outlives TEMPO_RETENTION={traces!r}: older log lines and "
                         "exemplars will link to traces Tempo no longer has")
    endpoint = env.get("OBSLAB_FORWARD_OTLP_ENDPOINT", "")
    host = urllib.parse.urlsplit(endpoint).hostname or ""
    if endpoint.startswith("http://") and env.get("OBSLAB_FORWARD_OTLP_HEADERS") and host not in (
            "localhost", "127.0.0.1", "::1"):
        found.append(f"OBSLAB_FORWARD_OTLP_ENDPOINT={endpoint!r} is plain http: the headers of "
                     "OBSLAB_FORWARD_OTLP_HEADERS (credentials) cross the network unencrypted; use https://")
    return found


def ensure_env_file(path: Path, example: Path) -> bool:
    """Create ``path`` from ``example`` (.env.example) with a random Grafana admin password and secret key;
    True when it was created. An existing file is left as it is, but for a secret key it lacks (made before
    there was one), which is generated."""
    if path.exists():
        if not dotenv_values(path).get("GRAFANA_SECRET_KEY"):
            path.write_text(_with_secret_key(path.read_text()))
            path.chmod(0o600)  # now holds a secret, however it was made (cp .env.example .env: 0644)
            print(f"{path}: GRAFANA_SECRET_KEY generated (Grafana encrypts datasource secrets with it)")
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(example, path)
    text = path.read_text().replace("GRAFANA_ADMIN_PASSWORD=\n",
                                    f"GRAFANA_ADMIN_PASSWORD={secrets.token_urlsafe(18)}\n")
    path.write_text(_with_secret_key(text))
    path.chmod(0o600)
    print(f"created {path} from .env.example (Grafana admin password and secret key generated there)")
    return True


def _with_secret_key(text: str) -> str:
    """``text`` of a .env with a random GRAFANA_SECRET_KEY in place of an empty or missing one."""
    line = f"GRAFANA_SECRET_KEY={secrets.token_urlsafe(32)}\n"
    if re.search(r"^GRAFANA_SECRET_KEY=[ \t]*$", text, flags=re.M):
        return re.sub(r"^GRAFANA_SECRET_KEY=[ \t]*\n?", line, text, count=1, flags=re.M)
    return text + ("" if text.endswith("\n") or not text else "\n") + line


def read_env(path: Path) -> dict[str, str]:
    """The values of an env file, empty ones as ``""``."""
    return {k: v or "" for k, v in dotenv_values(path).items()}


def compose_values(path: Path) -> dict[str, str]:
    """The env file's values with the environment's winning, as ``docker compose`` interpolates them."""
    values = read_env(path)
    values.update({name: os.environ[name] for name in values if name in os.environ})
    return values
