"""Least privilege and secrets, checked where they take effect: the compose file as `docker compose config`
renders it, every container of the running lab (`docker inspect`), and Grafana's secrets delivered by
compose to a container that runs here (Grafana's own image is absent here: the lab's Grafana service
runs on the Prometheus image, which has the busybox the lab's entrypoint needs, with a stand-in for the
image's /run.sh that reports what it was given)."""

from __future__ import annotations

import json
import os
import re
import secrets
import subprocess
import sys
import time
import urllib.request
import uuid

import pytest
import yaml

from lab import COMPOSE_FILE, ENGINE_BEFORE_25_FILE, REPO, engine_compose_files, image, isolated_env

# Capabilities a service keeps after cap_drop: [ALL], and why (docs/lab.md "Containers: least privilege").
CAPABILITIES = {"collector-data-owner": {"CHOWN"},  # root, to give the collector's volume to 10001
                "alerting-config": {"CHOWN"}}       # root, to give the webhook file to Alertmanager's nobody
# Services whose root file system stays writable, and why.
WRITABLE = {"grafana": "compose copies its secrets in before start, which it refuses for read_only",
            "alerting-config": "likewise, for the webhook secret",
            "collector-data-owner": "likewise, for the forwarding headers secret"}


def _render(tmp_path, *extra) -> dict:
    env_file = tmp_path / "render.env"
    isolated_env(env_file)
    files = [arg for path in [COMPOSE_FILE, *extra] for arg in ("-f", str(path))]
    result = subprocess.run(["docker", "compose", *files, "--env-file", str(env_file), "config"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return yaml.safe_load(result.stdout)["services"]


def test_every_service_drops_every_capability_but_what_its_image_needs(tmp_path):
    services = _render(tmp_path)
    for name, service in services.items():
        assert service.get("cap_drop") == ["ALL"], name
        assert "no-new-privileges:true" in service.get("security_opt", []), name
        assert set(service.get("cap_add", [])) == CAPABILITIES.get(name, set()), name
        assert service.get("read_only", False) is (name not in WRITABLE), name
        assert not service.get("privileged"), name


def test_every_healthcheck_probes_fast_while_starting_and_rarely_once_up(tmp_path):
    def seconds(duration: str) -> float:
        units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}
        return sum(float(n) * units[u] for n, u in re.findall(r"([\d.]+)(ms|s|m|h)", duration))

    services = _render(tmp_path)
    checked = [name for name, service in services.items() if service.get("healthcheck")]
    assert {"loki", "prometheus", "alertmanager", "grafana"} <= set(checked)
    for name in checked:
        health = services[name]["healthcheck"]
        assert seconds(health["start_interval"]) <= 1 and seconds(health["start_period"]) >= 60, (name, health)
        assert seconds(health["interval"]) >= 30, (name, health)  # idle: one probe per 30 s at most
    # Docker Engine before 25: the overlay takes start_interval out (compose refuses it there) and probes
    # every second, as the lab did before.
    old = _render(tmp_path, ENGINE_BEFORE_25_FILE)
    for name in checked:
        health = old[name]["healthcheck"]
        assert "start_interval" not in health and seconds(health["interval"]) == 1, (name, health)
    overlaid = re.findall(r"^  ([\w-]+):$", ENGINE_BEFORE_25_FILE.read_text(), flags=re.M)  # (!reset: no yaml.load)
    assert set(overlaid) == set(checked)


def _project_containers(project: str) -> list[dict]:
    ids = subprocess.run(["docker", "ps", "-a", "-q", "--filter", f"label=com.docker.compose.project={project}"],
                         capture_output=True, text=True, timeout=60, check=True).stdout.split()
    assert ids, f"no container of project {project}"
    return json.loads(subprocess.run(["docker", "inspect", *ids], capture_output=True, text=True, timeout=60,
                                     check=True).stdout)


def test_docker_inspect_of_every_lab_container_shows_no_password_key_or_token(lab):
    secret_settings = ("GRAFANA_ADMIN_PASSWORD", "GRAFANA_SECRET_KEY", "OBSLAB_ALERT_WEBHOOK_URL",
                       "OBSLAB_FORWARD_OTLP_HEADERS")
    values = {name: lab.env[name] for name in secret_settings if lab.env.get(name)}
    # The test lab sets the first three (the webhook: the alert tests' receiver), so none is vacuous.
    assert {"GRAFANA_ADMIN_PASSWORD", "GRAFANA_SECRET_KEY", "OBSLAB_ALERT_WEBHOOK_URL"} <= values.keys()
    containers = _project_containers(lab.project)
    services = {c["Config"]["Labels"]["com.docker.compose.service"] for c in containers}
    assert {"otel-collector", "prometheus", "alertmanager", "alerting-config", "collector-data-owner"} <= services
    for container in containers:
        text = json.dumps(container)
        shown = [name for name, value in values.items() if value in text]
        assert not shown, f"docker inspect of {container['Name']} shows {shown}"
    rendering = next(c for c in containers if c["Config"]["Labels"]["com.docker.compose.service"] == "alerting-config")
    assert "OBSLAB_ALERT_WEBHOOK_URL_FILE=/run/secrets/alert_webhook_url" in rendering["Config"]["Env"]


def test_every_running_lab_container_runs_with_its_restrictions_and_is_healthy(lab):
    for container in _project_containers(lab.project):
        service = container["Config"]["Labels"]["com.docker.compose.service"]
        if service not in yaml.safe_load(COMPOSE_FILE.read_text())["services"]:
            continue  # the tests' own instruments (the ingest witness)
        host = container["HostConfig"]
        kept = {cap.removeprefix("CAP_") for cap in host["CapAdd"] or []}  # the engine may name them CAP_*
        assert host["CapDrop"] == ["ALL"] and kept == CAPABILITIES.get(service, set()), service
        assert "no-new-privileges:true" in host["SecurityOpt"], service
        assert host["ReadonlyRootfs"] is (service not in WRITABLE), service
        state = container["State"]
        if state["Status"] == "exited":  # a one-shot: it did its job under these restrictions
            assert state["ExitCode"] == 0, service
        else:
            assert state["Status"] == "running" and state.get("Health", {}).get("Status", "healthy") == "healthy", \
                (service, state)


def test_the_webhook_file_is_readable_by_alertmanagers_user_alone(lab):
    volume = f"{lab.project}_alerting-config"
    result = subprocess.run(["docker", "run", "--rm", "--network", "none", "-v", f"{volume}:/r:ro", "--entrypoint",
                             "/bin/busybox", image("prometheus"), "stat", "-c", "%u:%g %a", "/r/webhook_url"],
                            capture_output=True, text=True, timeout=60)
    assert result.stdout.strip() == "65534:65534 600", result.stdout + result.stderr
    user = subprocess.run(["docker", "image", "inspect", "--format", "{{.Config.User}}", image("alertmanager")],
                          capture_output=True, text=True, timeout=60, check=True).stdout.strip()
    assert user in ("65534:65534", "nobody", "65534")


# The image's /run.sh, as far as the test needs it: what it was given (its user, the secret files' owner,
# mode and content, what the entrypoint's password reset received) on one JSON line, instead of Grafana.
FAKE_RUN_SH = """#!/bin/sh
p=$(cat "$GF_SECURITY_ADMIN_PASSWORD__FILE"); k=$(cat "$GF_SECURITY_SECRET_KEY__FILE")
modes=$(stat -c '%u %a' "$GF_SECURITY_ADMIN_PASSWORD__FILE" "$GF_SECURITY_SECRET_KEY__FILE" | tr '\\n' ' ')
echo "{\\"uid\\": \\"$(id -u)\\", \\"password\\": \\"$p\\", \\"key\\": \\"$k\\", \\"reset\\": \\"$(cat /tmp/reset)\\", \\"modes\\": \\"$modes\\"}"
"""
# `grafana cli admin reset-admin-password --password-from-stdin`, recording the password line it was given.
FAKE_GRAFANA = """#!/bin/sh
cat > /tmp/reset
"""
# The lab's Grafana service on the Prometheus image (Grafana's user, no network, no published port or
# healthcheck), the stand-ins above, and a data folder holding a grafana.db so the reset runs.
OVERRIDE = """services:
  grafana:
    image: {image}
    user: "472:0"
    restart: "no"
    network_mode: none
    ports: !reset []
    healthcheck: !reset null
    environment:
      GF_PATHS_DATA: /data
      GF_PATHS_HOME: /tmp
      GF_PATHS_CONFIG: /dev/null
      PATH: /fake:/bin
    volumes:
      - {fake}:/fake:ro
      - {fake}/run.sh:/run.sh:ro
      - {fake}/data:/data:ro
    tmpfs: [/prometheus, /tmp]
"""


@pytest.fixture
def grafana_on_a_present_image(tmp_path):
    """``run(**.env overrides)`` starts the lab's Grafana service (its entrypoint, environment and secrets)
    on a present image as described at OVERRIDE; returns (its log lines, its docker inspect)."""
    fake = tmp_path / "fake"
    (fake / "data").mkdir(parents=True)
    (fake / "data/grafana.db").write_text("")
    (fake / "run.sh").write_text(FAKE_RUN_SH)
    (fake / "grafana").write_text(FAKE_GRAFANA)
    for tool in ("cat", "id", "stat", "tr"):  # busybox applets, wherever the image keeps (or lacks) them
        (fake / tool).symlink_to("/bin/busybox")
    for path in (fake / "run.sh", fake / "grafana"):
        path.chmod(0o755)
    override = tmp_path / "grafana-here.yml"
    override.write_text(OVERRIDE.format(image=image("prometheus"), fake=fake))
    projects = []

    def run(project: str | None = None, **settings: str) -> tuple[list[str], dict]:
        """Start it in a new project, or again in ``project`` (its container kept, as `up` does)."""
        env_file = tmp_path / f"{len(projects)}.env"
        isolated_env(env_file, **settings)
        project = project or f"obslabsecrets{uuid.uuid4().hex[:8]}"
        base = ["docker", "compose", "-f", str(COMPOSE_FILE), *[a for f in engine_compose_files() for a in ("-f", str(f))],
                "-f", str(override), "-p", project, "--env-file", str(env_file)]
        projects.append(base)
        up = subprocess.run([*base, "up", "--no-log-prefix", "--abort-on-container-exit", "grafana"],
                            capture_output=True, text=True, timeout=300)
        container = subprocess.run([*base, "ps", "-a", "-q", "grafana"], capture_output=True, text=True,
                                   timeout=60).stdout.strip()
        assert container, up.stdout + up.stderr
        inspected = json.loads(subprocess.run(["docker", "inspect", container], capture_output=True, text=True,
                                              timeout=60, check=True).stdout)[0]
        return up.stdout.splitlines() + up.stderr.splitlines(), inspected | {"project": project}

    yield run
    for base in projects:
        subprocess.run([*base, "down", "-v"], capture_output=True, timeout=300)


def test_grafana_gets_its_password_and_key_as_files_only_its_user_reads_and_never_in_docker_inspect(
        grafana_on_a_present_image):
    password, key = secrets.token_urlsafe(16), secrets.token_urlsafe(32)
    lines, inspected = grafana_on_a_present_image(GRAFANA_ADMIN_PASSWORD=password, GRAFANA_SECRET_KEY=key)
    reported = [json.loads(line) for line in lines if line.startswith('{"uid"')]
    assert reported, "\n".join(lines)
    assert reported[0]["uid"] == "472" and reported[0]["password"] == password and reported[0]["key"] == key
    assert reported[0]["modes"].split() == ["0", "440", "0", "440"]  # root's, read by group 0 (Grafana's) alone
    assert reported[0]["reset"] == password  # the entrypoint applies the file's password at every start
    text = json.dumps(inspected)
    assert password not in text and key not in text
    env = inspected["Config"]["Env"]
    assert "GF_SECURITY_ADMIN_PASSWORD__FILE=/run/secrets/grafana_admin_password" in env
    assert "GF_SECURITY_SECRET_KEY__FILE=/run/secrets/grafana_secret_key" in env
    assert not [e for e in env if e.startswith(("GF_SECURITY_ADMIN_PASSWORD=", "GF_SECURITY_SECRET_KEY="))]


def test_a_changed_password_reaches_grafana_when_its_container_starts_again(grafana_on_a_present_image):
    """Compose does not see a secret's new value as a change (no recreate), but copies the secrets in at
    every start: the lab command stops Grafana before `up`, and the docs say `--force-recreate`."""
    first, second = secrets.token_urlsafe(16), secrets.token_urlsafe(16)
    _, inspected = grafana_on_a_present_image(GRAFANA_ADMIN_PASSWORD=first)
    lines, again = grafana_on_a_present_image(project=inspected["project"], GRAFANA_ADMIN_PASSWORD=second)
    assert again["Id"] == inspected["Id"]  # the same container, started again
    reported = [json.loads(line) for line in lines if line.startswith('{"uid"')]
    assert reported and reported[-1]["password"] == second and reported[-1]["reset"] == second, "\n".join(lines)


def test_a_changed_webhook_reaches_alertmanagers_file_at_the_next_up(tmp_path):
    """The one-shot gets the webhook as a secret at every `up`: a new URL, and no URL, take effect."""
    project = f"obslabhook{uuid.uuid4().hex[:8]}"
    rendered = []
    try:
        for url in ("https://hooks.example.com/first-T0KEN", "https://hooks.example.com/second-T0KEN", ""):
            env_file = tmp_path / f"{len(rendered)}.env"
            isolated_env(env_file, OBSLAB_ALERT_WEBHOOK_URL=url)
            up = subprocess.run(["docker", "compose", "-f", str(COMPOSE_FILE), "-p", project, "--env-file",
                                 str(env_file), "up", "--no-log-prefix", "alerting-config"],
                                capture_output=True, text=True, timeout=300)
            assert up.returncode == 0, up.stdout + up.stderr
            read = subprocess.run(["docker", "run", "--rm", "--network", "none", "-v",
                                   f"{project}_alerting-config:/r:ro", "--entrypoint", "/bin/busybox",
                                   image("prometheus"), "cat", "/r/webhook_url", "/r/alertmanager.yml"],
                                  capture_output=True, text=True, timeout=60)
            rendered.append((read.stdout.split("#", 1)[0], "receiver: lab " in read.stdout))
        assert rendered == [("https://hooks.example.com/first-T0KEN", False),
                            ("https://hooks.example.com/second-T0KEN", False), ("", True)]
    finally:
        subprocess.run(["docker", "compose", "-f", str(COMPOSE_FILE), "-p", project, "--env-file",
                        str(tmp_path / "0.env"), "down", "-v"], capture_output=True, timeout=300)


@pytest.mark.parametrize("empty", ["GRAFANA_ADMIN_PASSWORD", "GRAFANA_SECRET_KEY"])
def test_grafana_refuses_to_start_with_an_empty_password_or_key(grafana_on_a_present_image, empty):
    lines, inspected = grafana_on_a_present_image(**{empty: ""})
    assert inspected["State"]["ExitCode"] == 1
    assert any(f"obslab: {empty} is empty in .env" in line for line in lines), "\n".join(lines)
    assert not [line for line in lines if line.startswith('{"uid"')]  # /run.sh never ran


def test_a_webhook_set_at_the_next_obslab_lab_up_reaches_the_running_alertmanagers_route(tmp_path):
    """The one-shot renders Alertmanager's config again at each `up`, and the running Alertmanager (and
    Prometheus, for the rules) take it: a webhook set in .env then routes the alerts to it."""
    project = f"obslabreload{uuid.uuid4().hex[:8]}"
    env_file = tmp_path / ".env"
    values = isolated_env(env_file)
    env = {**{k: v for k, v in os.environ.items() if not k.endswith("_PORT")}, "OBSLAB_HOME": str(tmp_path),
           "COMPOSE_PROJECT_NAME": project}

    def up() -> None:
        result = subprocess.run([sys.executable, "-m", "obslab.cli", "lab", "up", "--env-file", str(env_file)],
                                capture_output=True, text=True, env=env, timeout=300)
        assert result.returncode == 0, result.stdout + result.stderr

    def route() -> str:
        url = f"http://127.0.0.1:{values['ALERTMANAGER_PORT']}/api/v2/status"
        with urllib.request.urlopen(url, timeout=5) as response:
            return yaml.safe_load(json.loads(response.read())["config"]["original"])["route"]["receiver"]

    try:
        up()
        assert route() == "lab"  # no webhook: alerts shown, sent nowhere
        isolated_env(env_file, **{**values, "OBSLAB_ALERT_WEBHOOK_URL": "https://hooks.example.com/T0KEN"})
        up()
        deadline = time.monotonic() + 10
        while route() != "webhook" and time.monotonic() < deadline:
            time.sleep(0.2)
        assert route() == "webhook"
    finally:
        subprocess.run([sys.executable, "-m", "obslab.cli", "lab", "down", "--volumes", "--env-file", str(env_file)],
                       capture_output=True, env=env, timeout=300)
