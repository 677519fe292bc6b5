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


SCHEMA_VERSION = 38  # Grafana 10.0's: the oldest Grafana the lab runs on; newer releases migrate it forward


def timeseries(title: str, exprs: dict[str, str], unit: str = "short", width: int = 12,
               no_value: str | None = None) -> dict:
    """A time series panel; ``exprs`` maps legend format to PromQL.

    ``no_value`` is the text shown while the query has no series yet (a condition that has not
    happened, such as an export failure), instead of Grafana's "No data".
    """
    defaults: dict = {"unit": unit}
    if no_value:
        defaults["noValue"] = no_value
    return {
        "type": "timeseries", "title": title, "datasource": PROM,
        "fieldConfig": {"defaults": defaults, "overrides": []},
        "options": {"legend": {"displayMode": "list", "placement": "bottom", "showLegend": True}},
        "targets": [{"datasource": PROM, "expr": expr, "legendFormat": legend, "refId": chr(65 + i),
                     "exemplar": True}
                    for i, (legend, expr) in enumerate(exprs.items())],
        "gridPos": {"w": width, "h": 8},
    }


# Grafana 10.0's Loki derived fields match the line text only (matching structured metadata came
# later), so logs panels append the trace_id kept as structured metadata to the line they show.
WITH_TRACE_ID = ' | line_format "{{ __line__ }}{{ if .trace_id }} trace_id={{ .trace_id }}{{ end }}"'


def logs(title: str, expr: str) -> dict:
    return {"type": "logs", "title": title, "datasource": LOKI,
            "targets": [{"datasource": LOKI, "expr": expr + WITH_TRACE_ID, "refId": "A", "queryType": "range"}],
            "options": {"showTime": True, "wrapLogMessage": True, "enableLogDetails": True,
                        "sortOrder": "Descending"},
            "gridPos": {"w": 24, "h": 10}}


def node_graph(title: str) -> dict:
    return {"type": "nodeGraph", "title": title, "datasource": TEMPO,
            # Grafana runs the service graph queries on Prometheus with this selector appended.
            "targets": [{"datasource": TEMPO, "queryType": "serviceMap", "refId": "A",
                         "serviceMapQuery": '{client=~"$service"}'}],
            "gridPos": {"w": 24, "h": 10}}


def variable(name: str, label: str, metric: str, prom_label: str) -> dict:
    """A multi-value dashboard variable listing the values of ``prom_label`` on ``metric``."""
    definition = f"label_values({metric}, {prom_label})"
    return {"name": name, "label": label, "type": "query", "datasource": PROM,
            "definition": definition, "query": definition, "refresh": 2, "sort": 1,
            "includeAll": True, "multi": True, "current": {"text": ["All"], "value": ["$__all"]},
            "options": [], "hide": 0, "regex": "", "skipUrlSync": False}


def service_and_environment(metric: str, service_label: str = "service_name") -> list[dict]:
    return [variable("service", "Service", metric, service_label),
            variable("environment", "Environment", metric, "deployment_environment")]


def thirds(panels: list[dict]) -> list[dict]:
    """Three panels per row, so that a dashboard of up to nine stays within one screenful (Grafana
    renders panels lazily, as they scroll into view)."""
    for panel in panels:
        panel["gridPos"]["w"] = 8
    return panels


def dashboard(uid: str, title: str, panels: list[dict], tags: list[str], variables: list[dict] = ()) -> dict:
    x = y = 0
    for i, panel in enumerate(panels, start=1):
        w, h = panel["gridPos"]["w"], panel["gridPos"]["h"]
        if x + w > 24:
            x, y = 0, y + h
        panel["gridPos"].update({"x": x, "y": y})
        panel["id"] = i  # panel ids are per dashboard and stable; dashboards themselves carry no id
        x += w
    return {"uid": uid, "title": title, "tags": ["obslab", *tags], "timezone": "browser", "editable": False,
            "schemaVersion": SCHEMA_VERSION, "version": 1, "refresh": "30s", "time": {"from": "now-15m", "to": "now"},
            "templating": {"list": list(variables)}, "annotations": {"list": []}, "panels": panels}


RATE = "[5m]"
# Selectors of the dashboards' variables, one per label naming scheme.
APP = '{service_name=~"$service", deployment_environment=~"$environment"}'   # the SDK's OTLP metrics
SPANS = '{service=~"$service", deployment_environment=~"$environment"}'      # Tempo's span metrics
# The collector's own metrics are exposed by its Prometheus reader without the _total suffix.
# LLM calls by the GenAI conventions, from the agent helpers and the instrumented OpenAI/Anthropic clients alike.
CHAT = APP[:-1] + ', gen_ai_operation_name="chat"}'
CHAT_ERRORS = CHAT[:-1] + ', error_type!=""}'
MODEL = "gen_ai_request_model, gen_ai_provider_name"
MODEL_LEGEND = "{{gen_ai_request_model}} ({{gen_ai_provider_name}})"
LLM_CALLS = "gen_ai_client_operation_duration_seconds_count"  # every LLM call, whatever made it


DASHBOARDS = {
    "agent-performance.json": dashboard("obslab-agent-performance", "Agent Performance", thirds([
        timeseries("Requests by intent", {"{{intent}}": f"sum by (intent) (rate(agent_requests_total{APP}{RATE}))"},
                   "reqps"),
        timeseries("p95 request latency", {"{{intent}}": "histogram_quantile(0.95, sum by (le, intent) "
                                           f"(rate(agent_request_duration_milliseconds_bucket{APP}{RATE})))"}, "ms"),
        timeseries("Errors by type", {"{{error_type}} ({{component}})":
                                      f"sum by (error_type, component) (rate(agent_errors_total{APP}{RATE}))"}),
        timeseries("Agent iterations", {"iterations/s": f"sum(rate(agent_iterations_total{APP}{RATE}))"}),
        timeseries("Tool calls", {"{{tool_name}} success={{success}}":
                                  f"sum by (tool_name, success) (rate(agent_tool_calls_total{APP}{RATE}))"}),
        timeseries("p95 tool latency", {"{{tool_name}}": "histogram_quantile(0.95, sum by (le, tool_name) "
                                        f"(rate(agent_tool_latency_milliseconds_bucket{APP}{RATE})))"}, "ms"),
        timeseries("p95 LLM call latency by model (helpers and instrumented clients)", {
            MODEL_LEGEND: f"histogram_quantile(0.95, sum by (le, {MODEL}) "
                          f"(rate(gen_ai_client_operation_duration_seconds_bucket{CHAT}{RATE})))"}, "s"),
        timeseries("LLM call error rate by error.type", {
            "{{error_type}}": f"sum by (error_type) (rate({LLM_CALLS}{CHAT_ERRORS}{RATE})) "
                              f"/ on () group_left () sum(rate({LLM_CALLS}{CHAT}{RATE}))"}, "percentunit"),
    ]), ["agent"], service_and_environment("agent_requests_total")),
    "llm-cost.json": dashboard("obslab-llm-cost", "LLM Cost", thirds([
        timeseries("Tokens by model and type", {"{{llm_model}} {{token_type}}":
                                                f"sum by (llm_model, token_type) (rate(agent_llm_tokens_total{APP}{RATE}))"}),
        timeseries("Estimated cost (USD, cumulative)", {"{{llm_model}}":
                                                        f"sum by (llm_model) (agent_llm_estimated_cost_total{APP})"},
                   "currencyUSD"),
        timeseries("LLM calls by model and provider", {"{{llm_model}} ({{llm_provider}})":
                                                       "sum by (llm_model, llm_provider) "
                                                       f"(rate(agent_llm_calls_total{APP}{RATE}))"}),
        timeseries("p95 LLM latency by model", {"{{llm_model}} ({{llm_provider}})":
                                                "histogram_quantile(0.95, sum by (le, llm_model, llm_provider) "
                                                f"(rate(agent_llm_latency_milliseconds_bucket{APP}{RATE})))"}, "ms"),
        timeseries("Tokens by model and provider (all LLM calls)", {
            f"{MODEL_LEGEND} {{{{gen_ai_token_type}}}}":
                f"sum by ({MODEL}, gen_ai_token_type) (rate(gen_ai_client_token_usage_sum{CHAT}{RATE}))"}),
        timeseries("Cost by model and provider (USD, cumulative, price table)", {
            MODEL_LEGEND: f"sum by ({MODEL}) (obslab_gen_ai_client_cost_total{APP})"}, "currencyUSD"),
        timeseries("LLM calls by model and provider (all LLM calls)", {
            MODEL_LEGEND: f"sum by ({MODEL}) (rate({LLM_CALLS}{CHAT}{RATE}))"}, "reqps"),
        timeseries("Unpriced LLM calls (model not in the price table, cumulative)", {
            MODEL_LEGEND: f"sum by ({MODEL}) (obslab_gen_ai_client_unpriced_calls_total{APP})"}),
    ]), ["llm"], service_and_environment(LLM_CALLS)),
    "service-overview.json": dashboard("obslab-service-overview", "Service Overview", [
        timeseries("Request rate (span metrics)", {"{{service}}":
                                                   f"sum by (service) (rate(traces_spanmetrics_calls_total{SPANS}{RATE}))"},
                   "reqps", 8),
        timeseries("Error rate (span metrics)", {"{{service}}": "sum by (service) (rate(traces_spanmetrics_calls_total"
                                                 + SPANS[:-1] + f', status_code="STATUS_CODE_ERROR"}}{RATE}))'},
                   "reqps", 8),
        timeseries("p95 duration (span metrics)", {"{{service}}": "histogram_quantile(0.95, sum by (le, service) "
                                                   f"(rate(traces_spanmetrics_latency_bucket{SPANS}{RATE})))"}, "s", 8),
        node_graph("Service graph"),
        logs("Recent logs (trace_id links to Tempo)", APP),
    ], ["red"], service_and_environment("traces_spanmetrics_calls_total", "service")),
    # The examples/etl pipeline: obslab's pandas/NumPy instrumentation and system metrics.
    "data-pipeline.json": dashboard("obslab-data-pipeline", "Data Pipeline", [
        timeseries("Rows read", {"{{operation}}": f"sum by (operation) (rate(data_raw_rows_total{APP}{RATE}))"},
                   "rowsps", 8),
        timeseries("Rows kept and filtered out", {
            "kept ({{operation}})": f"sum by (operation) (rate(data_processed_rows_total{APP}{RATE}))",
            "filtered out": f"sum(rate(data_filtered_rows_total{APP}{RATE}))"}, "rowsps", 8),
        timeseries("Data read (bytes/s)", {"{{operation}}": f"sum by (operation) (rate(data_size_bytes_sum{APP}{RATE}))"},
                   "Bps", 8),
        timeseries("p95 processing time by operation", {"{{operation}}": "histogram_quantile(0.95, sum by "
                   f"(le, operation) (rate(data_processing_time_milliseconds_bucket{APP}{RATE})))"}, "ms"),
        timeseries("Process CPU and memory", {"CPU % {{job}}": f"max by (job) (system_cpu_usage_percent{APP})",
                                              "memory {{job}}": f"max by (job) (system_memory_usage_bytes{APP})"}),
        timeseries("Garbage collection", {
            "collections/s gen {{generation}}": f"sum by (generation) (rate(system_gc_count_total{APP}{RATE}))",
            "ms/s gen {{generation}}": f"sum by (generation) (rate(system_gc_duration_milliseconds_total{APP}{RATE}))"}),
        logs("Pipeline runs (trace_id links to Tempo)", APP + ' |= "etl run finished"'),
    ], ["data"], service_and_environment("data_raw_rows_total")),
    "lab-health.json": dashboard("obslab-lab-health", "Lab Health", [
        timeseries("Collector accepted", {
            "spans": f"sum(rate(otelcol_receiver_accepted_spans{RATE}))",
            "log records": f"sum(rate(otelcol_receiver_accepted_log_records{RATE}))",
            "metric points": f"sum(rate(otelcol_receiver_accepted_metric_points{RATE}))"}),
        timeseries("Collector refused", {
            "spans": f"sum(rate(otelcol_receiver_refused_spans{RATE}))",
            "log records": f"sum(rate(otelcol_receiver_refused_log_records{RATE}))",
            "metric points": f"sum(rate(otelcol_receiver_refused_metric_points{RATE}))"}),
        # The collector creates send_failed series on the first failure only: until then the
        # panel says so in words rather than drawing a made-up zero.
        # One series per exporter, which names the signal (otlp_grpc/tempo: spans...).
        timeseries("Collector export failures (dropped after retries)", {
            "{{exporter}}": "sum by (exporter) (increase("
                            f'{{__name__=~"otelcol_exporter_send_failed_(spans|log_records|metric_points)"}}{RATE}))'},
            no_value="No export failure since the collector started"),
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
