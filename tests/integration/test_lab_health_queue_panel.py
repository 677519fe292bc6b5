"""The Lab Health "Exporter queue" panel, evaluated by the lab's Prometheus (``promtool test rules``):
a queue that is full reads as full, also where one exporter has a queue per signal (the forwarding
exporter, otel-collector/forward/: three queues of 256 MiB, one each for traces, logs and metrics)."""

from __future__ import annotations

import json
import subprocess

import yaml

from lab import REPO, image

FULL = 268435456  # a queue's bound, otel-collector/config.yaml


def _queue_panel_exprs() -> dict[str, str]:
    """The panel's queries by what they show ("size", "capacity")."""
    dashboard = json.loads((REPO / "grafana/dashboards/lab-health.json").read_text())
    (panel,) = [panel for panel in dashboard["panels"] if panel.get("title") == "Exporter queue"]
    return {target["legendFormat"].split()[-1]: target["expr"] for target in panel["targets"]}


def test_the_exporter_queue_panel_shows_a_full_queue_full_when_an_exporter_has_one_queue_per_signal(tmp_path):
    exprs = _queue_panel_exprs()
    forward = 'job="otel-collector", instance="otel-collector:8888", exporter="otlp_http/forward"'
    series = [{"series": f'otelcol_exporter_queue_{gauge}{{{forward}, data_type="{signal}"}}',
               "values": f"{value}x10"}
              for signal, size in (("logs", FULL), ("traces", 0), ("metrics", 0))
              for gauge, value in (("size", size), ("capacity", FULL))]
    tests = {"rule_files": [], "evaluation_interval": "1m", "tests": [{
        "interval": "1m", "input_series": series,
        # the fullest queue the panel shows, as its size line over its capacity line
        "promql_expr_test": [{"expr": f"max(({exprs['size']}) / ({exprs['capacity']}))", "eval_time": "5m",
                              "exp_samples": [{"labels": "{}", "value": 1}]}]}]}
    (tmp_path / "panel.test.yml").write_text(yaml.safe_dump(tests))
    tmp_path.chmod(0o755)  # promtool runs as the image's user (nobody)
    (tmp_path / "panel.test.yml").chmod(0o644)
    result = subprocess.run(["docker", "run", "--rm", "--network", "none", "-v", f"{tmp_path}:/t:ro",
                             "--entrypoint", "/bin/promtool", image("prometheus"), "test", "rules",
                             "/t/panel.test.yml"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and "SUCCESS" in result.stdout, result.stdout + result.stderr
