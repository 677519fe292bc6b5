"""The backends' scalable modes (scaling/): each config passes its own component's checker.

Tempo 3 and Loki are AGPL and absent on the machines this lab is built on (never built here): their
tests are marked ``official_images`` and run wherever the official image is present (Tempo 3 by the
name "tempo-3", grafana/tempo:3.0.3, as no compose service runs it). The collector overlay for
Mimir is checked here with the lab's own collector image.
"""

import subprocess

import pytest
import yaml

from conftest import OTHER_IMAGES
from lab import REPO, env_example, image

SCALING = REPO / "scaling"
S3 = {"S3_ENDPOINT": "s3.eu-west-1.amazonaws.com", "S3_BUCKET": "obslab-test", "S3_INSECURE": "false"}


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(args, capture_output=True, text=True, timeout=120)


def test_the_mimir_overlay_passes_otelcol_validate():
    env = env_example()
    result = _run("docker", "run", "--rm", "-v", f"{REPO}/otel-collector/config.yaml:/c/config.yaml:ro",
                  "-v", f"{SCALING}/mimir/collector-metrics-to-mimir.yaml:/c/mimir.yaml:ro",
                  "-e", f"SAMPLING_PERCENTAGE={env['SAMPLING_PERCENTAGE']}", "-e", f"SLOW_TRACE_MS={env['SLOW_TRACE_MS']}",
                  "-e", f"DEFAULT_ENVIRONMENT={env['DEFAULT_ENVIRONMENT']}",
                  "-e", "MIMIR_URL=https://mimir.example.com", "-e", "MIMIR_TENANT=obslab",
                  image("otel-collector"), "validate", "--config=/c/config.yaml", "--config=/c/mimir.yaml")
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_mimir_overlay_sends_metrics_to_mimir_alone():
    printed = _run("docker", "run", "--rm", "-v", f"{REPO}/otel-collector/config.yaml:/c/config.yaml:ro",
                   "-v", f"{SCALING}/mimir/collector-metrics-to-mimir.yaml:/c/mimir.yaml:ro",
                   "-e", "SAMPLING_PERCENTAGE=100", "-e", "SLOW_TRACE_MS=1000", "-e", "DEFAULT_ENVIRONMENT=dev",
                   "-e", "MIMIR_URL=https://mimir.example.com", "-e", "MIMIR_TENANT=obslab",
                   image("otel-collector"), "print-config", "--config=/c/config.yaml", "--config=/c/mimir.yaml")
    assert printed.returncode == 0, printed.stderr
    config = yaml.safe_load(printed.stdout)
    assert config["service"]["pipelines"]["metrics"]["exporters"] == ["otlp_http/mimir"]
    assert config["exporters"]["otlp_http/mimir"]["endpoint"] == "https://mimir.example.com/otlp"


@pytest.mark.official_images("loki")
def test_the_loki_microservices_config_passes_loki_verify_config():
    config = SCALING / "loki/loki-microservices-s3.yaml"
    env = [a for k, v in S3.items() for a in ("-e", f"LOKI_{k}={v}")]
    result = _run("docker", "run", "--rm", *env, "-v", f"{config}:/etc/loki/loki.yaml:ro", image("loki"),
                  "-config.file=/etc/loki/loki.yaml", "-config.expand-env=true", "-verify-config")
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.official_images("tempo-3")
def test_the_tempo_3_monolithic_config_passes_tempo_config_verify():
    config = SCALING / "tempo/tempo-monolithic-s3.yaml"
    env = [a for k, v in S3.items() for a in ("-e", f"TEMPO_{k}={v}")]
    result = _run("docker", "run", "--rm", *env, "-v", f"{config}:/etc/tempo/tempo.yaml:ro", OTHER_IMAGES["tempo-3"],
                  "-config.file=/etc/tempo/tempo.yaml", "-config.expand-env=true", "-config.verify=true")
    assert result.returncode == 0, result.stdout + result.stderr
