"""``warmbench run --dry-run``: the stage plan with requests, tokens, prices and GPU-hours.

Per stage: requests, input and output tokens, the API price at list and at Batch rates (one
price source: ``warmbench.prices``), and GPU-hours for open models (``warmbench.preflight``,
throughput assumption stated). The fixed parts of every prompt (persona prompts, the rewrite
request, judge rubrics) are counted with the model's own tokenizer when it is available
offline, else a labelled character estimate; the variable parts (chat turns, questions,
answers) are the study's averages (3,667 assistant responses in 1,617 conversations). Every
``{base}`` is expanded: per-base figures are summed and the models are named.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

from .backends.spec import ModelSpec, api_model_spec
from .config import ExperimentConfig
from .eval.custom_spec import source_rows
from .pipeline import select_stages
from .preflight import CHAR_ESTIMATE, gpu_hours, param_count, token_counter
from .prices import lookup, set_price_overrides, training_price

RESPONSES_PER_CONVERSATION = 3667 / 1617   # study
TOKENS_ASSISTANT_TURN = 250
TOKENS_USER_TURN = 60
# Dataset sizes, grids and question tokens: eval.registry's DatasetSpec.
SAMPLE_SIZE = 15   # when a sample or local file cannot be counted


def _file_rows(d) -> int | None:
    """Items in a set's built-in sample or local JSONL/CSV file (what the run will read)."""
    from .eval.sets import sample_path

    path = sample_path(d.name) if d.sample else Path(d.path) if d.path else None
    if path is None:
        return None
    if not path.is_file() or path.suffix.lower() not in (".jsonl", ".json", ".csv"):
        return SAMPLE_SIZE if d.sample else None
    with path.open("rb") as f:
        n = sum(1 for line in f if line.strip())
    return max(n - (path.suffix.lower() == ".csv"), 0)


# A judge rubric that invites brief reasoning before its verdict line ("Think briefly ...")
# is answered with about this many tokens before the line; worst case is judge.max_tokens.
JUDGE_REASONING_TOKENS = 60


@dataclass
class StageEstimate:
    stage: str
    what: str
    requests: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0        # what this run pays: Batch rates where ``batch`` is on
    list_usd: float = 0.0        # at list (synchronous) prices
    batch_usd: float = 0.0       # at Batch API prices
    worst_usd: float = 0.0       # every request at its max_tokens: what a budget must reserve
    batch: bool = False
    api_model: str | None = None
    gpu_hours: float = 0.0
    tokens: str = ""             # how the fixed prompt parts were counted
    models: list[ModelSpec] = field(default_factory=list)   # expanded model specs this stage uses
    gpu_by_model: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def _bases(cfg: ExperimentConfig) -> list[str]:
    return list(cfg.base_models) or [""]


def _price_into(e: StageEstimate, ms: ModelSpec, tin: int, tout: int, worst_out: int) -> None:
    """Add the API cost of ``tin``/``tout`` tokens on ``ms`` to the stage (list and Batch)."""
    if ms.backend != "openai":
        return
    p = lookup(ms)
    e.api_model = e.api_model or ms.text
    if p is None:
        e.notes.append(f"{ms.model}: no price (genai-prices, fallback table or config prices:), counted as $0")
        return
    if p.input == p.output == 0:
        e.notes.append(f"{ms.text}: {p.source}")
        return
    e.list_usd += p.cost(tin, tout)
    e.batch_usd += p.cost(tin, tout, batch=True)
    e.worst_usd += p.cost(tin, worst_out, batch=e.batch)
    e.cost_usd = e.batch_usd if e.batch else e.list_usd
    note = f"{ms.model}: {p.source}"
    if note not in e.notes:
        e.notes.append(note)


def _gpu_into(e: StageEstimate, ms: ModelSpec, tokens: float, kind: str) -> None:
    if ms.backend not in ("hf", "vllm"):
        return
    n, how = param_count(ms.model)
    if n is None:
        e.notes.append(f"{ms.model}: unknown parameter count, GPU-hours not estimated")
        return
    h = gpu_hours(n, tokens, kind)
    e.gpu_hours += h
    label = f"{ms.model} ({n / 1e9:.2f}B parameters, {how})"
    e.gpu_by_model[label] = e.gpu_by_model.get(label, 0.0) + h


def _forms_per_item(cfg: ExperimentConfig) -> int:
    ctx = len(cfg.eval.contexts)
    n = sum(ctx for f in cfg.eval.forms if f not in ("original_neutral", "mcq"))
    if "original_neutral" in cfg.eval.forms and "unmodified" in cfg.eval.contexts:
        n += 1
    return n + ("mcq" in cfg.eval.forms)   # the two-choice form: once per item


@dataclass
class _EvalVolume:
    per_arm: int = 0          # prompts each arm answers
    tin: int = 0              # their input tokens
    tout: int = 0             # their output tokens (expected)
    judged: dict[str, int] = field(default_factory=dict)   # dataset -> judged answers per arm
    judged_in: int = 0        # question + answer tokens of the judged answers, per arm
    notes: list[str] = field(default_factory=list)   # one line per dataset


def _eval_volume(cfg: ExperimentConfig) -> _EvalVolume:
    v = _EvalVolume()
    fpi = _forms_per_item(cfg)
    for d in cfg.eval.datasets:
        spec = d.spec()
        n_items = d.n or _file_rows(d) or source_rows(spec) or spec.full_size
        if cfg.eval.limit:
            n_items = min(n_items, cfg.eval.limit)
        grid = d.grid if d.grid is not None else spec.grid
        n_prompts = n_items * (fpi if grid else 1) * cfg.eval.samples
        settings = cfg.eval.structured if spec.structured and not grid else cfg.eval.free_text
        q = spec.tokens_question
        out = int(settings.max_tokens * 0.6)
        v.per_arm += n_prompts
        v.tin += n_prompts * q
        v.tout += n_prompts * out
        v.notes.append(f"{d.name}: {n_items} items × {fpi if grid else 1} prompts, "
                       f"≈{n_prompts * q:,} question tokens per arm")
        # Multiple choice and numeric sets are regex-scored (as in the study), never judged.
        if spec.judged:
            v.judged[d.name] = v.judged.get(d.name, 0) + n_prompts
            v.judged_in += n_prompts * (q + out)
    return v


def judge_output_tokens(rubric_text: str, verdict_line: str, count) -> int:
    """Expected judge reply length from what the rubric asks for: the verdict line, plus a
    short reasoning allowance when the rubric invites thinking first."""
    n = count(verdict_line) + 1
    if "think" in rubric_text.lower() or "reason" in rubric_text.lower():
        n += JUDGE_REASONING_TOKENS
    return n


def estimate(cfg: ExperimentConfig, start: str | None = None, stop: str | None = None) -> list[StageEstimate]:
    set_price_overrides(cfg.prices)
    out: list[StageEstimate] = []
    for stage in select_stages(cfg, start, stop):
        e = StageEstimate(stage.name, stage.summary)
        fn = _STAGE_ESTIMATES.get(stage.name)
        if fn is not None:
            fn(cfg, e)
        e.notes += [f"{m}: {h:,.1f} GPU-h" for m, h in e.gpu_by_model.items()]
        out.append(e)
    return out


def _n_conv(cfg: ExperimentConfig) -> int:
    return min(cfg.curate.target_size, cfg.rewrite.limit or 10**9)


def _est_curate(cfg: ExperimentConfig, e: StageEstimate) -> None:
    e.what = (f"{cfg.curate.target_size} conversations + {cfg.curate.validation_size} validation "
              f"prompts from {cfg.curate.source}")


def _est_rewrite(cfg: ExperimentConfig, e: StageEstimate) -> None:
    from .rewrite.prompts import REQUEST_TEMPLATE, load_persona_prompt

    r = cfg.rewrite
    count, e.tokens = token_counter(r.model)
    turns = math.ceil(_n_conv(cfg) * RESPONSES_PER_CONVERSATION)
    e.batch = r.batch and r.model.backend == "openai"
    e.models = [r.model]
    fixed = count(REQUEST_TEMPLATE)
    for source in r.personas.values():
        system = count(load_persona_prompt(source))
        tin = turns * (system + fixed + TOKENS_USER_TURN + TOKENS_ASSISTANT_TURN)
        tout = turns * int(TOKENS_ASSISTANT_TURN * 1.2)
        e.requests += turns
        e.input_tokens += tin
        e.output_tokens += tout
        _price_into(e, r.model, tin, tout, turns * r.max_tokens)
        _gpu_into(e, r.model, tin + tout, "infer")
    e.what = (f"{turns} assistant turns × {len(r.personas)} personas with {r.model}"
              + (" (Batch API)" if e.batch else ""))


def _est_train(cfg: ExperimentConfig, e: StageEstimate) -> None:
    t = cfg.train
    personas = len(cfg.rewrite.personas)
    n = min(_n_conv(cfg), t.limit or 10**9)
    steps = math.ceil(n / t.effective_batch_size) * t.epochs
    tokens = int(n * RESPONSES_PER_CONVERSATION * (TOKENS_USER_TURN + TOKENS_ASSISTANT_TURN) * t.epochs)
    e.what = (f"{personas} personas × {t.epochs:g} epochs ≈ {steps:g} optimizer steps each "
              f"({t.method}); checkpoints at {', '.join(f'{x:g}' for x in t.checkpoint_epochs)}")
    if t.method == "openai":
        # api_model: a bare OpenAI model name, or an openai: spec (a compatible fine-tuning server).
        api = api_model_spec(t.api_model)
        model = api.model
        e.input_tokens = tokens * personas
        e.api_model = model
        e.models = [api]
        tp = training_price(model)
        if tp is None:
            e.notes.append(f"{model}: no fine-tuning training price, counted as $0")
        else:
            e.cost_usd = e.list_usd = e.batch_usd = e.worst_usd = e.input_tokens * tp[0] / 1e6
            e.notes.append(f"{model} training: ${tp[0]:g}/1M tokens ({tp[1]})")
        return
    for base in _bases(cfg):
        spec = t.base_model.with_base(base)
        e.models.append(spec)
        e.input_tokens += tokens * personas
        _gpu_into(e, spec, tokens * personas, "train")


def _est_warmth(cfg: ExperimentConfig, e: StageEstimate) -> None:
    personas = len(cfg.rewrite.personas)
    n_ck = len(cfg.train.checkpoint_epochs) * personas + 1
    n_p = cfg.warmth.n_prompts or cfg.curate.validation_size
    tin, tout = n_ck * n_p * TOKENS_USER_TURN, n_ck * n_p * int(cfg.warmth.max_tokens * 0.6)
    for base in _bases(cfg):
        spec = cfg.train.base_model.with_base(base)
        if cfg.warmth.backend:
            spec = ModelSpec(cfg.warmth.backend, spec.model)
        e.models.append(spec)
        e.requests += n_ck * n_p
        e.input_tokens += tin
        e.output_tokens += tout
        _gpu_into(e, spec, tin + tout, "infer")
    if cfg.warmth.model != "auto":  # the SocioT metric model (study: gpt2), checked for the cache
        e.models.append(ModelSpec("hf", cfg.warmth.model))
    e.what = f"{n_ck} models (checkpoints + original) × {n_p} validation prompts, SocioT {cfg.warmth.method}"


def _est_eval(cfg: ExperimentConfig, e: StageEstimate) -> None:
    v = _eval_volume(cfg)
    for base in _bases(cfg):
        for arm in cfg.arms:
            spec = arm.model.with_base(base)
            if spec not in e.models:
                e.models.append(spec)
            e.requests += v.per_arm
            e.input_tokens += v.tin
            e.output_tokens += v.tout
            _price_into(e, spec, v.tin, v.tout, v.per_arm * cfg.eval.free_text.max_tokens)
            _gpu_into(e, spec, v.tin + v.tout, "infer")
    e.what = f"{len(cfg.arms)} arms × {v.per_arm} prompts ({_forms_per_item(cfg)} forms per gridded item)"
    e.notes.extend(v.notes)
    if cfg.base_models:
        e.what += f"; × {len(cfg.base_models)} base models"


def _est_judge(cfg: ExperimentConfig, e: StageEstimate) -> None:
    from .scoring.judge import prompt_for, verdict_choices

    j = cfg.judge
    if not j.model:
        e.what = "offline reference scorers (no judge model configured)"
        return
    count, e.tokens = token_counter(j.model)
    e.batch = j.batch and j.model.backend == "openai"
    e.models = [j.model]
    v = _eval_volume(cfg)
    k = len(cfg.arms) * len(_bases(cfg))
    out_each = []
    for name, n in v.judged.items():
        rubric = prompt_for(name)
        prompt_tok = count(rubric.system) + count(rubric.user)
        reply = judge_output_tokens(rubric.system + rubric.user, max(verdict_choices(rubric), key=len), count)
        out_each.append(f"{rubric.name}: {reply}")
        e.requests += n * k
        e.input_tokens += n * k * prompt_tok
        e.output_tokens += n * k * reply
    e.input_tokens += v.judged_in * k
    _price_into(e, j.model, e.input_tokens, e.output_tokens, e.requests * j.max_tokens)
    _gpu_into(e, j.model, e.input_tokens + e.output_tokens, "infer")
    e.what = (f"{e.requests} answers judged by {j.model}" + (" (Batch API)" if e.batch else "")
              + f"; reply tokens per rubric {', '.join(sorted(set(out_each)))}")


_STAGE_ESTIMATES = {"curate": _est_curate, "rewrite": _est_rewrite, "train": _est_train,
                    "warmth": _est_warmth, "eval": _est_eval, "judge": _est_judge}


def total_cost(est: list[StageEstimate]) -> float:
    return sum(e.cost_usd for e in est)


def uses_char_estimate(est: list[StageEstimate]) -> bool:
    return any(e.tokens == CHAR_ESTIMATE for e in est)
