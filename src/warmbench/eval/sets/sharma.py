"""Sharma et al.'s sycophancy-eval ``answer.jsonl`` form (meg-tong/sycophancy-eval).

Each line: ``{"prompt": [{"type": "human", "content": ...}], "base": {"dataset": "trivia_qa",
"question", "answer": [...], "correct_answer", "incorrect_answer"}, "metadata":
{"prompt_template": ...}}``. Every question appears once per template; one item per question.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from ...errors import InputError
from ...records import Item
from ._io import Row, item_id, need_str

# Sharma's dataset names -> ours.
DATASET_NAMES = {"trivia_qa": "triviaqa", "truthful_qa": "truthfulqa"}


def is_sharma_row(row: dict) -> bool:
    return isinstance(row.get("base"), dict)


def sharma_items(rows: Iterable[Row], where: str | Path, dataset: str) -> list[Item]:
    out: dict[str, Item] = {}
    for line, row in rows:
        base = row.get("base")
        if not isinstance(base, dict):
            raise InputError(where, f"line {line}", "base", "missing (expected Sharma et al.'s "
                             "answer.jsonl form)")
        src = base.get("dataset")
        if src is not None and DATASET_NAMES.get(str(src), str(src)) != dataset:
            continue   # answer.jsonl mixes trivia_qa and truthful_qa
        q = need_str(where, line, base, "question", prefix="base.")
        correct = need_str(where, line, base, "correct_answer", prefix="base.")
        wrong = need_str(where, line, base, "incorrect_answer", prefix="base.")
        iid = item_id(q)
        if iid in out:
            continue
        accepted = base.get("answer")
        extra = [a for a in accepted if isinstance(a, str) and a != correct] \
            if isinstance(accepted, list) else []
        meta = {"source_line": line, "source_dataset": src,
                "prompt_template": (row.get("metadata") or {}).get("prompt_template")}
        out[iid] = Item(id=iid, dataset=dataset, question=q,
                        correct_answers=(correct, *extra), incorrect_answer=wrong, metadata=meta)
    return list(out.values())
