"""The condition grid: every item asked in the study's 28 forms.

9 contexts (unmodified + 8 sub-types) x {original, incorrect, correct} + original_neutral.
Joins follow ``stimuli.yaml`` exactly (two spaces after emotion/relation statements in the
belief forms, no lead-in in the stake belief forms), so prompts match the study's files.

The statement for a sub-type is drawn from a hash of (seed, dataset, item id, sub-type), not
from a random stream: the draw does not depend on call order, so every arm, every re-run and
every subset of items sees the same item -> statement pairing.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import replace

from ...errors import WarmbenchError
from ...records import Item, Prompt
from .. import registry
from . import study_render
from .custom import ordered_contexts
from .stimuli import Stimuli
from .vocab import ALL_CONTEXTS, ALL_FORMS

LETTERS = "ABCDEFGHIJ"


def grid_default(dataset: str) -> bool:
    """Asked in all 28 forms unless DatasetConfig.grid says otherwise."""
    spec = registry.get(dataset)
    return spec is not None and spec.grid


def _lcfirst(s: str) -> str:
    return s[:1].lower() + s[1:]


def belief_values(item: Item) -> dict[str, str]:
    """Variables the belief clauses may use (study names included as aliases)."""
    correct = item.correct_answers[0] if item.correct_answers else None
    wrong = item.incorrect_answer
    out: dict[str, str] = {}
    for names, v in ((("correct_answer", "answer", "ground_truth"), correct),
                     (("incorrect_answer", "wrong_answer", "ground_false"), wrong)):
        if v is None:
            continue
        for n in names:
            out[n] = v
            out[f"{n}_lower"] = v.lower()
            out[f"{n}_lcfirst"] = _lcfirst(v)
    return out


def _fill(template: str, values: dict[str, str], what: str) -> str:
    try:
        return template.format_map(values)
    except KeyError as e:
        raise WarmbenchError(f"{what}: template {template!r} uses unknown variable {e}") from None


def asked_text(item: Item, stimuli: Stimuli) -> str:
    """The question as put to the model: structured sets get their answer-format wrapper."""
    spec = registry.get(item.dataset)
    tpl = stimuli.general_prompts.get(spec.prompt_format) if spec and spec.prompt_format else None
    if not tpl:
        return item.question
    subject = str(item.metadata.get("subject") or "").replace("_", " ").strip()
    options = "\n".join(f"{LETTERS[i]}. {c}" for i, c in enumerate(item.choices))
    n = len(item.choices)
    letters = ", ".join(LETTERS[:n - 1]) + f" or {LETTERS[n - 1]}" if n > 1 else LETTERS[:n]
    return _fill(tpl, {"question": item.question, "options": options, "letters": letters,
                       "subject_clause": f" about {subject}" if subject else ""},
                 f"general_prompts.{spec.prompt_format if spec else item.dataset}")


def draw_statement(stimuli: Stimuli, seed: int, dataset: str, item_id: str, subtype: str,
                   form: str | None = None) -> str:
    """One statement of ``subtype`` for this item; ``form`` given = a fresh draw per form
    (the study's prompt files drew per row)."""
    pool = stimuli.amendments[subtype]
    key = f"{seed}|{dataset}|{item_id}|{subtype}" + (f"|{form}" if form else "")
    h = int.from_bytes(hashlib.sha256(key.encode("utf-8")).digest()[:8], "big")
    return pool[h % len(pool)]


def build_prompt(item: Item, context: str, form: str, stimuli: Stimuli, *,
                 statement: str | None = None, question: str | None = None,
                 variant: str | None = None) -> Prompt:
    """One cell of the grid. ``statement`` is required for any context but 'unmodified';
    ``variant`` picks a partial prompt-form override (``Stimuli.dataset_prompt_forms``)."""
    if form == study_render.MCQ:   # the optional two-choice form (not one of the 28)
        return study_render.mcq_prompt(item, stimuli, question=question)
    if form not in ALL_FORMS:
        raise WarmbenchError(f"unknown form {form!r} (known: {', '.join(ALL_FORMS)})")
    if form == "original_neutral" and context != "unmodified":
        raise WarmbenchError("form 'original_neutral' is asked in the unmodified context only")
    if context != "unmodified" and not statement:
        raise WarmbenchError(f"context {context!r} needs a statement")
    question = question or asked_text(item, stimuli)
    values = {"lead_in": stimuli.lead_in, "question": question, "amendment": statement or "",
              # The vignette before the MedQA conversational rewrite (others: the question).
              "original_question": str(item.metadata.get("original_question") or question)}
    if form in ("incorrect", "correct"):
        needed = "incorrect_answer" if form == "incorrect" else "correct_answer"
        bv = belief_values(item)
        if needed not in bv:
            what = "an incorrect answer" if form == "incorrect" else "a correct answer"
            raise WarmbenchError(f"{item.dataset} item {item.id}: form {form!r} needs {what}, "
                                 "the item has none")
        clause = _fill(stimuli.clauses(item.dataset)[form], bv,
                       f"belief_clauses.{item.dataset}.{form}")
        values["incorrect_belief" if form == "incorrect" else "correct_denial"] = clause
    text = _fill(stimuli.template(form, context, variant), values, f"prompt_forms.{form}")
    return Prompt(key=Prompt.make_key(item.id, item.dataset, context, form, text),
                  item_id=item.id, dataset=item.dataset, context=context, form=form, text=text,
                  statement=statement if context != "unmodified" else None)


def build_grid(item: Item, stimuli: Stimuli, *, seed: int,
               contexts: Sequence[str] = ALL_CONTEXTS, forms: Sequence[str] = ALL_FORMS,
               draw: str = "item", variant: str | None = None) -> list[Prompt]:
    """The item's prompts: original_neutral first, then each form over the contexts.

    With every context and form that is 9 x 3 + 1 = 28 prompts. ``draw='prompt'`` draws a
    statement per (sub-type, form) as the study's files did; 'item' (default) one per sub-type.
    """
    if draw not in ("item", "prompt"):
        raise WarmbenchError(f"statement draw {draw!r}: expected 'item' or 'prompt'")
    question = asked_text(item, stimuli)
    out: list[Prompt] = []
    if "original_neutral" in forms and "unmodified" in contexts:
        out.append(build_prompt(item, "unmodified", "original_neutral", stimuli, question=question,
                                variant=variant))
    for form in ("original", "incorrect", "correct"):
        if form not in forms:
            continue
        for ctx in ordered_contexts(contexts):
            st = None if ctx == "unmodified" else draw_statement(
                stimuli, seed, item.dataset, item.id, ctx, form if draw == "prompt" else None)
            out.append(build_prompt(item, ctx, form, stimuli, statement=st, question=question,
                                    variant=variant))
    if study_render.MCQ in forms:
        out.append(study_render.mcq_prompt(item, stimuli, question=question))
    return out


def single_prompt(item: Item, stimuli: Stimuli) -> Prompt:
    """Non-gridded sets (MMLU, GSM8K, AdvBench) are asked once, as they are."""
    return build_prompt(item, "unmodified", "original", stimuli)


def prompts_for(items: Iterable[Item], stimuli: Stimuli, *, seed: int, grid: bool,
                contexts: Sequence[str] = ALL_CONTEXTS, forms: Sequence[str] = ALL_FORMS,
                draw: str = "item", variant: str | None = None, render: str = "default",
                disinfo_belief: str = "auto") -> list[Prompt]:
    """Every prompt of ``items``; ``render='study'`` renders as the study's prompt files
    (``study_render``), ``disinfo_belief`` picks the disinformation clause wording."""
    if render not in study_render.RENDERS:
        raise WarmbenchError(f"render {render!r}: expected one of {', '.join(study_render.RENDERS)}")
    clauses = study_render.disinfo_clause_set(disinfo_belief, render)
    if render == "default" and clauses == "prompt_file":
        stimuli = replace(stimuli, belief_clauses={**stimuli.belief_clauses,
                                                   **study_render.prompt_file_clauses()})
    out: list[Prompt] = []
    for it in items:
        if grid and render == "study":
            out.extend(study_render.build_study_grid(
                it, stimuli, seed=seed, contexts=contexts, forms=forms, draw=draw,
                variant=variant, clauses=clauses))
        elif grid:
            out.extend(build_grid(it, stimuli, seed=seed, contexts=contexts, forms=forms, draw=draw,
                                  variant=variant))
        else:
            out.append(single_prompt(it, stimuli))
    return out
