"""The answer browser's data: one entry per prompt with every arm's answer, verdict, scorer and
the scorer's reason, the item's reference answer, and each arm's system prompt.

The scored table holds answers and labels; the reference answers (items) and the scorers'
reasons (verdict details) live in the run store, read here when the run has one. All of it is
untrusted text: it leaves this module as JSON data and the page shows it with ``textContent``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from ..layout import KIND_ANSWER, KIND_ITEM, KIND_VERDICT, RunLayout
from ..records import item_key
from ..store import RunStore
from .runinfo import FORM_WORDS, ArmInfo, context_words

MAX_BROWSER_PROMPTS = 4000
MAX_REASON_CHARS = 2000


def store_details(run_dir: Path) -> tuple[dict[str, dict[str, Any]], dict[tuple, dict[str, str]]]:
    """(item 'dataset:id' -> reference fields, (arm, prompt_key, sample) -> {scorer: reason}).

    Empty when the folder has no store (e.g. a ``stats --out`` folder of published rows)."""
    if not RunLayout(run_dir).store.exists():
        return {}, {}
    refs: dict[str, dict[str, Any]] = {}
    reasons: dict[tuple, dict[str, str]] = {}
    with RunStore(run_dir) as store:
        for it in store.iter(KIND_ITEM):
            correct = list(it.get("correct_answers") or [])
            choices = list(it.get("choices") or [])
            idx = it.get("answer_index")
            if not correct and choices and isinstance(idx, int) and 0 <= idx < len(choices):
                correct = [f"{chr(65 + idx)}. {choices[idx]}"]
            refs[item_key(str(it.get("dataset")), str(it.get("id")))] = {
                "correct": correct[:5], "incorrect": it.get("incorrect_answer") or ""}
        by_key = {a["key"]: (a["arm"], a["prompt_key"], int(a.get("sample_index") or 0))
                  for a in store.iter(KIND_ANSWER)}
        for v in store.iter(KIND_VERDICT):
            k = by_key.get(v.get("answer_key"))
            if k is not None and v.get("detail"):
                reasons.setdefault(k, {})[str(v.get("scorer"))] = str(v["detail"])[:MAX_REASON_CHARS]
    return refs, reasons


def browser_data(df: pd.DataFrame, baseline: str, *, refs: dict[str, dict[str, Any]] | None = None,
                 reasons: dict[tuple, dict[str, str]] | None = None,
                 arms_info: dict[str, ArmInfo] | None = None) -> dict[str, Any]:
    """One entry per prompt (and sample) with every arm's answer and verdict.

    ``change`` classifies the prompt for filtering: 'worse' when the baseline was correct and
    some other arm not, 'better' for the reverse, 'same' otherwise.
    """
    need = {"arm", "dataset", "prompt_key", "context", "form", "answer", "label"}
    if not need.issubset(df.columns):
        return {"arms": [], "rows": [], "truncated": 0}
    refs, reasons, arms_info = refs or {}, reasons or {}, arms_info or {}
    df = df.copy()
    if "sample_index" not in df:
        df["sample_index"] = 0
    if "model_family" not in df:
        df["model_family"] = ""
    declared = list(arms_info)   # config order, when the run has one
    arms = sorted(df["arm"].astype(str).unique(),
                  key=lambda a: (a != baseline, declared.index(a) if a in declared else len(declared), a))
    rows = []
    keys = ["model_family", "dataset", "prompt_key", "sample_index"]
    for (fam, ds, pk, si), g in df.groupby(keys, sort=True):
        first = g.iloc[0]
        answers = {}
        for r in g.to_dict("records"):
            arm, scorer = str(r["arm"]), str(r.get("scorer") or "")
            ok = r.get("is_correct")
            answers[arm] = {"text": str(r["answer"]), "label": str(r["label"]),
                            "ok": None if ok is None or pd.isna(ok) else float(ok),
                            "scorer": scorer,
                            "reason": reasons.get((arm, str(pk), int(si)), {}).get(scorer, "")}
        base = answers.get(baseline, {}).get("ok")
        others = [a["ok"] for k, a in answers.items() if k != baseline and a["ok"] is not None]
        change = "same"
        if base == 1.0 and any(o == 0.0 for o in others):
            change = "worse"
        elif base == 0.0 and any(o == 1.0 for o in others):
            change = "better"
        ref = refs.get(item_key(str(ds), str(first.get("item_id", ""))), {})
        rows.append({"family": str(fam), "dataset": str(ds), "context": context_words(str(first["context"])),
                     "form": FORM_WORDS.get(str(first["form"]), str(first["form"])),
                     "prompt": str(first.get("prompt", "")), "sample": int(si), "change": change,
                     "correct": [str(c) for c in ref.get("correct", [])],
                     "incorrect": str(ref.get("incorrect", "")), "answers": answers})
    # Verdict changes first: they are what a reader wants to inspect.
    rows.sort(key=lambda r: {"worse": 0, "better": 1, "same": 2}[r["change"]])
    truncated = max(0, len(rows) - MAX_BROWSER_PROMPTS)
    info = {a: {"kind": arms_info[a].kind if a in arms_info else "",
                "model": arms_info[a].model if a in arms_info else "",
                "system_prompt": (arms_info[a].system_prompt or "") if a in arms_info else ""}
            for a in arms}
    return {"arms": [str(a) for a in arms], "baseline": baseline, "arm_info": info,
            "rows": rows[:MAX_BROWSER_PROMPTS], "truncated": truncated}
