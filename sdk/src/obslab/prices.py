"""LLM prices per provider and model, and what a call cost.

Prices are US dollars per million tokens, input and output apart. The defaults below are the list
prices of a few current models when this table was written; check your provider's price page and
override them, or add models, from YAML::

    prices:
      openai:
        gpt-4o-mini: {input: 0.15, output: 0.60}
      anthropic:
        claude-sonnet-4-5: {input: 3, output: 15}

or from the environment: ``OBSLAB_PRICES="openai/gpt-4o-mini=0.15:0.60,anthropic/claude-x=1:5"``.

A model is found by its exact name, else by its name without a release date suffix
(``gpt-4o-mini-2024-07-18`` is priced as ``gpt-4o-mini``, ``claude-sonnet-4-20250514`` as
``claude-sonnet-4``). An unknown model has no price: its calls cost nothing and are counted as
unpriced, never guessed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Mapping

from obslab._parsers import bad


@dataclass(frozen=True)
class Price:
    """US dollars per million input and per million output tokens."""

    input_per_million: float
    output_per_million: float

    def cost(self, input_tokens: int, output_tokens: int) -> float:
        """What ``input_tokens`` and ``output_tokens`` cost, in US dollars."""
        return (input_tokens * self.input_per_million + output_tokens * self.output_per_million) / 1_000_000


# (provider, model) -> price; providers are gen_ai.provider.name values of the GenAI conventions.
# List prices of late 2025; newer models are not priced until you add them.
DEFAULT_PRICES: Mapping[tuple[str, str], Price] = {
    ("openai", "gpt-5"): Price(1.25, 10.00),
    ("openai", "gpt-5-mini"): Price(0.25, 2.00),
    ("openai", "gpt-5-nano"): Price(0.05, 0.40),
    ("openai", "gpt-4o"): Price(2.50, 10.00),
    ("openai", "gpt-4o-mini"): Price(0.15, 0.60),
    ("openai", "gpt-4.1"): Price(2.00, 8.00),
    ("openai", "gpt-4.1-mini"): Price(0.40, 1.60),
    ("openai", "gpt-4.1-nano"): Price(0.10, 0.40),
    ("anthropic", "claude-opus-4-5"): Price(5.00, 25.00),
    ("anthropic", "claude-opus-4-1"): Price(15.00, 75.00),
    ("anthropic", "claude-sonnet-4"): Price(3.00, 15.00),
    ("anthropic", "claude-sonnet-4-5"): Price(3.00, 15.00),
    ("anthropic", "claude-haiku-4-5"): Price(1.00, 5.00),
    ("anthropic", "claude-3-5-haiku"): Price(0.80, 4.00),
}

_DATE_SUFFIX = re.compile(r"-(\d{4}-\d{2}-\d{2}|\d{8})$")
_ENTRY = re.compile(r"^\s*([^/=\s]+)/([^=\s]+)\s*=\s*([^:\s]+)\s*:\s*([^:\s]+)\s*$")


class PriceTable:
    """The default prices with the user's overrides on top."""

    def __init__(self, overrides: Mapping[tuple[str, str], Price] | None = None) -> None:
        self._prices = {**DEFAULT_PRICES, **(overrides or {})}

    def price(self, provider: str, model: str) -> Price | None:
        """The price of ``model`` at ``provider`` (exact name, then without a date suffix), or None."""
        found = self._prices.get((provider, model))
        if found is None:
            found = self._prices.get((provider, _DATE_SUFFIX.sub("", model)))
        return found

    def cost(self, provider: str, model: str, input_tokens: int, output_tokens: int) -> float | None:
        """What a call cost in US dollars; None when the model has no price."""
        price = self.price(provider, model)
        return None if price is None else price.cost(input_tokens, output_tokens)


def parse_prices(name: str, value: Any, where: str) -> dict[tuple[str, str], Price]:
    """Prices from YAML (``{provider: {model: {input: x, output: y}}}``) or from the environment
    (``provider/model=input:output,...``), in US dollars per million tokens."""
    if isinstance(value, Mapping):
        return _from_mapping(name, value, where)
    prices: dict[tuple[str, str], Price] = {}
    for entry in str(value).split(","):
        if not entry.strip():
            continue
        match = _ENTRY.match(entry)
        if match is None:
            raise bad(name, value, where, f"entry {entry.strip()!r}: expected provider/model=input:output "
                                          "(US dollars per million tokens)")
        provider, model, input_price, output_price = match.groups()
        prices[(provider, model)] = _price(name, value, where, input_price, output_price)
    return prices


def _from_mapping(name: str, value: Mapping[Any, Any], where: str) -> dict[tuple[str, str], Price]:
    prices: dict[tuple[str, str], Price] = {}
    for provider, models in value.items():
        if not isinstance(models, Mapping):
            raise bad(f"{name}.{provider}", models, where, "expected a mapping of model: {input, output}")
        for model, entry in models.items():
            if not isinstance(entry, Mapping) or set(entry) != {"input", "output"}:
                raise bad(f"{name}.{provider}.{model}", entry, where,
                          "expected {input: <USD per million tokens>, output: <USD per million tokens>}")
            prices[(str(provider), str(model))] = _price(f"{name}.{provider}.{model}", entry, where,
                                                         entry["input"], entry["output"])
    return prices


def _price(name: str, value: Any, where: str, input_price: Any, output_price: Any) -> Price:
    try:
        price = Price(float(input_price), float(output_price))
    except (TypeError, ValueError):
        raise bad(name, value, where, "prices must be numbers (US dollars per million tokens)") from None
    if not (0 <= price.input_per_million < float("inf") and 0 <= price.output_per_million < float("inf")):
        raise bad(name, value, where, "prices must be finite and not negative")
    return price
