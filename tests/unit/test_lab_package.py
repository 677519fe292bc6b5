"""The lab from the installed package: the wheel's copy of the lab's files is the repository's, and
``obslab lab up`` refuses a bad .env or a busy port before anything starts, saying what to change
(tests/integration/test_lab_from_package.py starts it from a wheel in an empty directory)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import zipfile

import pytest

from lab import REPO
from obslab.lab import engine
from obslab.lab.env import read_env
from obslab.lab.files import COMPOSE_FILE, lab_file_paths

OBSLAB = [sys.executable, "-m", "obslab.cli"]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    """obslab's wheel, built as `pip install ./sdk` builds it."""
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", str(REPO / "sdk"), "-w", str(out)],
                   check=True, capture_output=True, timeout=600)
    [built] = out.glob("obslab-*.whl")
    return built


def test_the_wheel_carries_the_labs_files_equal_to_the_repositorys(wheel):
    with zipfile.ZipFile(wheel) as archive:
        carried = {name.removeprefix("obslab/_lab/"): archive.read(name) for name in archive.namelist()
                   if name.startswith("obslab/_lab/")}
    expected = lab_file_paths(REPO)
    assert sorted(carried) == expected
    assert {COMPOSE_FILE, ".env.example", "otel-collector/config.yaml", "prometheus/prometheus.yml"} <= set(expected)
    different = [name for name in expected if carried[name] != (REPO / name).read_bytes()]
    assert different == []


def test_every_file_the_compose_file_mounts_is_carried():
    carried = set(lab_file_paths(REPO))
    mounted = {volume.split(":")[0][2:] for service in engine._services(REPO / COMPOSE_FILE).values()
               for volume in service.get("volumes", []) if isinstance(volume, str) and volume.startswith("./")}
    assert mounted and all(any(name == m or name.startswith(m.rstrip("/") + "/") for name in carried)
                           for m in mounted)


def lab(tmp_path, *args: str, **env: str) -> subprocess.CompletedProcess:
    """``obslab lab ARGS`` in an empty directory, its per-user directory under ``tmp_path``."""
    work = tmp_path / "work"
    work.mkdir(exist_ok=True)
    clean = {k: v for k, v in os.environ.items() if not k.endswith("_PORT")}
    return subprocess.run([*OBSLAB, "lab", *args], cwd=work, capture_output=True, text=True, timeout=120,
                          env={**clean, "OBSLAB_HOME": str(tmp_path / "home"), "COMPOSE_PROJECT_NAME": "obslabunit",
                               "OBSLAB_NETWORK": "obslabunit-net", **env})  # not a lab's running on this machine


def test_the_first_run_makes_the_env_file_with_a_password_and_names_a_busy_port(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = str(busy.getsockname()[1])
        result = lab(tmp_path, "up", OTLP_GRPC_PORT=port)
    assert result.returncode == 1
    env_file = tmp_path / "home" / ".env"
    assert f"created {env_file} from .env.example" in result.stdout
    # the port came from the environment, which wins over the file: editing the file would change nothing
    assert f"[lab] port {port} (OTLP_GRPC_PORT) is already in use on 127.0.0.1: stop what listens there, " \
           f"or set OTLP_GRPC_PORT to a free port in the environment (it wins over {env_file})" in result.stderr
    values = read_env(env_file)
    assert len(values["GRAFANA_ADMIN_PASSWORD"]) >= 20 and oct(env_file.stat().st_mode & 0o777) == "0o600"
    assert engine.running_services("obslabunit") == set()  # nothing started
    again = lab(tmp_path, "up", OTLP_GRPC_PORT=port, GRAFANA_ADMIN_PASSWORD="")
    assert "created" not in again.stdout and read_env(env_file) == values  # made once, kept


def test_a_bad_env_value_is_refused_as_tools_check_env_refuses_it(tmp_path):
    lab(tmp_path, "status")  # nothing made yet
    env_file = tmp_path / "home" / ".env"
    env_file.parent.mkdir()
    env_file.write_text((REPO / ".env.example").read_text().replace("SAMPLING_PERCENTAGE=100", "SAMPLING_PERCENTAGE=150")
                        .replace("GRAFANA_ADMIN_PASSWORD=\n", "GRAFANA_ADMIN_PASSWORD=s3cret-enough\n"))
    result = lab(tmp_path, "up")
    checked = subprocess.run([sys.executable, str(REPO / "tools/check_env.py"), str(env_file)],
                             capture_output=True, text=True)
    assert result.returncode == checked.returncode == 1
    problem = "SAMPLING_PERCENTAGE='150': must be a number between 0 and 100"
    assert f"{env_file}: {problem}" in result.stderr and f".env: {problem}" in checked.stderr


def test_status_names_what_does_not_run_here(tmp_path):
    result = lab(tmp_path, "status")
    assert result.returncode == 1  # nothing runs in this project
    missing = engine.missing_services(REPO / COMPOSE_FILE)
    for service in engine.compose_images(REPO / COMPOSE_FILE):
        if service in engine.one_shot_services(REPO / COMPOSE_FILE):
            continue
        state = "not running here (image absent)" if service in missing else "stopped"
        assert f"{service:16} {state}" in result.stdout


def test_where_the_engine_cannot_be_asked_the_doctor_reads_what_the_lab_command_recorded(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    env_file = tmp_path / "lab.env"
    env_file.write_text((REPO / ".env.example").read_text())
    (home / "lab.json").write_text(json.dumps({"project": "obslabunit", "env_file": str(env_file),
                                               "not_running": ["tempo", "loki", "grafana"]}))
    result = subprocess.run([*OBSLAB, "doctor", "--timeout", "1"], cwd=tmp_path, capture_output=True, text=True,
                            timeout=60, env={"PATH": "/nonexistent", "OBSLAB_HOME": str(home),
                                             "COMPOSE_PROJECT_NAME": "obslabunit", "COLLECTOR_HEALTH_PORT": "1"})
    assert "not running here (what obslab lab up recorded): tempo, loki, grafana" in result.stdout
    assert f"{'tempo':18} not running here" in result.stdout and result.returncode == 1  # no collector answers


def test_the_doctor_run_in_an_apps_directory_reads_the_ports_of_the_lab_the_lab_command_started(tmp_path):
    """`obslab doctor --service` runs where the app runs, whose own .env names no lab port: the doctor
    still asks the lab `obslab lab up` started (its env file), not the default ports."""
    home, app = tmp_path / "home", tmp_path / "app"
    home.mkdir(), app.mkdir()
    (app / ".env").write_text("OTEL_SERVICE_NAME=shop\nOTLP_ENDPOINT=127.0.0.1:24104\n")
    env_file = tmp_path / "lab.env"
    env_file.write_text((REPO / ".env.example").read_text().replace("PROMETHEUS_PORT=9090", "PROMETHEUS_PORT=1")
                        .replace("OTLP_GRPC_PORT=4317", "OTLP_GRPC_PORT=24104"))
    (home / "lab.json").write_text(json.dumps({"project": "obslabunit", "env_file": str(env_file),
                                               "not_running": ["tempo", "loki", "grafana"]}))
    result = subprocess.run([*OBSLAB, "doctor", "--service", "shop"], cwd=app, capture_output=True, text=True,
                            timeout=60, env={"PATH": "/nonexistent", "OBSLAB_HOME": str(home),
                                             "COMPOSE_PROJECT_NAME": "obslabunit"})
    assert "Prometheus http://127.0.0.1:1 does not answer" in result.stdout, result.stdout
    assert "not the lab's collector" not in result.stdout, result.stdout
    (app / ".env").write_text("PROMETHEUS_PORT=2\n")  # a .env naming the lab's ports (a clone's) is the lab's
    result = subprocess.run([*OBSLAB, "doctor", "--service", "shop"], cwd=app, capture_output=True, text=True,
                            timeout=60, env={"PATH": "/nonexistent", "OBSLAB_HOME": str(home),
                                             "COMPOSE_PROJECT_NAME": "obslabunit"})
    assert "Prometheus http://127.0.0.1:2 does not answer" in result.stdout, result.stdout


def test_the_doctor_without_flags_says_within_seconds_that_no_lab_runs(tmp_path):
    """No container of the lab's project and no collector answering: one line naming `obslab lab up`, not a
    minute of probes through every hop."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = str(s.getsockname()[1])  # nothing listens there once closed
    started = time.monotonic()
    result = subprocess.run([*OBSLAB, "doctor"], cwd=tmp_path, capture_output=True, text=True, timeout=120,
                            env={**os.environ, "OBSLAB_HOME": str(tmp_path), "COLLECTOR_HEALTH_PORT": port,
                                 "COMPOSE_PROJECT_NAME": f"obslabnone{os.getpid()}"})
    assert result.returncode == 1 and time.monotonic() - started < 10, result.stdout
    assert "no lab runs" in result.stdout and "obslab lab up" in result.stdout and "FAILED" not in result.stdout


def test_up_with_another_env_file_refuses_to_recreate_the_running_lab_and_names_its_env_file(tmp_path):
    """A lab started by tools/lab.sh (the clone's .env) runs; `obslab lab up` (the per-user .env) would
    recreate it under other ports and passwords without a word: it names the running lab's env file instead."""
    project = f"obslabunit{os.getpid()}"
    clone_env = tmp_path / "clone.env"
    clone_env.write_text("GRAFANA_PORT=3000\n")
    (tmp_path / "home").mkdir()
    (tmp_path / "home" / "lab.json").write_text(json.dumps({"project": project, "env_file": str(clone_env)}))
    prometheus = engine.compose_images(REPO / "docker-compose.observability.yml")["prometheus"]
    container = subprocess.run(["docker", "run", "-d", "--rm", "--network", "none", "--label",
                                f"com.docker.compose.project={project}", "--label",
                                "com.docker.compose.service=otel-collector", "--entrypoint", "/bin/sleep", prometheus,
                                "60"], capture_output=True, text=True, timeout=60).stdout.strip()
    try:
        # (a bad value too: where the running lab went unnoticed, `up` stops at the .env check, never starting one)
        result = lab(tmp_path, "up", COMPOSE_PROJECT_NAME=project, SAMPLING_PERCENTAGE="bad")
    finally:
        subprocess.run(["docker", "rm", "-f", container], capture_output=True, timeout=60)
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"runs with {clone_env}" in result.stderr and f"obslab lab up --env-file {clone_env}" in result.stderr
    assert not (tmp_path / "home" / ".env").exists()  # nothing made, nothing started


def test_up_refuses_a_network_another_labs_project_made_and_names_obslab_network(tmp_path):
    """Two labs (two compose projects) on one network name would both answer to otel-collector and prometheus
    there, each collector sending to either Prometheus: the second `up` names the owner and OBSLAB_NETWORK."""
    network, owner = f"obslabunitnet{os.getpid()}", f"obslabunitother{os.getpid()}"
    subprocess.run(["docker", "network", "create", "--label", f"com.docker.compose.project={owner}", network],
                   capture_output=True, check=True, timeout=60)
    try:
        with socket.socket() as busy:  # where the network went unnoticed, `up` stops at this port, never starting
            busy.bind(("127.0.0.1", 0))
            busy.listen()
            result = lab(tmp_path, "up", OBSLAB_NETWORK=network, OTLP_GRPC_PORT=str(busy.getsockname()[1]),
                         COMPOSE_PROJECT_NAME=f"obslabunit{os.getpid()}")
    finally:
        subprocess.run(["docker", "network", "rm", network], capture_output=True, timeout=60)
    assert result.returncode == 1
    assert f"the Docker network {network} is the lab network of compose project {owner}" in result.stderr, result.stderr
    assert "Set OBSLAB_NETWORK to another name" in result.stderr


def test_a_lab_bound_to_ipv6_loopback_is_reached_at_bracketed_urls_and_the_doctor_does_not_crash(tmp_path):
    """OBSLAB_BIND_ADDRESS=::1 passes the checks (loopback): the URLs printed and asked are http://[::1]:port,
    and the doctor's probe endpoint is one the SDK accepts (it raised a ValueError traceback)."""
    from obslab.doctor import _urls
    from obslab.testing.lab import ObslabLab, isolated_values

    values = isolated_values(OBSLAB_BIND_ADDRESS="::1")
    assert _urls(values)["prometheus"] == f"http://[::1]:{values['PROMETHEUS_PORT']}"
    lab = ObslabLab(tmp_path / ".env", values, "obslabunit")
    assert lab.otlp == f"[::1]:{values['OTLP_GRPC_PORT']}" and lab.loki == f"http://[::1]:{values['LOKI_PORT']}"
    env_file = tmp_path / "lab.env"
    env_file.write_text("".join(f"{k}={v}\n" for k, v in values.items()))
    (tmp_path / "lab.json").write_text(json.dumps({"project": "obslabunit", "env_file": str(env_file)}))
    result = subprocess.run([*OBSLAB, "doctor", "--not-running", "tempo,loki,grafana", "--timeout", "1"], cwd=tmp_path,
                            capture_output=True, text=True, timeout=60,
                            env={"PATH": os.environ["PATH"], "OBSLAB_HOME": str(tmp_path)})
    assert "Traceback" not in result.stderr, result.stderr[-2000:]
    assert f"collector health check http://[::1]:{values['COLLECTOR_HEALTH_PORT']} does not answer" in result.stdout
