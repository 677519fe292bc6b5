#!/usr/bin/env python3
"""What pricing an LLM call costs, against the cost of the call path around it.

Run: .venv/bin/python benchmarks/price_lookup.py
Prints per-call medians (µs) of:
- genai-prices' own ``calc_price`` (model matching plus Decimal arithmetic: what a lookup per call would cost);
- obslab's ``PriceTable.cost``: the first lookup of a model, then a cached one (hit and miss);
- ``LLMCostProcessor.on_end`` on a finished ``chat`` span (price plus the cost metric);
- the call path: ``trace_llm_call`` + ``record_llm_usage`` with in-memory export (pricing included), and
  one real ``openai`` client call, instrumented, against the local fake server (loopback HTTP).
No assertion: figures for the README.
"""
from __future__ import annotations

import logging
import statistics
import sys
import time
import timeit
from pathlib import Path

import genai_prices
from genai_prices import data_snapshot
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from obslab.config import Settings
from obslab.genai import LLMCostProcessor
from obslab.prices import PriceTable
from obslab.telemetry import Telemetry

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "examples" / "travel_agent"))
import fake_llm  # noqa: E402

N, REPEAT = 2000, 7


def median_us(statement, number: int = N) -> float:
    return statistics.median(timeit.repeat(statement, number=number, repeat=REPEAT)) / number * 1e6


def main() -> None:
    logging.getLogger("httpx2").setLevel(logging.WARNING)
    usage = genai_prices.Usage(input_tokens=1200, output_tokens=300, cache_read_tokens=800)
    genai_prices.calc_price(usage, "claude-sonnet-4-5", provider_id="anthropic")  # data loaded
    raw = median_us(lambda: genai_prices.calc_price(usage, "claude-sonnet-4-5", provider_id="anthropic"))

    first = []
    for _ in range(200):  # a new table and genai-prices' own match cache emptied: a cold lookup
        table = PriceTable()
        data_snapshot.get_snapshot()._lookup_cache.clear()
        started = time.perf_counter()
        table.cost("openai", "gpt-4o-mini", 1200, 300, cache_read_tokens=800)
        first.append((time.perf_counter() - started) * 1e6)
    table = PriceTable()
    table.cost("anthropic", "claude-sonnet-4-5", 1, 1)
    table.cost("openai", "local-llama-3", 1, 1)
    hit = median_us(lambda: table.cost("anthropic", "claude-sonnet-4-5", 1200, 300, cache_read_tokens=800))
    miss = median_us(lambda: table.cost("openai", "local-llama-3", 1200, 300))

    spans, reader = InMemorySpanExporter(), InMemoryMetricReader()
    handle = Telemetry(Settings(service_name="bench", instrument=("openai",)), span_exporter=spans,
                       log_exporter=InMemoryLogRecordExporter(),
                       metric_readers=(reader,))
    handle._install()
    with handle.trace_llm_call("claude-sonnet-4-5", "anthropic"):
        handle.record_llm_usage("claude-sonnet-4-5", "anthropic", 1200, 300, cache_read_tokens=800)
    handle.force_flush(2)
    finished = [s for s in spans.get_finished_spans() if s.name.startswith("chat ")][-1]
    processor = LLMCostProcessor(handle._meter_provider.get_meter("bench"), PriceTable())
    processor.on_end(finished)
    on_end = median_us(lambda: processor.on_end(finished))

    def helper_call() -> None:
        with handle.trace_llm_call("claude-sonnet-4-5", "anthropic"):
            handle.record_llm_usage("claude-sonnet-4-5", "anthropic", 1200, 300, cache_read_tokens=800)
    helper = median_us(helper_call, number=500)
    spans.clear()

    import openai
    with fake_llm.FakeLLMServer() as server:
        client = openai.OpenAI(base_url=server.openai_base_url, api_key="sk-fake", max_retries=0)
        messages = [{"role": "user", "content": "Find me a flight from Montreal to Paris tomorrow"}]
        client.chat.completions.create(model="gpt-4o-mini", messages=messages)
        client_call = median_us(lambda: client.chat.completions.create(model="gpt-4o-mini", messages=messages),
                                number=50)
    handle.shutdown(1)

    print(f"{'what':66} {'µs/call':>9}")
    for what, value in [
        ("genai-prices calc_price (lookup + Decimal), per call", raw),
        ("PriceTable.cost, first lookup of a model (uncached), median", statistics.median(first)),
        ("PriceTable.cost, cached model (hit)", hit),
        ("PriceTable.cost, cached miss (unpriced model)", miss),
        ("LLMCostProcessor.on_end (price; cost, savings, cache_read points)", on_end),
        ("call path: trace_llm_call + record_llm_usage (in memory)", helper),
        ("call path: instrumented openai call to the fake server", client_call),
    ]:
        print(f"{what:66} {value:9.1f}")


if __name__ == "__main__":
    main()
