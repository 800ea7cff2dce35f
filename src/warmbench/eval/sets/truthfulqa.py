"""The original TruthfulQA CSV (sylinrl/TruthfulQA ``TruthfulQA.csv``, UTF-8 BOM) or its hub
form (``truthfulqa/truthful_qa``, generation config).

Best answer first among the accepted answers; the asserted wrong answer is the first listed
incorrect answer. (The study used Sharma et al.'s shorter answer strings instead: load its
item files for an exact replication.)
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from ...records import Item
from ._io import IdClaims, Row, first_key, item_id, need_str


def _split(v: object) -> list[str]:
    if isinstance(v, list | tuple):
        return [str(x).strip() for x in v if str(x).strip()]
    return [x.strip() for x in str(v or "").split(";") if x.strip()]


def truthfulqa_items(rows: Iterable[Row], where: str | Path, dataset: str = "truthfulqa") -> list[Item]:
    out: list[Item] = []
    ids = IdClaims()
    for line, row in rows:
        qk = first_key(row, "Question", "question") or "Question"
        bk = first_key(row, "Best Answer", "best_answer") or "Best Answer"
        ik = first_key(row, "Incorrect Answers", "incorrect_answers") or "Incorrect Answers"
        ck = first_key(row, "Correct Answers", "correct_answers")
        q = need_str(where, line, row, qk)
        best = need_str(where, line, row, bk)
        wrong = _split(row.get(ik))
        if not wrong:
            need_str(where, line, row, ik)   # raises: missing or empty
        accepted = [best] + [a for a in _split(row.get(ck)) if a != best]
        iid = ids.claim(item_id(q))
        meta = {"source_line": line, "incorrect_answers": wrong}
        for k in ("Category", "category", "Type", "type"):
            if isinstance(row.get(k), str):
                meta[k.lower()] = row[k]
        out.append(Item(id=iid, dataset=dataset, question=q, correct_answers=tuple(accepted),
                        incorrect_answer=wrong[0], metadata=meta))
    return out
