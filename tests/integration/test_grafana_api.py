"""The lab through Grafana's own HTTP API, after the demo workload: provisioned datasources and
dashboards, every panel query, and the links between logs, traces and metrics."""

from __future__ import annotations

import secrets
import subprocess
import time

import pytest
import requests
from dotenv import set_key

from conftest import compose, eventually
from grafana import DASHBOARDS, Grafana, derived_trace_ids, interpolate, log_rows
from lab import isolated_env

pytestmark = pytest.mark.official_images("grafana", "tempo", "loki")  # Grafana over all three

# Which workload service each dashboard's service variable is set to in these tests.
SERVICE_OF = {"obslab-agent-performance": "agent", "obslab-llm-cost": "agent",
              "obslab-service-overview": "agent", "obslab-data-pipeline": "etl"}
PANEL_TARGETS = [(uid, panel["title"], target) for uid, board in DASHBOARDS.items()
                 for panel in board["panels"] for target in panel["targets"]]


@pytest.fixture(scope="module")
def grafana(lab) -> Grafana:
    return Grafana(lab.grafana, lab.grafana_auth)


def _variables(grafana: Grafana, board: dict, workload) -> dict[str, list[str]]:
    """The dashboard's variables as a user would set them: the workload's service, every environment.

    Each variable's values come from its own label_values query, run through Grafana."""
    chosen = {}
    for variable in board["templating"]["list"]:
        metric, label = variable["query"].removeprefix("label_values(").removesuffix(")").split(", ")
        values = eventually(lambda: grafana.label_values(label, metric), timeout=120)
        if variable["name"] == "service":
            service = getattr(workload, SERVICE_OF[board["uid"]])
            eventually(lambda: service in grafana.label_values(label, metric), timeout=120)
            values = [service]
        chosen[variable["name"]] = values
    return chosen


def test_datasources_exist_with_their_fixed_uids(grafana):
    sources = grafana.get("/api/datasources").json()
    assert {d["uid"]: d["type"] for d in sources} == {"prometheus": "prometheus", "loki": "loki", "tempo": "tempo",
                                                      "alertmanager": "alertmanager"}


@pytest.mark.parametrize("uid", ["prometheus", "loki", "tempo"])
def test_datasource_health_check_through_grafana_passes(grafana, workload, uid):
    response = grafana.get(f"/api/datasources/uid/{uid}/health")
    if response.status_code == 200:
        assert response.json()["status"] == "OK", response.text
        return
    # Grafana 10.0 has no backend health check for Loki and Tempo (404 for an existing datasource):
    # its "Save & test" button runs these requests from the browser instead, and so does this test.
    assert response.status_code == 404 and grafana.datasource(uid)["type"] == uid, response.text
    if uid == "loki":  # the labels of the last 10 minutes, as Grafana 10.0's test asks
        now = time.time_ns()
        labels = grafana.get("/api/datasources/uid/loki/resources/labels", start=now - 600 * 10**9, end=now)
        assert labels.status_code == 200 and labels.json()["data"], labels.text
    else:
        assert grafana.get(f"/api/datasources/proxy/uid/{uid}/api/echo").status_code == 200


def test_every_provisioned_dashboard_loads_by_uid(grafana):
    found = {d["uid"] for d in grafana.get("/api/search", type="dash-db").json()}
    assert set(DASHBOARDS) <= found
    for uid, board in DASHBOARDS.items():
        served = grafana.get(f"/api/dashboards/uid/{uid}").json()
        assert served["meta"]["provisioned"], uid
        assert [p["title"] for p in served["dashboard"]["panels"]] == [p["title"] for p in board["panels"]]


@pytest.mark.parametrize("uid, title, target", PANEL_TARGETS,
                         ids=[f"{u.removeprefix('obslab-')}:{t}:{x['refId']}" for u, t, x in PANEL_TARGETS])
def test_panel_query_returns_frames_with_data(grafana, workload, uid, title, target):
    variables = _variables(grafana, DASHBOARDS[uid], workload)
    if target.get("queryType") == "serviceMap":
        # Grafana draws the service graph from these series of the Prometheus datasource it names.
        datasource = grafana.datasource("tempo")["jsonData"]["serviceMap"]["datasourceUid"]
        selector = interpolate(target["serviceMapQuery"], variables)
        query = {"expr": f"sum by (client, server) (rate(traces_service_graph_request_total{selector}[1h]))",
                 "instant": True, "range": False}
    elif target["datasource"]["uid"] == "loki":
        datasource, query = "loki", {"expr": interpolate(target["expr"], variables), "queryType": "range",
                                     "maxLines": 100}
    else:
        # As the panel runs it: a stat panel an instant query over the whole time range ($__range,
        # which Grafana's backend fills in), a time series a range query.
        instant = bool(target.get("instant"))
        datasource, query = "prometheus", {"expr": interpolate(target["expr"], variables), "range": not instant,
                                           "instant": instant}
    frames = eventually(lambda: [f for f in grafana.query(datasource, query) if f.has_data], timeout=120)
    assert frames, query


def test_log_line_trace_link_leads_to_a_trace_tempo_returns(grafana, workload):
    board = DASHBOARDS["obslab-service-overview"]
    logs_panel = next(p for p in board["panels"] if p["type"] == "logs")
    expr = interpolate(logs_panel["targets"][0]["expr"], _variables(grafana, board, workload))
    rows = eventually(lambda: [r for r in log_rows(grafana.query("loki", {"expr": expr, "queryType": "range"}))
                               if r[1].get("trace_id")])
    line, labels = rows[0]
    derived_fields = grafana.datasource("loki")["jsonData"]["derivedFields"]
    links = derived_trace_ids(line, labels, derived_fields)
    # One link per line: the one derived field, matched by the trace_id label (structured metadata).
    assert links == {"trace_id": labels["trace_id"]}, (line, links)
    spans = eventually(lambda: grafana.trace(links["trace_id"]))
    assert {s["traceID"].rjust(32, "0") for s in spans} == {labels["trace_id"]}


def test_trace_to_logs_query_returns_that_traces_logs(grafana, workload):
    trace_id = workload.requests[0]["trace_id"]
    root = next(s for s in eventually(lambda: grafana.trace(trace_id)) if not s["parentSpanID"])
    settings = grafana.datasource("tempo")["jsonData"]["tracesToLogsV2"]
    # What Grafana's trace view builds: mapped resource tags, then the custom query.
    tags = ", ".join(f'{m.get("value") or m["key"]}="{t["value"]}"'
                     for m in settings["tags"] for t in root["serviceTags"] if t["key"] == m["key"])
    query = settings["query"].replace("${__tags}", tags).replace("${__span.traceId}", root["traceID"])
    start, end = int(root["startTime"] - 5 * 60_000), int(root["startTime"] + root["duration"] + 5 * 60_000)
    rows = eventually(lambda: log_rows(grafana.query("loki", {"expr": query, "queryType": "range"},
                                                     start=str(start), end=str(end))))
    assert {labels["trace_id"] for _, labels in rows} == {trace_id}
    assert "request received" in {line for line, _ in rows}


@pytest.mark.parametrize("series", ["traces_spanmetrics_latency_bucket{{service=\"{agent}\"}}",
                                    "agent_llm_latency_milliseconds_bucket{{service_name=\"{agent}\"}}"])
def test_latency_exemplar_leads_to_a_trace_tempo_knows(grafana, workload, series):
    expr = series.format(agent=workload.agent)
    destinations = [d["name"] for d in grafana.datasource("prometheus")["jsonData"]["exemplarTraceIdDestinations"]]
    frames = eventually(lambda: [f for f in grafana.query("prometheus", {"expr": expr, "range": True,
                                                                          "exemplar": True})
                                 if f.name == "exemplar" and f.has_data], timeout=120)
    field = next(name for name in destinations if frames[0].has(name))
    trace_id = frames[0].column(field)[0]
    assert eventually(lambda: grafana.trace(trace_id))


def test_changed_admin_password_takes_effect_at_restart(lab):
    user, old = lab.grafana_auth
    new = secrets.token_urlsafe(16)
    set_key(lab.env_file, "GRAFANA_ADMIN_PASSWORD", new, quote_mode="never")
    try:
        lab.compose("up", "-d", "--wait", "--force-recreate", "grafana")  # compose does not see a secret change
        assert requests.get(f"{lab.grafana}/api/user", auth=(user, new), timeout=5).status_code == 200
        assert requests.get(f"{lab.grafana}/api/user", auth=(user, old), timeout=5).status_code == 401
    finally:
        set_key(lab.env_file, "GRAFANA_ADMIN_PASSWORD", old, quote_mode="never")
        lab.compose("up", "-d", "--wait", "--force-recreate", "grafana")
    assert requests.get(f"{lab.grafana}/api/user", auth=(user, old), timeout=5).status_code == 200


def test_anonymous_access_is_refused_when_the_lab_binds_beyond_loopback(lab, tmp_path):
    # The address of Docker's bridge, docker0: not loopback, yet reachable from this machine only.
    ip = subprocess.run(["ip", "-4", "-o", "addr", "show", "docker0"], capture_output=True, text=True, check=True)
    bridge = ip.stdout.split()[3].split("/")[0]
    env_file = tmp_path / ".env"
    env = isolated_env(env_file, OBSLAB_BIND_ADDRESS=bridge, GRAFANA_ANONYMOUS_ENABLED="true")
    project = f"{lab.project}anon"
    try:
        compose(project, env_file, "up", "-d", "--wait", "--no-deps", "grafana")
        assert requests.get(f"http://{bridge}:{env['GRAFANA_PORT']}/api/search", timeout=5).status_code == 401
        assert "anonymous access turned off" in compose(project, env_file, "logs", "grafana").stdout
    finally:
        compose(project, env_file, "down", "-v")
    # On loopback, with the same setting, anonymous viewers are let in (read-only).
    assert requests.get(f"{lab.grafana}/api/search", timeout=5).status_code == 200
