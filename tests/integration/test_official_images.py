"""What users run with the official images, checked without those images: the compose file as
``docker compose config`` renders it (images, Grafana's environment, every command the compose file
runs inside an image), and the one-shot volume-owner service, which runs here."""

from __future__ import annotations

import json
import subprocess
import uuid

import pytest
import yaml

from lab import COMPOSE_FILE, image, isolated_env

# Which tools each pinned official image ships, for the commands the compose file runs inside it
# (healthchecks, entrypoints). Each row names the tag it was checked for and its upstream reference:
# a new tag fails `test_probe_table_covers_the_pinned_tags` until its row is checked again.
PROBE_TOOLS: dict[str, tuple[str, set[str], str]] = {
    "grafana/grafana": ("13.2.3", {"/bin/sh", "sh", "wget", "curl"},
                        "grafana/grafana Dockerfile: final stage FROM alpine (busybox: sh, wget), "
                        "`apk add ... bash curl`"),
    "grafana/loki": ("3.7.8", {"/usr/bin/loki"},
                     "grafana/loki cmd/loki/Dockerfile (release-3.7.x): FROM gcr.io/distroless/static:nonroot, "
                     "only /usr/bin/loki; cmd/loki/main.go: `loki -health` probes /ready"),
    "grafana/tempo": ("2.10.8", {"/tempo"},
                      "grafana/tempo cmd/tempo/Dockerfile v2.10.8: FROM gcr.io/distroless/static-debian12 "
                      "(busybox removed in 2.9.3 and 2.10, PR 5717), only /tempo, which has no health "
                      "subcommand (issue 6536)"),
    "prom/prometheus": ("v3.16.0", {"/bin/prometheus", "/bin/promtool", "/bin/busybox", "/bin/sh", "/bin/wget"},
                        "prometheus/prometheus Dockerfile: FROM quay.io/prometheus/busybox, "
                        "COPY prometheus and promtool to /bin"),
    "otel/opentelemetry-collector-contrib": ("0.165.0", {"/otelcol-contrib"},
                                             "opentelemetry-collector-releases distributions/otelcol-contrib "
                                             "Dockerfile: FROM scratch; collector-contrib issue 30798"),
}
# A tool that is not a path is found through PATH; `loki -health` is the binary itself.


def _rendered(tmp_path) -> dict:
    env_file = tmp_path / "lab.env"
    isolated_env(env_file)
    result = subprocess.run(["docker", "compose", "-f", str(COMPOSE_FILE), "--env-file", str(env_file), "config"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return yaml.safe_load(result.stdout)


def _commands(service: dict) -> list[tuple[str, str]]:
    """(what, the program it runs) for each command the compose file runs inside the service's image."""
    commands = []
    test = (service.get("healthcheck") or {}).get("test")
    if test and test[0] == "CMD":
        commands.append(("healthcheck", test[1]))
    elif test and test[0] == "CMD-SHELL":
        commands.append(("healthcheck", "/bin/sh"))
    if service.get("entrypoint"):
        commands.append(("entrypoint", service["entrypoint"][0]))
    return commands


COMPOSE = yaml.safe_load(COMPOSE_FILE.read_text())


def test_compose_config_renders_grafana_that_installs_and_updates_no_plugin(tmp_path):
    services = _rendered(tmp_path)["services"]
    env = services["grafana"]["environment"]
    # Grafana 12+ downloads a default plugin list from grafana.com and updates it at every start
    # unless told not to ([plugins] preinstall_disabled, preinstall_auto_update).
    assert env["GF_PLUGINS_PREINSTALL_DISABLED"] == "true"
    assert env["GF_PLUGINS_PREINSTALL_AUTO_UPDATE"] == "false"
    assert env["GF_PLUGINS_PUBLIC_KEY_RETRIEVAL_DISABLED"] == "true"
    assert env["GF_ANALYTICS_REPORTING_ENABLED"] == "false" and env["GF_ANALYTICS_CHECK_FOR_UPDATES"] == "false"
    assert env["GF_ANALYTICS_CHECK_FOR_PLUGIN_UPDATES"] == "false" and env["GF_NEWS_NEWS_FEED_ENABLED"] == "false"
    # Only the lab's provisioning folders are mounted: the image's own (plugins, access-control) stay.
    targets = {volume["target"] for volume in services["grafana"]["volumes"]}
    assert "/etc/grafana/provisioning" not in targets
    assert {"/etc/grafana/provisioning/datasources", "/etc/grafana/provisioning/dashboards"} <= targets
    assert not any(t.endswith(("/plugins", "/notifiers", "/access-control")) for t in targets)


@pytest.mark.parametrize("service", ["otel-collector", "collector-data-owner", "tempo", "loki", "prometheus",
                                     "grafana"])
def test_no_command_calls_a_tool_its_pinned_image_lacks(service, tmp_path):
    svc = _rendered(tmp_path)["services"][service]
    name, _, tag = svc["image"].rpartition(":")
    checked, tools, reference = PROBE_TOOLS[name]
    assert tag == checked, f"{svc['image']}: the probe table was checked for {checked}; check {reference} again"
    for what, program in _commands(svc):
        assert program in tools, f"{service} {what} runs {program}, which {svc['image']} lacks ({reference})"


def test_probe_table_covers_the_pinned_tags():
    pinned = {image(s).rpartition(":")[0]: image(s).rpartition(":")[2]
              for s in ("otel-collector", "tempo", "loki", "prometheus", "grafana")}
    assert pinned == {name: row[0] for name, row in PROBE_TOOLS.items()}


@pytest.mark.parametrize("one_shot", ["collector-data-owner", "alerting-config"])
def test_the_one_shot_volume_owner_leaves_no_anonymous_volume(tmp_path, one_shot):
    """The one-shots run on Prometheus' image, which declares VOLUME /prometheus (the official image
    and the stand-in alike): without a mount there, each run would leave an anonymous volume."""
    owner_image = image(one_shot)
    declared = subprocess.run(["docker", "image", "inspect", "--format", "{{json .Config.Volumes}}", owner_image],
                              capture_output=True, text=True, timeout=60)
    assert declared.returncode == 0, declared.stderr
    assert "/prometheus" in (json.loads(declared.stdout) or {}), f"{owner_image} declares no VOLUME /prometheus"

    env_file = tmp_path / "lab.env"
    isolated_env(env_file)
    project = f"obslabvol{uuid.uuid4().hex[:8]}"

    def compose(*args: str) -> subprocess.CompletedProcess:
        result = subprocess.run(["docker", "compose", "-f", str(COMPOSE_FILE), "-p", project, "--env-file",
                                 str(env_file), *args], capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stdout + result.stderr
        return result

    def volumes() -> set[str]:
        return set(subprocess.run(["docker", "volume", "ls", "-q"], capture_output=True, text=True,
                                  timeout=60, check=True).stdout.split())

    before, used = volumes(), set()
    try:
        compose("up", "--no-log-prefix", one_shot)  # runs to completion, then returns
        container = compose("ps", "-a", "-q", one_shot).stdout.strip()
        inspected = json.loads(subprocess.run(["docker", "inspect", container], capture_output=True, text=True,
                                              timeout=60, check=True).stdout)[0]
        assert inspected["State"]["ExitCode"] == 0
        used = {m["Name"] for m in inspected["Mounts"] if m["Type"] == "volume"}
        compose("down")
        # Counted after `down` (as a user leaves it): of the volumes this run made, only the named
        # volume the one-shot prepares is left, for the next run (down -v removes it).
        named = {f"{project}_{volume.split(':')[0]}" for volume in COMPOSE["services"][one_shot]["volumes"]
                 if not volume.startswith(".")}
        left = (volumes() - before) & used
        assert len(left) == 1 and used == named, inspected["Mounts"]
    finally:
        compose("down", "-v")
        for name in (volumes() - before) & used:  # what a failed run leaked, removed all the same
            subprocess.run(["docker", "volume", "rm", name], capture_output=True, timeout=60)
