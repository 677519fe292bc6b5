"""Each lab config passes its own component's validator, run from the lab's own images."""

import subprocess

import pytest
import yaml

from lab import COMPOSE_FILE, REPO, env_example, image, isolated_env


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(args, capture_output=True, text=True, timeout=120)


def test_compose_file_is_valid_with_the_example_env(tmp_path):
    env_file = tmp_path / "lab.env"
    isolated_env(env_file)
    result = _run("docker", "compose", "-f", str(COMPOSE_FILE), "--env-file", str(env_file), "config")
    assert result.returncode == 0, result.stderr
    services = yaml.safe_load(result.stdout)["services"]
    assert {name: services[name]["image"] for name in ("tempo", "loki", "grafana")} == {
        name: image(name) for name in ("tempo", "loki", "grafana")}  # the official images, whatever runs here
    assert all(port["host_ip"] == "127.0.0.1" for svc in services.values() for port in svc.get("ports", []))


def test_ingest_witness_config_passes_otelcol_validate():
    config = REPO / "tests/ingest-witness/config.yaml"
    result = _run("docker", "run", "--rm", "-v", f"{config}:/c.yaml:ro", image("otel-collector"), "validate",
                  "--config=/c.yaml")
    assert result.returncode == 0, result.stdout + result.stderr


def test_compose_config_names_the_grafana_secrets_but_never_shows_them(tmp_path):
    """The password, the secret key and the webhook reach their containers as compose secrets read from
    .env: even `docker compose config` shows only the variables' names. (An empty password or key
    stops Grafana's entrypoint: tests/integration/test_hardening.py.)"""
    env_file = tmp_path / "lab.env"
    values = isolated_env(env_file, OBSLAB_ALERT_WEBHOOK_URL="https://hooks.example.com/T0KEN")
    result = _run("docker", "compose", "-f", str(COMPOSE_FILE), "--env-file", str(env_file), "config")
    assert result.returncode == 0, result.stderr
    for name in ("GRAFANA_ADMIN_PASSWORD", "GRAFANA_SECRET_KEY", "OBSLAB_ALERT_WEBHOOK_URL"):
        assert values[name] not in result.stdout, name
        assert f"environment: {name}" in result.stdout, name


def test_collector_config_passes_otelcol_validate():
    env = env_example()
    result = _run("docker", "run", "--rm", "-v", f"{REPO}/otel-collector/config.yaml:/etc/otelcol-contrib/config.yaml:ro",
                  "-e", f"SAMPLING_PERCENTAGE={env['SAMPLING_PERCENTAGE']}", "-e", f"SLOW_TRACE_MS={env['SLOW_TRACE_MS']}",
                  "-e", f"DEFAULT_ENVIRONMENT={env['DEFAULT_ENVIRONMENT']}",
                  image("otel-collector"), "validate", "--config=/etc/otelcol-contrib/config.yaml")
    assert result.returncode == 0, result.stdout + result.stderr


def test_collector_validate_rejects_a_broken_config(tmp_path):
    broken = tmp_path / "config.yaml"
    broken.write_text((REPO / "otel-collector/config.yaml").read_text().replace("exporters: [otlp_grpc/tempo]",
                                                                                 "exporters: [otlp_grpc/nowhere]"))
    result = _run("docker", "run", "--rm", "-v", f"{broken}:/c.yaml:ro", "-e", "SAMPLING_PERCENTAGE=100", "-e", "SLOW_TRACE_MS=1000",
                  "-e", "DEFAULT_ENVIRONMENT=dev", image("otel-collector"), "validate", "--config=/c.yaml")
    assert result.returncode != 0 and "nowhere" in result.stdout + result.stderr


def test_prometheus_config_passes_promtool_check():
    result = _run("docker", "run", "--rm", "-v", f"{REPO}/prometheus/prometheus.yml:/etc/prometheus/prometheus.yml:ro",
                  "--entrypoint", "/bin/promtool", image("prometheus"), "check", "config",
                  "/etc/prometheus/prometheus.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


# Loki and Tempo check their own config: (service, config in the repo, path in the container,
# retention variable, verify flag).
VERIFIERS = {
    "loki": ("loki/loki.yaml", "/etc/loki/loki.yaml", "LOKI_RETENTION", "-verify-config"),
    "tempo": ("tempo/tempo.yaml", "/etc/tempo/tempo.yaml", "TEMPO_RETENTION", "-config.verify=true"),
}


def _self_verify(service: str, config_path) -> subprocess.CompletedProcess:
    _, target, retention, flag = VERIFIERS[service]
    return _run("docker", "run", "--rm", "-e", f"{retention}={env_example()[retention]}",
                "-v", f"{config_path}:{target}:ro", image(service),
                f"-config.file={target}", "-config.expand-env=true", flag)


OFFICIAL = [pytest.param(service, marks=pytest.mark.official_images(service)) for service in VERIFIERS]


@pytest.mark.parametrize("service", OFFICIAL)
def test_config_passes_its_components_own_verification(service):
    result = _self_verify(service, REPO / VERIFIERS[service][0])
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("service", OFFICIAL)
def test_config_verification_rejects_an_unknown_key(service, tmp_path):
    broken = tmp_path / "config.yaml"
    broken.write_text("no_such_block: {}\n" + (REPO / VERIFIERS[service][0]).read_text())
    result = _self_verify(service, broken)
    assert result.returncode != 0 and "no_such_block" in result.stdout + result.stderr
