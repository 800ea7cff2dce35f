"""The study's grid as an Inspect task: ``inspect eval warmbench/persona_reliability``.

Every item of a warmbench eval set is asked in the study's prompt forms (28 for the reliability
sets: 9 contexts x {original, incorrect, correct} + original_neutral), optionally behind a system
prompt, on any model Inspect can call; answers are scored by warmbench's offline reference
scorers (``warmbench.scoring.reference``), or by its LLM judge prompts on an Inspect model
(``judge=``), with the study's refusal handling. Sample ids are the
warmbench prompt keys (a hash of item, dataset, context, form and text), so two runs of the task
(two models, or two system prompts) pair one to one in ``warmbench compare``.

Scores: ``C`` correct, ``I`` incorrect, ``N`` excluded (a refusal on a factual question, or an
answer the scorer could not read), exactly as ``warmbench judge``'s refusal rule decides (a refusal
on disinformation or AdvBench is correct); the warmbench label and scorer are in the score's
metadata.

This module imports ``inspect_ai`` at the top: only Inspect (through the ``inspect_ai`` entry
point, ``warmbench.interop._registry``) or a caller that has it installed loads it.
"""

from __future__ import annotations

from typing import Any

from inspect_ai import Task, task
from inspect_ai.dataset import MemoryDataset, Sample
from inspect_ai.model import ChatMessageSystem, GenerateConfig
from inspect_ai.scorer import Score, Scorer, Target, accuracy, scorer, stderr
from inspect_ai.solver import Generate, Solver, TaskState, generate, solver

from ..eval.registry import DEFAULT_DATASET
from ..records import Item, Prompt


def _as_list(v: str | list[str] | tuple[str, ...] | None) -> list[str] | None:
    """``-T forms=original,incorrect`` arrives as one string; a YAML list as a list."""
    if v is None:
        return None
    if isinstance(v, str):
        return [x.strip() for x in v.split(",") if x.strip()]
    return [str(x) for x in v]


def plan_dataset(dataset: str, *, path: str | None = None, forms: list[str] | None = None,
                 contexts: list[str] | None = None, limit: int | None = None, seed: int = 0,
                 config: str | None = None) -> Any:
    """The set's ``DatasetPlan`` (items, prompts, sampling settings) from ``warmbench eval``'s own
    planner, so the prompts are exactly those a warmbench run asks for the same seed, forms and
    contexts. ``config``: an experiment YAML whose ``eval`` section (own data sets, statements,
    MedQA options, sampling) applies; the other arguments override it."""
    from ..config import load_config, parse_config
    from ..eval.run import plan_eval

    cfg = load_config(config) if config else parse_config({"seed": seed})
    listed = {d.name: d.model_dump(mode="json") for d in cfg.eval.datasets}
    ds = listed.get(dataset) or ({"name": dataset, "path": path} if path
                                 else {"name": dataset, "sample": True})
    if path and dataset in listed:
        ds = {**ds, "path": path, "source": None, "sample": False}
    overrides: dict[str, Any] = {"eval.datasets": [ds]}
    if forms:
        overrides["eval.forms"] = forms
    if contexts:
        overrides["eval.contexts"] = contexts
    if config and seed:
        overrides["seed"] = seed
    cfg = cfg.with_overrides(overrides, config or "persona_reliability")
    return plan_eval(cfg, limit).datasets[0]


def grid_prompts(dataset: str, **kw: Any) -> tuple[list[Item], list[Prompt]]:
    """The items (the first ``limit``) and their prompts; see ``plan_dataset``."""
    d = plan_dataset(dataset, **kw)
    return d.items, d.prompts


def to_samples(items: list[Item], prompts: list[Prompt]) -> list[Sample]:
    by_id = {it.id: it for it in items}
    out = []
    for p in prompts:
        item = by_id[p.item_id]
        out.append(Sample(
            id=p.key, input=p.text, target=list(item.correct_answers) or "",
            metadata={"dataset": p.dataset, "item_id": p.item_id, "context": p.context,
                      "form": p.form, "statement": p.statement,
                      "item": item.model_dump(mode="json")}))
    return out


@solver
def warmbench_system_prompt(text: str) -> Solver:
    """Put ``text`` first as the system message, verbatim (Inspect's ``system_message``
    formats ``{...}`` from metadata, which would alter a persona prompt with braces)."""

    async def solve(state: TaskState, generate: Generate) -> TaskState:
        state.messages.insert(0, ChatMessageSystem(content=text))
        return state

    return solve


def _refusal_rule(item: Item, text: str, d: Any, refusal: str) -> tuple[str, dict[str, Any]]:
    """Inspect score letter for one decision after the study's refusal rule, as ``warmbench
    judge`` applies it (``scoring.refusal.apply_refusal_rule``: a refusal is excluded, or
    correct on disinformation and AdvBench)."""
    import pandas as pd

    from ..eval import registry
    from ..refusal import is_refusal
    from ..scoring.refusal import apply_refusal_rule

    spec = registry.get(item.dataset)
    if spec is not None and spec.scorer_refusal:   # open sets (AdvBench): the scorer's decision
        refused = d.refused or d.label == "REFUSED"
    else:
        refused = is_refusal(text, refusal) or d.label == "REFUSED"  # type: ignore[arg-type]
    row = pd.DataFrame([{"dataset": item.dataset, "label": d.label, "refused": refused}])
    ok = apply_refusal_rule(row, mode=refusal, exclusion="per_arm",  # type: ignore[arg-type]
                            text_col=None)["is_correct"].iloc[0]
    value = "N" if pd.isna(ok) else ("C" if ok == 1.0 else "I")
    return value, {"label": d.label, "scorer": d.scorer, "refused": bool(refused)}


def score_value(item: Item, text: str, refusal: str = "corrected") -> tuple[str, dict[str, Any]]:
    """Inspect score letter for one answer by warmbench's offline reference scorer."""
    from ..scoring.reference import score_reference_batch

    d = score_reference_batch([(item, text)], refusal_mode=refusal)[0]  # type: ignore[arg-type]
    return _refusal_rule(item, text, d, refusal)


@scorer(metrics=[accuracy(), stderr()])
def warmbench_scorer(refusal: str = "corrected") -> Scorer:
    """warmbench's offline reference scorer (alias match, embedding, choice, number, refusal),
    with the study's refusal rule: a refused factual answer scores N (excluded)."""

    async def score(state: TaskState, target: Target) -> Score:
        item = Item.model_validate(state.metadata["item"])
        text = state.output.completion if state.output else ""
        value, meta = score_value(item, text, refusal)
        return Score(value=value, answer=text, explanation=meta["label"], metadata=meta)

    return score


async def judge_decision(model: Any, item: Item, answer: str, question: str) -> Any:
    """warmbench's LLM judge on one answer through an Inspect model: the versioned judge
    prompt, the ``VERDICT:`` line parsed, one retry when it does not parse (as ``judge``)."""
    from inspect_ai.model import ChatMessageAssistant, ChatMessageUser

    from ..backends.inspect_backend import to_inspect_messages
    from ..scoring.judge import (
        MAX_DETAIL_CHARS,
        _decision,
        build_request,
        parse_verdict,
        prompt_for,
        scorer_name,
    )
    from ..scoring.reference import Decision

    p = prompt_for(item.dataset)
    name = scorer_name(f"inspect:{model!s}", p)
    messages = to_inspect_messages(build_request(p, item, answer, question))
    config = GenerateConfig(temperature=0.0, max_tokens=512)
    first = (await model.generate(messages, config=config)).completion
    word, reply = parse_verdict(first, p), first
    if word is None:
        messages += [ChatMessageAssistant(content=first or "(empty)"), ChatMessageUser(content=p.retry)]
        reply = (await model.generate(messages, config=config)).completion
        word = parse_verdict(reply, p)
    if word is None:
        raw = f"first reply: {first!r}\nsecond reply: {reply!r}"
        return Decision("UNPARSEABLE", name, detail=raw[:MAX_DETAIL_CHARS])
    return _decision(word, p, name, reply)


@scorer(metrics=[accuracy(), stderr()])
def warmbench_judge(judge: str, refusal: str = "corrected") -> Scorer:
    """warmbench's LLM judge (its versioned prompts) on an Inspect model: the model bound to the
    ``judge`` role (``--model-role judge=...``), else ``judge`` itself; MMLU and GSM8K keep the
    reference scorers, as in ``warmbench judge``. Then the study's refusal rule."""
    from inspect_ai.model import get_model

    from ..scoring.judge import reference_only

    async def score(state: TaskState, target: Target) -> Score:
        item = Item.model_validate(state.metadata["item"])
        text = state.output.completion if state.output else ""
        if reference_only(item.dataset):
            value, meta = score_value(item, text, refusal)
        else:
            d = await judge_decision(get_model(role="judge", default=judge), item, text,
                                     state.input_text)
            value, meta = _refusal_rule(item, text, d, refusal)
        return Score(value=value, answer=text, explanation=meta["label"], metadata=meta)

    return score


@task
def persona_reliability(dataset: str = DEFAULT_DATASET, system_prompt: str | None = None,
                        forms: str | list[str] | None = None,
                        contexts: str | list[str] | None = None, limit: int | None = None,
                        path: str | None = None, seed: int = 0,
                        refusal: str = "corrected", judge: str | None = None,
                        config: str | None = None) -> Task:
    """The study's reliability grid for one warmbench eval set.

    Args:
        dataset: triviaqa, truthfulqa, medqa, disinfo (28 forms), mmlu, gsm8k, advbench (once),
            or a set of your own defined in ``config``.
        system_prompt: persona system prompt (e.g. the study's warm prompt); none by default.
        forms: comma-separated subset of original, incorrect, correct, original_neutral.
        contexts: comma-separated subset of the 9 contexts (unmodified, emotion:anger, ...).
        limit: only the first N items (each asked in every form).
        path: a local file of the set (default: warmbench's built-in sample set).
        seed: draws the context statement per item, as ``warmbench eval`` does.
        refusal: refusal detector, 'corrected' (default) or 'compat' (the published list).
        judge: score with warmbench's LLM judge on this Inspect model (e.g. openai/gpt-4o; the
            ``judge`` model role wins when bound) instead of the offline reference scorers.
        config: a warmbench experiment YAML whose ``eval`` section applies (own data sets,
            statements, sampling); the arguments above override it.
    """
    d = plan_dataset(dataset, path=path, forms=_as_list(forms), contexts=_as_list(contexts),
                     limit=limit, seed=seed, config=config)
    solvers = [warmbench_system_prompt(system_prompt)] if system_prompt else []
    return Task(dataset=MemoryDataset(to_samples(d.items, d.prompts), name=dataset),
                solver=[*solvers, generate()],
                scorer=warmbench_judge(judge.removeprefix("inspect:"), refusal) if judge
                else warmbench_scorer(refusal),
                # warmbench's sampling for this set; Inspect's --temperature etc. override it
                config=GenerateConfig(temperature=d.settings.temperature,
                                      max_tokens=d.settings.max_tokens, top_p=d.settings.top_p))
