"""A deterministic travel agent that exercises every obslab helper (no real LLM).

Run: python examples/travel_agent/main.py [--requests N] [--interval SECONDS]
Each request prints one JSON line: {"intent", "trace_id"}. Settings (endpoint, service name)
come from the environment or .env, as for any obslab service.
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import time

from obslab import init_telemetry

INTENTS = ("planning", "booking", "question")
TOOLS = {"planning": ["search_flights", "search_hotels"], "booking": ["book_flight"], "question": []}
MODELS = (("claude-sonnet-4", "anthropic", 3e-6, 15e-6), ("gpt-4o-mini", "openai", 0.15e-6, 0.6e-6))

log = logging.getLogger("travel_agent")


class ToolFailure(RuntimeError):
    """A fake tool error, raised on a fixed schedule so that error panels have data."""


def run_tool(telemetry, name: str, request_no: int) -> int:
    with telemetry.trace_tool_call(name, departure="YUL", arrival="CDG") as span:
        time.sleep(0.005)
        log.info("tool %s called", name, extra={"data": {"tool": name, "request_no": request_no}})
        if name == "book_flight" and request_no % 5 == 4:
            raise ToolFailure(f"{name}: no seats left")
        span.set_attribute("tool.result_count", 3)
        return 3


def handle_request(telemetry, request_no: int, rng: random.Random) -> dict:
    intent = INTENTS[request_no % len(INTENTS)]
    model, provider, in_price, out_price = MODELS[request_no % len(MODELS)]
    started, ok = time.perf_counter(), True
    with telemetry.trace_agent_iteration(0) as span:
        span.set_attribute("agent.intent", intent)
        trace_id = telemetry.get_trace_context()["trace_id"]
        log.info("request received", extra={"intent": intent, "request_no": request_no})
        with telemetry.trace_llm_call(model=model, provider=provider) as llm_span:
            time.sleep(0.01 + rng.random() * 0.02)
            prompt, completion = 200 + 10 * request_no % 300, 50 + 7 * request_no % 120
            telemetry.record_llm_usage(model, provider, prompt, completion,
                                       cost_usd=prompt * in_price + completion * out_price)
            llm_span.set_attribute("llm.response_length", completion * 4)
            for tool in TOOLS[intent]:
                try:
                    run_tool(telemetry, tool, request_no)
                except ToolFailure as exc:
                    ok = False
                    telemetry.record_error(type(exc).__name__, "tools")
                    log.error("tool failed: %s", exc)
    duration_ms = (time.perf_counter() - started) * 1000
    telemetry.record_request(intent, duration_ms, ok)
    return {"intent": intent, "trace_id": trace_id, "ok": ok}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=20)
    parser.add_argument("--interval", type=float, default=0.1)
    parser.add_argument("--service-name", default="travel-agent")
    args = parser.parse_args()
    telemetry = init_telemetry(service_name=args.service_name, service_version="1.0.0", metric_export_interval=2)
    rng = random.Random(42)
    log.info("travel agent demo starting", extra={"requests": args.requests})
    for request_no in range(args.requests):
        print(json.dumps(handle_request(telemetry, request_no, rng)), flush=True)
        time.sleep(args.interval)
    log.info("travel agent demo done")
    telemetry.shutdown(timeout=10)


if __name__ == "__main__":
    main()
