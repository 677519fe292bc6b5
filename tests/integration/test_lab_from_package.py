"""`pip install ./sdk && obslab lab up` in an empty directory: the lab runs from the installed package
(its copy of the lab's files), with a .env made in the per-user directory, names what does not run
here in one line, comes up healthy, answers `status`, `logs` and the doctor (without flags, within
10 s), and `down` removes it. A non-editable install into a new virtual environment, as a user does."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid

from conftest import MISSING
from lab import PORT_VARIABLES, REPO, free_port
from obslab.lab import engine


def test_pip_install_sdk_then_obslab_lab_up_in_an_empty_directory(tmp_path):
    venv, empty, home = tmp_path / "venv", tmp_path / "empty", tmp_path / "home"
    empty.mkdir()
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    install = subprocess.run([str(venv / "bin/pip"), "install", "-q", str(REPO / "sdk")], cwd=empty,
                             capture_output=True, text=True, timeout=900)
    assert install.returncode == 0, install.stderr[-3000:]
    project = f"obslabpkg{uuid.uuid4().hex[:8]}"
    env = {"PATH": f"{venv / 'bin'}:/usr/bin:/bin", "HOME": os.environ["HOME"], "OBSLAB_HOME": str(home),
           "COMPOSE_PROJECT_NAME": project, "OBSLAB_NETWORK": f"{project}-net",
           **{name: str(free_port()) for name in PORT_VARIABLES}}

    def obslab(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
        result = subprocess.run(["obslab", *args], cwd=empty, capture_output=True, text=True, env=env, timeout=timeout)
        print(result.stdout, result.stderr)
        return result

    try:
        up = obslab("lab", "up")
        assert up.returncode == 0
        assert f"created {home / '.env'} from .env.example" in up.stdout
        absent = [name for name in engine.compose_images(REPO / "docker-compose.observability.yml") if name in MISSING]
        if absent:
            assert f"[lab] not running here: {', '.join(absent)} (official images absent" in up.stdout
        running = engine.running_services(project)
        assert "otel-collector" in running and not running & set(absent)
        assert f"OTLP gRPC         127.0.0.1:{env['OTLP_GRPC_PORT']}" in up.stdout
        assert list(empty.iterdir()) == []  # nothing written where it ran
        assert (home / "lab.json").exists()  # what it started, for status, the doctor and obslab_lab

        status = obslab("lab", "status")
        assert status.returncode == 0 and f"{'otel-collector':16} running" in status.stdout

        started = time.monotonic()
        doctor = obslab("doctor")
        seconds = time.monotonic() - started
        print(f"obslab doctor without flags: {seconds:.1f} s")
        assert doctor.returncode == 0 and "FAILED" not in doctor.stdout
        assert f"{'collector':18} ok" in doctor.stdout and f"{'prometheus':18} ok" in doctor.stdout
        assert seconds < 10, f"the doctor took {seconds:.1f} s"

        logs = obslab("lab", "logs", "otel-collector")
        assert logs.returncode == 0 and "Everything is ready" in logs.stdout
    finally:
        down = obslab("lab", "down", "--volumes")
    assert down.returncode == 0 and engine.running_services(project) == set()
    assert not (home / "lab.json").exists()
