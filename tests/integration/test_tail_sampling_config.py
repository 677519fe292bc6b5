"""Tail sampling across gateways (scaling/tail-sampling/): the configs for the official collector-contrib
image, whose load_balancing exporter and tail_sampling processor the lab's local stand-in lacks.

The validation tests are marked ``official_images("otel-collector-contrib")``: they run wherever the
collector image present lists those components (`otelcol-contrib components`) and are deselected,
counted in the summary's NOT RUN line, where it does not (tests/integration/conftest.py,
COMPONENT_SETS). What runs everywhere: the compose override resolves onto files that exist.
"""

import subprocess
from pathlib import Path

import pytest
import yaml

from lab import COMPOSE_FILE, REPO, env_example, image, isolated_env

TAIL = REPO / "scaling/tail-sampling"
OFFICIAL = pytest.mark.official_images("otel-collector-contrib")


def _validate(*configs: str, tmp_path=None, replace: tuple[str, str] | None = None) -> subprocess.CompletedProcess:
    """``otelcol-contrib validate`` of configs (paths in the repo) merged in order, in the lab's collector image."""
    mounts, args = [], []
    for index, config in enumerate(configs):
        source = REPO / config
        if replace and config == configs[-1]:
            source = tmp_path / "broken.yaml"
            source.write_text((REPO / config).read_text().replace(*replace))
        mounts += ["-v", f"{source}:/c/{index}.yaml:ro"]
        args.append(f"--config=/c/{index}.yaml")
    env = env_example()
    return subprocess.run(["docker", "run", "--rm", *mounts, "-e", f"SAMPLING_PERCENTAGE={env['SAMPLING_PERCENTAGE']}",
                           "-e", f"DEFAULT_ENVIRONMENT={env['DEFAULT_ENVIRONMENT']}", image("otel-collector"),
                           "validate", *args], capture_output=True, text=True, timeout=120)


@OFFICIAL
def test_the_tail_sampling_agent_config_passes_otelcol_validate():
    result = _validate("otel-collector/agent.yaml", "scaling/tail-sampling/agent.yaml")
    assert result.returncode == 0, result.stdout + result.stderr


@OFFICIAL
def test_the_tail_sampling_gateway_config_passes_otelcol_validate():
    result = _validate("otel-collector/config.yaml", "otel-collector/gateway.yaml", "scaling/tail-sampling/gateway.yaml")
    assert result.returncode == 0, result.stdout + result.stderr


@OFFICIAL
def test_otelcol_validate_checks_the_tail_sampling_policies(tmp_path):
    result = _validate("otel-collector/config.yaml", "otel-collector/gateway.yaml", "scaling/tail-sampling/gateway.yaml",
                       tmp_path=tmp_path, replace=("type: status_code", "type: no_such_policy"))
    assert result.returncode != 0 and "no_such_policy" in result.stdout + result.stderr


def test_the_tail_sampling_compose_override_mounts_its_configs(tmp_path):
    env_file = tmp_path / "lab.env"
    isolated_env(env_file)
    files = [COMPOSE_FILE, REPO / "docker-compose.gateway.yml", TAIL / "docker-compose.tail-sampling.yml"]
    result = subprocess.run(["docker", "compose", *[a for f in files for a in ("-f", str(f))], "--env-file",
                             str(env_file), "config"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    services = yaml.safe_load(result.stdout)["services"]
    for name in ("otel-collector", "gateway"):
        mounted = {v["target"]: v["source"] for v in services[name]["volumes"] if v["type"] == "bind"}
        configs = [arg.split("=", 1)[1] for arg in services[name]["command"]]
        assert configs and all(config in mounted for config in configs), (name, configs, mounted)
        assert all(Path(mounted[c]).is_file() for c in configs)
