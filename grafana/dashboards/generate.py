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


def timeseries(title: str, description: str, exprs: dict[str, str], unit: str, width: int = 12,
               no_value: str | None = None) -> dict:
    """A time series panel; ``exprs`` maps legend format to PromQL, all of one ``unit`` (a Grafana unit id).

    ``no_value`` is the text shown while the query has no series yet (a condition that has not
    happened, such as an export failure), instead of Grafana's "No data".
    """
    defaults: dict = {"unit": unit}
    if no_value:
        defaults["noValue"] = no_value
    return {
        "type": "timeseries", "title": title, "description": description, "datasource": PROM,
        "fieldConfig": {"defaults": defaults, "overrides": []},
        "options": {"legend": {"displayMode": "list", "placement": "bottom", "showLegend": True}},
        "targets": [{"datasource": PROM, "expr": expr, "legendFormat": legend, "refId": chr(65 + i),
                     "exemplar": True}
                    for i, (legend, expr) in enumerate(exprs.items())],
        "gridPos": {"w": width, "h": 8},
    }


def in_range(title: str, description: str, legend: str, expr: str, unit: str, width: int = 12) -> dict:
    """A stat panel: one value per series, for the dashboard's selected time range (an instant query
    whose counters are read with ``increase(...[$__range])``)."""
    return {
        "type": "stat", "title": title, "description": description, "datasource": PROM,
        "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
        "options": {"reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
                    "orientation": "horizontal", "textMode": "value_and_name", "colorMode": "none",
                    "graphMode": "none", "justifyMode": "auto"},
        "targets": [{"datasource": PROM, "expr": expr, "legendFormat": legend, "refId": "A",
                     "instant": True, "range": False}],
        "gridPos": {"w": width, "h": 8},
    }


# Grafana 10.0's Loki derived fields match the line text only (matching structured metadata came
# later), so logs panels append the trace_id kept as structured metadata to the line they show.
WITH_TRACE_ID = ' | line_format "{{ __line__ }}{{ if .trace_id }} trace_id={{ .trace_id }}{{ end }}"'


def logs(title: str, description: str, expr: str) -> dict:
    return {"type": "logs", "title": title, "description": description, "datasource": LOKI,
            "targets": [{"datasource": LOKI, "expr": expr + WITH_TRACE_ID, "refId": "A", "queryType": "range"}],
            "options": {"showTime": True, "wrapLogMessage": True, "enableLogDetails": True,
                        "sortOrder": "Descending"},
            "gridPos": {"w": 24, "h": 10}}


def node_graph(title: str, description: str) -> dict:
    return {"type": "nodeGraph", "title": title, "description": description, "datasource": TEMPO,
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


RATE = "[5m]"  # time series: per-second rates over 5-minute windows
RANGE = "[$__range]"  # stat panels: the dashboard's selected time range
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
SELECTED = "of the selected services and environments"
# Prometheus' increase() extrapolates to the edges of the range, so a count over a range may show a fraction.
EXTRAPOLATED = "increase() over the selected time range (Prometheus extrapolates to its edges)"

# Units: Grafana unit ids; "count:<noun>" is Grafana's custom count unit (scaled like "short", noun appended).
DASHBOARDS = {
    "agent-performance.json": dashboard("obslab-agent-performance", "Agent Performance", thirds([
        timeseries("Requests by intent",
                   f"Agent requests per second by intent (5-minute rate) {SELECTED}, from agent_requests_total.",
                   {"{{intent}}": f"sum by (intent) (rate(agent_requests_total{APP}{RATE}))"}, "reqps"),
        timeseries("p95 request latency",
                   "95th percentile of agent request duration by intent, over 5-minute windows, from the histogram "
                   "agent_request_duration_milliseconds_bucket.",
                   {"{{intent}}": "histogram_quantile(0.95, sum by (le, intent) "
                                  f"(rate(agent_request_duration_milliseconds_bucket{APP}{RATE})))"}, "ms"),
        timeseries("Errors by type",
                   f"Agent errors per second by error type and component (5-minute rate) {SELECTED}, "
                   "from agent_errors_total.",
                   {"{{error_type}} ({{component}})":
                    f"sum by (error_type, component) (rate(agent_errors_total{APP}{RATE}))"}, "count:errors/s"),
        timeseries("Agent iterations",
                   f"Agent loop iterations per second (5-minute rate) {SELECTED}, from agent_iterations_total.",
                   {"iterations": f"sum(rate(agent_iterations_total{APP}{RATE}))"}, "count:iterations/s"),
        timeseries("Tool calls",
                   "Tool calls per second by tool and outcome (5-minute rate), from agent_tool_calls_total.",
                   {"{{tool_name}} success={{success}}":
                    f"sum by (tool_name, success) (rate(agent_tool_calls_total{APP}{RATE}))"}, "count:calls/s"),
        timeseries("p95 tool latency",
                   "95th percentile of tool call latency by tool, over 5-minute windows, from the histogram "
                   "agent_tool_latency_milliseconds_bucket.",
                   {"{{tool_name}}": "histogram_quantile(0.95, sum by (le, tool_name) "
                                     f"(rate(agent_tool_latency_milliseconds_bucket{APP}{RATE})))"}, "ms"),
        timeseries("p95 LLM call latency by model (helpers and instrumented clients)",
                   "95th percentile of LLM chat call duration by model and provider, over 5-minute windows, from "
                   "the GenAI histogram gen_ai_client_operation_duration_seconds_bucket (every LLM call).", {
                       MODEL_LEGEND: f"histogram_quantile(0.95, sum by (le, {MODEL}) "
                                     f"(rate(gen_ai_client_operation_duration_seconds_bucket{CHAT}{RATE})))"}, "s"),
        timeseries("LLM call error rate by error.type",
                   "Share of LLM chat calls that failed, by error.type (5-minute rates): failed calls over all "
                   f"calls, both counted by {LLM_CALLS}.", {
                       "{{error_type}}": f"sum by (error_type) (rate({LLM_CALLS}{CHAT_ERRORS}{RATE})) "
                                         f"/ on () group_left () sum(rate({LLM_CALLS}{CHAT}{RATE}))"}, "percentunit"),
    ]), ["agent"], service_and_environment("agent_requests_total")),
    "llm-cost.json": dashboard("obslab-llm-cost", "LLM Cost", thirds([
        timeseries("Tokens by model and type",
                   "LLM tokens per second by model and token type (5-minute rate), recorded by the agent helpers, "
                   "from agent_llm_tokens_total.",
                   {"{{llm_model}} {{token_type}}":
                    f"sum by (llm_model, token_type) (rate(agent_llm_tokens_total{APP}{RATE}))"}, "count:tokens/s"),
        in_range("Estimated cost in the time range (USD)",
                 "Estimated LLM spend in US dollars over the selected time range by model, recorded by the agent "
                 f"helpers, from agent_llm_estimated_cost_total: {EXTRAPOLATED}.",
                 "{{llm_model}}", f"sum by (llm_model) (increase(agent_llm_estimated_cost_total{APP}{RANGE}))",
                 "currencyUSD"),
        timeseries("LLM calls by model and provider",
                   "LLM calls per second by model and provider (5-minute rate), recorded by the agent helpers, "
                   "from agent_llm_calls_total.",
                   {"{{llm_model}} ({{llm_provider}})":
                    f"sum by (llm_model, llm_provider) (rate(agent_llm_calls_total{APP}{RATE}))"}, "reqps"),
        timeseries("p95 LLM latency by model",
                   "95th percentile of LLM call latency by model and provider, over 5-minute windows, recorded by "
                   "the agent helpers, from the histogram agent_llm_latency_milliseconds_bucket.",
                   {"{{llm_model}} ({{llm_provider}})":
                    "histogram_quantile(0.95, sum by (le, llm_model, llm_provider) "
                    f"(rate(agent_llm_latency_milliseconds_bucket{APP}{RATE})))"}, "ms"),
        timeseries("Tokens by model and provider (all LLM calls)",
                   "LLM tokens per second by model, provider and token type (5-minute rate), for every LLM chat "
                   "call (helpers and instrumented clients), from the GenAI histogram gen_ai_client_token_usage "
                   "(its gen_ai_client_token_usage_sum).", {
                       f"{MODEL_LEGEND} {{{{gen_ai_token_type}}}}":
                           f"sum by ({MODEL}, gen_ai_token_type) (rate(gen_ai_client_token_usage_sum{CHAT}{RATE}))"},
                   "count:tokens/s"),
        in_range("Cost by model and provider in the time range (USD, price table)",
                 "LLM spend in US dollars over the selected time range by model and provider, for every LLM call "
                 f"priced by the obslab price table, from obslab_gen_ai_client_cost_total: {EXTRAPOLATED}.",
                 MODEL_LEGEND, f"sum by ({MODEL}) (increase(obslab_gen_ai_client_cost_total{APP}{RANGE}))",
                 "currencyUSD"),
        timeseries("LLM calls by model and provider (all LLM calls)",
                   "LLM chat calls per second by model and provider (5-minute rate), helpers and instrumented "
                   f"clients alike, from {LLM_CALLS}.",
                   {MODEL_LEGEND: f"sum by ({MODEL}) (rate({LLM_CALLS}{CHAT}{RATE}))"}, "reqps"),
        in_range("Unpriced LLM calls in the time range (model not in the price table)",
                 "LLM calls of a model the obslab price table does not know (so not in the cost panels) over the "
                 f"selected time range, by model and provider, from obslab_gen_ai_client_unpriced_calls_total: "
                 f"{EXTRAPOLATED}.",
                 MODEL_LEGEND, f"sum by ({MODEL}) (increase(obslab_gen_ai_client_unpriced_calls_total{APP}{RANGE}))",
                 "count:calls"),
    ]), ["llm"], service_and_environment(LLM_CALLS)),
    "service-overview.json": dashboard("obslab-service-overview", "Service Overview", [
        timeseries("Request rate (span metrics)",
                   "Server and consumer spans per second by service (5-minute rate), from Tempo's span metrics "
                   "traces_spanmetrics_calls_total.",
                   {"{{service}}": f"sum by (service) (rate(traces_spanmetrics_calls_total{SPANS}{RATE}))"},
                   "reqps", 8),
        timeseries("Error rate (span metrics)",
                   "Spans per second with an error status by service (5-minute rate), from Tempo's span metrics "
                   "traces_spanmetrics_calls_total (status_code STATUS_CODE_ERROR).",
                   {"{{service}}": "sum by (service) (rate(traces_spanmetrics_calls_total"
                                   + SPANS[:-1] + f', status_code="STATUS_CODE_ERROR"}}{RATE}))'},
                   "reqps", 8),
        timeseries("p95 duration (span metrics)",
                   "95th percentile of span duration by service, over 5-minute windows, from Tempo's span metrics "
                   "histogram traces_spanmetrics_latency_bucket (seconds).",
                   {"{{service}}": "histogram_quantile(0.95, sum by (le, service) "
                                   f"(rate(traces_spanmetrics_latency_bucket{SPANS}{RATE})))"}, "s", 8),
        node_graph("Service graph",
                   "Which service calls which, with request rates and latencies, drawn by Grafana from Tempo's "
                   "service graph metrics traces_service_graph_request_total (and its latency histograms)."),
        logs("Recent logs (trace_id links to Tempo)",
             f"The OTLP log lines {SELECTED}, from Loki (labels service_name and deployment_environment); "
             "a line's trace_id opens its trace in Tempo.", APP),
    ], ["red"], service_and_environment("traces_spanmetrics_calls_total", "service")),
    # The examples/etl pipeline: obslab's pandas/NumPy instrumentation and system metrics.
    "data-pipeline.json": dashboard("obslab-data-pipeline", "Data Pipeline", [
        timeseries("Rows read",
                   "Rows read from sources per second by operation (5-minute rate), from data_raw_rows_total.",
                   {"{{operation}}": f"sum by (operation) (rate(data_raw_rows_total{APP}{RATE}))"}, "rowsps", 8),
        timeseries("Rows kept and filtered out",
                   "Rows per second kept by each operation, from data_processed_rows_total, and filtered out, "
                   "from data_filtered_rows_total (5-minute rates).", {
                       "kept ({{operation}})": f"sum by (operation) (rate(data_processed_rows_total{APP}{RATE}))",
                       "filtered out": f"sum(rate(data_filtered_rows_total{APP}{RATE}))"}, "rowsps", 8),
        timeseries("Data read (bytes/s)",
                   "Bytes of data read per second by operation (5-minute rate, in-memory size), from the "
                   "histogram data_size_bytes (its data_size_bytes_sum).",
                   {"{{operation}}": f"sum by (operation) (rate(data_size_bytes_sum{APP}{RATE}))"}, "Bps", 8),
        timeseries("p95 processing time by operation",
                   "95th percentile of processing time by operation, over 5-minute windows, from the histogram "
                   "data_processing_time_milliseconds_bucket.",
                   {"{{operation}}": "histogram_quantile(0.95, sum by (le, operation) "
                                     f"(rate(data_processing_time_milliseconds_bucket{APP}{RATE})))"}, "ms", 8),
        timeseries("Process CPU",
                   "CPU used by each pipeline process, in % of one core (may exceed 100 %), from the counter "
                   "process_cpu_time_seconds_total (5-minute rate of CPU seconds per second, user and system).",
                   {"{{job}}": f"sum by (job) (rate(process_cpu_time_seconds_total{APP}{RATE}))"}, "percentunit", 8),
        timeseries("Process memory",
                   "Resident memory (RSS) of each pipeline process, from the gauge process_memory_usage_bytes.",
                   {"{{job}}": f"max by (job) (process_memory_usage_bytes{APP})"}, "bytes", 8),
        timeseries("Garbage collections",
                   "Python garbage collections per second by generation (5-minute rate), from "
                   "cpython_gc_collections_total.",
                   {"gen {{generation}}": f"sum by (generation) (rate(cpython_gc_collections_total{APP}{RATE}))"},
                   "count:collections/s"),
        timeseries("Time in garbage collection",
                   "Share of wall-clock time spent in Python garbage collection by generation (5-minute rate of "
                   "milliseconds, divided by 1000), from obslab_gc_duration_milliseconds_total.",
                   {"gen {{generation}}":
                    f"sum by (generation) (rate(obslab_gc_duration_milliseconds_total{APP}{RATE})) / 1000"},
                   "percentunit"),
        logs("Pipeline runs (trace_id links to Tempo)",
             f"The \"etl run finished\" log lines {SELECTED}, from Loki (labels service_name and "
             "deployment_environment); a line's trace_id opens its trace in Tempo.",
             APP + ' |= "etl run finished"'),
    ], ["data"], service_and_environment("data_raw_rows_total")),
    "lab-health.json": dashboard("obslab-lab-health", "Lab Health", [
        timeseries("Collector accepted",
                   "Items per second the collector's OTLP receivers accepted, by signal (5-minute rates), from "
                   "otelcol_receiver_accepted_spans, otelcol_receiver_accepted_log_records and "
                   "otelcol_receiver_accepted_metric_points.", {
                       "spans": f"sum(rate(otelcol_receiver_accepted_spans{RATE}))",
                       "log records": f"sum(rate(otelcol_receiver_accepted_log_records{RATE}))",
                       "metric points": f"sum(rate(otelcol_receiver_accepted_metric_points{RATE}))"},
                   "count:items/s"),
        timeseries("Collector refused",
                   "Items per second the collector's OTLP receivers refused, by signal (5-minute rates), from "
                   "otelcol_receiver_refused_spans, otelcol_receiver_refused_log_records and "
                   "otelcol_receiver_refused_metric_points.", {
                       "spans": f"sum(rate(otelcol_receiver_refused_spans{RATE}))",
                       "log records": f"sum(rate(otelcol_receiver_refused_log_records{RATE}))",
                       "metric points": f"sum(rate(otelcol_receiver_refused_metric_points{RATE}))"},
                   "count:items/s"),
        # The collector creates send_failed series on the first failure only: until then the
        # panel says so in words rather than drawing a made-up zero.
        # One series per exporter, which names the signal (otlp_grpc/tempo: spans...).
        timeseries("Collector export failures (dropped after retries, per 5 minutes)",
                   "Items each collector exporter dropped after its retries, in the 5 minutes before each point "
                   "(increase over 5 minutes), from otelcol_exporter_send_failed_spans, "
                   "otelcol_exporter_send_failed_log_records and otelcol_exporter_send_failed_metric_points.", {
                       "{{exporter}}": "sum by (exporter) (increase("
                                       f'{{__name__=~"otelcol_exporter_send_failed_(spans|log_records|metric_points)"}}'
                                       f"{RATE}))"},
                   "count:items", no_value="No export failure since the collector started"),
        timeseries("Exporter queue",
                   "Batches waiting in each collector exporter's sending queue, and the queue's capacity, from the "
                   "gauges otelcol_exporter_queue_size and otelcol_exporter_queue_capacity.",
                   {"{{exporter}} size": "sum by (exporter) (otelcol_exporter_queue_size)",
                    "{{exporter}} capacity": "sum by (exporter) (otelcol_exporter_queue_capacity)"}, "short"),
        timeseries("Backend ingest",
                   "Items per second each backend ingested (5-minute rates): spans from "
                   "tempo_distributor_spans_received_total, log lines from loki_distributor_lines_received_total, "
                   "samples from prometheus_tsdb_head_samples_appended_total.", {
                       "Tempo spans": f"sum(rate(tempo_distributor_spans_received_total{RATE}))",
                       "Loki lines": f"sum(rate(loki_distributor_lines_received_total{RATE}))",
                       "Prometheus samples": f"sum(rate(prometheus_tsdb_head_samples_appended_total{RATE}))"},
                   "count:items/s", width=24),
    ], ["lab"]),
}


def main() -> None:
    for name, board in DASHBOARDS.items():
        (HERE / name).write_text(json.dumps(board, indent=2) + "\n")


if __name__ == "__main__":
    main()
