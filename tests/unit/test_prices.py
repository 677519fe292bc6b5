"""Issue 20, part 1: prices from genai-prices (every model it knows, by date, cache and reasoning
tokens at their own rates), the user's prices over them, unpriced models counted, lookups cached."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import genai_prices
import pytest
from genai_prices import data_snapshot
from genai_prices.types import ModelPrice, StartDateConstraint

from obslab import prices as prices_module
from obslab.config import load_settings
from obslab.prices import PROVIDERS, Price, PriceTable

NOW = datetime(2026, 12, 1, 12, tzinfo=timezone.utc)
# (input, output, cache_read, cache_write, reasoning): a small call and one past the long-context tiers
USAGES = [(1_000, 500, 200, 100, 200), (300_000, 2_000, 60_000, 30_000, 500)]


def reference(provider_id: str, model: str, usage: tuple[int, ...], when: datetime) -> float:
    """genai-prices' own calculation (Decimal, every unit) of the same call."""
    input_tokens, output_tokens, cache_read, cache_write, reasoning = usage
    calculated = genai_prices.calc_price(
        genai_prices.Usage(input_tokens=input_tokens, output_tokens=output_tokens, cache_read_tokens=cache_read,
                           cache_write_tokens=cache_write, output_reasoning_tokens=reasoning),
        model, provider_id=provider_id, genai_request_timestamp=when)
    return float(calculated.total_price)


def known_models():
    """(conventions provider name, genai-prices provider id, model id) of every model of every provider
    obslab prices from genai-prices."""
    by_id = {provider.id: provider for provider in data_snapshot.get_snapshot().providers}
    names = {}
    for name, provider_id in PROVIDERS.items():
        names.setdefault(provider_id, name)
    return [(name, provider_id, model.id) for provider_id, name in names.items() for model in by_id[provider_id].models]


def test_every_model_of_the_mapped_providers_costs_what_genai_prices_says():
    table, compared = PriceTable(), 0
    models = known_models()
    assert len(models) > 500  # openai, anthropic, google, aws, azure, mistral... as genai-prices knows them
    for provider, provider_id, model in models:
        for usage in USAGES:
            try:
                expected = reference(provider_id, model, usage, NOW)
            except (LookupError, ValueError):  # a model priced per request or per second only, say
                continue
            cost = table.cost(provider, model, usage[0], usage[1], cache_read_tokens=usage[2],
                              cache_write_tokens=usage[3], reasoning_tokens=usage[4], when=NOW)
            assert cost == pytest.approx(expected, rel=1e-9, abs=1e-12), (provider, model, usage)
            compared += 1
    assert compared > 1000


def test_cache_reads_writes_and_reasoning_are_priced_at_their_own_rates():
    table = PriceTable()
    price = table.price("anthropic", "claude-sonnet-4-5", NOW)
    assert (price.input_per_million, price.cache_read_per_million, price.cache_write_per_million) == (3, 0.3, 3.75)
    plain = table.cost("anthropic", "claude-sonnet-4-5", 10_000, 1_000, when=NOW)
    cached = table.cost("anthropic", "claude-sonnet-4-5", 10_000, 1_000, cache_read_tokens=8_000, when=NOW)
    assert plain == pytest.approx((10_000 * 3 + 1_000 * 15) / 1e6)
    assert cached == pytest.approx((2_000 * 3 + 8_000 * 0.3 + 1_000 * 15) / 1e6)
    written = table.cost("anthropic", "claude-sonnet-4-5", 10_000, 1_000, cache_write_tokens=8_000, when=NOW)
    assert written == pytest.approx((2_000 * 3 + 8_000 * 3.75 + 1_000 * 15) / 1e6)
    # a reasoning rate of its own (as a user may give one; genai-prices rarely has one)
    own = PriceTable({("openai", "o-custom"): Price(1, 4, reasoning_per_million=8)}, maintained=False)
    assert own.cost("openai", "o-custom", 0, 1_000, reasoning_tokens=400) == pytest.approx((600 * 4 + 400 * 8) / 1e6)


def test_prices_follow_the_date_of_the_call():
    """A model whose price changed on a date is priced at the price in force when the call started."""
    table = PriceTable()
    for provider, provider_id, model in known_models():
        try:
            info = data_snapshot.get_snapshot().find_provider_model(model, None, provider_id, None)[1]
        except LookupError:  # an id genai-prices' own matching does not find (ft:gpt-4o)
            continue
        if isinstance(info.prices, ModelPrice):
            continue
        dated = [c for c in info.prices if isinstance(c.constraint, StartDateConstraint)]
        if not dated or dated[-1].prices.input_mtok == info.prices[0].prices.input_mtok:
            continue
        start = datetime.combine(dated[-1].constraint.start_date, datetime.min.time(), tzinfo=timezone.utc)
        before, after = start - timedelta(days=1), start + timedelta(days=1)
        costs = [table.cost(provider, model, 1_000_000, 0, when=when) for when in (before, after)]
        assert costs[0] != costs[1]
        assert costs == pytest.approx([reference(provider_id, model, (1_000_000, 0, 0, 0, 0), w)
                                       for w in (before, after)])
        return
    pytest.fail("genai-prices has no model whose input price changed on a date")


def test_the_users_prices_win_and_a_rate_not_given_is_the_input_or_output_rate():
    table = PriceTable({("openai", "gpt-4o-mini"): Price(1, 2), ("vllm", "llama-3-70b"): Price(0, 0)})
    assert table.price("openai", "gpt-4o-mini") == Price(1, 2)
    assert table.price("openai", "gpt-4o-mini-2024-07-18") == Price(1, 2)  # the date suffix, as before
    assert table.cost("openai", "gpt-4o-mini", 1_000, 0, cache_read_tokens=1_000) == pytest.approx(1_000 * 1 / 1e6)
    assert table.cost("vllm", "llama-3-70b", 1_000, 1_000) == 0.0
    assert table.price("openai", "gpt-4o").input_per_million == 2.5  # genai-prices' for the others


def test_a_provider_named_as_genai_prices_names_it_is_priced_from_it():
    by_id = {provider.id: provider for provider in data_snapshot.get_snapshot().providers}
    unmapped = sorted(set(by_id) - set(PROVIDERS.values()))
    assert unmapped  # genai-prices knows providers the conventions do not name
    provider = by_id["moonshotai"] if "moonshotai" in by_id else by_id[unmapped[0]]
    model = next(m.id for m in provider.models if isinstance(m.prices, ModelPrice) and m.prices.input_mtok)
    assert PriceTable().cost(provider.id, model, 1_000_000, 0, when=NOW) == pytest.approx(
        reference(provider.id, model, (1_000_000, 0, 0, 0, 0), NOW))


def test_a_model_nobody_prices_has_no_price_and_a_provider_genai_prices_does_not_know_is_never_guessed():
    table = PriceTable()
    assert table.cost("openai", "local-llama-3", 100, 100) is None
    assert table.cost("vllm", "gpt-4o", 100, 100) is None  # the same name elsewhere is not OpenAI's list price
    assert PriceTable(maintained=False).cost("openai", "gpt-4o", 100, 100) is None


def test_a_lookup_is_made_once_per_provider_and_model_misses_included(monkeypatch):
    calls = []
    real = prices_module._maintained_model
    monkeypatch.setattr(prices_module, "_maintained_model", lambda *a: calls.append(a) or real(*a))
    table = PriceTable()
    for _ in range(50):
        table.cost("openai", "gpt-4o", 100, 10)
        table.cost("openai", "local-llama-3", 100, 10)
    assert calls == [("openai", "gpt-4o"), ("openai", "local-llama-3")]


def test_prices_with_cache_rates_from_the_environment_and_yaml(tmp_path, monkeypatch):
    settings = load_settings({}, environ={"OBSLAB_PRICES": "anthropic/claude-x=1:5:0.1:1.25,openai/o-x=1:4:0.5:1:8"})
    assert settings.prices == {("anthropic", "claude-x"): Price(1, 5, 0.1, 1.25), ("openai", "o-x"): Price(1, 4, 0.5, 1, 8)}
    monkeypatch.chdir(tmp_path)
    config = tmp_path / "telemetry.yaml"
    config.write_text("telemetry:\n  prices:\n    openai:\n      gpt-4o-mini: {input: 1, output: 2, cache_read: 0.5}\n")
    assert load_settings({"config_file": str(config)}, environ={}).prices == {
        ("openai", "gpt-4o-mini"): Price(1, 2, 0.5)}


@pytest.mark.parametrize("value", ["openai/gpt-4o=1", "openai/gpt-4o=1:2:3:4:5:6", "openai/gpt-4o=1:2:x"])
def test_a_bad_price_with_cache_rates_is_refused(value):
    with pytest.raises(ValueError, match=r"OBSLAB_PRICES"):
        load_settings({}, environ={"OBSLAB_PRICES": value})
