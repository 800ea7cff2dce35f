"""One price source for the planner and every backend's ledger.

Where a price comes from, in order:
1. the config's ``prices:`` section (private deployments, negotiated rates, self-hosted servers
   billed by the hour you want spread over tokens): keyed by the full spec text
   (``openai:http://host/v1#custom``) or the bare model name;
2. ``genai-prices`` (pydantic's maintained price data, bundled with the package: read offline,
   never fetched at run time: its ``UpdatePrices`` auto-updater is never started here);
3. ``FALLBACK``: dated entries for models genai-prices lacks (nothing else is hand-kept here).

A self-hosted OpenAI-compatible endpoint (``openai:http://...#model``) serving a model neither
the config nor genai-prices prices costs nothing. Prices are USD per 1M tokens. Cached input tokens (OpenAI's
``usage.prompt_tokens_details.cached_tokens``) are part of ``prompt_tokens`` and billed at their
own rate; the Batch API bills its own (today: half of list) rates.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from .backends.spec import ModelSpec, parse_spec

log = logging.getLogger("warmbench.prices")

_M = 1_000_000


class PriceOverride(BaseModel):
    """A ``prices:`` entry of the config: USD per 1M tokens."""

    model_config = ConfigDict(extra="forbid")

    input: float = Field(ge=0, description="USD per 1M input tokens.")
    output: float = Field(ge=0, description="USD per 1M output tokens.")
    cached_input: float | None = Field(None, ge=0, description="USD per 1M cached input tokens (default: input).")
    batch_input: float | None = Field(None, ge=0, description="Batch API input price (default: half of input).")
    batch_output: float | None = Field(None, ge=0, description="Batch API output price (default: half of output).")
    training: float | None = Field(None, ge=0, description="USD per 1M fine-tuning training tokens.")


@dataclass(frozen=True)
class Price:
    """Rates of one model, USD per 1M tokens, and where they came from."""

    input: float
    output: float
    cached_input: float
    batch_input: float
    batch_output: float
    batch_cached_input: float
    source: str

    def cost(self, prompt_tokens: int, completion_tokens: int, cached_tokens: int = 0, *,
             batch: bool = False) -> float:
        """USD for one request. ``cached_tokens`` are a part of ``prompt_tokens``."""
        cached = min(max(cached_tokens, 0), prompt_tokens)
        if batch:
            rin, rout, rcache = self.batch_input, self.batch_output, self.batch_cached_input
        else:
            rin, rout, rcache = self.input, self.output, self.cached_input
        return ((prompt_tokens - cached) * rin + cached * rcache + completion_tokens * rout) / _M


FREE = Price(0.0, 0.0, 0.0, 0.0, 0.0, 0.0, "self-hosted endpoint (no API cost)")
LOCAL = Price(0.0, 0.0, 0.0, 0.0, 0.0, 0.0, "local backend (no API cost)")

# Dated fallback entries, only for what genai-prices 0.2 lacks (USD per 1M tokens, OpenAI's
# pricing page on the date given). Fine-tuned GPT-4.1 inference is billed at these rates.
FALLBACK_DATE = "2025-08-01"
FALLBACK: dict[str, PriceOverride] = {
    "ft:gpt-4.1": PriceOverride(input=3.00, output=12.00, cached_input=0.75),
    "ft:gpt-4.1-mini": PriceOverride(input=0.80, output=3.20, cached_input=0.20),
    "ft:gpt-4.1-nano": PriceOverride(input=0.20, output=0.80, cached_input=0.05),
}
# Fine-tuning *training* (per 1M training tokens): genai-prices has inference prices only.
FALLBACK_TRAINING: dict[str, float] = {
    "gpt-4o-2024-08-06": 25.00,
    "gpt-4o-mini-2024-07-18": 3.00,
    "gpt-4.1-2025-04-14": 25.00,
    "gpt-4.1-mini-2025-04-14": 5.00,
    "gpt-4.1-nano-2025-04-14": 1.50,
}

_OVERRIDES: dict[str, PriceOverride] = {}


def set_price_overrides(prices: dict[str, Any] | None) -> None:
    """Install the config's ``prices:`` section (called when a config is loaded)."""
    _OVERRIDES.clear()
    for k, v in (prices or {}).items():
        _OVERRIDES[k] = v if isinstance(v, PriceOverride) else PriceOverride.model_validate(v)
    lookup.cache_clear()


def price_from_override(o: PriceOverride, source: str) -> Price:
    cached = o.cached_input if o.cached_input is not None else o.input
    bin_ = o.batch_input if o.batch_input is not None else o.input / 2
    bout = o.batch_output if o.batch_output is not None else o.output / 2
    return Price(o.input, o.output, cached, bin_, bout, cached * (bin_ / o.input if o.input else 0.5),
                 source)


def _genai_rates(model: str, batch: bool, provider: str = "openai"
                 ) -> tuple[float, float, float, str] | None:
    """(input, output, cached input) per 1M tokens from genai-prices, and the model id it matched."""
    from genai_prices import Usage, calc_price

    ctx = {"processing": "batch"} if batch else None
    try:
        full = calc_price(Usage(input_tokens=_M, output_tokens=_M), model, provider_id=provider,
                          price_context=ctx)
        cached = calc_price(Usage(input_tokens=_M, cache_read_tokens=_M), model,
                            provider_id=provider, price_context=ctx)
    except LookupError:
        return None
    return float(full.input_price), float(full.output_price), float(cached.input_price), full.model.id


def _fallback_key(model: str) -> str | None:
    """Longest FALLBACK family a model name belongs to (``ft:gpt-4.1-2025-04-14:org::id``)."""
    name = model
    if model.startswith("ft:"):
        name = "ft:" + model.split(":")[1]
    if name in FALLBACK:
        return name
    return max((k for k in FALLBACK if name.startswith(k + "-")), key=len, default=None)


@lru_cache(maxsize=256)
def lookup(spec: str | ModelSpec) -> Price | None:
    """The price of a model spec (``openai:gpt-4o``, ``openai:http://h/v1#m``), or None if unknown.

    Non-API backends (hf, vllm, scripted) and self-hosted endpoints without a config price
    cost nothing (``FREE``)."""
    # A bare name (``gpt-4o``, as fine-tuning takes it) is an OpenAI model.
    ms = ModelSpec("openai", spec) if isinstance(spec, str) and ":" not in spec else parse_spec(spec)
    for key in (ms.text, ms.model):
        if key in _OVERRIDES:
            return price_from_override(_OVERRIDES[key], f"config prices: {key}")
    if ms.backend == "inspect":
        return _inspect_price(ms)
    if ms.backend != "openai":
        return LOCAL
    # A URL endpoint serving a model OpenAI sells (a gateway or proxy forwarding to OpenAI) is
    # priced as that model: counting a real bill as free would defeat the budget.
    std = _genai_rates(ms.model, batch=False)
    if std is not None:
        bat = _genai_rates(ms.model, batch=True) or std
        from genai_prices import __version__

        return Price(std[0], std[1], std[2], bat[0], bat[1], bat[2],
                     f"genai-prices {__version__} ({std[3]})")
    fb = _fallback_key(ms.model)
    if fb is not None:
        return price_from_override(FALLBACK[fb], f"fallback table {FALLBACK_DATE} ({fb})")
    if ms.base_url and "api.openai.com" not in ms.base_url:
        return FREE  # vLLM, llama.cpp, Ollama, TGI...: no per-token bill unless ``prices:`` says so
    return None


# Inspect provider names whose genai-prices provider id differs.
_INSPECT_PROVIDERS = {"grok": "x-ai", "vertex": "google", "bedrock": "aws", "azureai": "azure"}


def _inspect_price(ms: ModelSpec) -> Price | None:
    """``inspect:PROVIDER/MODEL``: genai-prices by Inspect's provider, else unknown (None).
    (The inspect backend prefers Inspect's own per-call cost when its model database has one.)"""
    provider, _, model = ms.model.partition("/")
    std = _genai_rates(model, batch=False, provider=_INSPECT_PROVIDERS.get(provider, provider))
    if std is None:
        return None
    from genai_prices import __version__

    return Price(std[0], std[1], std[2], std[0] / 2, std[1] / 2, std[2] / 2,
                 f"genai-prices {__version__} ({provider}/{std[3]})")


def training_price(model: str) -> tuple[float, str] | None:
    """USD per 1M fine-tuning training tokens for an OpenAI base model, and its source."""
    for key in (f"openai:{model}", model):
        o = _OVERRIDES.get(key)
        if o is not None and o.training is not None:
            return o.training, f"config prices: {key}"
    if model in FALLBACK_TRAINING:
        return FALLBACK_TRAINING[model], f"fallback table {FALLBACK_DATE}"
    return None


def cached_tokens_of(usage: Any) -> int:
    """``usage.prompt_tokens_details.cached_tokens`` of an OpenAI response (object or dict), or 0."""
    details = usage.get("prompt_tokens_details") if isinstance(usage, dict) else \
        getattr(usage, "prompt_tokens_details", None)
    if details is None:
        return 0
    n = details.get("cached_tokens") if isinstance(details, dict) else getattr(details, "cached_tokens", 0)
    try:
        return max(0, int(n or 0))
    except (TypeError, ValueError):
        return 0
