"""LLM prices per provider and model, and what a call cost.

Prices come from ``genai-prices`` (Pydantic's maintained price data, the data Logfire uses): every
model it knows, the price in force on the day (and hour) of the call, and cache reads, cache writes
and reasoning tokens at their own rates where the provider charges them apart. The user's prices win
over it; they are US dollars per million tokens, from YAML::

    prices:
      openai:
        gpt-4o-mini: {input: 0.15, output: 0.60, cache_read: 0.075}
      vllm:
        llama-3-70b: {input: 0, output: 0}

or from the environment: ``OBSLAB_PRICES="openai/gpt-4o-mini=0.15:0.60,anthropic/claude-x=1:5:0.1:1.25"``
(``input:output[:cache_read[:cache_write[:reasoning]]]``). A rate not given is the input rate for
cache reads and writes and the output rate for reasoning tokens. A user's model is found by its
exact name, else by its name without a release date suffix; genai-prices has its own matching
(date suffixes, aliases). A model nobody prices has no price: its calls are counted as unpriced,
never guessed, and a provider genai-prices does not know (``vllm``, say) is never priced from it.

Token counts follow the GenAI conventions: ``input_tokens`` includes the cache reads and cache
writes, ``output_tokens`` includes the reasoning tokens.

genai-prices' import and data load in a daemon thread started with the pipeline; a call priced before
they are in is priced by that thread once they are (:meth:`PriceTable.run_when_ready`): no LLM call
waits for them. Looking a price up in genai-prices takes tens of microseconds (a model name is matched against
thousands of patterns; its own calculation works in ``Decimal``): :class:`PriceTable` does it once
per provider and model, caches the answer (a miss too), and prices each call with floats from the
rates of the price in force (``benchmarks/price_lookup.py`` measures both).
"""

from __future__ import annotations

import importlib.util
import re
import threading
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Callable, Mapping

from obslab._diagnostics import report
from obslab._parsers import bad

# gen_ai.provider.name values (GenAI conventions) -> genai-prices provider ids. Only these providers,
# and those named exactly as genai-prices names them, are priced from genai-prices: a model served
# elsewhere (vllm, ollama...) is not its list price.
PROVIDERS: Mapping[str, str] = {
    "openai": "openai", "anthropic": "anthropic", "azure.ai.openai": "azure", "azure.ai.inference": "azure",
    "aws.bedrock": "aws", "gcp.gemini": "google", "gcp.vertex_ai": "google", "gcp.gen_ai": "google",
    "x_ai": "x-ai", "mistral_ai": "mistral", "groq": "groq", "deepseek": "deepseek", "perplexity": "perplexity",
    "cohere": "cohere", "openrouter": "openrouter", "together": "together", "fireworks": "fireworks",
    "cerebras": "cerebras",
}
_CACHE_LIMIT = 4096  # (provider, model) pairs remembered; past it the cache starts again
_FIELDS = ("input", "output", "cache_read", "cache_write", "reasoning")


@dataclass(frozen=True)
class Price:
    """US dollars per million tokens: input and output, and cache reads, cache writes and reasoning
    tokens when they are charged apart (None: at the input rate, or the output rate for reasoning)."""

    input_per_million: float
    output_per_million: float
    cache_read_per_million: float | None = None
    cache_write_per_million: float | None = None
    reasoning_per_million: float | None = None
    per_call: float = 0.0  # US dollars per request, on top (genai-prices' per-request fees)

    def cost(self, input_tokens: int, output_tokens: int, cache_read_tokens: int = 0,
             cache_write_tokens: int = 0, reasoning_tokens: int = 0) -> float:
        """What the tokens cost, in US dollars (input includes the cache tokens, output the reasoning)."""
        return _cost(self.input_per_million, self.output_per_million, self.cache_read_per_million,
                     self.cache_write_per_million, self.reasoning_per_million,
                     input_tokens, output_tokens, cache_read_tokens, cache_write_tokens,
                     reasoning_tokens) + self.per_call


    def cache_read_savings(self, cache_read_tokens: int) -> float:
        """What ``cache_read_tokens`` saved against their price as plain input, in US dollars."""
        if self.cache_read_per_million is None:
            return 0.0
        return cache_read_tokens * (self.input_per_million - self.cache_read_per_million) / 1_000_000


def _cost(input_rate: float, output_rate: float, cache_read_rate: float | None, cache_write_rate: float | None,
          reasoning_rate: float | None, input_tokens: int, output_tokens: int, cache_read: int, cache_write: int,
          reasoning: int) -> float:
    cache_read, cache_write = min(cache_read, input_tokens), min(cache_write, max(input_tokens - cache_read, 0))
    reasoning = min(reasoning, output_tokens)
    total = (input_tokens - cache_read - cache_write) * input_rate + (output_tokens - reasoning) * output_rate
    total += cache_read * (input_rate if cache_read_rate is None else cache_read_rate)
    total += cache_write * (input_rate if cache_write_rate is None else cache_write_rate)
    total += reasoning * (output_rate if reasoning_rate is None else reasoning_rate)
    return total / 1_000_000


class _Rates:
    """The token rates of one genai-prices ``ModelPrice``, as floats; a tiered rate (a higher price for
    the whole call past some input size) as its base and ``(start, rate)`` tiers."""

    __slots__ = ("model_price", "rates", "per_call", "fixed")

    def __init__(self, model_price: Any) -> None:
        self.model_price = model_price  # kept alive: the cache is keyed by its id()
        keys = ("input_mtok", "output_mtok", "cache_read_mtok", "cache_write_mtok", "output_reasoning_mtok")
        self.rates = tuple(_rate(getattr(model_price, key, None)) for key in keys)
        per_thousand = getattr(model_price, "requests_kcount", None)
        self.per_call = 0.0 if per_thousand is None else float(per_thousand) / 1000
        tiered = any(isinstance(rate, tuple) for rate in self.rates)
        self.fixed = None if tiered else self._price(0)  # the same for every call: made once

    def price(self, input_tokens: int) -> Price:
        return self.fixed if self.fixed is not None else self._price(input_tokens)

    def _price(self, input_tokens: int) -> Price:
        values = [_at(rate, input_tokens) for rate in self.rates]
        return Price(values[0] or 0.0, values[1] or 0.0, values[2], values[3], values[4], self.per_call)


def _rate(value: Any) -> Any:
    if value is None:
        return None
    tiers = getattr(value, "tiers", None)
    if tiers is None:
        return float(value)
    return float(value.base), tuple((tier.start, float(tier.price)) for tier in reversed(tiers))


def _at(rate: Any, input_tokens: int) -> float | None:
    """The rate for a call of ``input_tokens`` (genai-prices' rule: past a tier's start, all tokens
    pay the tier's rate)."""
    if rate is None or isinstance(rate, float):
        return rate
    base, tiers = rate
    for start, tier_rate in tiers:
        if input_tokens > start:
            return tier_rate
    return base


_DATE_SUFFIX = re.compile(r"-(\d{4}-\d{2}-\d{2}|\d{8})$")
_ENTRY = re.compile(r"^\s*([^/=\s]+)/([^=\s]+)\s*=\s*([^=\s]+)\s*$")
_MISSING = object()


class PriceTable:
    """genai-prices' prices with the user's overrides on top, cached per provider and model."""

    def __init__(self, overrides: Mapping[tuple[str, str], Price] | None = None, *, maintained: bool = True) -> None:
        self._overrides = dict(overrides or {})
        self._maintained = maintained  # False: the user's prices only
        self._models: dict[tuple[str, str], Any] = {}  # (provider, model) -> Price, genai-prices ModelInfo or None
        self._rates: dict[int, _Rates] = {}
        self._lock = threading.Lock()

    def price(self, provider: str, model: str, when: datetime | None = None, input_tokens: int = 0) -> Price | None:
        """The price of ``model`` at ``provider`` for a call at ``when`` (now by default) of
        ``input_tokens``, or None when nobody prices it."""
        found = self._models.get((provider, model), _MISSING)
        if found is _MISSING:
            found = self._lookup(provider, model)
        if found is None or isinstance(found, Price):
            return found
        model_price = found.get_prices(when or datetime.now(tz=timezone.utc))
        rates = self._rates.get(id(model_price))
        if rates is None or rates.model_price is not model_price:
            rates = self._rates[id(model_price)] = _Rates(model_price)
        return rates.price(input_tokens)

    def run_when_ready(self, work: Callable[[], None], *models: tuple[str, str]) -> None:
        """Run ``work`` (which prices ``models``, ``(provider, model)`` pairs) now when it needs no
        genai-prices data still loading; else in the loading thread, once the data is in. So that
        pricing never holds up the caller's thread, an LLM call's included."""
        if not self._maintained or _DATA.loaded() or all(self._known(*model) for model in models):
            work()
        else:
            _DATA.run_when_loaded(work)

    def _known(self, provider: str, model: str) -> bool:
        """Whether the price of ``model`` is found without genai-prices (a user's price, or remembered)."""
        return ((provider, model) in self._models or (provider, model) in self._overrides
                or (provider, _DATE_SUFFIX.sub("", model)) in self._overrides)

    def cost(self, provider: str, model: str, input_tokens: int, output_tokens: int, *, cache_read_tokens: int = 0,
             cache_write_tokens: int = 0, reasoning_tokens: int = 0, when: datetime | None = None) -> float | None:
        """What a call cost in US dollars; None when the model has no price. ``input_tokens`` include
        the cache reads and writes, ``output_tokens`` the reasoning tokens (GenAI conventions)."""
        price = self.price(provider, model, when, input_tokens)
        if price is None:
            return None
        return price.cost(input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, reasoning_tokens)

    def _lookup(self, provider: str, model: str) -> Any:
        found: Any = self._overrides.get((provider, model))
        if found is None:
            found = self._overrides.get((provider, _DATE_SUFFIX.sub("", model)))
        if found is None and self._maintained:
            found = _maintained_model(provider, model)
        with self._lock:
            if len(self._models) >= _CACHE_LIMIT:
                self._models.clear()
            self._models[(provider, model)] = found
        return found


class _MaintainedData:
    """genai-prices' import and data (about 0.2 s, pydantic among it), loaded once per process in a
    daemon thread. Work that needs them while they load is queued and run by that thread when they
    are in: nothing on the application's path waits for them."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._loaded = threading.Event()
        self._idle = threading.Event()  # no work queued (or under way) for the data
        self._idle.set()
        self._pending: list[Callable[[], None]] = []
        self._installed: bool | None = None

    def loaded(self) -> bool:
        """Whether the data is in (or there is none to load: genai-prices is not installed)."""
        return self._loaded.is_set() or not self._is_installed()

    def start(self) -> None:
        """Start loading (once per process)."""
        with self._lock:
            self._start_locked()

    def run_when_loaded(self, work: Callable[[], None]) -> None:
        """Run ``work`` now if the data is in, else in the loading thread once it is."""
        if not self.loaded():
            with self._lock:
                if not self._loaded.is_set():
                    self._pending.append(work)
                    self._idle.clear()
                    self._start_locked()
                    return
        work()

    def wait(self, timeout: float) -> bool:
        """Wait at most ``timeout`` s for the work queued for the data (none: no wait at all, the
        process may exit while the data still loads); True when done."""
        return self._idle.wait(timeout)

    def _is_installed(self) -> bool:
        if self._installed is None:
            self._installed = importlib.util.find_spec("genai_prices") is not None
        return self._installed

    def _start_locked(self) -> None:
        if self._thread is None and self._is_installed():
            self._thread = threading.Thread(target=self._load, name="obslab-prices", daemon=True)
            self._thread.start()

    def _load(self) -> None:
        try:
            from genai_prices import data_snapshot
            data_snapshot.get_snapshot()
        except Exception as error:  # pragma: no cover - the lookups then find nothing: unpriced
            report("price data", error)
        while True:  # the queued work, then "loaded" once the queue is empty
            with self._lock:
                pending, self._pending = self._pending, []
                if not pending:
                    self._loaded.set()
                    self._idle.set()
                    return
            for work in pending:
                try:
                    work()
                except Exception as error:
                    report("LLM cost", error)


_DATA = _MaintainedData()


def warm_up_prices() -> None:
    """Import genai-prices and load its data in a daemon thread (once per process), so that no LLM
    call waits for them."""
    _DATA.start()


def wait_for_prices(timeout: float) -> bool:
    """Wait at most ``timeout`` s until genai-prices' data is in and the calls priced meanwhile are
    recorded (a flush calls it, so that their cost is exported with the rest); True when done."""
    return _DATA.wait(timeout)


def _maintained_model(provider: str, model: str) -> Any:
    """genai-prices' ModelInfo of ``model`` at ``provider``, or None."""
    if not model:
        return None
    try:
        from genai_prices import data_snapshot
    except ImportError:  # obslab[genai] not installed: the user's prices only
        return None
    snapshot = data_snapshot.get_snapshot()
    provider_id = PROVIDERS.get(provider)
    if provider_id is None:  # a provider named as genai-prices names it (moonshotai, novita...)
        provider_id = next((known.id for known in snapshot.providers if known.id == provider), None)
    if provider_id is None:
        return None
    try:
        _, info = snapshot.find_provider_model(model, None, provider_id, None)
    except LookupError:
        return None
    return info


def parse_prices(name: str, value: Any, where: str) -> dict[tuple[str, str], Price]:
    """Prices from YAML (``{provider: {model: {input: x, output: y, ...}}}``) or from the environment
    (``provider/model=input:output[:cache_read[:cache_write[:reasoning]]],...``), in US dollars per
    million tokens."""
    if isinstance(value, Mapping):
        return _from_mapping(name, value, where)
    prices: dict[tuple[str, str], Price] = {}
    for entry in str(value).split(","):
        if not entry.strip():
            continue
        match = _ENTRY.match(entry)
        rates = match.group(3).split(":") if match else []
        if match is None or not 2 <= len(rates) <= len(_FIELDS):
            raise bad(name, value, where, f"entry {entry.strip()!r}: expected provider/model=input:output"
                                          "[:cache_read[:cache_write[:reasoning]]] (US dollars per million tokens)")
        prices[(match.group(1), match.group(2))] = _price(name, value, where, dict(zip(_FIELDS, rates)))
    return prices


def _from_mapping(name: str, value: Mapping[Any, Any], where: str) -> dict[tuple[str, str], Price]:
    prices: dict[tuple[str, str], Price] = {}
    for provider, models in value.items():
        if not isinstance(models, Mapping):
            raise bad(f"{name}.{provider}", models, where, "expected a mapping of model: {input, output}")
        for model, entry in models.items():
            if not isinstance(entry, Mapping) or not {"input", "output"} <= set(entry) or not set(entry) <= set(_FIELDS):
                raise bad(f"{name}.{provider}.{model}", entry, where,
                          "expected {input: <USD per million tokens>, output: <USD per million tokens>} "
                          "and optionally cache_read, cache_write, reasoning")
            prices[(str(provider), str(model))] = _price(f"{name}.{provider}.{model}", entry, where, entry)
    return prices


def _price(name: str, value: Any, where: str, rates: Mapping[str, Any]) -> Price:
    try:
        numbers = {key: float(rates[key]) if rates.get(key) is not None else None for key in _FIELDS}
    except (TypeError, ValueError):
        raise bad(name, value, where, "prices must be numbers (US dollars per million tokens)") from None
    if not all(number is None or 0 <= number < float("inf") for number in numbers.values()):
        raise bad(name, value, where, "prices must be finite and not negative")
    return Price(numbers["input"] or 0.0, numbers["output"] or 0.0, numbers["cache_read"],
                 numbers["cache_write"], numbers["reasoning"])
