#!/usr/bin/env python3
"""Generate the provisioned dashboards (JSON as Grafana exports it: stable uids, datasource uids, no ids).

Run: python3 grafana/dashboards/generate.py   (rewrites the *.json files beside this script)
Edit the panels here, never the JSON.
"""
from __future__ import annotations

import json
from pathlib import Path

HERE = Path(__file__).resolve().parent
PROM = {"type": "prometheus", "uid": "prometheus"}
LOKI = {"type": "loki", "uid": "loki"}
TEMPO = {"type": "tempo", "uid": "tempo"}


def timeseries(title: str, exprs: dict[str, str], unit: str = "short", width: int = 12) -> dict:
    """A time series panel; ``exprs`` maps legend format to PromQL."""
    return {
        "type": "timeseries", "title": title, "datasource": PROM,
        "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
        "options": {"legend": {"displayMode": "list", "placement": "bottom", "showLegend": True}},
        "targets": [{"datasource": PROM, "expr": expr, "legendFormat": legend, "refId": chr(65 + i),
                     "exemplar": True}
                    for i, (legend, expr) in enumerate(exprs.items())],
        "gridPos": {"w": width, "h": 8},
    }


def stat(title: str, expr: str, unit: str = "short") -> dict:
    panel = timeseries(title, {"": expr}, unit, width=6)
    panel["type"] = "stat"
    panel["options"] = {"reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False}}
    return panel


def logs(title: str, expr: str) -> dict:
    return {"type": "logs", "title": title, "datasource": LOKI,
            "targets": [{"datasource": LOKI, "expr": expr, "refId": "A", "queryType": "range"}],
            "options": {"showTime": True, "wrapLogMessage": True, "enableLogDetails": True},
            "gridPos": {"w": 24, "h": 10}}


def node_graph(title: str) -> dict:
    return {"type": "nodeGraph", "title": title, "datasource": TEMPO,
            "targets": [{"datasource": TEMPO, "queryType": "serviceMap", "refId": "A"}],
            "gridPos": {"w": 24, "h": 10}}


def dashboard(uid: str, title: str, panels: list[dict], tags: list[str]) -> dict:
    x = y = 0
    for i, panel in enumerate(panels, start=1):
        w, h = panel["gridPos"]["w"], panel["gridPos"]["h"]
        if x + w > 24:
            x, y = 0, y + h
        panel["gridPos"].update({"x": x, "y": y})
        panel["id"] = i  # panel ids are per dashboard and stable; dashboards themselves carry no id
        x += w
    return {"uid": uid, "title": title, "tags": ["obslab", *tags], "timezone": "browser", "editable": False,
            "schemaVersion": 39, "version": 1, "refresh": "30s", "time": {"from": "now-1h", "to": "now"},
            "templating": {"list": []}, "annotations": {"list": []}, "panels": panels}


RATE = "[5m]"
# The collector's own metrics are exposed by its Prometheus reader without the _total suffix.

DASHBOARDS = {
    "agent-performance.json": dashboard("obslab-agent-performance", "Agent Performance", [
        timeseries("Requests by intent", {"{{intent}}": f"sum by (intent) (rate(agent_requests_total{RATE}))"}, "reqps"),
        timeseries("p95 request latency", {"{{intent}}": "histogram_quantile(0.95, sum by (le, intent) "
                                           f"(rate(agent_request_duration_milliseconds_bucket{RATE})))"}, "ms"),
        timeseries("Errors by type", {"{{error_type}} ({{component}})":
                                      f"sum by (error_type, component) (rate(agent_errors_total{RATE}))"}),
        timeseries("Agent iterations", {"iterations/s": f"sum(rate(agent_iterations_total{RATE}))"}),
        timeseries("Tool calls", {"{{tool_name}} success={{success}}":
                                  f"sum by (tool_name, success) (rate(agent_tool_calls_total{RATE}))"}),
        timeseries("p95 tool latency", {"{{tool_name}}": "histogram_quantile(0.95, sum by (le, tool_name) "
                                        f"(rate(agent_tool_latency_milliseconds_bucket{RATE})))"}, "ms"),
    ], ["agent"]),
    "llm-cost.json": dashboard("obslab-llm-cost", "LLM Cost", [
        timeseries("Tokens by model and type", {"{{llm_model}} {{token_type}}":
                                                f"sum by (llm_model, token_type) (rate(agent_llm_tokens_total{RATE}))"}),
        timeseries("Estimated cost (USD, cumulative)", {"{{llm_model}}":
                                                        "sum by (llm_model) (agent_llm_estimated_cost_total)"}, "currencyUSD"),
        timeseries("LLM calls by model and provider", {"{{llm_model}} ({{llm_provider}})":
                                                       f"sum by (llm_model, llm_provider) (rate(agent_llm_calls_total{RATE}))"}),
        timeseries("p95 LLM latency by model", {"{{llm_model}} ({{llm_provider}})":
                                                "histogram_quantile(0.95, sum by (le, llm_model, llm_provider) "
                                                f"(rate(agent_llm_latency_milliseconds_bucket{RATE})))"}, "ms"),
    ], ["llm"]),
    "service-overview.json": dashboard("obslab-service-overview", "Service Overview", [
        timeseries("Request rate (span metrics)", {"{{service}}":
                                                   f"sum by (service) (rate(traces_spanmetrics_calls_total{RATE}))"}, "reqps", 8),
        timeseries("Error rate (span metrics)", {"{{service}}": "sum by (service) (rate(traces_spanmetrics_calls_total"
                                                 f"{{status_code=\"STATUS_CODE_ERROR\"}}{RATE}))"}, "reqps", 8),
        timeseries("p95 duration (span metrics)", {"{{service}}": "histogram_quantile(0.95, sum by (le, service) "
                                                   f"(rate(traces_spanmetrics_latency_bucket{RATE})))"}, "s", 8),
        node_graph("Service graph"),
        logs("Recent logs (trace_id links to Tempo)", '{service_name=~".+"}'),
    ], ["red"]),
    # The examples/etl pipeline: obslab's pandas/NumPy instrumentation and system metrics.
    "data-pipeline.json": dashboard("obslab-data-pipeline", "Data Pipeline", [
        timeseries("Rows read", {"{{operation}}": f"sum by (operation) (rate(data_raw_rows_total{RATE}))"}, "rowsps", 8),
        timeseries("Rows kept and filtered out", {
            "kept ({{operation}})": f"sum by (operation) (rate(data_processed_rows_total{RATE}))",
            "filtered out": f"sum(rate(data_filtered_rows_total{RATE}))"}, "rowsps", 8),
        timeseries("Data read (bytes/s)", {"{{operation}}": f"sum by (operation) (rate(data_size_bytes_sum{RATE}))"},
                   "Bps", 8),
        timeseries("p95 processing time by operation", {"{{operation}}": "histogram_quantile(0.95, sum by "
                   f"(le, operation) (rate(data_processing_time_milliseconds_bucket{RATE})))"}, "ms"),
        timeseries("Process CPU and memory", {"CPU % {{job}}": "max by (job) (system_cpu_usage_percent)",
                                              "memory {{job}}": "max by (job) (system_memory_usage_bytes)"}),
        timeseries("Garbage collection", {
            "collections/s gen {{generation}}": f"sum by (generation) (rate(system_gc_count_total{RATE}))",
            "ms/s gen {{generation}}": f"sum by (generation) (rate(system_gc_duration_milliseconds_total{RATE}))"}),
        logs("Pipeline runs (trace_id links to Tempo)", '{service_name=~".+"} |= "etl run finished"'),
    ], ["data"]),
    "lab-health.json": dashboard("obslab-lab-health", "Lab Health", [
        timeseries("Collector accepted", {
            "spans": f"sum(rate(otelcol_receiver_accepted_spans{RATE}))",
            "log records": f"sum(rate(otelcol_receiver_accepted_log_records{RATE}))",
            "metric points": f"sum(rate(otelcol_receiver_accepted_metric_points{RATE}))"}),
        timeseries("Collector refused", {
            "spans": f"sum(rate(otelcol_receiver_refused_spans{RATE}))",
            "log records": f"sum(rate(otelcol_receiver_refused_log_records{RATE}))",
            "metric points": f"sum(rate(otelcol_receiver_refused_metric_points{RATE}))"}),
        # The collector creates send_failed series only on the first failure: `or vector(0)` draws 0 until then.
        timeseries("Collector export failures (dropped after retries)", {
            "spans": f"sum(rate(otelcol_exporter_send_failed_spans{RATE})) or vector(0)",
            "log records": f"sum(rate(otelcol_exporter_send_failed_log_records{RATE})) or vector(0)",
            "metric points": f"sum(rate(otelcol_exporter_send_failed_metric_points{RATE})) or vector(0)"}),
        timeseries("Exporter queue", {"{{exporter}} size": "sum by (exporter) (otelcol_exporter_queue_size)",
                                      "{{exporter}} capacity": "sum by (exporter) (otelcol_exporter_queue_capacity)"}),
        timeseries("Backend ingest", {
            "Tempo spans/s": f"sum(rate(tempo_distributor_spans_received_total{RATE}))",
            "Loki lines/s": f"sum(rate(loki_distributor_lines_received_total{RATE}))",
            "Prometheus samples/s": f"sum(rate(prometheus_tsdb_head_samples_appended_total{RATE}))"}, width=24),
    ], ["lab"]),
}


def main() -> None:
    for name, board in DASHBOARDS.items():
        (HERE / name).write_text(json.dumps(board, indent=2) + "\n")


if __name__ == "__main__":
    main()
