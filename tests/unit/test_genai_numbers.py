"""Issue 26, section 4: one LLM call reported in several ``record_llm_usage`` chunks is priced once, on
its totals, as genai-prices prices it (a per-request fee once, a tier reached by the total), and
``agent.llm.estimated_cost`` agrees with ``obslab.gen_ai.client.cost``; ``gen_ai.client.token.usage``
keeps the conventions' token types, cache and reasoning tokens go to obslab's own metric."""

from __future__ import annotations

from datetime import datetime, timezone

import genai_prices
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from obslab.config import Settings
from obslab.prices import Price

# (conventions provider, model, genai-prices provider id): a per-request fee (Perplexity's sonar), a
# tier at 200k input tokens (Claude Sonnet 4.5), and a plain price.
MODELS = [("perplexity", "sonar", "perplexity"), ("anthropic", "claude-sonnet-4-5", "anthropic"),
          ("openai", "gpt-4o", "openai")]


def metric_sum(recorded, name: str, **where) -> float:
    return sum(value for attributes, value in recorded.metrics().get(name, [])
               if all(attributes.get(k) == v for k, v in where.items()))


def genai_prices_total(provider_id, model, usage) -> float:
    """genai-prices' own price of a call of ``usage`` (input, output, cache read, cache write, reasoning)."""
    inp, out, cache_read, cache_write, reasoning = usage
    calculated = genai_prices.calc_price(
        genai_prices.Usage(input_tokens=inp, output_tokens=out, cache_read_tokens=cache_read,
                           cache_write_tokens=cache_write, output_reasoning_tokens=reasoning),
        model, provider_id=provider_id, genai_request_timestamp=datetime.now(tz=timezone.utc))
    return float(calculated.total_price)


@st.composite
def chunk(draw):
    """One usage report: input includes the cache reads and writes, output the reasoning tokens."""
    inp = draw(st.integers(0, 120_000))
    cache_read = draw(st.integers(0, inp))
    cache_write = draw(st.integers(0, inp - cache_read))
    out = draw(st.integers(0, 4_000))
    return inp, out, cache_read, cache_write, draw(st.integers(0, out))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(model=st.sampled_from(MODELS), chunks=st.lists(chunk(), min_size=1, max_size=5))
def test_a_call_reported_in_chunks_is_priced_once_on_its_totals(recording, model, chunks):
    provider, name, provider_id = model
    recorded = recording(Settings(service_name="unit-test"))
    with recorded.handle.trace_llm_call(name, provider):
        for inp, out, cache_read, cache_write, reasoning in chunks:
            recorded.handle.record_llm_usage(name, provider, inp, out, cache_read_tokens=cache_read,
                                             cache_creation_tokens=cache_write, reasoning_tokens=reasoning)
    totals = tuple(map(sum, zip(*chunks)))
    expected = genai_prices_total(provider_id, name, totals)
    recorded.spans()
    catalogue = metric_sum(recorded, "agent.llm.estimated_cost")
    conventions = metric_sum(recorded, "obslab.gen_ai.client.cost")
    assert catalogue == pytest.approx(conventions, rel=1e-9, abs=1e-12)
    assert catalogue == pytest.approx(expected, rel=1e-9, abs=1e-12)
    recorded.handle.shutdown(1)


def test_a_per_request_fee_is_charged_once_for_a_call_in_two_chunks(recording):
    recorded = recording(Settings(service_name="unit-test", prices={("vllm", "m"): Price(1.0, 2.0, per_call=0.5)}))
    with recorded.handle.trace_llm_call("m", "vllm"):
        recorded.handle.record_llm_usage("m", "vllm", 1_000_000, 0)
        recorded.handle.record_llm_usage("m", "vllm", 1_000_000, 0)
    recorded.spans()
    assert metric_sum(recorded, "agent.llm.estimated_cost") == pytest.approx(2.0 + 0.5)
    assert metric_sum(recorded, "obslab.gen_ai.client.cost") == pytest.approx(2.0 + 0.5)


def test_a_tier_is_reached_by_the_total_of_the_chunks(recording):
    recorded = recording(Settings(service_name="unit-test"))
    with recorded.handle.trace_llm_call("claude-sonnet-4-5", "anthropic"):
        recorded.handle.record_llm_usage("claude-sonnet-4-5", "anthropic", 150_000, 0)
        recorded.handle.record_llm_usage("claude-sonnet-4-5", "anthropic", 150_000, 0)
    recorded.spans()
    tiered = genai_prices_total("anthropic", "claude-sonnet-4-5", (300_000, 0, 0, 0, 0))
    assert tiered > 2 * genai_prices_total("anthropic", "claude-sonnet-4-5", (150_000, 0, 0, 0, 0))
    assert metric_sum(recorded, "agent.llm.estimated_cost") == pytest.approx(tiered)


def test_explicit_costs_of_chunks_add_up_and_the_rest_is_priced_on_its_totals(recording):
    recorded = recording(Settings(service_name="unit-test", prices={("vllm", "m"): Price(1.0, 2.0, per_call=0.5)}))
    with recorded.handle.trace_llm_call("m", "vllm"):
        recorded.handle.record_llm_usage("m", "vllm", 10, 10, cost_usd=0.25)
        recorded.handle.record_llm_usage("m", "vllm", 1_000_000, 0)
        recorded.handle.record_llm_usage("m", "vllm", 1_000_000, 0, cost_usd=0.25)
    assert metric_sum(recorded, "agent.llm.estimated_cost") == pytest.approx(0.25 + 0.25 + 1.0 + 0.5)


def test_chunks_outside_a_traced_call_are_priced_on_the_span_totals(recording):
    recorded = recording(Settings(service_name="unit-test", prices={("vllm", "m"): Price(1.0, 2.0, per_call=0.5)}))
    with recorded.handle.span("batch job"):
        recorded.handle.record_llm_usage("m", "vllm", 1_000_000, 0)
        recorded.handle.record_llm_usage("m", "vllm", 1_000_000, 0)
    assert metric_sum(recorded, "agent.llm.estimated_cost") == pytest.approx(2.0 + 0.5)


def token_points(recorded, name: str) -> list:
    recorded.handle.force_flush(2)
    data = recorded._reader.get_metrics_data()
    return [p for rm in data.resource_metrics for sm in rm.scope_metrics for m in sm.metrics if m.name == name
            for p in m.data.data_points]


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(chunks=st.lists(chunk(), min_size=1, max_size=3))
def test_the_conventions_token_metric_sums_to_the_tokens_the_call_used(recording, chunks):
    """A call of 2,000 input tokens (1,500 read from the cache) and 400 output tokens (200 of them
    reasoning) used 2,400 tokens: the sum over gen_ai.token.type says 2,400, not 4,100."""
    recorded = recording(Settings(service_name="unit-test"))
    with recorded.handle.trace_llm_call("claude-sonnet-4-5", "anthropic"):
        for inp, out, cache_read, cache_write, reasoning in chunks:
            recorded.handle.record_llm_usage("claude-sonnet-4-5", "anthropic", inp, out, cache_read_tokens=cache_read,
                                             cache_creation_tokens=cache_write, reasoning_tokens=reasoning)
    inp, out, cache_read, cache_write, reasoning = map(sum, zip(*chunks))
    conventions = token_points(recorded, "gen_ai.client.token.usage")
    assert {p.attributes["gen_ai.token.type"] for p in conventions} <= {"input", "output"}
    assert sum(p.sum for p in conventions) == inp + out
    details = {p.attributes["obslab.gen_ai.token.type"]: p.sum
               for p in token_points(recorded, "obslab.gen_ai.client.token.usage")}
    assert details == {kind: count for kind, count in (("cache_read", cache_read), ("cache_creation", cache_write),
                                                       ("reasoning", reasoning)) if count}
    recorded.handle.shutdown(1)


# --- issue 26, section 3: the first priced call never waits for genai-prices' import ------------

SLOW_IMPORT_APP = r'''
import importlib.abc, json, sys, threading
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter

importing, release = threading.Event(), threading.Event()


class SlowGenaiPrices(importlib.abc.MetaPathFinder):
    """genai-prices' import, held up (import lock taken) until the test lets it go, in obslab's thread."""

    def find_spec(self, name, path=None, target=None):
        if name == "genai_prices" and threading.current_thread().name == "obslab-prices":
            importing.set()
            release.wait(60)
        return None


sys.meta_path.insert(0, SlowGenaiPrices())
from obslab.config import Settings
from obslab.telemetry import Telemetry

from opentelemetry.sdk.metrics.export import MetricExporter, MetricExportResult


class Kept(MetricExporter):
    def __init__(self):
        super().__init__()
        self.costs = {}

    def export(self, data, timeout_millis=10_000, **kwargs):
        for rm in data.resource_metrics:
            for sm in rm.scope_metrics:
                for m in sm.metrics:
                    if m.name in ("agent.llm.estimated_cost", "obslab.gen_ai.client.cost"):
                        self.costs[m.name] = sum(p.value for p in m.data.data_points)  # cumulative: the last
        return MetricExportResult.SUCCESS

    def force_flush(self, timeout_millis=10_000):
        return True

    def shutdown(self, timeout_millis=30_000, **kwargs):
        pass


ENDING = sys.argv[1]
kept = Kept()
handle = Telemetry(Settings(service_name="app"), span_exporter=InMemorySpanExporter(),
                   log_exporter=InMemoryLogRecordExporter(), metric_exporter=kept)
assert importing.wait(30), "the price data import never started"
done = threading.Event()
if ENDING == "idle shutdown":  # no LLM call at all: nothing to wait for
    threading.Thread(target=lambda: (handle.shutdown(30), done.set()), daemon=True).start()
    print(json.dumps({"returned_while_the_import_was_held": done.wait(20) and not release.is_set()}))
    release.set()
    sys.exit(0)


def first_priced_call():
    with handle.trace_llm_call("gpt-4o", "openai"):
        handle.record_llm_usage("gpt-4o", "openai", 1_000_000, 0)
    done.set()


threading.Thread(target=first_priced_call, daemon=True).start()
returned = done.wait(20)  # generous: the call itself takes milliseconds; waiting on the import, forever
result = {"returned_while_the_import_was_held": returned and not release.is_set()}
release.set()
done.wait(60)
if ENDING == "flush":
    handle.force_flush(30)
else:
    handle.shutdown(30)
result["costs"] = kept.costs  # what was exported by the flush, or by the shutdown
print(json.dumps(result))
'''


def run_with_the_price_data_import_held(tmp_path, ending: str) -> dict:
    import json
    import subprocess
    import sys

    script = tmp_path / "app.py"
    script.write_text(SLOW_IMPORT_APP)
    run = subprocess.run([sys.executable, str(script), ending], capture_output=True, text=True, timeout=180)
    assert run.returncode == 0, run.stderr
    return json.loads(run.stdout.strip().splitlines()[-1])


def test_a_shutdown_with_no_priced_call_does_not_wait_for_the_price_data(tmp_path):
    assert run_with_the_price_data_import_held(tmp_path, "idle shutdown") == {"returned_while_the_import_was_held": True}


@pytest.mark.parametrize("ending", ["flush", "shutdown"])
def test_the_first_priced_call_returns_while_the_price_data_import_is_held_and_is_priced_after(tmp_path, ending):
    result = run_with_the_price_data_import_held(tmp_path, ending)
    assert result["returned_while_the_import_was_held"], result
    gpt_4o = genai_prices_total("openai", "gpt-4o", (1_000_000, 0, 0, 0, 0))
    assert result["costs"] == {"agent.llm.estimated_cost": pytest.approx(gpt_4o),
                               "obslab.gen_ai.client.cost": pytest.approx(gpt_4o)}  # priced, not lost
