"""The one dataset registry: the seven built-ins, plus the custom sets of the loaded config.

Every question "what is dataset X?" (its loader, sample file, study size, grid, scorer, rubric,
family, token estimates) is a lookup here. Adding a built-in is one ``DatasetSpec`` entry
(and its sample file). Custom sets are registered when a config is validated
(``EvalConfig``), so stats and scoring code that only sees a dataset name finds them too.
"""

from __future__ import annotations

from collections.abc import Iterable

from ..errors import WarmbenchError
from .spec import DatasetSpec


def _builtin(name: str, kind: str, family: str, **kw: object) -> DatasetSpec:
    """A built-in entry; its loader and sample file default to its name (a new set in an
    existing row format names that loader, e.g. ``loader="triviaqa"``)."""
    kw.setdefault("loader", name)
    kw.setdefault("sample", name)
    return DatasetSpec(name=name, kind=kind, family=family, **kw)  # type: ignore[arg-type]


_ANSWER = "builtin:answer"
BUILTINS: dict[str, DatasetSpec] = {s.name: s for s in (
    _builtin("triviaqa", "gridded", "reliability", study_n=500, full_size=500, grid=True,
             scorer="alias", judge_rubric=_ANSWER, published_name="trivia",
             published_key="content_key"),
    _builtin("truthfulqa", "gridded", "reliability", study_n=500, full_size=500, grid=True,
             scorer="embedding", judge_rubric=_ANSWER, published_key="content_key"),
    _builtin("medqa", "gridded", "reliability", study_n=500, full_size=500, grid=True,
             scorer="choice", judge_rubric=_ANSWER, tokens_question=260,
             published_key="original_question"),
    _builtin("disinfo", "gridded", "reliability", study_n=None, full_size=125, grid=True,
             scorer="embedding", judge_rubric="builtin:statement", refusal_correct=True,
             tokens_question=90, published_key="prompt_disinfo",
             regression_reference=True),
    _builtin("mmlu", "multiple_choice", "general", full_size=14042, structured=True,
             prompt_format="multiple_choice", scorer="choice", judged=False),
    _builtin("gsm8k", "numeric", "general", full_size=1319, structured=True,
             prompt_format="numeric", scorer="number", judged=False),
    # Easy facts (written for warmbench): questions a 135M model mostly knows, so the quickstart
    # can show a wrong-belief effect on a laptop. TriviaQA's row format; not a study set.
    _builtin("easy_facts", "gridded", "reliability", loader="triviaqa", full_size=48, grid=True,
             scorer="alias", judge_rubric=_ANSWER),
    # AdvBench: harmful requests; refusing is correct, and the scorer's (judge's) own decision
    # is the refusal, as the study judged it with its LLM, not with a phrase list.
    _builtin("advbench", "open", "safety", full_size=520, prompt_format="open",
             scorer="refusal", judge_rubric="builtin:harmful", refusal_correct=True,
             scorer_refusal=True),
)}

# The set a tool asks when none is named (the Inspect task's default): the study's first.
DEFAULT_DATASET = "triviaqa"

_custom: dict[str, DatasetSpec] = {}


def use(specs: Iterable[DatasetSpec]) -> None:
    """Make a config's custom sets (and built-ins it gives a rubric of their own) the ones every
    lookup finds, replacing the previous config's (called when a config listing datasets is
    validated: one process runs one experiment)."""
    _custom.clear()
    for s in specs:
        _custom[s.name] = s   # a built-in given its own rubric: the config's copy wins


def reset() -> None:
    """Forget every custom set (tests)."""
    _custom.clear()


def get(name: str) -> DatasetSpec | None:
    """The spec of a dataset name (as it appears in records and tables), or None."""
    key = str(name).lower()
    return _custom.get(key) or BUILTINS.get(key)


def spec(name: str) -> DatasetSpec:
    s = get(name)
    if s is None:
        raise WarmbenchError(f"unknown dataset {name!r} (built-in: {', '.join(BUILTINS)}; "
                             "a custom set needs a kind and a source)")
    return s


def builtin_names() -> tuple[str, ...]:
    return tuple(BUILTINS)


def sample_names() -> tuple[str, ...]:
    """Built-ins that ship a small sample set."""
    return tuple(n for n, s in BUILTINS.items() if s.sample)


def in_family(*families: str) -> tuple[str, ...]:
    """Every known dataset name (built-in and registered custom) of these families."""
    names = dict.fromkeys([*BUILTINS, *_custom])
    return tuple(n for n in names if (s := get(n)) is not None and s.family in families)


def where(**attrs: object) -> tuple[str, ...]:
    """Known dataset names whose spec has these attribute values (e.g. refusal_correct=True)."""
    names = dict.fromkeys([*BUILTINS, *_custom])
    return tuple(n for n in names if (s := get(n)) is not None
                 and all(getattr(s, k) == v for k, v in attrs.items()))
