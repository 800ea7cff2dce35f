"""``warmbench run --dry-run``: the stage plan with request, token and cost estimates.

Estimates are deliberately simple (documented averages, not tokenizer counts): they exist to
tell a user before they start whether a run costs $5 or $500. Token averages come from the
study's own data where known (3,667 assistant responses in 1,617 conversations).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from .backends.spec import parse_spec
from .config import ExperimentConfig
from .pipeline import select_stages

# USD per 1M tokens (input, output); fine-tuning: per 1M training tokens. Public list prices
# of OpenAI models as of 2025; unknown models are priced at 0 and flagged.
PRICES: dict[str, tuple[float, float]] = {
    "gpt-4o-2024-08-06": (2.50, 10.00),
    "gpt-4o": (2.50, 10.00),
    "gpt-4o-mini": (0.15, 0.60),
    "gpt-4.1": (2.00, 8.00),
    "gpt-4.1-mini": (0.40, 1.60),
}
FT_TRAIN_PRICE = {"gpt-4o-2024-08-06": 25.0, "gpt-4o-mini-2024-07-18": 3.0}

RESPONSES_PER_CONVERSATION = 3667 / 1617   # study
TOKENS_ASSISTANT_TURN = 250
TOKENS_USER_TURN = 60
TOKENS_REWRITE_SYSTEM = 400
TOKENS_QUESTION = {"medqa": 260, "disinfo": 90}
TOKENS_QUESTION_DEFAULT = 60
TOKENS_JUDGE_PROMPT = 350
GRID_DEFAULT = {"triviaqa", "truthfulqa", "medqa", "disinfo"}
FULL_SIZE = {"triviaqa": 500, "truthfulqa": 500, "medqa": 500, "disinfo": 125, "mmlu": 14042,
             "gsm8k": 1319, "advbench": 520}
SAMPLE_SIZE = 15


@dataclass
class StageEstimate:
    stage: str
    what: str
    requests: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    api_model: str | None = None
    notes: list[str] = field(default_factory=list)


def _price(spec: str, tin: int, tout: int, notes: list[str]) -> tuple[float, str | None]:
    ms = parse_spec(spec)
    if ms.backend != "openai":
        return 0.0, None
    if ms.base_url and not ms.base_url.startswith("https://api.openai.com"):
        notes.append(f"{ms.text}: self-hosted endpoint, no API cost")
        return 0.0, ms.text
    p = PRICES.get(ms.model) or next((v for k, v in PRICES.items() if ms.model.startswith(k)), None)
    if p is None:
        notes.append(f"{ms.model}: unknown price, counted as $0")
        return 0.0, ms.text
    return (tin * p[0] + tout * p[1]) / 1e6, ms.text


def _forms_per_item(cfg: ExperimentConfig) -> int:
    ctx = len(cfg.eval.contexts)
    n = sum(ctx for f in cfg.eval.forms if f not in ("original_neutral", "mcq"))
    if "original_neutral" in cfg.eval.forms and "unmodified" in cfg.eval.contexts:
        n += 1
    return n + ("mcq" in cfg.eval.forms)   # the two-choice form: once per item


def estimate(cfg: ExperimentConfig, start: str | None = None, stop: str | None = None) -> list[StageEstimate]:
    out: list[StageEstimate] = []
    n_conv = min(cfg.curate.target_size, cfg.rewrite.limit or 10**9)
    personas = list(cfg.rewrite.personas)
    for stage in select_stages(cfg, start, stop):
        e = StageEstimate(stage.name, stage.summary)
        if stage.name == "curate":
            e.what = (f"{cfg.curate.target_size} conversations + {cfg.curate.validation_size} validation "
                      f"prompts from {cfg.curate.source}")
        elif stage.name == "rewrite":
            turns = math.ceil(n_conv * RESPONSES_PER_CONVERSATION)
            e.requests = turns * len(personas)
            e.input_tokens = e.requests * (TOKENS_REWRITE_SYSTEM + TOKENS_USER_TURN + TOKENS_ASSISTANT_TURN)
            e.output_tokens = e.requests * int(TOKENS_ASSISTANT_TURN * 1.2)
            e.cost_usd, e.api_model = _price(cfg.rewrite.model, e.input_tokens, e.output_tokens, e.notes)
            e.what = f"{turns} assistant turns × {len(personas)} personas with {cfg.rewrite.model}"
        elif stage.name == "train":
            n = min(n_conv, cfg.train.limit or 10**9)
            steps = math.ceil(n / cfg.train.effective_batch_size) * cfg.train.epochs
            tokens = int(n * RESPONSES_PER_CONVERSATION * (TOKENS_USER_TURN + TOKENS_ASSISTANT_TURN)
                         * cfg.train.epochs)
            e.what = (f"{len(personas)} personas × {cfg.train.epochs:g} epochs ≈ {steps:g} optimizer steps each "
                      f"({cfg.train.method}, base {cfg.train.base_model}); checkpoints at "
                      f"{', '.join(f'{x:g}' for x in cfg.train.checkpoint_epochs)}")
            if cfg.train.method == "openai":
                model = parse_spec(cfg.train.base_model).model
                price = FT_TRAIN_PRICE.get(model, 0.0)
                e.input_tokens = tokens * len(personas)
                e.cost_usd = e.input_tokens * price / 1e6
                e.api_model = model
                if not price:
                    e.notes.append(f"{model}: unknown fine-tuning price, counted as $0")
        elif stage.name == "warmth":
            n_ck = len(cfg.train.checkpoint_epochs) * len(personas) + 1
            n_p = cfg.warmth.n_prompts or cfg.curate.validation_size
            e.requests = n_ck * n_p
            e.what = f"{n_ck} models (checkpoints + original) × {n_p} validation prompts, SocioT {cfg.warmth.method}"
        elif stage.name in ("eval", "judge"):
            per_arm, tin, tout, judged = 0, 0, 0, 0
            fpi = _forms_per_item(cfg)
            for d in cfg.eval.datasets:
                n_items = d.n or (SAMPLE_SIZE if d.sample else FULL_SIZE.get(d.name, 500))
                if cfg.eval.limit:
                    n_items = min(n_items, cfg.eval.limit)
                grid = d.grid if d.grid is not None else d.name in GRID_DEFAULT
                n_prompts = n_items * (fpi if grid else 1) * cfg.eval.samples
                per_arm += n_prompts
                # MMLU and GSM8K are always regex-scored (as in the study), never judged.
                judged += 0 if d.name in ("mmlu", "gsm8k") else n_prompts
                settings = cfg.eval.free_text if grid or d.name == "advbench" else cfg.eval.structured
                tin += n_prompts * TOKENS_QUESTION.get(d.name, TOKENS_QUESTION_DEFAULT)
                tout += n_prompts * int(settings.max_tokens * 0.6)
            if stage.name == "eval":
                for arm in cfg.arms:
                    e.requests += per_arm
                    e.input_tokens += tin
                    e.output_tokens += tout
                    c, m = _price(arm.model, tin, tout, e.notes)
                    e.cost_usd += c
                    e.api_model = e.api_model or m
                e.what = f"{len(cfg.arms)} arms × {per_arm} prompts ({fpi} forms per gridded item)"
            else:
                if cfg.judge.model:
                    e.requests = judged * len(cfg.arms)
                    e.input_tokens = e.requests * TOKENS_JUDGE_PROMPT + tout * len(cfg.arms)
                    e.output_tokens = e.requests * 8
                    e.cost_usd, e.api_model = _price(cfg.judge.model, e.input_tokens, e.output_tokens, e.notes)
                    e.what = f"{e.requests} answers judged by {cfg.judge.model}"
                else:
                    e.what = "offline reference scorers (no judge model configured)"
        if cfg.base_models and stage.name in ("train", "warmth", "eval", "judge"):
            k = len(cfg.base_models)
            e.requests, e.input_tokens, e.output_tokens = e.requests * k, e.input_tokens * k, e.output_tokens * k
            e.cost_usd *= k
            e.what += f"; × {k} base models"
        out.append(e)
    return out
