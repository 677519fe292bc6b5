"""The alert rules and Alertmanager's config pass their own tools, run from the lab's images: the rendering
of .env (prometheus/render-alerting.sh, the compose one-shot `alerting-config`), `promtool check rules`,
the rules' `promtool test rules` unit tests (prometheus/tests/), and `amtool check-config`."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from lab import REPO, env_example, image

RULES = REPO / "prometheus/rules/obslab-alerts.yml"
RULE_TESTS = REPO / "prometheus/tests"


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(args, capture_output=True, text=True, timeout=180)


def render(out: Path, **settings: str) -> subprocess.CompletedProcess:
    """Run render-alerting.sh as the compose one-shot does (same image, mounts, user), with .env.example's
    values overridden by ``settings``; its files land in ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    env = {**env_example(), **settings}
    names = ("OBSLAB_SLO_AVAILABILITY", "OBSLAB_SLO_LATENCY_MS", "OBSLAB_LLM_BUDGET_USD_PER_DAY",
             "OBSLAB_ALERT_WEBHOOK_URL", "OBSLAB_ALERT_FOR", "OBSLAB_RULE_EVALUATION_INTERVAL",
             "OBSLAB_BIND_ADDRESS", "GRAFANA_PORT")
    return _run("docker", "run", "--rm", "--network", "none", "--user", "0:0",
                "-v", f"{REPO}/prometheus/render-alerting.sh:/obslab/render-alerting.sh:ro",
                "-v", f"{REPO}/prometheus/rules:/obslab/rules:ro",
                "-v", f"{REPO}/alertmanager/alertmanager.yml:/obslab/alertmanager.yml:ro",
                "-v", f"{out}:/rendered", *[arg for name in names for arg in ("-e", f"{name}={env.get(name, '')}")],
                "--entrypoint", "/bin/sh", image("prometheus"), "/obslab/render-alerting.sh")


def promtool_test(rendered: Path, test_file: str) -> subprocess.CompletedProcess:
    """``promtool test rules`` of one file of prometheus/tests/, its rule_files read from ``rendered``."""
    return _run("docker", "run", "--rm", "--network", "none", "-v", f"{RULE_TESTS}:/t/tests:ro",
                "-v", f"{rendered}:/t/rendered:ro", "--entrypoint", "/bin/promtool", image("prometheus"),
                "test", "rules", f"/t/tests/{test_file}")


def amtool_check(config: Path) -> subprocess.CompletedProcess:
    return _run("docker", "run", "--rm", "--network", "none", "-v", f"{config}:/c/alertmanager.yml:ro",
                "--entrypoint", "/bin/amtool", image("alertmanager"), "check-config", "/c/alertmanager.yml")


def test_every_rule_fires_on_its_synthetic_series_and_stays_silent_on_healthy_ones(tmp_path):
    result = render(tmp_path, OBSLAB_LLM_BUDGET_USD_PER_DAY="2")
    assert result.returncode == 0, result.stderr
    result = promtool_test(tmp_path, "obslab-alerts.test.yml")
    assert result.returncode == 0 and "SUCCESS" in result.stdout, result.stdout + result.stderr


def test_the_llm_budget_alert_is_off_while_the_budget_is_unset(tmp_path):
    result = render(tmp_path)  # .env.example: OBSLAB_LLM_BUDGET_USD_PER_DAY empty
    assert result.returncode == 0, result.stderr
    assert "LLM budget off" in result.stdout
    result = promtool_test(tmp_path, "obslab-alerts-budget-off.test.yml")
    assert result.returncode == 0 and "SUCCESS" in result.stdout, result.stdout + result.stderr


def test_promtool_check_rules_accepts_the_rules_and_the_rendered_objectives(tmp_path):
    assert render(tmp_path, OBSLAB_LLM_BUDGET_USD_PER_DAY="10").returncode == 0
    result = _run("docker", "run", "--rm", "--network", "none", "-v", f"{RULES}:/r/obslab-alerts.yml:ro",
                  "-v", f"{tmp_path}/rules/objectives.yml:/r/objectives.yml:ro", "--entrypoint", "/bin/promtool",
                  image("prometheus"), "check", "rules", "/r/obslab-alerts.yml", "/r/objectives.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 19 rules found" in result.stdout and "SUCCESS: 4 rules found" in result.stdout, result.stdout


def test_promtool_check_rules_refuses_a_broken_rule(tmp_path):
    broken = tmp_path / "broken.yml"
    broken.write_text(RULES.read_text().replace("expr: up == 0", "expr: up == == 0"))
    result = _run("docker", "run", "--rm", "--network", "none", "-v", f"{broken}:/r/broken.yml:ro",
                  "--entrypoint", "/bin/promtool", image("prometheus"), "check", "rules", "/r/broken.yml")
    assert result.returncode != 0, result.stdout


def test_rendered_rules_are_the_checked_in_ones_unless_a_test_setting_shortens_for(tmp_path):
    assert render(tmp_path / "plain").returncode == 0
    assert (tmp_path / "plain/rules/obslab-alerts.yml").read_text() == RULES.read_text()
    assert render(tmp_path / "fast", OBSLAB_ALERT_FOR="5s", OBSLAB_RULE_EVALUATION_INTERVAL="5s").returncode == 0
    fast = (tmp_path / "fast/rules/obslab-alerts.yml").read_text().splitlines()
    checked_in = [line for line in RULES.read_text().splitlines()]
    assert [line for line in fast if "interval: 5s" not in line and "for: " not in line] == \
           [line for line in checked_in if "for: " not in line]
    assert sum("for: 5s" in line for line in fast) == sum(line.strip().startswith("for: ") for line in checked_in) == 11
    assert sum("interval: 5s" in line for line in fast) == 4  # each group of the file


@pytest.mark.parametrize("name, value", [
    ("OBSLAB_SLO_AVAILABILITY", "100"), ("OBSLAB_SLO_AVAILABILITY", "ninety"), ("OBSLAB_SLO_LATENCY_MS", "0"),
    ("OBSLAB_LLM_BUDGET_USD_PER_DAY", "a lot"), ("OBSLAB_ALERT_WEBHOOK_URL", "hooks.example.com"),
    ("OBSLAB_ALERT_FOR", "soon"),
])
def test_a_bad_value_stops_the_rendering_naming_its_variable(tmp_path, name, value):
    result = render(tmp_path, **{name: value})
    assert result.returncode != 0
    assert f"{name}={value}" in result.stderr, result.stderr


def test_amtool_check_config_accepts_alertmanager_config_with_and_without_a_webhook(tmp_path):
    result = amtool_check(REPO / "alertmanager/alertmanager.yml")
    assert result.returncode == 0 and "SUCCESS" in result.stdout, result.stdout + result.stderr
    assert render(tmp_path / "none").returncode == 0
    without = (tmp_path / "none/alertmanager.yml").read_text()
    assert "  receiver: lab " in without and (tmp_path / "none/webhook_url").read_text() == ""
    result = amtool_check(tmp_path / "none/alertmanager.yml")
    assert result.returncode == 0 and "SUCCESS" in result.stdout, result.stdout + result.stderr
    assert render(tmp_path / "hook", OBSLAB_ALERT_WEBHOOK_URL="https://hooks.example.com/obslab").returncode == 0
    assert (tmp_path / "hook/alertmanager.yml").read_text() == (REPO / "alertmanager/alertmanager.yml").read_text()
    assert (tmp_path / "hook/webhook_url").read_text() == "https://hooks.example.com/obslab"
    # A webhook URL often carries a token: only Alertmanager's user (nobody) may read it.
    mode = (tmp_path / "hook/webhook_url").stat()
    assert (mode.st_uid, mode.st_gid, mode.st_mode & 0o777) == (65534, 65534, 0o600)


def test_amtool_check_config_refuses_a_route_to_an_unknown_receiver(tmp_path):
    broken = tmp_path / "alertmanager.yml"
    broken.write_text((REPO / "alertmanager/alertmanager.yml").read_text().replace("receiver: webhook", "receiver: pager"))
    result = amtool_check(broken)
    assert result.returncode != 0 and "pager" in result.stdout + result.stderr


def test_amtool_routes_a_service_alert_to_the_webhook_and_groups_by_service():
    result = _run("docker", "run", "--rm", "--network", "none",
                  "-v", f"{REPO}/alertmanager/alertmanager.yml:/c/alertmanager.yml:ro",
                  "--entrypoint", "/bin/amtool", image("alertmanager"), "config", "routes", "test",
                  "--config.file=/c/alertmanager.yml", "--verify.receivers=webhook",
                  "alertname=ServiceErrorBudgetBurn", "service=payments")
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_readme_routing_example_passes_amtool_check_config(tmp_path):
    section = (REPO / "docs/alerts.md").read_text()
    example = section[section.index("```yaml\n") + len("```yaml\n"):section.index("```\n", section.index("```yaml"))]
    assert {"pagerduty_configs", "slack_configs", "email_configs"} <= set(example.split()) | {
        word.rstrip(":") for word in example.split()}
    (tmp_path / "alertmanager.yml").write_text(example)
    result = amtool_check(tmp_path / "alertmanager.yml")
    assert result.returncode == 0 and "SUCCESS" in result.stdout, result.stdout + result.stderr
