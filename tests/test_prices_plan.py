"""One price source (warmbench.prices) and the dry-run plan's prices, Batch rates and GPU-hours."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from warmbench.cli import app
from warmbench.config import load_config, parse_config
from warmbench.plan import estimate, total_cost
from warmbench.prices import lookup, set_price_overrides, training_price

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"

# Hand-copied from OpenAI's pricing page (USD per 1M tokens: input, output).
HAND = {
    "gpt-4o-mini": (0.15, 0.60),
    "gpt-4o": (2.50, 10.00),
    "gpt-4.1": (2.00, 8.00),
    "gpt-5": (1.25, 10.00),
}
CUSTOM = "openai:http://10.0.0.5:8000/v1#custom"


@pytest.fixture(autouse=True)
def _no_price_updates(monkeypatch):
    """Prices come from the bundled data only: starting genai-prices' updater is a failure."""
    import genai_prices

    def refuse(*a, **k):
        raise AssertionError("genai-prices tried to fetch prices")

    monkeypatch.setattr(genai_prices.UpdatePrices, "start", refuse)
    yield
    set_price_overrides(None)


def _eval_only(model: str, prices: dict | None = None):
    return parse_config({
        "name": "p", "run_dir": "runs/p", "prices": prices or {},
        "eval": {"datasets": [{"name": "mmlu", "n": 200}, {"name": "gsm8k", "n": 100}]},
        "arms": [{"name": "original", "model": model}],
    })


@pytest.mark.parametrize("model", [*HAND, "custom"])
def test_dry_run_prices_within_5_percent_of_hand(model):
    spec = CUSTOM if model == "custom" else f"openai:{model}"
    prices = {CUSTOM: {"input": 0.40, "output": 1.20}} if model == "custom" else None
    rate_in, rate_out = (0.40, 1.20) if model == "custom" else HAND[model]
    cfg = _eval_only(spec, prices)
    e = {x.stage: x for x in estimate(cfg)}["eval"]
    # 200 MMLU + 100 GSM8K prompts, one arm; the hand calculation on the plan's own tokens.
    assert e.requests == 300 and e.input_tokens > 0 and e.output_tokens > 0
    hand = (e.input_tokens * rate_in + e.output_tokens * rate_out) / 1e6
    assert e.cost_usd == pytest.approx(hand, rel=0.05)
    assert e.batch_usd == pytest.approx(hand / 2, rel=0.05)


def test_the_cli_dry_run_shows_the_price():
    r = CliRunner().invoke(app, ["run", str(EXAMPLES / "quickstart.yaml"), "--dry-run"])
    assert r.exit_code == 0, r.output
    assert "estimated API cost" in r.output and "GPU-h" in r.output


def test_dated_snapshots_are_priced_as_their_model_not_by_first_prefix():
    # The old planner priced gpt-4o-mini-2024-07-18 as gpt-4o (16.7x too high).
    p = lookup("openai:gpt-4o-mini-2024-07-18")
    assert (p.input, p.output) == (0.15, 0.60) and p.source.startswith("genai-prices")
    assert lookup("openai:gpt-5").input == 1.25
    assert lookup("openai:no-such-model") is None
    # Cached input at its own rate; Batch at half of list.
    p = lookup("openai:gpt-4o")
    assert p.cost(1000, 0, cached_tokens=400) == pytest.approx((600 * 2.5 + 400 * 1.25) / 1e6)
    assert p.cost(1000, 1000, batch=True) == pytest.approx(p.cost(1000, 1000) / 2)


def test_fallback_only_for_what_genai_prices_lacks():
    p = lookup("openai:ft:gpt-4.1-mini-2025-04-14:acme::x1")
    assert p.source.startswith("fallback table") and (p.input, p.output) == (0.80, 3.20)
    assert lookup("openai:ft:gpt-4o-2024-08-06:acme::x").source.startswith("genai-prices")
    assert training_price("gpt-4o-2024-08-06")[0] == 25.0


def test_config_prices_win_and_self_hosted_is_free():
    assert lookup(CUSTOM).input == 0.0 and "self-hosted" in lookup(CUSTOM).source
    set_price_overrides({"custom": {"input": 1.0, "output": 3.0, "cached_input": 0.1}})
    p = lookup(CUSTOM)
    assert (p.input, p.output, p.cached_input, p.batch_output) == (1.0, 3.0, 0.1, 1.5)
    assert p.source == "config prices: custom"
    with pytest.raises(Exception, match="input"):
        parse_config({"prices": {"x": {"output": 1.0}}})


def _study(batch: bool):
    cfg = load_config(EXAMPLES / "study.yaml")
    return cfg.model_copy(update={"rewrite": cfg.rewrite.model_copy(update={"batch": batch}),
                                  "judge": cfg.judge.model_copy(update={"batch": batch})})


def test_batch_study_estimate_at_most_55_percent():
    without, with_batch = total_cost(estimate(_study(False))), total_cost(estimate(_study(True)))
    assert without > 0 and with_batch <= 0.55 * without


def test_study_dry_run_shows_gpu_hours_per_stage_and_expanded_bases(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-not-a-real-key-000")
    est = {e.stage: e for e in estimate(load_config(EXAMPLES / "study.yaml"))}
    for stage in ("train", "warmth", "eval"):
        assert est[stage].gpu_hours > 0, stage
    # 70B trains ~8.75x longer than 8B on the same tokens.
    assert "hf:meta-llama/Llama-3.1-70B-Instruct" in [m.text for m in est["train"].models]
    # The judge's reply: its rubric asks for brief reasoning then a verdict line (not 8 tokens).
    assert est["judge"].output_tokens / est["judge"].requests > 40
    r = CliRunner().invoke(app, ["run", str(EXAMPLES / "study.yaml"), "--dry-run", "--max-usd", "100"],
                           env={"COLUMNS": "250"})
    assert r.exit_code == 0, r.output
    assert "{base}" not in r.output
    for name in ("meta-llama/Llama-3.1-8B-Instruct", "Qwen/Qwen2.5-32B-Instruct", "GPU-hours",
                 "GPU-h", "OVER budget", "key for openai:gpt-4o-2024-08-06: set",
                 "not in the local HF cache"):
        assert name in r.output, name
    assert "sk-test" not in r.output


def test_fixed_prompt_parts_use_the_real_tokenizer_when_offline():
    from warmbench.embedded import is_prepared
    from warmbench.preflight import CHAR_ESTIMATE, token_counter

    count, label = token_counter("openai:gpt-4o")
    # tiktoken's encoding file is not cached here (it would be downloaded): labelled estimate.
    assert label == CHAR_ESTIMATE and count("abcdefgh") == 2
    if not is_prepared("smollm2-135m"):
        pytest.skip("embedded smollm2-135m not prepared")
    est = {e.stage: e for e in estimate(load_config(EXAMPLES / "quickstart.yaml"))}
    assert est["rewrite"].tokens == "smollm2-135m tokenizer"
    assert est["train"].gpu_hours > 0 and "config.json" in " ".join(est["train"].notes)
