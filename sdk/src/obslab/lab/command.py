"""``obslab lab up | down | status | logs [service]``: the lab from the installed package, from any
directory.

The env file is ``.env`` in a per-user directory (``OBSLAB_HOME``, else ``$XDG_CONFIG_HOME/obslab``,
else ``~/.config/obslab``), made from ``.env.example`` with a random Grafana password on first run
and checked before anything starts; ``--env-file`` names another (the repository's ``tools/lab.sh``
passes its ``.env``). Values in the environment win over the file's, as in ``docker compose``.
``up`` starts the services whose images the engine has, names the others in one line, and records
what it started (``lab.json`` beside the env file) for ``status`` and ``obslab doctor``.
"""

from __future__ import annotations

import json
import os
import sys
import time
import urllib.request
from pathlib import Path

from obslab.lab import engine, env as lab_env
from obslab.lab.files import ENV_EXAMPLE, lab_dir

_READY_TIMEOUT = 120.0
# Host port variable -> (the name shown, the path that answers once the service is ready)
_URLS = {"GRAFANA_PORT": ("Grafana", "/api/health"), "TEMPO_PORT": ("Tempo", "/ready"), "LOKI_PORT": ("Loki", "/ready"),
         "PROMETHEUS_PORT": ("Prometheus", "/-/ready"), "ALERTMANAGER_PORT": ("Alertmanager", "/-/ready"),
         "OTLP_GRPC_PORT": ("OTLP gRPC", ""), "OTLP_HTTP_PORT": ("OTLP HTTP", ""),
         "COLLECTOR_HEALTH_PORT": ("Collector health", "/")}


def user_dir() -> Path:
    """The per-user directory of the lab's env file and record."""
    if os.environ.get("OBSLAB_HOME"):
        return Path(os.environ["OBSLAB_HOME"])
    config = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(config) / "obslab"


def record_path() -> Path:
    """Where ``obslab lab up`` records what it started."""
    return user_dir() / "lab.json"


def read_record() -> dict:
    """What the last ``obslab lab up`` recorded (empty when it never ran)."""
    try:
        return json.loads(record_path().read_text())
    except (OSError, ValueError):
        return {}


def default_env_file() -> Path:
    """The env file of the lab ``obslab lab up`` last started in this project (``tools/lab.sh`` passes
    a clone's ``.env``), else ``.env`` in the per-user directory."""
    record = read_record()
    if record.get("env_file") and record.get("project") == engine.project_name():
        return Path(record["env_file"])
    return user_dir() / ".env"


def lab_values(env_file: Path) -> dict[str, str]:
    """The env file's values, with the environment's winning (as ``docker compose`` interpolates)."""
    return lab_env.compose_values(env_file)


def not_running_line(missing: dict[str, str]) -> str:
    """The one line naming the lab's services that do not run on this machine."""
    return (f"[lab] not running here: {', '.join(missing)} (official images absent: "
            f"{', '.join(missing.values())}; not built here: AGPL; tools/images/build_images.py of the "
            "repository says how to provide them)")


def _host(values: dict[str, str]) -> str:
    return engine.url_host(values.get("OBSLAB_BIND_ADDRESS"))


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except Exception:  # not yet
        return False


def _wait_ready(values: dict[str, str], services: list[str], variables: dict[str, str]) -> str | None:
    """Wait for each started service's readiness URL (Tempo has no healthcheck compose could wait
    on, the collector none either); the variable of the first one not ready in time, or None."""
    deadline = time.monotonic() + _READY_TIMEOUT
    for variable, service in variables.items():
        path = _URLS.get(variable, ("", ""))[1]
        if service not in services or not path:
            continue
        url = f"http://{_host(values)}:{values[variable]}{path}"
        while not _answers(url):
            if time.monotonic() > deadline:
                return f"{service} is not ready after {_READY_TIMEOUT:.0f} s ({url}): obslab lab logs {service}"
            time.sleep(0.3)
    return None


def _print_urls(values: dict[str, str], services: list[str], variables: dict[str, str]) -> None:
    for variable, service in variables.items():
        if service in services and variable in _URLS:
            scheme = "" if variable == "OTLP_GRPC_PORT" else "http://"
            login = (f"   login {values.get('GRAFANA_ADMIN_USER', 'admin')} / the GRAFANA_ADMIN_PASSWORD of the env file"
                     if variable == "GRAFANA_PORT" else "")
            print(f"  {_URLS[variable][0]:17} {scheme}{_host(values)}:{values[variable]}{login}")


def _running_with_another_env_file(env_file: Path) -> str | None:
    """The env file of this project's running lab, where ``obslab lab up`` recorded another one than ``env_file``
    (``tools/lab.sh`` passes a clone's ``.env``); None otherwise."""
    record = read_record()
    recorded = record.get("env_file")
    if record.get("project") != engine.project_name() or not recorded or Path(recorded) == env_file.resolve():
        return None
    return recorded if engine.running_services(engine.project_name()) else None


def up(env_file: Path) -> int:
    """Check the env file and the ports, start what this machine has, wait until it is ready."""
    other = _running_with_another_env_file(env_file)
    if other:
        print(f"[lab] the lab of compose project {engine.project_name()} runs with {other}: `up` with {env_file} "
              f"would recreate it with other settings. Use it (obslab lab up --env-file {other}), or stop it first "
              "(obslab lab down)", file=sys.stderr)
        return 1
    lab_env.ensure_env_file(env_file, lab_dir() / ENV_EXAMPLE)
    values = lab_values(env_file)
    for warning in lab_env.warnings(values):
        print(f"{env_file}: warning: {warning}", file=sys.stderr)
    found = lab_env.problems(values)
    for problem in found:
        print(f"{env_file}: {problem}", file=sys.stderr)
    if found:
        return 1
    compose = engine.Compose(env_file)
    if compose.run("version").returncode != 0:
        print("[lab] `docker compose` (Compose v2) does not run here: install Docker with its compose plugin "
              "(https://docs.docker.com/compose/install/)", file=sys.stderr)
        return 1
    missing = engine.missing_services(compose.compose_file)
    once = engine.one_shot_services(compose.compose_file)
    services = [name for name in engine.compose_images(compose.compose_file) if name not in once | missing.keys()]
    if "otel-collector" in missing:
        print(f"[lab] the collector's image {missing['otel-collector']} is absent: docker pull it, or build it "
              "with tools/images/build_images.py in a clone of the repository", file=sys.stderr)
        return 1
    network = os.environ.get("OBSLAB_NETWORK") or values.get("OBSLAB_NETWORK") or "obslab"
    owner = engine.network_project(network)
    if owner and owner != compose.project:
        print(f"[lab] the Docker network {network} is the lab network of compose project {owner}: a second lab on "
              f"it would answer to the same names (otel-collector, prometheus...) as that one. Set OBSLAB_NETWORK to "
              f"another name in {env_file}, or use that lab (COMPOSE_PROJECT_NAME={owner})", file=sys.stderr)
        return 1
    variables = engine.port_variables(compose.compose_file)
    running = engine.running_services(compose.project) or set()
    to_check = [name for name, service in variables.items() if service in services and service not in running]
    busy = engine.busy_ports(values, to_check)
    for name, port in busy:
        where = (f"in the environment (it wins over {env_file})" if os.environ.get(name) == port else f"in {env_file}")
        print(f"[lab] port {port} ({name}) is already in use on {values.get('OBSLAB_BIND_ADDRESS') or '127.0.0.1'}: "
              f"stop what listens there, or set {name} to a free port {where}", file=sys.stderr)
    if busy:
        return 1
    shown = {name: image for name, image in missing.items() if name not in once}
    if shown:
        print(not_running_line(shown))
    if "grafana" in services:
        # Compose copies Grafana's secrets (the env file's password and key) in when it starts the container
        # and does not see them change: a stopped Grafana starts with the current ones.
        compose.run("stop", "grafana")
    started = time.monotonic()
    result = compose.run("up", "-d", "--wait", *services)
    if result.returncode != 0:
        print(f"[lab] docker compose up failed:\n{result.stdout[-3000:]}{result.stderr[-3000:]}", file=sys.stderr)
        return 1
    # The one-shot alerting-config renders the alert rules and Alertmanager's config again at every `up` (.env's
    # objectives, budget, webhook), but compose leaves running Prometheus and Alertmanager as they are: both
    # reload their files on SIGHUP.
    reload = [name for name in ("prometheus", "alertmanager") if name in services]
    if reload:
        compose.run("kill", "-s", "SIGHUP", *reload)
    late = _wait_ready(values, services, variables)
    if late:
        print(f"[lab] {late}", file=sys.stderr)
        return 1
    record = {"project": compose.project, "env_file": str(env_file.resolve()), "lab_dir": str(compose.directory),
              "services": services, "not_running": sorted(missing), "started": time.time()}
    record_path().parent.mkdir(parents=True, exist_ok=True)
    record_path().write_text(json.dumps(record, indent=1) + "\n")
    print(f"obslab is up ({' '.join(services)}), healthy {time.monotonic() - started:.1f} s after `up`; "
          f"settings in {env_file}:")
    _print_urls(values, services, variables)
    print("Stop: obslab lab down   (add --volumes to wipe the data)")
    return 0


def down(env_file: Path, volumes: bool = False) -> int:
    """Stop and remove the lab's containers (and its data with ``volumes``)."""
    compose = engine.Compose(env_file)
    result = compose.run("down", "--remove-orphans", *(["-v"] if volumes else []), capture=False)
    if result.returncode == 0 and read_record().get("project") == compose.project:
        record_path().unlink()  # nothing runs: no record for the doctor or the fixtures to trust
    return result.returncode


def status(env_file: Path) -> int:
    """One line per lab service: running, stopped, or not running here (image absent). 0 when every
    service whose image is present runs."""
    compose = engine.Compose(env_file)
    running = engine.running_services(compose.project)
    if running is None:
        print("[lab] the Docker engine does not answer", file=sys.stderr)
        return 1
    missing = engine.missing_services(compose.compose_file)
    once = engine.one_shot_services(compose.compose_file)
    stopped = []
    for name in engine.compose_images(compose.compose_file):
        if name in once:
            continue
        state = ("running" if name in running else
                 "not running here (image absent)" if name in missing else "stopped")
        stopped += [name] if state == "stopped" else []
        print(f"{name:16} {state}")
    if running and env_file.exists():
        values = lab_values(env_file)
        _print_urls(values, sorted(running), engine.port_variables(compose.compose_file))
    return 1 if stopped else 0


def logs(env_file: Path, service: str | None, follow: bool = False, tail: int = 200) -> int:
    """The lab's logs (one service's with ``service``), the last ``tail`` lines of each."""
    args = ["logs", "--tail", str(tail), *(["--follow"] if follow else []), *([service] if service else [])]
    return engine.Compose(env_file).run(*args, capture=False, timeout=None).returncode
