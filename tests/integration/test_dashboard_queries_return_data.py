"""Every Prometheus panel query of the provisioned dashboards, run as Grafana would run it against the
real Prometheus after the demo workload, returns data. The queries come from the dashboards'
generator (grafana/dashboards/generate.py), variables set to the workload's services."""

from __future__ import annotations

import pytest

from conftest import eventually
from lab import repo_module


GENERATOR = repo_module("dashboards_generate", "grafana/dashboards/generate.py")
# Panels that read a backend's own metrics (Tempo's, Loki's ingest): they have data where it runs.
NEEDS = {"tempo_": "tempo", "loki_": "loki"}
# The tail sampler's panels have data below SAMPLING_PERCENTAGE=100 only (at 100, this lab's, spans skip
# it): test_metrics_from_traces checks them while its lab samples at 10 %.
QUERIES = [pytest.param(i, id=f"{query.uid}:{query.title}:{i}",
                        marks=[pytest.mark.official_images(service) for prefix, service in NEEDS.items()
                               if prefix in query.expr])
           for i, query in enumerate(GENERATOR.prometheus_panel_queries())
           if "processor_tail_sampling" not in query.expr]


@pytest.fixture(scope="module")
def panel_queries(workload):
    """The panel queries with the workload's service names in the dashboards' Service variable."""
    values = {uid: {"service": [workload.etl if uid == "obslab-data-pipeline" else workload.agent],
                    "environment": ["development"]}
              for uid in GENERATOR.TEST_VALUES if uid != "obslab-lab-health"}
    return [query.expr for query in GENERATOR.prometheus_panel_queries(values)]


@pytest.mark.parametrize("index", QUERIES)
def test_prometheus_panel_query_returns_data_after_the_workload(lab, panel_queries, index):
    expr = panel_queries[index]
    assert "vector(0)" not in expr  # nothing that returns data by construction
    result = eventually(lambda: lab.promql(expr), timeout=90, interval=3)
    assert all(len(series["value"]) == 2 for series in result), result
