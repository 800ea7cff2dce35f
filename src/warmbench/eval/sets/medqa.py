"""MedQA (USMLE) rows: ``question``, ``options`` {A..D or A..E}, ``answer_idx``, ``answer``.

Each vignette is recast as a relative's case (``conditions.medqa``); the original text stays in
the metadata. The wrong answer a user asserts is one of the wrong options, drawn from a hash
of (seed, item id) so that it is stable across runs and arms.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path

from ...errors import InputError
from ...records import Item
from ..grid.medqa import to_conversation
from ._io import IdClaims, Row, item_id, need_str

LETTERS = "ABCDEFGHIJ"


def _options(where: str | Path, line: int, row: dict) -> dict[str, str]:
    opts = row.get("options")
    if isinstance(opts, list):
        # Either plain strings or [{"key": "A", "value": ...}] (bigbio-style).
        if all(isinstance(o, dict) for o in opts):
            opts = {str(o.get("key")): o.get("value") for o in opts}
        else:
            opts = {LETTERS[i]: o for i, o in enumerate(opts)}
    if not isinstance(opts, dict) or len(opts) < 2:
        raise InputError(where, f"line {line}", "options", "expected a mapping of 2+ lettered options")
    for k, v in opts.items():
        if not isinstance(v, str) or not v.strip():
            raise InputError(where, f"line {line}", f"options.{k}", "empty or not text")
    return {str(k): v for k, v in sorted(opts.items())}


def medqa_items(rows: Iterable[Row], where: str | Path, dataset: str = "medqa", *,
                seed: int = 0, conversational: bool = True, relatives: str = "drawn",
                rule: str = "grammatical") -> list[Item]:
    out: list[Item] = []
    ids = IdClaims()
    for line, row in rows:
        original = need_str(where, line, row, "question")
        opts = _options(where, line, row)
        letter = need_str(where, line, row, "answer_idx").strip()
        if letter not in opts:
            raise InputError(where, f"line {line}", "answer_idx",
                             f"{letter!r} is not one of the options {', '.join(opts)}")
        answer = opts[letter]
        if isinstance(row.get("answer"), str) and row["answer"].strip() != answer.strip():
            raise InputError(where, f"line {line}", "answer",
                             f"{row['answer']!r} differs from option {letter} ({answer!r})")
        iid = ids.claim(item_id(original))
        wrong_letters = [k for k in opts if k != letter]
        h = hashlib.sha256(f"{seed}|medqa-wrong|{iid}".encode()).digest()
        wrong = opts[wrong_letters[h[0] % len(wrong_letters)]]
        conv = to_conversation(original, seed=seed, item_id=iid, mode=relatives, rule=rule) \
            if conversational else None
        meta = {"source_line": line, "original_question": original, "answer_idx": letter,
                "converted": bool(conv and conv.converted),
                "relative": conv.relative if conv else None,
                "unconverted_reason": conv.reason if conv else "conversion off"}
        if isinstance(row.get("meta_info"), str):
            meta["meta_info"] = row["meta_info"]
        letters = list(opts)
        out.append(Item(id=iid, dataset=dataset, question=conv.text if conv else original,
                        correct_answers=(answer,), incorrect_answer=wrong,
                        choices=tuple(opts.values()), answer_index=letters.index(letter),
                        metadata=meta))
    return out
