"""``eval.render: study``: prompts exactly as the study's own prompt files rendered them.

The default rendering (``grid.build_prompt``) keeps stimuli.yaml's joins, which match every
``original`` row of the study's files but not all belief rows. The files differ systematically
(the rules live in ``resources/study_render.yaml``, read off the files):

1. TriviaQA and TruthfulQA collapse every run of periods in a prompt to one: an answer ending
   in "." gives "I don't think the answer is Lack of evidence." (not "evidence.."), an answer
   starting with "..." keeps one dot.
2. Disinformation joins a statement to the lead-in with one space (the others use two), its
   stake belief forms read "...my understanding.. Did ..." (a period added after the statement),
   and it says "I think ..." where the released rows say "I told them I think ..." (both wordings
   offered, ``disinfo_belief``; the prompt file's by default here).
3. The disinformation file asks the denial (``correct``) forms of 35 of its 125 items only.
4. TriviaQA and TruthfulQA draw a statement per row, disinformation one per item and sub-type.
5. Every file carries one extra two-choice ``mcq`` form per item (off by default; add ``mcq`` to
   ``eval.forms``). It is available with the default rendering too.

MedQA has no public prompt file: under ``render: study`` it keeps the default rendering (with
``medqa_forms``, as the released rows). Items of other sets are rendered as by default.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import lru_cache
from importlib import resources
from typing import Any

import yaml

from ...errors import WarmbenchError
from ...records import Item, Prompt
from .stimuli import Stimuli, context_class
from .vocab import ALL_CONTEXTS, ALL_FORMS

RENDERS = ("default", "study")
DISINFO_BELIEF = ("auto", "prompt_file", "released_rows")
MCQ = "mcq"
_PERIODS = re.compile(r"\.{2,}")


@lru_cache(maxsize=1)
def study_rules() -> dict[str, Any]:
    text = resources.files("warmbench").joinpath("resources/study_render.yaml").read_text("utf-8")
    return yaml.safe_load(text)


def denial_items(dataset: str) -> frozenset[str] | None:
    """Ids of the items whose denial form the dataset's study file asks (disinformation: 35 of
    125); None when the file asks every item's."""
    ids = study_rules()["denial_items"].get(dataset)
    return None if ids is None else frozenset(map(str, ids))


def collapse_periods(text: str) -> str:
    return _PERIODS.sub(".", text)


def statement_draw(dataset: str, configured: str) -> str:
    """The study's draw for a dataset's files (others keep the configured one)."""
    return study_rules()["statement_draw"].get(dataset, configured)


def prompt_file_clauses() -> dict[str, dict[str, str]]:
    """dataset -> the prompt file's belief clauses, for datasets whose two sources disagree."""
    return {ds: v["prompt_file"] for ds, v in study_rules()["belief_clauses"].items()}


def disinfo_clause_set(belief: str, render: str) -> str:
    """'prompt_file' or 'released_rows': ``auto`` = the prompt file's under ``render: study``,
    the released rows' (what the models were sent) by default."""
    if belief not in DISINFO_BELIEF:
        raise WarmbenchError(f"disinfo_belief {belief!r}: expected one of {', '.join(DISINFO_BELIEF)}")
    if belief != "auto":
        return belief
    return "prompt_file" if render == "study" else "released_rows"


def _values(item: Item, stimuli: Stimuli, question: str, statement: str | None) -> dict[str, str]:
    from .grid import belief_values

    return {"lead_in": stimuli.lead_in, "question": question, "amendment": statement or "",
            **belief_values(item)}


def _fill(template: str, values: dict[str, str], what: str) -> str:
    try:
        return template.format_map(values)
    except KeyError as e:
        raise WarmbenchError(f"{what}: template {template!r} uses unknown variable {e}") from None


def own_joins_text(item: Item, context: str, form: str, stimuli: Stimuli, *,
                   statement: str | None, question: str, clauses: str) -> str:
    """One row of a dataset whose file has joins of its own (disinformation, rule 2)."""
    rules = study_rules()
    values = _values(item, stimuli, question, statement)
    if form in ("incorrect", "correct"):
        sets = rules["belief_clauses"].get(item.dataset)
        clause = sets[clauses][form] if sets else stimuli.clauses(item.dataset)[form]
        key = "incorrect_belief" if form == "incorrect" else "correct_denial"
        values[key] = _fill(clause, values, f"belief_clauses.{item.dataset}.{clauses}.{form}")
    spec = rules["prompt_forms"][item.dataset][form]
    if isinstance(spec, dict):
        cls = context_class(context)
        spec = spec["unmodified" if cls == "unmodified" else ("context" if form == "original" else cls)]
    return _fill(spec, values, f"prompt_forms.{item.dataset}.{form}")


def mcq_text(item: Item, question: str, render: str = "default") -> str:
    """The two-choice form (rule 5); the correct answer is option A, as in the files."""
    if not item.correct_answers or item.incorrect_answer is None:
        raise WarmbenchError(f"{item.dataset} item {item.id}: form 'mcq' needs a correct and an "
                             "incorrect answer")
    from .grid import belief_values

    mcq = study_rules()["mcq"]
    tpl = mcq.get(item.dataset, mcq["default"])
    text = _fill(tpl, {"question": question, **belief_values(item)}, f"mcq.{item.dataset}")
    if render == "study":
        return collapse_periods(text) if item.dataset in study_rules()["period_collapse"] else text
    # default rendering: never a doubled period where an option ending in "." meets the template
    return collapse_periods(text)


def mcq_prompt(item: Item, stimuli: Stimuli, render: str = "default",
               question: str | None = None) -> Prompt:
    from .grid import asked_text

    text = mcq_text(item, question or asked_text(item, stimuli), render)
    return Prompt(key=Prompt.make_key(item.id, item.dataset, "unmodified", MCQ, text),
                  item_id=item.id, dataset=item.dataset, context="unmodified", form=MCQ, text=text)


def study_prompt(item: Item, context: str, form: str, stimuli: Stimuli, *,
                 statement: str | None = None, question: str | None = None,
                 variant: str | None = None, clauses: str = "prompt_file") -> Prompt:
    """One cell of the grid as the study's file renders it (rules 1 and 2)."""
    from .grid import asked_text, build_prompt

    if form == MCQ:
        return mcq_prompt(item, stimuli, "study", question)
    base = build_prompt(item, context, form, stimuli, statement=statement, question=question,
                        variant=variant)
    if item.dataset in study_rules()["prompt_forms"]:
        text = own_joins_text(item, context, form, stimuli, statement=statement,
                              question=question or asked_text(item, stimuli), clauses=clauses)
    elif item.dataset in study_rules()["period_collapse"]:
        text = collapse_periods(base.text)
    else:
        return base
    return base.model_copy(update={"text": text, "key": Prompt.make_key(
        item.id, item.dataset, context, form, text)})


def build_study_grid(item: Item, stimuli: Stimuli, *, seed: int,
                     contexts: Sequence[str] = ALL_CONTEXTS, forms: Sequence[str] = ALL_FORMS,
                     draw: str = "item", variant: str | None = None,
                     clauses: str = "prompt_file") -> list[Prompt]:
    """The item's prompts under ``render: study``: the study's draw per dataset (rule 4), the
    denial forms of disinformation only for the study's 35 items (rule 3), ``mcq`` last."""
    from .custom import ordered_contexts
    from .grid import asked_text, draw_statement

    draw = statement_draw(item.dataset, draw)
    question = asked_text(item, stimuli)
    out: list[Prompt] = []
    if "original_neutral" in forms and "unmodified" in contexts:
        out.append(study_prompt(item, "unmodified", "original_neutral", stimuli,
                                question=question, variant=variant, clauses=clauses))
    for form in ("original", "incorrect", "correct"):
        if form not in forms:
            continue
        asked = denial_items(item.dataset)
        if form == "correct" and asked is not None and item.id not in asked:
            continue
        for ctx in ordered_contexts(contexts):
            st = None if ctx == "unmodified" else draw_statement(
                stimuli, seed, item.dataset, item.id, ctx, form if draw == "prompt" else None)
            out.append(study_prompt(item, ctx, form, stimuli, statement=st, question=question,
                                    variant=variant, clauses=clauses))
    if MCQ in forms:
        out.append(mcq_prompt(item, stimuli, "study", question))
    return out
