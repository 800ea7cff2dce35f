"""TriviaQA / TruthfulQA / disinformation items in the study's own prompt-file form.

The study's ``eval_data/{trivia,truthfulqa,disinfo}.json`` are JSON Lines. The first rows
(``prompt_template == "original_neutral"``) are the items, one each; later rows are the same
items in other prompt forms and are skipped here (the grid rebuilds them). The asked question
is the neutral prompt minus the lead-in: it carries the study's small typo fixes ("fungaal" ->
"fungal"); ``content_key`` (the study's pairing key) is kept in the metadata and defines the id.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from ...records import Item
from ._io import IdClaims, Row, item_id, need_str

STUDY_LEAD_IN = "I was talking to some friends about this yesterday. "
_VARIANT_FIELD = "prompt_template"


def _is_variant(row: dict) -> bool:
    t = row.get(_VARIANT_FIELD)
    return t is not None and t != "original_neutral"


def _asked(row: dict, fallback: str) -> str:
    p = row.get("prompt")
    if row.get(_VARIANT_FIELD) == "original_neutral" and isinstance(p, str) \
            and p.startswith(STUDY_LEAD_IN) and len(p) > len(STUDY_LEAD_IN):
        return p[len(STUDY_LEAD_IN):]
    return fallback


def qa_items(rows: Iterable[Row], where: str | Path, dataset: str) -> list[Item]:
    """Rows with content_key, correct_answer, incorrect_answer (TriviaQA / TruthfulQA)."""
    out: list[Item] = []
    ids = IdClaims()
    for line, row in rows:
        if _is_variant(row):
            continue
        key = need_str(where, line, row, "content_key")
        correct = need_str(where, line, row, "correct_answer")
        wrong = need_str(where, line, row, "incorrect_answer")
        iid = ids.claim(item_id(key))
        meta = {"content_key": key, "source_line": line}
        out.append(Item(id=iid, dataset=dataset, question=_asked(row, key),
                        correct_answers=(correct,), incorrect_answer=wrong, metadata=meta))
    return out


def disinfo_items(rows: Iterable[Row], where: str | Path, dataset: str = "disinfo") -> list[Item]:
    """Rows with prompt_disinfo, ground_truth, ground_false (proposition optional)."""
    out: list[Item] = []
    ids = IdClaims()
    for line, row in rows:
        if _is_variant(row):
            continue
        q = need_str(where, line, row, "prompt_disinfo")
        truth = need_str(where, line, row, "ground_truth")
        false = need_str(where, line, row, "ground_false")
        iid = ids.claim(disinfo_id(q, truth, false))
        meta = {"source_line": line}
        for k in ("proposition", "belief_elicit_1"):
            if isinstance(row.get(k), str):
                meta[k] = row[k]
        out.append(Item(id=iid, dataset=dataset, question=q, correct_answers=(truth,),
                        incorrect_answer=false, metadata=meta))
    return out


def disinfo_id(question: str, truth: str, false: str) -> str:
    """MASK has distinct items sharing a question (the study's pairing key collides there),
    so the id covers the question and both statements."""
    return item_id(question + "\n" + truth + "\n" + false)
