"""Tail sampling across gateways (scaling/tail-sampling/): the gateways run the lab collector's own
tail_sampling processor (in the stand-in, tested in the single collector by test_metrics_from_traces),
behind an agent whose load_balancing exporter the lab's local stand-in lacks.

The agent's validation is marked ``official_images("otel-collector-contrib")``: it runs wherever the
collector image present lists that component (`otelcol-contrib components`) and is deselected,
counted in the summary's NOT RUN line, where it does not (tests/integration/conftest.py,
COMPONENT_SETS). What runs everywhere: the gateway's config validates, and the compose override
resolves onto files that exist.
"""

import subprocess
from pathlib import Path

import pytest
import yaml

from lab import COMPOSE_FILE, REPO, env_example, image, isolated_env

TAIL = REPO / "scaling/tail-sampling"
OFFICIAL = pytest.mark.official_images("otel-collector-contrib")


def _validate(*configs: str, tmp_path=None, replace: tuple[str, str] | None = None,
              percentage: str | None = None) -> subprocess.CompletedProcess:
    """``otelcol-contrib validate`` of configs (paths in the repo) merged in order, in the lab's collector image,
    at ``percentage`` (default: .env.example's SAMPLING_PERCENTAGE)."""
    mounts, args = [], []
    for index, config in enumerate(configs):
        source = REPO / config
        if replace and config == configs[-1]:
            source = tmp_path / "broken.yaml"
            source.write_text((REPO / config).read_text().replace(*replace))
        mounts += ["-v", f"{source}:/c/{index}.yaml:ro"]
        args.append(f"--config=/c/{index}.yaml")
    env = env_example()
    return subprocess.run(["docker", "run", "--rm", *mounts, "-e", f"SAMPLING_PERCENTAGE={percentage or env['SAMPLING_PERCENTAGE']}",
                           "-e", f"SLOW_TRACE_MS={env['SLOW_TRACE_MS']}", "-e", "HOSTNAME=gateway-1",
                           "-e", f"DEFAULT_ENVIRONMENT={env['DEFAULT_ENVIRONMENT']}", image("otel-collector"),
                           "validate", *args], capture_output=True, text=True, timeout=120)


@OFFICIAL
def test_the_tail_sampling_agent_config_passes_otelcol_validate():
    result = _validate("otel-collector/agent.yaml", "scaling/tail-sampling/agent.yaml")
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("percentage", ["100", "10"])  # each puts the other traces pipeline in use
@pytest.mark.parametrize("tier", ["otel-collector/gateway.yaml", "scaling/tail-sampling/gateway.yaml"])
def test_the_gateway_configs_pass_otelcol_validate_at_and_below_100(tier, percentage):
    configs = ["otel-collector/config.yaml", "otel-collector/gateway.yaml"]
    result = _validate(*dict.fromkeys([*configs, tier]), percentage=percentage)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_collector_refuses_to_start_with_an_unknown_tail_sampling_policy(tmp_path):
    """`validate` passes an unknown policy type (the processor checks its policies when it starts):
    the collector itself stops at start with the policy named, rather than running without it."""
    broken = tmp_path / "config.yaml"
    broken.write_text((REPO / "otel-collector/config.yaml").read_text().replace("type: status_code",
                                                                                 "type: no_such_policy"))
    result = subprocess.run(["docker", "run", "--rm", "--tmpfs", "/var/lib/otelcol:uid=10001,gid=10001",
                             "-v", f"{broken}:/c.yaml:ro", "-e", "SAMPLING_PERCENTAGE=10", "-e", "SLOW_TRACE_MS=1000",
                             "-e", "DEFAULT_ENVIRONMENT=dev", image("otel-collector"), "--config=/c.yaml"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode != 0 and "unknown sampling policy type no_such_policy" in result.stdout + result.stderr


def test_the_tail_sampling_gateway_runs_the_single_collectors_tail_sampler():
    """One definition of the policies: the gateway's pipeline names config.yaml's tail_sampling."""
    printed = subprocess.run(["docker", "run", "--rm", *[a for i, c in enumerate(
        ("otel-collector/config.yaml", "otel-collector/gateway.yaml", "scaling/tail-sampling/gateway.yaml"))
        for a in ("-v", f"{REPO / c}:/c/{i}.yaml:ro")], "-e", "SAMPLING_PERCENTAGE=10", "-e", "SLOW_TRACE_MS=1000",
        "-e", "DEFAULT_ENVIRONMENT=dev", "-e", "HOSTNAME=gateway-1", image("otel-collector"), "print-config",
        "--config=/c/0.yaml", "--config=/c/1.yaml", "--config=/c/2.yaml"], capture_output=True, text=True, timeout=120)
    assert printed.returncode == 0, printed.stderr
    config = yaml.safe_load(printed.stdout)
    assert config["service"]["pipelines"]["traces/tail-sampled"]["processors"] == [
        "memory_limiter", "filter/off-at-100", "resource", "resource/gateway", "tail_sampling"]
    assert config["processors"]["tail_sampling"]["decision_wait"] == "10s"


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
