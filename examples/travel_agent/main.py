"""A deterministic travel agent that exercises every obslab helper (no real LLM).

Run: python examples/travel_agent/main.py [--requests N] [--interval SECONDS] [--fake-llm [both|openai|anthropic]]
Each request prints one JSON line: {"intent", "trace_id"}. Settings (endpoint, service name)
come from the environment or .env, as for any obslab service.

With ``--fake-llm`` each request also writes its answer with a real OpenAI or Anthropic client
(alternately, or the one named), instrumented by ``instrument=["openai", "anthropic"]`` and talking
to the local fake server of ``fake_llm.py``: streamed every third request, refused by the server
(429 or 400) every fifth, and every eighth for a model the price table does not know. Every call
starts with the same system prompt, cached by the provider (OpenAI's automatic caching, Anthropic's
``cache_control``), and every answer is scored (``record_evaluation``, evaluation ``answer_relevance``).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import random
import time

from obslab import init_telemetry

INTENTS = ("planning", "booking", "question")
TOOLS = {"planning": ["search_flights", "search_hotels"], "booking": ["book_flight"], "question": []}
MODELS = (("claude-sonnet-4", "anthropic"), ("gpt-4o-mini", "openai"))
CLIENT_MODELS = {"openai": "gpt-4o-mini", "anthropic": "claude-haiku-4-5"}
UNPRICED_MODEL = "local-llama-3"  # not in the price table: counted as unpriced
# The system prompt every LLM call starts with: the provider caches it after the first call.
SYSTEM_PROMPT = ("You are a travel agent for flights from Montreal. Answer in one sentence, name the cheapest "
                 "flight and its departure time, and never invent a flight that the tools did not return.")

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


class FakeLLMClients:
    """The real OpenAI and Anthropic clients, pointed at the fake server."""

    def __init__(self, base_url: str, providers: tuple[str, ...]) -> None:
        import anthropic
        import openai

        self.providers = providers
        self.openai = openai.OpenAI(base_url=base_url + "/v1", api_key="sk-fake", max_retries=0)
        self.anthropic = anthropic.Anthropic(base_url=base_url, api_key="sk-ant-fake", max_retries=0)
        self.errors = (openai.APIError, anthropic.APIError)

    def answer(self, request_no: int, question: str) -> str:
        """One chat call; which provider, streaming, an error or an unpriced model depend on request_no."""
        provider, model = self.providers[request_no % len(self.providers)], self.model_of(request_no)
        stream = request_no % 3 == 2
        headers = {"X-Fake-LLM-Status": "429" if provider == "openai" else "400"} if request_no % 5 == 4 else {}
        if provider == "openai":
            messages = [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": question}]
            if stream:
                chunks = self.openai.chat.completions.create(model=model, messages=messages, stream=True,
                                                             stream_options={"include_usage": True},
                                                             extra_headers=headers)
                return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
            reply = self.openai.chat.completions.create(model=model, messages=messages, extra_headers=headers)
            return reply.choices[0].message.content
        system = [{"type": "text", "text": SYSTEM_PROMPT, "cache_control": {"type": "ephemeral"}}]
        messages = [{"role": "user", "content": question}]
        if stream:
            events = self.anthropic.messages.create(model=model, max_tokens=512, system=system, messages=messages,
                                                    stream=True, extra_headers=headers)
            return "".join(e.delta.text for e in events if e.type == "content_block_delta")
        reply = self.anthropic.messages.create(model=model, max_tokens=512, system=system, messages=messages,
                                               extra_headers=headers)
        return reply.content[0].text

    def model_of(self, request_no: int) -> str:
        """The model ``answer`` calls for ``request_no``."""
        provider = self.providers[request_no % len(self.providers)]
        return UNPRICED_MODEL if request_no % 8 == 6 and provider == "openai" else CLIENT_MODELS[provider]


def score_answer(answer: str) -> float:
    """A deterministic relevance score in [0, 1]: the share of the question's key words the answer names."""
    words = ("Montreal", "Paris", "flight", "cheapest")
    return sum(word.lower() in answer.lower() for word in words) / len(words)


def handle_request(telemetry, request_no: int, rng: random.Random, llm: FakeLLMClients | None = None) -> dict:
    intent = INTENTS[request_no % len(INTENTS)]
    model, provider = MODELS[request_no % len(MODELS)]
    started, ok = time.perf_counter(), True
    with telemetry.trace_agent_iteration(0) as span:
        span.set_attribute("agent.intent", intent)
        trace_id = telemetry.get_trace_context()["trace_id"]
        log.info("request received", extra={"intent": intent, "request_no": request_no})
        with telemetry.trace_llm_call(model=model, provider=provider) as llm_span:
            time.sleep(0.01 + rng.random() * 0.02)
            prompt, completion = 200 + 10 * request_no % 300, 50 + 7 * request_no % 120
            telemetry.record_llm_usage(model, provider, prompt, completion)  # cost from the price table
            llm_span.set_attribute("llm.response_length", completion * 4)
            for tool in TOOLS[intent]:
                try:
                    run_tool(telemetry, tool, request_no)
                except ToolFailure as exc:
                    ok = False
                    telemetry.record_error(type(exc).__name__, "tools")
                    log.error("tool failed: %s", exc)
        if llm is not None:
            try:
                answer = llm.answer(request_no, f"Write the {intent} answer for request {request_no}: YUL to CDG")
                log.info("answer written", extra={"answer_length": len(answer)})
                telemetry.record_evaluation("answer_relevance", score=score_answer(answer),
                                            model=llm.model_of(request_no),
                                            explanation="share of Montreal, Paris, flight, cheapest named")
            except llm.errors as exc:
                ok = False
                telemetry.record_error(type(exc).__name__, "llm")
                log.error("LLM call failed: %s", type(exc).__name__)
    duration_ms = (time.perf_counter() - started) * 1000
    telemetry.record_request(intent, duration_ms, ok)
    return {"intent": intent, "trace_id": trace_id, "ok": ok}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=20)
    parser.add_argument("--interval", type=float, default=0.1)
    parser.add_argument("--service-name", default="travel-agent")
    parser.add_argument("--fake-llm", nargs="?", const="both", choices=("both", "openai", "anthropic"),
                        help="also call a real OpenAI and/or Anthropic client, against the local fake server")
    args = parser.parse_args()
    providers = () if args.fake_llm is None else ("openai", "anthropic") if args.fake_llm == "both" else (args.fake_llm,)
    telemetry = init_telemetry(service_name=args.service_name, service_version="1.0.0", metric_export_interval=2,
                               instrument=list(providers))
    rng = random.Random(42)
    log.info("travel agent demo starting", extra={"requests": args.requests})
    with contextlib.ExitStack() as stack:
        llm = None
        if providers:
            from fake_llm import FakeLLMServer

            server = stack.enter_context(FakeLLMServer())
            llm = FakeLLMClients(server.url, providers)
        for request_no in range(args.requests):
            print(json.dumps(handle_request(telemetry, request_no, rng, llm)), flush=True)
            time.sleep(args.interval)
    log.info("travel agent demo done")
    telemetry.shutdown(timeout=10)


if __name__ == "__main__":
    main()
