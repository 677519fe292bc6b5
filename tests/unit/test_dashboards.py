import json
import os
import re
import subprocess
import sys

from lab import REPO

DASHBOARDS = REPO / "grafana/dashboards"
DATASOURCE_UIDS = {"prometheus", "loki", "tempo"}


def test_checked_in_dashboards_match_their_generator(tmp_path):
    copy = tmp_path / "generate.py"
    copy.write_text((DASHBOARDS / "generate.py").read_text())
    subprocess.run([sys.executable, str(copy)], check=True, env={
        **os.environ, "OBSLAB_COLLECTOR_CONFIG": str(DASHBOARDS.parent.parent / "otel-collector/config.yaml")})
    for generated in tmp_path.glob("*.json"):
        assert generated.read_text() == (DASHBOARDS / generated.name).read_text(), generated.name


def test_dashboards_have_stable_uids_known_datasources_and_no_ids():
    boards = [json.loads(p.read_text()) for p in sorted(DASHBOARDS.glob("*.json"))]
    assert {b["title"] for b in boards} == {"Agent Performance", "LLM Cost", "Service Overview", "Lab Health",
                                            "Data Pipeline"}
    assert len({b["uid"] for b in boards}) == 5 and all(b["uid"].startswith("obslab-") for b in boards)
    for board in boards:
        assert "id" not in board
        for panel in board["panels"]:
            assert panel["datasource"]["uid"] in DATASOURCE_UIDS
            assert all(t["datasource"]["uid"] in DATASOURCE_UIDS for t in panel["targets"])


REACT_PANELS = {"timeseries", "stat", "gauge", "bargauge", "table", "barchart", "logs", "traces", "nodeGraph", "text",
                "alertlist"}


def _boards() -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(DASHBOARDS.glob("*.json"))]


# The dashboard schema of Grafana 12.0, which grafana-foundation-sdk's models are generated for; a
# release migrates an older schema forward, never a newer one back, so the lab's Grafana must know it.
LIBRARY_SCHEMA, LIBRARY_SCHEMA_GRAFANA = 41, 12


def test_dashboards_use_react_panels_and_a_schema_the_labs_grafana_loads():
    compose = (REPO / "docker-compose.observability.yml").read_text()
    grafana_major = int(re.search(r"image: grafana/grafana:(\d+)\.", compose).group(1))
    assert grafana_major >= LIBRARY_SCHEMA_GRAFANA
    for board in _boards():
        assert board["schemaVersion"] <= LIBRARY_SCHEMA, board["uid"]  # newer releases migrate forward, not back
        assert {p["type"] for p in board["panels"]} <= REACT_PANELS, board["uid"]


def test_no_query_passes_by_construction():
    for board in _boards():
        for panel in board["panels"]:
            for target in panel["targets"]:
                text = target.get("expr", "") + target.get("serviceMapQuery", "")
                assert "vector(" not in text, (board["uid"], panel["title"])
                assert '=~".+"' not in text and '=~".*"' not in text, (board["uid"], panel["title"])


def test_dashboards_of_services_filter_by_service_and_environment_variables():
    for board in _boards():
        if board["uid"] == "obslab-lab-health":  # the lab's own components, not the user's services
            continue
        assert [v["name"] for v in board["templating"]["list"]] == ["service", "environment"], board["uid"]
        for panel in board["panels"]:
            for target in panel["targets"]:
                text = target.get("expr", "") + target.get("serviceMapQuery", "")
                assert "$service" in text, (board["uid"], panel["title"])


# --- Dashboards that tell the truth: what a panel shows, in which unit, and counters never raw ---

def _panels():
    for board in _boards():
        for panel in board["panels"]:
            yield board["uid"], panel


def _promql_targets(panel: dict) -> list[str]:
    return [t["expr"] for t in panel["targets"] if t["datasource"]["uid"] == "prometheus"]


PROMQL_WORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "offset", "and", "or",
                "unless"}


def _metrics(expr: str) -> list[str]:
    """The metric names a PromQL expression reads (a ``__name__`` regex counts as one name)."""
    names = re.findall(r'__name__=~?"([^"]+)"', expr)
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # string literals
    text = re.sub(r"\{[^}]*\}|\[[^\]]*\]", " ", text)  # label matchers, range windows
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)  # label lists
    names += [n for n in re.findall(r"(?<![\w.$])([a-zA-Z_:][\w:]*)\b(?!\s*\()", text) if n not in PROMQL_WORDS]
    return names


def _function_around(expr: str, metric: str) -> str | None:
    """The function a metric's selector is passed to directly (``rate``, ``increase``...), else None."""
    if metric.startswith("otelcol") and f'__name__=~"{metric}"' in expr:
        index = expr.index("{__name__")
    else:
        index = re.search(rf"(?<![\w:]){re.escape(metric)}(?![\w:])", expr).start()
    call = re.search(r"(\w+)\(\s*$", expr[:index])
    return call.group(1) if call else None


def test_the_promql_reader_of_these_tests_finds_metrics_and_their_functions():
    expr = ('sum by (error_type) (rate(x_count{a=~"$service", b!="y"}[5m])) / on () group_left () '
            'sum(increase(cost_total{c="d"}[$__range])) / 1000 + max by (job) (mem_bytes)')
    assert _metrics(expr) == ["x_count", "cost_total", "mem_bytes"]
    # max by (job) (mem_bytes): an aggregation, no function called right around the selector
    assert [_function_around(expr, m) for m in _metrics(expr)] == ["rate", "increase", None]
    regex = 'sum by (exporter) (increase({__name__=~"otelcol_exporter_send_failed_(spans|log_records)"}[5m]))'
    assert [_function_around(regex, m) for m in _metrics(regex)] == ["increase"]


def _is_counter(metric: str) -> bool:
    """OpenTelemetry counters (and histograms' buckets, sums and counts) in Prometheus; the collector's
    own counters carry no _total suffix."""
    return (re.search(r"_(total|count|sum|bucket)$", metric) is not None
            or re.match(r"otelcol_(receiver_(accepted|refused)|exporter_send_failed)_", metric) is not None)


def _source_names(panel: dict) -> list[str]:
    """What a panel's description must name: its metrics, or the datasource for logs."""
    names = []
    for target in panel["targets"]:
        if target.get("queryType") == "serviceMap":
            names.append("traces_service_graph_request_total")
        elif target["datasource"]["uid"] == "loki":
            names.append("Loki")
        else:  # a __name__ regex is named by its literal prefix
            names += [re.split(r"[(|.*+?\[]", m)[0] for m in _metrics(target["expr"])]
    return names


def test_every_panel_has_a_description_naming_its_metric():
    for uid, panel in _panels():
        description = panel.get("description", "")
        assert len(description.split()) >= 8, (uid, panel["title"], "describe what the panel shows")
        for name in _source_names(panel):
            assert name in description, (uid, panel["title"], f"the description does not name {name}")


# The unit of an OpenTelemetry metric, from the suffix its Prometheus name carries, or known here.
UNIT_SUFFIXES = {"_seconds": "s", "_milliseconds": "ms", "_bytes": "bytes", "_percent": "percent"}
KNOWN_UNITS = {"agent_llm_estimated_cost": "USD", "obslab_gen_ai_client_cost": "USD",  # unit {USD}
               "obslab_gen_ai_client_cache_savings": "USD",
               "otelcol_process_memory_rss": "bytes",  # the collector's own: unit By, exported without a suffix
               # the lab's disk queues count bytes (sizer: bytes, otel-collector/config.yaml)
               "otelcol_exporter_queue_size": "bytes", "otelcol_exporter_queue_capacity": "bytes"}
# Which Grafana units may show a quantity. "count:<noun>" is Grafana's custom count unit.
GRAFANA_UNITS = {
    "count": {"short", "none", "locale"}, "count/s": {"reqps", "ops", "cps", "rowsps", "recps", "eps", "mps"},
    "s": {"s"}, "ms": {"ms"}, "bytes": {"bytes", "decbytes"}, "bytes/s": {"Bps", "binBps"},
    "percent": {"percent"}, "ratio": {"percentunit"}, "USD": {"currencyUSD"},
}


def _metric_quantity(metric: str) -> str:
    if metric.endswith("_count") and not metric.startswith("otelcol"):
        return "count"  # a histogram's number of observations
    base = re.sub(r"_(total|sum|bucket)$", "", metric)
    if base in KNOWN_UNITS:
        return KNOWN_UNITS[base]
    return next((unit for suffix, unit in UNIT_SUFFIXES.items() if base.endswith(suffix)), "count")


def _quantity(expr: str) -> str:
    """What a PromQL expression measures: its metrics' unit, per second under rate(), a ratio for a
    quotient of two like quantities (or of a per-second time by the milliseconds in a second)."""
    parts = re.split(r"\s/\s", expr)
    if len(parts) == 2:
        numerator, denominator = _quantity(parts[0]), parts[1].strip()
        if denominator == "1000" and numerator == "ms/s":
            return "ratio"
        return "ratio" if numerator == _quantity(denominator) else f"{numerator}/({denominator})"
    units = {_metric_quantity(m) for m in _metrics(expr)}
    assert len(units) == 1, f"{expr} mixes {units}"
    unit = units.pop()
    if expr.startswith("histogram_quantile("):
        return unit
    functions = {_function_around(expr, m) for m in _metrics(expr)}
    per_second = f"{unit}/s" if functions & {"rate", "irate"} else unit
    return "ratio" if per_second == "s/s" else per_second  # seconds (of CPU, say) per second: a share


def _unit_fits(quantity: str, unit: str) -> bool:
    if unit in GRAFANA_UNITS.get(quantity, ()):
        return True
    custom = re.fullmatch(r"count:(\w+)(/s)?", unit)  # e.g. count:tokens/s
    return custom is not None and quantity == ("count/s" if custom.group(2) else "count")


def test_every_panel_has_one_unit():
    for uid, panel in _panels():
        exprs = _promql_targets(panel)
        if not exprs:  # logs, the service graph and the alert list: Grafana draws their values itself
            assert panel["type"] in {"logs", "nodeGraph", "alertlist"}, (uid, panel["title"])
            continue
        unit = panel["fieldConfig"]["defaults"].get("unit")
        assert unit, (uid, panel["title"], "no unit")
        assert not any(p["id"] == "unit" for o in panel["fieldConfig"]["overrides"] for p in o["properties"]), \
            (uid, panel["title"], "a second unit in an override")
        quantities = {_quantity(expr) for expr in exprs}
        assert len(quantities) == 1, (uid, panel["title"], f"targets of different units: {quantities}")
        assert _unit_fits(quantities.pop(), unit), (uid, panel["title"], f"{unit} for {_quantity(exprs[0])}")


def test_counters_are_shown_as_increase_or_rate_never_raw():
    for uid, panel in _panels():
        for expr in _promql_targets(panel):
            for metric in filter(_is_counter, _metrics(expr)):
                assert _function_around(expr, metric) in {"rate", "increase"}, \
                    (uid, panel["title"], f"{metric} shown as a raw cumulative value")
            if panel["type"] != "timeseries":  # one number for the dashboard's time range
                assert re.findall(r"\[[^\]]*\]", expr) and set(re.findall(r"\[[^\]]*\]", expr)) == {"[$__range]"}, \
                    (uid, panel["title"], "a stat over the selected range reads its counters over [$__range]")
                assert all(t.get("instant") for t in panel["targets"]), (uid, panel["title"])


def test_cost_is_shown_in_dollars_over_the_selected_range():
    cost_panels = [(uid, p) for uid, p in _panels()
                   if any(_metric_quantity(m) == "USD" for e in _promql_targets(p) for m in _metrics(e))]
    assert len(cost_panels) == 3  # the helpers' estimate, the price table's cost, what cache reads saved
    for uid, panel in cost_panels:
        assert panel["fieldConfig"]["defaults"]["unit"] == "currencyUSD", (uid, panel["title"])
        assert all("increase(" in e and "[$__range]" in e for e in _promql_targets(panel)), (uid, panel["title"])


def test_agent_performance_and_llm_cost_keep_three_panels_a_row_in_the_first_screenful():
    for board in _boards():
        if board["uid"] in {"obslab-agent-performance", "obslab-llm-cost"}:
            assert {p["gridPos"]["w"] for p in board["panels"]} == {8}, board["uid"]
            assert max(p["gridPos"]["y"] + p["gridPos"]["h"] for p in board["panels"]) <= 24, board["uid"]


# --- Span metrics: the names and labels the collector's spanmetrics connector writes ---

SPAN_METRICS = {"traces_spanmetrics_calls_total", "traces_spanmetrics_duration_seconds_bucket",
                "traces_spanmetrics_duration_seconds_sum", "traces_spanmetrics_duration_seconds_count"}
# The connector's labels; deployment_environment is the deployment.environment dimension the Service
# Overview's Environment variable reads (Tempo's span metrics carried it as a configured dimension too).
SPAN_METRIC_LABELS = {"service", "span_name", "span_kind", "status_code", "service_name", "job",
                      "deployment_environment"}


def _span_metric_selectors(expr: str) -> list[tuple[str, set[str]]]:
    """(metric, labels matched) of every span metric selector in a PromQL expression."""
    return [(name, set(re.findall(r"(\w+)\s*(?:=~|!~|!=|=)", matchers or "")))
            for name, matchers in re.findall(r"(traces_spanmetrics_\w+)(?:\{([^}]*)\})?", expr)]


def test_span_metrics_are_read_by_the_connectors_names_and_labels():
    import yaml

    tempo = next(d for d in yaml.safe_load((REPO / "grafana/provisioning/datasources/datasources.yaml").read_text())
                 ["datasources"] if d["uid"] == "tempo")["jsonData"]["tracesToMetrics"]
    exprs = [q["query"] for q in tempo["queries"]]
    assert {t["value"] for t in tempo["tags"]} <= SPAN_METRIC_LABELS  # what $__tags matches on
    for board in _boards():
        exprs += [e for panel in board["panels"] for e in _promql_targets(panel)]
        exprs += [v["query"] for v in board["templating"]["list"]]
    selectors = [s for e in exprs for s in _span_metric_selectors(e)]
    assert {"traces_spanmetrics_calls_total", "traces_spanmetrics_duration_seconds_bucket"} <= {n for n, _ in selectors}
    for name, labels in selectors:
        assert name in SPAN_METRICS, name
        assert labels <= SPAN_METRIC_LABELS, (name, labels - SPAN_METRIC_LABELS)
    for board in _boards():  # a variable's label_values(metric, label) reads one of those labels
        for variable in board["templating"]["list"]:
            metric, label = re.fullmatch(r"label_values\((\w+), (\w+)\)", variable["query"]).groups()
            assert not metric.startswith("traces_spanmetrics_") or label in SPAN_METRIC_LABELS, variable["query"]


def test_lab_health_lists_the_firing_alerts_and_the_panels_the_alerts_link_to_exist():
    import yaml

    board = next(b for b in _boards() if b["uid"] == "obslab-lab-health")
    alert_list = [p for p in board["panels"] if p["type"] == "alertlist"]
    assert len(alert_list) == 1 and alert_list[0]["options"]["stateFilter"]["firing"]
    boards = {b["uid"]: b for b in _boards()}
    rules = [r for g in yaml.safe_load((REPO / "prometheus/rules/obslab-alerts.yml").read_text())["groups"]
             for r in g["rules"]]
    recorded = {r["record"]: r["expr"] for r in rules if "record" in r}
    for alert in (r for r in rules if "alert" in r):
        link = re.search(r"\}/d/([\w-]+)/[\w-]+\?viewPanel=panel-(\d+)", alert["annotations"]["dashboard"])
        assert link, alert["alert"]
        panel = next(p for p in boards[link.group(1)]["panels"] if p["id"] == int(link.group(2)))
        # The panel shows a metric the alert reads, directly or through the recording rules it reads.
        expr = alert["expr"] + " ".join(e for name, e in recorded.items() if name in alert["expr"])
        read = {m for m in _metrics(expr) if not m.startswith("obslab:") and ":" not in m}
        shown = {m for target in _promql_targets(panel) for m in _metrics(target)}
        assert any(re.fullmatch(name, metric) for name in shown for metric in read), \
            (alert["alert"], panel["title"], read, shown)  # a __name__ regex of the panel counts
