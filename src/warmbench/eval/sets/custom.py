"""Rows of a user's own set, mapped by ``DatasetSpec.fields`` to items, per kind.

Every problem is one line naming file, row and field: a missing (unmapped) column, a mapped field
empty in some row, an empty file, a duplicate id, a correct answer equal to the incorrect one.
Items are only returned once the whole file is good, so nothing of a bad set reaches the store.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ...errors import InputError
from ...records import Item
from ..spec import DatasetSpec
from ._io import Row, item_id

LETTERS = "ABCDEFGHIJ"
_NUMBER = re.compile(r"^-?\d+(?:\.\d+)?$")


def _plain(v: Any) -> Any:
    """Parquet cells come as NumPy values (int64, arrays): as plain Python ones."""
    if hasattr(v, "tolist") and not isinstance(v, str):
        return v.tolist()
    return v


def _col(spec: DatasetSpec, field: str) -> str:
    v = spec.fields.get(field, field)
    return v if isinstance(v, str) else field


def _text(where: str | Path, line: int, row: dict[str, Any], spec: DatasetSpec, field: str) -> str:
    col = _col(spec, field)
    label = col
    if col not in row:
        raise InputError(where, f"row {line}", label, f"no such column (columns: {', '.join(map(str, row))})")
    v = _plain(row[col])
    if isinstance(v, float) and v.is_integer():
        v = int(v)   # a CSV/parquet number column read as float: 3.0 is the answer 3
    if v is None or (isinstance(v, float) and v != v):
        raise InputError(where, f"row {line}", label, "empty")
    if isinstance(v, int | float) and not isinstance(v, bool):
        v = str(v)
    if not isinstance(v, str):
        raise InputError(where, f"row {line}", label, f"expected text, got {type(v).__name__}")
    if not v.strip():
        raise InputError(where, f"row {line}", label, "empty")
    return v.strip()


def _aliases(row: dict[str, Any], spec: DatasetSpec) -> list[str]:
    if "aliases" not in spec.fields:
        return []
    v = _plain(row.get(_col(spec, "aliases")))
    if isinstance(v, list | tuple):
        return [str(x).strip() for x in v if str(x).strip()]
    return [x.strip() for x in str(v or "").split(";") if x.strip()]


def _choices(where: str | Path, line: int, row: dict[str, Any], spec: DatasetSpec) -> list[str]:
    cols = spec.fields.get("choices", "choices")
    if isinstance(cols, list):
        if len(cols) > len(LETTERS):
            raise InputError(where, None, "choices", f"at most {len(LETTERS)} choice columns")
        return [_text(where, line, row, spec.model_copy(update={"fields": {"c": c}}), "c") for c in cols]
    v = _plain(row.get(cols))
    if isinstance(v, str):   # a CSV cell holding a list: "a; b; c"
        v = [x for x in v.split(";")]
    if not isinstance(v, list | tuple) or not 2 <= len(v) <= len(LETTERS) \
            or not all(str(x).strip() for x in v):
        raise InputError(where, f"row {line}", cols,
                         f"expected 2 to {len(LETTERS)} non-empty choices")
    return [str(x).strip() for x in v]


def _answer_index(where: str | Path, line: int, row: dict[str, Any], spec: DatasetSpec,
                  choices: list[str]) -> int:
    ans = _text(where, line, row, spec, "answer")
    if len(ans) == 1 and ans.upper() in LETTERS[:len(choices)]:
        return LETTERS.index(ans.upper())
    if ans in choices:
        return choices.index(ans)
    raise InputError(where, f"row {line}", _col(spec, "answer"),
                     f"{ans!r} is neither a letter A-{LETTERS[len(choices) - 1]} nor one of the choices")


def custom_items(spec: DatasetSpec, rows: Iterable[Row], where: str | Path) -> list[Item]:
    out: list[Item] = []
    seen: dict[str, int] = {}
    for line, row in rows:
        q = _text(where, line, row, spec, "question")
        iid = _text(where, line, row, spec, "id") if "id" in spec.fields else item_id(q)
        if iid in seen:
            what = "id" if "id" in spec.fields else "question"
            raise InputError(where, f"row {line}", _col(spec, what),
                             f"duplicate {what} (also row {seen[iid]})")
        seen[iid] = line
        meta: dict[str, Any] = {"source_line": line}
        kw: dict[str, Any] = {}
        if spec.kind == "gridded":
            correct = _text(where, line, row, spec, "correct")
            wrong = _text(where, line, row, spec, "incorrect")
            if correct.casefold() == wrong.casefold():
                raise InputError(where, f"row {line}", _col(spec, "incorrect"),
                                 "equals the correct answer")
            extra = [a for a in _aliases(row, spec) if a != correct]
            kw = {"correct_answers": (correct, *extra), "incorrect_answer": wrong}
        elif spec.kind == "multiple_choice":
            choices = _choices(where, line, row, spec)
            idx = _answer_index(where, line, row, spec, choices)
            kw = {"correct_answers": (LETTERS[idx],), "choices": tuple(choices), "answer_index": idx}
            meta |= {"answer_text": choices[idx]}
            if "subject" in spec.fields:
                meta["subject"] = str(row.get(_col(spec, "subject")) or "")
        elif spec.kind == "numeric":
            ans = _text(where, line, row, spec, "answer").replace(",", "")
            if not _NUMBER.match(ans):
                raise InputError(where, f"row {line}", _col(spec, "answer"), f"{ans!r} is not a number")
            kw = {"correct_answers": (ans,)}
        out.append(Item(id=iid, dataset=spec.name, question=q, metadata=meta, **kw))
    if not out:
        raise InputError(where, None, None, f"no rows: dataset {spec.name!r} is empty")
    return out
