#!/usr/bin/env python3
"""Generate the provisioned dashboards with grafana-foundation-sdk, Grafana's dashboards-as-code library.

Run: python3 grafana/dashboards/generate.py   (rewrites the *.json files beside this script; the library
is in the SDK's test extras: pip install -e "sdk[test]", then run it with that environment's python)
Edit the panels here, never the JSON. The JSON is the library's: stable uids, datasource uids, no
dashboard id, the schema version of the Grafana release the library's models are generated for.

prometheus_panel_queries() lists every Prometheus panel query with the dashboard variables filled in,
for a test that runs each against a real Prometheus.
"""
from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import NamedTuple

import yaml

try:
    from grafana_foundation_sdk.builders import common as viz
    from grafana_foundation_sdk.builders import dashboard as board_builders
    from grafana_foundation_sdk.builders import logs as logs_panel
    from grafana_foundation_sdk.builders import loki, nodegraph, prometheus, stat, tempo, timeseries as time_series
    from grafana_foundation_sdk.cog.encoder import JSONEncoder
    from grafana_foundation_sdk.models import common
    from grafana_foundation_sdk.models import dashboard as models
except ModuleNotFoundError as error:  # pragma: no cover - a hint for whoever runs the script bare
    raise ModuleNotFoundError(f"{error}: the dashboards are built with grafana-foundation-sdk, pinned in the SDK's "
                              'test extras (pip install -e "sdk[test]")', name=error.name) from error

HERE = Path(__file__).resolve().parent
# The collector config whose tail-sampling sizing Lab Health shows (the tests run a copy of this script elsewhere).
COLLECTOR_CONFIG = Path(os.environ.get("OBSLAB_COLLECTOR_CONFIG", HERE.parent.parent / "otel-collector/config.yaml"))
PROM = common.DataSourceRef(type_val="prometheus", uid="prometheus")
LOKI = common.DataSourceRef(type_val="loki", uid="loki")
TEMPO = common.DataSourceRef(type_val="tempo", uid="tempo")
Panel = board_builders.Panel  # every panel builder of the library builds a dashboard panel


def _legend() -> viz.VizLegendOptions:
    return viz.VizLegendOptions().display_mode(common.LegendDisplayMode.LIST) \
        .placement(common.LegendPlacement.BOTTOM).show_legend(True)


def timeseries(title: str, description: str, exprs: dict[str, str], unit: str, width: int = 12,
               no_value: str | None = None) -> time_series.Panel:
    """A time series panel; ``exprs`` maps legend format to PromQL, all of one ``unit`` (a Grafana unit id).

    ``no_value`` is the text shown while the query has no series yet (a condition that has not
    happened, such as an export failure), instead of Grafana's "No data".
    """
    panel = (time_series.Panel().title(title).description(description).datasource(PROM).unit(unit)
             .legend(_legend())
             # Grafana's own default tooltip (the library's model would sort it ascending)
             .tooltip(viz.VizTooltipOptions().mode(common.TooltipDisplayMode.SINGLE).sort(common.SortOrder.NONE))
             .span(width).height(8))
    if no_value:
        panel.no_value(no_value)
    for i, (legend, expr) in enumerate(exprs.items()):
        panel.with_target(prometheus.Dataquery().datasource(PROM).expr(expr).legend_format(legend)
                          .ref_id(chr(65 + i)).exemplar(True))
    return panel


def in_range(title: str, description: str, legend: str, expr: str, unit: str, width: int = 12) -> stat.Panel:
    """A stat panel: one value per series, for the dashboard's selected time range (an instant query
    whose counters are read with ``increase(...[$__range])``)."""
    return (stat.Panel().title(title).description(description).datasource(PROM).unit(unit)
            .reduce_options(viz.ReduceDataOptions().calcs(["lastNotNull"]).fields("").values(False))
            .orientation(common.VizOrientation.HORIZONTAL).text_mode(common.BigValueTextMode.VALUE_AND_NAME)
            .color_mode(common.BigValueColorMode.NONE).graph_mode(common.BigValueGraphMode.NONE)
            .justify_mode(common.BigValueJustifyMode.AUTO)
            .with_target(prometheus.Dataquery().datasource(PROM).expr(expr).legend_format(legend).ref_id("A")
                         .instant())
            .span(width).height(8))


# A line's trace link comes from the Loki datasource's one derived field, matched by the trace_id
# label (structured metadata of OTLP logs): the line is shown as it was logged.
def logs(title: str, description: str, expr: str) -> logs_panel.Panel:
    return (logs_panel.Panel().title(title).description(description).datasource(LOKI)
            .with_target(loki.Dataquery().datasource(LOKI).expr(expr).ref_id("A")
                         .query_type("range"))
            .show_time(True).wrap_log_message(True).enable_log_details(True)
            .sort_order(common.LogsSortOrder.DESCENDING)
            .span(24).height(10))


def node_graph(title: str, description: str) -> nodegraph.Panel:
    return (nodegraph.Panel().title(title).description(description).datasource(TEMPO)
            # Grafana runs the service graph queries on Prometheus with this selector appended.
            .with_target(tempo.TempoQuery().datasource(TEMPO).query_type("serviceMap").ref_id("A")
                         .service_map_query('{client=~"$service"}'))
            .span(24).height(10))


def alert_list(title: str, description: str) -> Panel:
    """Grafana's alert list panel (no builder in grafana-foundation-sdk): the alerts Prometheus evaluates,
    read through the Prometheus datasource, firing and pending ones."""
    return (Panel().type("alertlist").title(title).description(description).datasource(PROM).span(8).height(8)
            .targets([])
            .options({"viewMode": "list", "groupMode": "default", "groupBy": [], "maxItems": 20, "sortOrder": 1,
                      "dashboardAlerts": False, "alertName": "", "alertInstanceLabelFilter": "",
                      "datasource": "Prometheus", "folder": None, "showInactiveAlerts": False,
                      "stateFilter": {"firing": True, "pending": True, "noData": False, "normal": False,
                                      "error": True}}))


def variable(name: str, label: str, metric: str, prom_label: str) -> board_builders.QueryVariable:
    """A multi-value dashboard variable listing the values of ``prom_label`` on ``metric``.

    The library's variable model has no ``definition`` (the text Grafana's variable list shows, which
    it falls back to the query for) and adds its own defaults for fields of other variable types."""
    return (board_builders.QueryVariable(name).label(label).datasource(PROM)
            .query(f"label_values({metric}, {prom_label})")
            .refresh(models.VariableRefresh.ON_TIME_RANGE_CHANGED).sort(models.VariableSort.ALPHABETICAL_ASC)
            .include_all(True).multi(True).current(models.VariableOption(text=["All"], value=["$__all"]))
            .options([]).hide(models.VariableHide.DONT_HIDE).regex(""))


def service_and_environment(metric: str, service_label: str = "service_name") -> list:
    return [variable("service", "Service", metric, service_label),
            variable("environment", "Environment", metric, "deployment_environment")]


def thirds(panels: list[Panel]) -> list[Panel]:
    """Three panels per row, so that a dashboard of up to nine stays within one screenful (Grafana
    renders panels lazily, as they scroll into view)."""
    return [panel.span(8) for panel in panels]


def dashboard(uid: str, title: str, panels: list[Panel], tags: list[str], variables: list = ()) -> models.Dashboard:
    board = (board_builders.Dashboard(title).uid(uid).tags(["obslab", *tags]).timezone("browser").readonly()
             .version(1).refresh("30s").time("now-15m", "now").variables(list(variables)).annotations([]))
    for i, panel in enumerate(panels, start=1):
        # The library lays panels out left to right, a new row when one is full. Panel ids are per
        # dashboard and stable (tests find a panel by them); dashboards themselves carry no id.
        board.with_panel(panel.id(i))
    return board.build()


RATE = "[5m]"  # time series: per-second rates over 5-minute windows
# The tail sampler's sizing, shown on Lab Health, read from the collector's config (one source of truth).
_TAIL = yaml.safe_load(COLLECTOR_CONFIG.read_text())["processors"]["tail_sampling"]
RANGE = "[$__range]"  # stat panels: the dashboard's selected time range
# Selectors of the dashboards' variables, one per label naming scheme.
APP = '{service_name=~"$service", deployment_environment=~"$environment"}'   # the SDK's OTLP metrics
SPANS = '{service=~"$service", deployment_environment=~"$environment"}'      # the collector's span metrics
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
        timeseries("p95 time to first chunk by model (streamed LLM calls)",
                   "95th percentile of the time from a streamed LLM call's request to its first chunk, by model and "
                   "provider, over 5-minute windows, from the GenAI histogram "
                   "gen_ai_client_operation_time_to_first_chunk_seconds_bucket.", {
                       MODEL_LEGEND: f"histogram_quantile(0.95, sum by (le, {MODEL}) (rate("
                                     f"gen_ai_client_operation_time_to_first_chunk_seconds_bucket{APP}{RATE})))"}, "s"),
        timeseries("Evaluation scores by model",
                   "Mean score of the application's evaluations (record_evaluation) by evaluation name and model, "
                   "over 5-minute windows: obslab_gen_ai_evaluation_score_sum over obslab_gen_ai_evaluation_score_count.", {
                       "{{gen_ai_evaluation_name}} {{gen_ai_request_model}}":
                           f"sum by (gen_ai_evaluation_name, gen_ai_request_model) "
                           f"(rate(obslab_gen_ai_evaluation_score_sum{APP}{RATE})) / sum by (gen_ai_evaluation_name, "
                           f"gen_ai_request_model) (rate(obslab_gen_ai_evaluation_score_count{APP}{RATE}))"},
                   "percentunit"),
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
                   "(its gen_ai_client_token_usage_sum: input and output, which add up to what the calls used); "
                   "and the cache reads, cache writes and reasoning tokens counted in them, from obslab's "
                   "histogram obslab_gen_ai_client_token_usage (its obslab_gen_ai_client_token_usage_sum).", {
                       f"{MODEL_LEGEND} {{{{gen_ai_token_type}}}}":
                           f"sum by ({MODEL}, gen_ai_token_type) (rate(gen_ai_client_token_usage_sum{CHAT}{RATE}))",
                       f"{MODEL_LEGEND} {{{{obslab_gen_ai_token_type}}}} (of input or output)":
                           f"sum by ({MODEL}, obslab_gen_ai_token_type) "
                           f"(rate(obslab_gen_ai_client_token_usage_sum{CHAT}{RATE}))"},
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
        in_range("Saved by cache reads in the time range (USD)",
                 "What prompt-cache reads saved in US dollars over the selected time range by model and provider "
                 "(the input price minus the cache-read price of the cached tokens, from genai-prices or your "
                 f"prices), from obslab_gen_ai_client_cache_savings_total: {EXTRAPOLATED}.",
                 MODEL_LEGEND, f"sum by ({MODEL}) (increase(obslab_gen_ai_client_cache_savings_total{APP}{RANGE}))",
                 "currencyUSD"),
    ]), ["llm"], service_and_environment(LLM_CALLS)),
    "service-overview.json": dashboard("obslab-service-overview", "Service Overview", [
        timeseries("Request rate (span metrics)",
                   "Server and consumer spans per second by service (5-minute rate), from the collector's span "
                   "metrics traces_spanmetrics_calls_total.",
                   {"{{service}}": f"sum by (service) (rate(traces_spanmetrics_calls_total{SPANS}{RATE}))"},
                   "reqps", 8),
        timeseries("Error rate (span metrics)",
                   "Spans per second with an error status by service (5-minute rate), from the collector's span "
                   "metrics traces_spanmetrics_calls_total (status_code STATUS_CODE_ERROR).",
                   {"{{service}}": "sum by (service) (rate(traces_spanmetrics_calls_total"
                                   + SPANS[:-1] + f', status_code="STATUS_CODE_ERROR"}}{RATE}))'},
                   "reqps", 8),
        timeseries("p95 duration (span metrics)",
                   "95th percentile of span duration by service, over 5-minute windows, from the collector's span "
                   "metrics histogram traces_spanmetrics_duration_seconds_bucket.",
                   {"{{service}}": "histogram_quantile(0.95, sum by (le, service) "
                                   f"(rate(traces_spanmetrics_duration_seconds_bucket{SPANS}{RATE})))"}, "s", 8),
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
                   "Items each collector exporter dropped after its retries, or could not put in its queue (a "
                   "full disk), in the 5 minutes before each point (increase over 5 minutes), from "
                   "otelcol_exporter_send_failed_* and otelcol_exporter_enqueue_failed_* (spans, log_records, "
                   "metric_points). A refused log record or metric point was refused to its sender, which "
                   "retries; a refused span had passed the tail sampler and is lost.", {
                       "{{exporter}}": "sum by (exporter) (increase("
                                       f'{{__name__=~"otelcol_exporter_(send|enqueue)_failed_(spans|log_records|metric_points)"}}'
                                       f"{RATE}))"},
                   "count:items", no_value="No export failure since the collector started"),
        timeseries("Exporter queue",
                   "Bytes of requests waiting in each collector exporter's disk queue, and the queue's capacity "
                   "(256 MiB: a full queue refuses data before the disk is full), from the gauges "
                   "otelcol_exporter_queue_size and otelcol_exporter_queue_capacity (the lab's queues count bytes). "
                   "One line per queue: the forwarding exporter has one per signal (data_type).",
                   # By data_type too: summed, a full forwarding queue read as a third full (3 x 256 MiB).
                   {"{{exporter}} {{data_type}} size": "sum by (exporter, data_type) (otelcol_exporter_queue_size)",
                    "{{exporter}} {{data_type}} capacity":
                        "sum by (exporter, data_type) (otelcol_exporter_queue_capacity)"}, "bytes"),
        timeseries("Backend ingest",
                   "Items per second each backend ingested (5-minute rates): spans from "
                   "tempo_distributor_spans_received_total, log lines from loki_distributor_lines_received_total, "
                   "samples from prometheus_tsdb_head_samples_appended_total.", {
                       "Tempo spans": f"sum(rate(tempo_distributor_spans_received_total{RATE}))",
                       "Loki lines": f"sum(rate(loki_distributor_lines_received_total{RATE}))",
                       "Prometheus samples": f"sum(rate(prometheus_tsdb_head_samples_appended_total{RATE}))"},
                   "count:items/s", width=24),
        # The alerts' links (prometheus/rules/obslab-alerts.yml) open these panels by id: 6, 7 and 8.
        timeseries("Scrape targets up",
                   "Whether Prometheus reaches each scrape target (1 up, 0 down), by job, from its up series; "
                   "the ScrapeTargetDown alert fires on a 0.", {"{{job}}": "min by (job) (up)"}, "none", 8),
        timeseries("SDK records dropped during collector outages (per 5 minutes)",
                   "Spans and log records each obslab SDK process could not keep while the collector was "
                   "unreachable, in the 5 minutes before each point (increase over 5 minutes), by service and "
                   "signal, from obslab_outage_dropped_total.",
                   {"{{service_name}} {{signal}}":
                    f"sum by (service_name, signal) (increase(obslab_outage_dropped_total{RATE}))"},
                   "count:records", 8),
        alert_list("Firing alerts",
                   "The alerts of prometheus/rules/obslab-alerts.yml now firing or pending, from Prometheus' "
                   "rules (Alertmanager, its datasource, routes them and holds the silences)."),
        # Appended: the alerts' links above open panels by id.
        timeseries("Tail sampling: traces waiting",
                   "Below SAMPLING_PERCENTAGE=100 only (at 100, the default, spans skip the sampler: no data). "
                   "Traces the collector's tail sampler holds in memory, not kept yet: each waits up to "
                   f"{_TAIL['decision_wait']} (decision_wait) for an error or slow span that would keep it (a "
                   "kept trace goes on at once), from the gauge otelcol_processor_tail_sampling_sampling_traces_on_memory; "
                   f"the red line is the most it holds ({_TAIL['num_traces']:,}, num_traces in "
                   "otel-collector/config.yaml). Beyond it the oldest waiting trace is dropped undecided: the traces "
                   "dropped so (increase over 5 minutes), from otelcol_processor_tail_sampling_sampling_trace_dropped_too_early.", {
                       "waiting": "sum(otelcol_processor_tail_sampling_sampling_traces_on_memory)",
                       "dropped undecided (per 5 min)":
                           f"sum(increase(otelcol_processor_tail_sampling_sampling_trace_dropped_too_early{RATE}))"},
                   "short")
        .thresholds(board_builders.ThresholdsConfig().mode(models.ThresholdsMode.ABSOLUTE).steps([
            models.Threshold(value=None, color="green"), models.Threshold(value=_TAIL["num_traces"], color="red")]))
        .thresholds_style(viz.GraphThresholdsStyleConfig().mode(common.GraphThresholdsStyleMode.LINE)),
        timeseries("Tail sampling: decisions",
                   "Below SAMPLING_PERCENTAGE=100 only (at 100, the default, spans skip the sampler: no data). "
                   "Traces kept per second by the tail sampler (5-minute rates), by the policy that kept them "
                   "(errors; slow: longer than SLOW_TRACE_MS; the-rest: SAMPLING_PERCENTAGE), from "
                   "otelcol_processor_tail_sampling_count_traces_sampled, and every decision, kept (sampled=true) "
                   "or dropped (sampled=false), from otelcol_processor_tail_sampling_global_count_traces_sampled.", {
                       "kept by {{policy}}": "sum by (policy) (rate(otelcol_processor_tail_sampling_count_traces_sampled"
                                             f'{{sampled="true"}}{RATE}))',
                       "all, sampled={{sampled}}": "sum by (sampled) (rate("
                                                   f"otelcol_processor_tail_sampling_global_count_traces_sampled{RATE}))"},
                   "count:traces/s"),
        timeseries("Collector memory",
                   "The collector's Go heap in use and its resident memory, from the gauges "
                   "otelcol_process_runtime_heap_alloc_bytes and otelcol_process_memory_rss (the tail sampler's "
                   "waiting traces are heap). The memory_limiter refuses new data above 80 % of the "
                   "container's memory limit (1 GiB in the compose file).", {
                       "heap": "sum(otelcol_process_runtime_heap_alloc_bytes)",
                       "resident": "sum(otelcol_process_memory_rss)"}, "bytes", 24),
    ], ["lab"]),
}


def as_json(board: models.Dashboard) -> dict:
    """A dashboard as the JSON Grafana provisions: the library's model, encoded by the library."""
    return json.loads(json.dumps(board, cls=JSONEncoder))


# What prometheus_panel_queries() puts in place of each dashboard variable unless told otherwise:
# the services the lab's examples run under their default names (examples/travel_agent, examples/etl),
# in the SDK's default environment.
TEST_VALUES: dict[str, dict[str, list[str]]] = {
    "obslab-agent-performance": {"service": ["travel-agent"], "environment": ["development"]},
    "obslab-llm-cost": {"service": ["travel-agent"], "environment": ["development"]},
    "obslab-service-overview": {"service": ["travel-agent"], "environment": ["development"]},
    "obslab-data-pipeline": {"service": ["etl-pipeline"], "environment": ["development"]},
    "obslab-lab-health": {},
}


class PanelQuery(NamedTuple):
    uid: str  # the dashboard's
    title: str  # the panel's
    expr: str  # PromQL, every Grafana variable replaced


def _regex_value(values: Sequence[str]) -> str:
    """A multi-value variable in a regex matcher, as Grafana writes it: one value escaped, several as
    an escaped alternation."""
    escaped = [re.sub(r"[\\^$.|?*+()\[\]{}]", lambda m: "\\\\" + m.group(0), v) for v in values]
    return escaped[0] if len(escaped) == 1 else "(" + "|".join(escaped) + ")"


def prometheus_panel_queries(values: Mapping[str, Mapping[str, Sequence[str]]] | None = None,
                             time_range: str = "1h") -> list[PanelQuery]:
    """Every Prometheus panel query of every dashboard, as (dashboard uid, panel title, expr), in
    dashboard and panel order, with Grafana's variables replaced so that Prometheus runs it as is.

    ``values`` maps a dashboard uid to the values of its variables (TEST_VALUES for a dashboard not
    named); ``time_range`` takes the place of ``$__range``, which a stat panel's instant query reads
    its counters over. A variable a query uses but the dashboard does not define raises KeyError.
    """
    queries = []
    for board in map(as_json, DASHBOARDS.values()):
        chosen = {**TEST_VALUES.get(board["uid"], {}), **(values or {}).get(board["uid"], {})}
        defined = {v["name"] for v in board["templating"]["list"]}

        def substitute(match: re.Match) -> str:
            name = match.group(1) or match.group(2)
            if name == "__range":
                return time_range
            if name not in defined:
                raise KeyError(f"{board['uid']}: ${name} is not a variable of the dashboard")
            return _regex_value(chosen[name])

        for panel in board["panels"]:
            for target in panel.get("targets", []):
                if target["datasource"]["uid"] == "prometheus":
                    expr = re.sub(r"\$\{(\w+)\}|\$(\w+)", substitute, target["expr"])
                    queries.append(PanelQuery(board["uid"], panel["title"], expr))
    return queries


def main() -> None:
    for name, board in DASHBOARDS.items():
        (HERE / name).write_text(json.dumps(board, cls=JSONEncoder, indent=2) + "\n")


if __name__ == "__main__":
    main()
