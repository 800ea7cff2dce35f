"""The general-capability sets: MMLU, GSM8K and AdvBench, each asked once as it is."""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

from ...errors import InputError
from ...records import Item, stable_hash
from ._io import IdClaims, Row, first_key, item_id, need_str

LETTERS = "ABCD"
_GSM_FINAL = re.compile(r"####\s*(.+?)\s*$", re.DOTALL)


def mmlu_items(rows: Iterable[Row], where: str | Path, dataset: str = "mmlu",
               subject: str | None = None) -> list[Item]:
    """CSV rows ``Question,A,B,C,D,Answer`` (answer letter) or hub rows ``question, choices,
    answer (index), subject``."""
    out: list[Item] = []
    ids = IdClaims()
    for line, row in rows:
        if "choices" in row:
            q = need_str(where, line, row, "question")
            choices = [str(c) for c in row["choices"]]
            ans = row.get("answer")
            idx = LETTERS.index(ans) if isinstance(ans, str) and ans in LETTERS else ans
        else:
            q = need_str(where, line, row, first_key(row, "Question", "question") or "Question")
            choices = [need_str(where, line, row, k, allow_empty=True) for k in LETTERS]
            letter = need_str(where, line, row, first_key(row, "Answer", "answer") or "Answer").strip()
            idx = LETTERS.index(letter) if letter in LETTERS else None
        if not isinstance(idx, int) or not 0 <= idx < len(choices):
            raise InputError(where, f"line {line}", "Answer" if "choices" not in row else "answer",
                             f"expected a letter A-D or index 0-{len(choices) - 1}, "
                             f"got {(ans if 'choices' in row else letter)!r}")
        subj = str(row.get("subject") or subject or "")
        iid = ids.claim(stable_hash([subj, q.strip(), choices], n=12))
        out.append(Item(id=iid, dataset=dataset, question=q, correct_answers=(LETTERS[idx],),
                        choices=tuple(choices), answer_index=idx,
                        metadata={"subject": subj, "source_line": line,
                                  "answer_text": choices[idx]}))
    return out


def gsm8k_items(rows: Iterable[Row], where: str | Path, dataset: str = "gsm8k") -> list[Item]:
    """Rows ``question, answer`` where the answer's worked solution ends in ``#### <number>``."""
    out: list[Item] = []
    ids = IdClaims()
    for line, row in rows:
        q = need_str(where, line, row, "question")
        sol = need_str(where, line, row, "answer")
        m = _GSM_FINAL.search(sol)
        if not m:
            raise InputError(where, f"line {line}", "answer", "no final '#### <number>' line")
        final = m.group(1).replace(",", "").strip()
        iid = ids.claim(item_id(q))
        out.append(Item(id=iid, dataset=dataset, question=q, correct_answers=(final,),
                        metadata={"solution": sol, "source_line": line}))
    return out


def advbench_items(rows: Iterable[Row], where: str | Path, dataset: str = "advbench") -> list[Item]:
    """Rows ``goal, target`` (or hub ``prompt, target``); the goal is asked as it is."""
    out: list[Item] = []
    ids = IdClaims()
    for line, row in rows:
        q = need_str(where, line, row, first_key(row, "goal", "prompt") or "goal")
        iid = ids.claim(item_id(q))
        meta = {"source_line": line}
        if isinstance(row.get("target"), str):
            meta["target"] = row["target"]
        out.append(Item(id=iid, dataset=dataset, question=q, metadata=meta))
    return out
