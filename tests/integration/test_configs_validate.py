"""Each lab config passes its own component's validator, run from the lab's own images."""

import subprocess

from lab import COMPOSE_FILE, REPO, env_example, image, isolated_env


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(args, capture_output=True, text=True, timeout=120)


def test_compose_file_is_valid_with_the_example_env(tmp_path):
    env_file = tmp_path / "lab.env"
    isolated_env(env_file)
    result = _run("docker", "compose", "-f", str(COMPOSE_FILE), "--env-file", str(env_file), "config", "--quiet")
    assert result.returncode == 0, result.stderr


def test_compose_refuses_to_start_without_grafana_password(tmp_path):
    env_file = tmp_path / "lab.env"
    isolated_env(env_file, GRAFANA_ADMIN_PASSWORD="")
    result = _run("docker", "compose", "-f", str(COMPOSE_FILE), "--env-file", str(env_file), "config", "--quiet")
    assert result.returncode != 0 and "GRAFANA_ADMIN_PASSWORD" in result.stderr


def test_collector_config_passes_otelcol_validate():
    env = env_example()
    result = _run("docker", "run", "--rm", "-v", f"{REPO}/otel-collector/config.yaml:/etc/otelcol-contrib/config.yaml:ro",
                  "-e", f"SAMPLING_PERCENTAGE={env['SAMPLING_PERCENTAGE']}",
                  "-e", f"DEFAULT_ENVIRONMENT={env['DEFAULT_ENVIRONMENT']}",
                  image("otel-collector"), "validate", "--config=/etc/otelcol-contrib/config.yaml")
    assert result.returncode == 0, result.stdout + result.stderr


def test_collector_validate_rejects_a_broken_config(tmp_path):
    broken = tmp_path / "config.yaml"
    broken.write_text((REPO / "otel-collector/config.yaml").read_text().replace("exporters: [otlp_grpc/tempo]",
                                                                                 "exporters: [otlp_grpc/nowhere]"))
    result = _run("docker", "run", "--rm", "-v", f"{broken}:/c.yaml:ro", "-e", "SAMPLING_PERCENTAGE=100",
                  "-e", "DEFAULT_ENVIRONMENT=dev", image("otel-collector"), "validate", "--config=/c.yaml")
    assert result.returncode != 0 and "nowhere" in result.stdout + result.stderr


def test_prometheus_config_passes_promtool_check():
    result = _run("docker", "run", "--rm", "-v", f"{REPO}/prometheus/prometheus.yml:/etc/prometheus/prometheus.yml:ro",
                  "--entrypoint", "/bin/promtool", image("prometheus"), "check", "config",
                  "/etc/prometheus/prometheus.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def _loki_verify(config_path) -> subprocess.CompletedProcess:
    return _run("docker", "run", "--rm", "-e", f"LOKI_RETENTION={env_example()['LOKI_RETENTION']}",
                "-v", f"{config_path}:/etc/loki/loki.yaml:ro", image("loki"),
                "-config.file=/etc/loki/loki.yaml", "-config.expand-env=true", "-verify-config")


def test_loki_config_passes_verify_config():
    result = _loki_verify(REPO / "loki/loki.yaml")
    assert result.returncode == 0, result.stdout + result.stderr


def test_loki_verify_config_rejects_an_unknown_key(tmp_path):
    broken = tmp_path / "loki.yaml"
    broken.write_text("no_such_block: {}\n" + (REPO / "loki/loki.yaml").read_text())
    result = _loki_verify(broken)
    assert result.returncode != 0 and "no_such_block" in result.stdout + result.stderr


def _tempo_verify(config_path) -> subprocess.CompletedProcess:
    return _run("docker", "run", "--rm", "-e", f"TEMPO_RETENTION={env_example()['TEMPO_RETENTION']}",
                "-v", f"{config_path}:/etc/tempo/tempo.yaml:ro", image("tempo"),
                "-config.file=/etc/tempo/tempo.yaml", "-config.expand-env=true", "-config.verify=true")


def test_tempo_config_passes_config_verify():
    result = _tempo_verify(REPO / "tempo/tempo.yaml")
    assert result.returncode == 0, result.stdout + result.stderr


def test_tempo_config_verify_rejects_an_unknown_key(tmp_path):
    broken = tmp_path / "tempo.yaml"
    broken.write_text("no_such_block: {}\n" + (REPO / "tempo/tempo.yaml").read_text())
    result = _tempo_verify(broken)
    assert result.returncode != 0 and "no_such_block" in result.stdout + result.stderr
