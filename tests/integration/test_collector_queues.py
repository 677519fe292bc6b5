"""Nothing that reached the collector is lost: its restarts, the backends stopped for 30 s, a burst.

Every span and log record carries a unique seq (tests/integration/otlp_stream.py); each test counts
what Tempo, Loki and Prometheus hold against what was sent, exactly. Where the ingest witness
stands in for Tempo and Loki, it is what is stopped and counted in their place.
"""

from __future__ import annotations

import concurrent.futures
import time
import uuid

import pytest
import requests

from conftest import WITNESSED, eventually, settle
from otlp_stream import (Stream, logs_request, post, spans_request, stored_counter, stored_logs, stored_spans)


def _all_stored(lab, service: str, sent: int, timeout: float = 180) -> None:
    """Wait until every backend holds exactly ``sent`` records of ``service``; fail naming the gap."""
    expected = {"tempo": sent, "loki": sent, "prometheus": sent}

    def counts() -> dict[str, int] | None:
        try:
            return {"tempo": stored_spans(lab, service), "loki": stored_logs(lab, service),
                    "prometheus": stored_counter(lab, service)}
        except requests.RequestException:  # a backend just started may not answer yet
            return None

    stored = settle(counts, lambda found: found == expected, timeout)
    print(f"{service}: sent {sent} spans, {sent} log records, counter {sent}; stored {stored}"
          + (" (tempo and loki: what the ingest witness received)" if lab.witness else ""))
    assert stored == expected


def test_collector_restart_in_the_middle_of_a_stream_loses_nothing(lab):
    service = f"restart-{uuid.uuid4().hex[:8]}"
    with Stream(lab.otlp_http, service) as stream:
        time.sleep(5)
        lab.compose("restart", "otel-collector")
        time.sleep(5)
    _all_stored(lab, service, stream.sent)


def test_what_the_collector_queued_for_a_stopped_backend_survives_its_restart(lab):
    """Loki stopped: the collector keeps the logs in its queue; restarted meanwhile, it must still
    hold them (on disk) and deliver them once Loki is back."""
    service = f"queued-{uuid.uuid4().hex[:8]}"
    backend = lab.backend("loki")
    lab.compose("stop", backend)
    try:
        with Stream(lab.otlp_http, service) as stream:
            time.sleep(10)
            lab.compose("restart", "otel-collector")
            time.sleep(5)
    finally:
        lab.compose("up", "-d", "--wait", backend)
    _all_stored(lab, service, stream.sent)


# The ingest witness receives for both Tempo and Loki where it stands in for them: stopped once.
BACKENDS = ["ingest-witness", "prometheus"] if WITNESSED else ["loki", "tempo", "prometheus"]


def test_every_backend_stopped_for_30s_loses_nothing_once_they_are_back(lab):
    """All of them at once: each exporter's disk queue holds its signal for the whole outage (six
    retries at the queue's 5 s max_interval), and each backend gets exactly what was sent once it is back."""
    service = f"backends-down-{uuid.uuid4().hex[:8]}"
    with Stream(lab.otlp_http, service) as stream:
        time.sleep(5)
        lab.compose("stop", *BACKENDS)
        try:
            time.sleep(30)
        finally:
            lab.compose("up", "-d", "--wait", *BACKENDS)
        time.sleep(5)
    _all_stored(lab, service, stream.sent)


def test_a_burst_of_logs_and_spans_is_stored_without_refusal(lab):
    """200,000 log records and 40,000 spans, as fast as this machine sends them: all stored, and
    neither Loki nor Tempo (where they run) refused any, nor did any send of the collector fail."""
    service = f"burst-{uuid.uuid4().hex[:8]}"
    logs, spans, per_request = 200_000, 40_000, 5_000
    requests_ = [("logs", logs_request(service, first, per_request)) for first in range(0, logs, per_request)]
    requests_ += [("traces", spans_request(service, first, per_request)) for first in range(0, spans, per_request)]
    time.sleep(16)  # a scrape (every 15 s) after what earlier tests did, so the deltas are this burst's
    refusals = _REFUSALS if lab.witness else _REFUSALS + _BACKEND_REFUSALS
    refused_before = {name: lab.value(f"sum({name})") for name in refusals}
    sent_before = {name: lab.value(f"sum({name})") for name in _SENT}
    started = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        accepted = list(pool.map(lambda r: post(lab.otlp_http, r[0], r[1]), requests_))
    seconds = time.monotonic() - started
    print(f"burst: {logs} log records and {spans} spans accepted in {seconds:.2f} s "
          f"({logs / seconds:,.0f} logs/s, {spans / seconds:,.0f} spans/s)")
    assert all(accepted), "the collector refused part of the burst"
    assert eventually(lambda: stored_logs(lab, service) == logs, timeout=180)
    assert eventually(lambda: stored_spans(lab, service) == spans, timeout=180)
    time.sleep(16)  # one more scrape of Loki, Tempo and the collector (15 s interval)
    refused = {name: lab.value(f"sum({name})") - refused_before[name] for name in refusals}
    sent = {name: lab.value(f"sum({name})") - sent_before[name] for name in _SENT}
    print(f"burst: the collector's exporters sent {sent}; failures and refusals {refused}")
    assert all(sent[name] >= count for name, count in _SENT.items())  # the counters read are the exporters' own
    assert refused == {name: 0.0 for name in refusals}


# What the collector's exporters sent (at least the burst), proving the metrics read here exist.
_SENT = {'otelcol_exporter_sent_log_records{exporter="otlp_http/loki"}': 200_000,
         'otelcol_exporter_sent_spans{exporter="otlp_grpc/tempo"}': 40_000}
# The collector's failed sends (a series appears at the first failure), and Loki's and Tempo's own counts of what they refused for a limit.
_REFUSALS = (
    'otelcol_exporter_send_failed_log_records{exporter="otlp_http/loki"}',
    'otelcol_exporter_send_failed_spans{exporter="otlp_grpc/tempo"}',
)
_BACKEND_REFUSALS = (
    'loki_discarded_samples_total{reason=~"rate_limited|per_stream_rate_limit|stream_limit"}',
    'tempo_discarded_spans_total',
)
