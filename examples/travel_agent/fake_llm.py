"""A local fake LLM server speaking the OpenAI and Anthropic HTTP APIs (standard library only).

- ``POST /v1/chat/completions``: OpenAI chat completions, as one JSON object or, with
  ``"stream": true``, as server-sent ``chat.completion.chunk`` events ending in ``data: [DONE]``
  (the usage chunk comes last when ``stream_options.include_usage`` is true);
- ``POST /v1/messages``: Anthropic messages, as one JSON object or, with ``"stream": true``, as
  the named events ``message_start``, ``content_block_start``, ``content_block_delta``...
  ``message_stop``;
- an error in the provider's JSON shape when the request carries ``X-Fake-LLM-Status: 429``
  (or 400, 500...);
- prompt caching: OpenAI's automatic one (a request whose messages before the last were all sent
  before reports their tokens as ``prompt_tokens_details.cached_tokens``) and Anthropic's explicit one
  (the blocks up to the last one marked ``cache_control`` are written to the cache the first time,
  ``cache_creation_input_tokens``, and read from it after, ``cache_read_input_tokens``);
- tool calls: a request offering ``tools`` whose messages hold no tool result yet is answered with a
  call of the first tool (each required argument given as ``"YUL"``), the way an agent loop needs;
- reasoning: a reasoning model (``o1``, ``o3``, ``o4-mini``, ``gpt-5``... or a request with
  ``reasoning_effort``) reports :data:`REASONING_TOKENS` more completion tokens, as
  ``completion_tokens_details.reasoning_tokens``.

Token counts are deterministic: input tokens are the words of the request's messages (system
prompt included), output tokens the words of the reply (plus the reasoning tokens). As the APIs do,
OpenAI's ``prompt_tokens`` include the cached tokens, Anthropic's ``input_tokens`` do not. Used by obslab's tests and by the travel
agent example (``--fake-llm``)::

    with FakeLLMServer() as server:
        openai.OpenAI(base_url=server.openai_base_url, api_key="fake").chat.completions.create(...)
        anthropic.Anthropic(base_url=server.url, api_key="fake").messages.create(...)
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Iterator

ERROR_HEADER = "X-Fake-LLM-Status"
REASONING_TOKENS = 12  # what a reasoning model "thinks" before each reply
_REASONING_MODELS = ("o1", "o3", "o4", "gpt-5")
_OPENAI_ERRORS = {400: ("invalid_request_error", "invalid_request"), 429: ("requests", "rate_limit_exceeded"),
                  500: ("server_error", "internal_error")}
_ANTHROPIC_ERRORS = {400: "invalid_request_error", 429: "rate_limit_error", 500: "api_error", 529: "overloaded_error"}


def reply_text(model: str) -> str:
    """The reply the fake model gives (the same for every request to ``model``)."""
    return f"Fake {model} here: Montreal to Paris, three flights tomorrow, the cheapest leaves at 18:40."


def _words(value: Any) -> int:
    """Words in a message content (a string, or a list of content blocks with text)."""
    if isinstance(value, str):
        return len(value.split())
    if isinstance(value, list):
        return sum(_words(block.get("text", "")) if isinstance(block, dict) else _words(block) for block in value)
    return 0


def input_tokens(body: dict[str, Any]) -> int:
    """The input token count the fake server reports for a request body."""
    return max(1, _words(body.get("system", "")) + sum(_words(m.get("content", "")) for m in body.get("messages", [])))


def is_reasoning(body: dict[str, Any]) -> bool:
    """Whether the fake server answers ``body`` as a reasoning model (OpenAI API)."""
    return "reasoning_effort" in body or str(body.get("model", "")).startswith(_REASONING_MODELS)


def _openai_prefix(body: dict[str, Any]) -> tuple[str, int]:
    """The key and token count of an OpenAI request's messages before the last (its cacheable prefix)."""
    prefix = body.get("messages", [])[:-1]
    return json.dumps(prefix, sort_keys=True), sum(_words(m.get("content", "")) for m in prefix)


def _anthropic_prefix(body: dict[str, Any]) -> tuple[str, int]:
    """The key and token count of an Anthropic request's blocks up to the last one marked
    ``cache_control`` (system blocks first, then the messages' blocks); ("", 0) when none is marked."""
    blocks: list[Any] = list(body["system"]) if isinstance(body.get("system"), list) else (
        [{"type": "text", "text": body["system"]}] if body.get("system") else [])
    for message in body.get("messages", []):
        content = message.get("content", "")
        blocks.extend(content if isinstance(content, list) else [{"type": "text", "text": content}])
    marked = [i for i, block in enumerate(blocks) if isinstance(block, dict) and block.get("cache_control")]
    if not marked:
        return "", 0
    prefix = blocks[:marked[-1] + 1]
    return json.dumps(prefix, sort_keys=True), sum(_words(b.get("text", "")) for b in prefix if isinstance(b, dict))


def _tool_call(body: dict[str, Any]) -> dict[str, Any] | None:
    """The OpenAI tool call the fake model makes: the first tool offered, unless a tool already answered."""
    tools = [t for t in body.get("tools") or [] if t.get("type") == "function"]
    if not tools or any(m.get("role") == "tool" for m in body.get("messages", [])):
        return None
    function = tools[0]["function"]
    arguments = {name: "YUL" for name in (function.get("parameters") or {}).get("required", [])}
    return {"id": "call_fake_1", "type": "function",
            "function": {"name": function["name"], "arguments": json.dumps(arguments)}}


def _pieces(text: str) -> list[str]:
    words = text.split(" ")
    return [word + (" " if i < len(words) - 1 else "") for i, word in enumerate(words)]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: "_Server"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet, as a test server should be
        pass

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length) or b"{}")
        self.server.requests.append((self.path, dict(self.headers), body))
        status = int(self.headers.get(ERROR_HEADER) or 200)
        path = self.path.split("?")[0]
        if path.endswith("/chat/completions"):
            self._openai(body, status)
        elif path.endswith("/messages"):
            self._anthropic(body, status)
        else:
            self._json(404, {"error": {"message": f"no route {path}", "type": "not_found"}})

    # --- OpenAI ---------------------------------------------------------------------------

    def _openai(self, body: dict[str, Any], status: int) -> None:
        if status >= 400:
            kind, code = _OPENAI_ERRORS.get(status, ("server_error", "error"))
            self._json(status, {"error": {"message": f"fake {code}", "type": kind, "param": None, "code": code}})
            return
        model, text = body.get("model", "fake"), reply_text(body.get("model", "fake"))
        reasoning = REASONING_TOKENS if is_reasoning(body) else 0
        key, prefix_tokens = _openai_prefix(body)
        cached = prefix_tokens if key != "[]" and self.server.remember(key) else 0
        usage: dict[str, Any] = {"prompt_tokens": input_tokens(body), "completion_tokens": len(text.split()) + reasoning}
        usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
        usage["prompt_tokens_details"] = {"cached_tokens": cached, "audio_tokens": 0}
        usage["completion_tokens_details"] = {"reasoning_tokens": reasoning, "audio_tokens": 0,
                                              "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0}
        base = {"id": "chatcmpl-fake", "created": 1_700_000_000, "model": model, "system_fingerprint": "fp_fake"}
        tool_call = _tool_call(body)
        if not body.get("stream") and tool_call is not None:
            self._json(200, {**base, "object": "chat.completion", "usage": usage, "choices": [
                {"index": 0, "finish_reason": "tool_calls", "logprobs": None,
                 "message": {"role": "assistant", "content": None, "refusal": None, "tool_calls": [tool_call]}}]})
            return
        if not body.get("stream"):
            self._json(200, {**base, "object": "chat.completion", "usage": usage, "choices": [
                {"index": 0, "finish_reason": "stop", "logprobs": None,
                 "message": {"role": "assistant", "content": text, "refusal": None}}]})
            return
        chunk = {**base, "object": "chat.completion.chunk"}
        events = [{**chunk, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""},
                                         "finish_reason": None}]}]
        events += [{**chunk, "choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": None}]}
                   for piece in _pieces(text)]
        events.append({**chunk, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
        if (body.get("stream_options") or {}).get("include_usage"):
            events.append({**chunk, "choices": [], "usage": usage})
        self._sse((f"data: {json.dumps(event)}\n\n" for event in events), "data: [DONE]\n\n")

    # --- Anthropic ------------------------------------------------------------------------

    def _anthropic(self, body: dict[str, Any], status: int) -> None:
        if status >= 400:
            kind = _ANTHROPIC_ERRORS.get(status, "api_error")
            self._json(status, {"type": "error", "error": {"type": kind, "message": f"fake {kind}"}})
            return
        model, text = body.get("model", "fake"), reply_text(body.get("model", "fake"))
        key, prefix_tokens = _anthropic_prefix(body)
        read = self.server.remember(key) if key else False
        cache = {"cache_creation_input_tokens": 0 if read else prefix_tokens,
                 "cache_read_input_tokens": prefix_tokens if read else 0}
        usage = {"input_tokens": input_tokens(body) - prefix_tokens, "output_tokens": len(text.split()), **cache}
        message = {"id": "msg_fake", "type": "message", "role": "assistant", "model": model,
                   "stop_reason": "end_turn", "stop_sequence": None}
        if not body.get("stream"):
            self._json(200, {**message, "content": [{"type": "text", "text": text}], "usage": usage})
            return
        events = [("message_start", {"type": "message_start", "message": {
                      **message, "content": [], "stop_reason": None,
                      "usage": {"input_tokens": usage["input_tokens"], "output_tokens": 1, **cache}}}),
                  ("content_block_start", {"type": "content_block_start", "index": 0,
                                           "content_block": {"type": "text", "text": ""}}),
                  ("ping", {"type": "ping"})]
        events += [("content_block_delta", {"type": "content_block_delta", "index": 0,
                                            "delta": {"type": "text_delta", "text": piece}})
                   for piece in _pieces(text)]
        events += [("content_block_stop", {"type": "content_block_stop", "index": 0}),
                   ("message_delta", {"type": "message_delta",
                                      "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                                      "usage": {"output_tokens": usage["output_tokens"]}}),
                   ("message_stop", {"type": "message_stop"})]
        self._sse(f"event: {name}\ndata: {json.dumps(data)}\n\n" for name, data in events)

    # --- transport ------------------------------------------------------------------------

    def _json(self, status: int, payload: dict[str, Any]) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        if status >= 400:
            self.send_header("x-should-retry", "false")  # both SDKs honour it: no retry back-off in tests
        self.end_headers()
        self.wfile.write(data)

    def _sse(self, events: Iterator[str], last: str = "") -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Connection", "close")
        self.end_headers()
        for event in events:
            self.wfile.write(event.encode())
        if last:
            self.wfile.write(last.encode())
        self.wfile.flush()
        self.close_connection = True


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.requests: list[tuple[str, dict[str, str], dict[str, Any]]] = []
        self._cached: set[str] = set()
        self._lock = threading.Lock()

    def remember(self, key: str) -> bool:
        """Whether the prompt prefix ``key`` is in the cache already; it is from now on."""
        with self._lock:
            seen = key in self._cached
            self._cached.add(key)
            return seen


class FakeLLMServer:
    """The fake server on a free loopback port, in a daemon thread; a context manager."""

    def __init__(self) -> None:
        self._server = _Server()
        self._thread = threading.Thread(target=self._server.serve_forever, name="fake-llm", daemon=True)

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>``: the Anthropic client's ``base_url``."""
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def openai_base_url(self) -> str:
        """The OpenAI client's ``base_url`` (its paths are relative to ``/v1``)."""
        return self.url + "/v1"

    @property
    def requests(self) -> list[tuple[str, dict[str, str], dict[str, Any]]]:
        """(path, headers, JSON body) of every request received, oldest first."""
        return self._server.requests

    def start(self) -> "FakeLLMServer":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> "FakeLLMServer":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()
