"""obslab's GenAI support, in one package:

- :mod:`obslab.genai.conventions`: the GenAI semantic conventions on top of ``opentelemetry-util-genai``
  (the handler the helpers and the instrumented clients share), LLM cost per call, the cache and
  reasoning token metric, masking of captured message content;
- :mod:`obslab.genai.prices`: prices per provider and model (genai-prices and the user's), loaded off
  the application's path;
- :mod:`obslab.genai.agent`: the agent helpers (``trace_llm_call``, ``record_llm_usage``...) and the
  seed's ``agent.*`` metric catalogue;
- :mod:`obslab.genai.evaluations`: ``gen_ai.evaluation.result`` events and the evaluation score metric;
- :mod:`obslab.genai.mcp`: MCP client and server spans named by the MCP conventions.

The names :mod:`obslab.genai` had before it was a package are imported from here as they were;
``obslab.agent``, ``obslab.prices``, ``obslab.evaluations`` and ``obslab.mcp_spans`` are the same modules
as their ``obslab.genai`` counterparts.
"""

from obslab.genai.conventions import (
    CACHE_CREATION_TOKENS,
    CACHE_READ_TOKENS,
    CACHE_WRITE_TOKENS,
    CAPTURE_MODES,
    CAPTURE_VARIABLE,
    CONTENT_KEYS,
    COST_METRIC,
    INPUT_TOKENS,
    OUTPUT_TOKENS,
    REASONING_TOKENS,
    SAVINGS_METRIC,
    TOKEN_BUCKETS,
    TOKEN_DETAIL_METRIC,
    TOKEN_DETAIL_TYPE,
    UNPRICED_METRIC,
    ContentRedactor,
    LLMCostProcessor,
    TokenCounts,
    content_capture_mode,
    genai_handler,
    price_of_call,
    usage_aliases,
    usage_of,
)

__all__ = [
    "CACHE_CREATION_TOKENS", "CACHE_READ_TOKENS", "CACHE_WRITE_TOKENS", "CAPTURE_MODES", "CAPTURE_VARIABLE",
    "CONTENT_KEYS", "COST_METRIC", "INPUT_TOKENS", "OUTPUT_TOKENS", "REASONING_TOKENS", "SAVINGS_METRIC",
    "TOKEN_BUCKETS", "TOKEN_DETAIL_METRIC", "TOKEN_DETAIL_TYPE", "UNPRICED_METRIC", "ContentRedactor",
    "LLMCostProcessor", "TokenCounts", "content_capture_mode", "genai_handler", "price_of_call", "usage_aliases",
    "usage_of",
]
