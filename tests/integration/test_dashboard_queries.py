"""Every panel query of every provisioned dashboard returns data after the demo workload,
run against the backends the panels' datasources point at."""

from __future__ import annotations

import json
import uuid

import pytest

from conftest import eventually
from lab import REPO

PANELS = [(board.name, panel["title"], target)
          for board in sorted((REPO / "grafana/dashboards").glob("*.json"))
          for panel in json.loads(board.read_text())["panels"]
          for target in panel["targets"]]


@pytest.fixture(scope="module")
def workload(lab):
    # long enough for several metric exports, so that rate() has two samples to work with
    lab.run_etl(f"panels-etl-{uuid.uuid4().hex[:8]}", runs=4, interval=2.5)  # the Data Pipeline dashboard
    return lab.run_demo(f"panels-{uuid.uuid4().hex[:8]}", requests_count=25, interval=0.3)


@pytest.mark.parametrize("board, title, target", PANELS, ids=[f"{b}:{t}:{x['refId']}" for b, t, x in PANELS])
def test_panel_query_returns_data(lab, workload, board, title, target):
    uid = target["datasource"]["uid"]
    if uid == "prometheus":
        assert eventually(lambda: lab.promql(target["expr"]), timeout=120), target["expr"]
    elif uid == "loki":
        assert eventually(lambda: lab.loki_query(target["expr"]), timeout=60), target["expr"]
    else:  # Tempo's service map panel is drawn from the service graph series in Prometheus
        assert target["queryType"] == "serviceMap"
        assert eventually(lambda: lab.promql("traces_service_graph_request_total"), timeout=120)
