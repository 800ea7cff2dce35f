"""Row readers shared by the loaders: every row comes with its line number, so a bad row's
error names file, line and field.

Strings are read as strings: the csv/json modules never turn the answer "None" into NaN
(pandas does unless told not to), and CSV files with a UTF-8 BOM are read with utf-8-sig.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ...errors import InputError, WarmbenchError
from ...jsonl import read_jsonl  # the one JSON Lines reader (line numbers, BOM, non-UTF-8)
from ...records import stable_hash

Row = tuple[int, dict[str, Any]]   # (1-based line or row number, fields)


def item_id(text: str) -> str:
    """Stable id of an item: a hash of its defining text (whitespace-trimmed)."""
    return stable_hash(text.strip(), n=12)


class IdClaims:
    """Hands out item ids; a repeated id (a duplicate row) gets ``-2``, ``-3``... in file
    order, so duplicates stay separate items (benchmarks count them) and ids stay stable."""

    def __init__(self) -> None:
        self._n: dict[str, int] = {}

    def claim(self, iid: str) -> str:
        k = self._n.get(iid, 0) + 1
        self._n[iid] = k
        return iid if k == 1 else f"{iid}-{k}"


def read_json(path: Path) -> Iterator[Row]:
    """A .json file: a JSON array of objects, or JSON Lines under a .json name."""
    text = path.read_text(encoding="utf-8-sig")
    head = text.lstrip()[:1]
    if head == "[":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise InputError(path, f"line {e.lineno}", None, f"not valid JSON ({e.msg})") from None
        for i, obj in enumerate(data, 1):
            if not isinstance(obj, dict):
                raise InputError(path, f"row {i}", None, "expected a JSON object")
            yield i, obj
    else:
        yield from read_jsonl(path)


def read_csv(path: Path, fieldnames: list[str] | None = None) -> Iterator[Row]:
    """CSV with a header (or ``fieldnames`` for headerless files). Line = physical line of
    the row's start, so quoted multi-line cells do not shift later numbers."""
    with path.open(encoding="utf-8-sig", newline="") as f:
        reader = csv.DictReader(f, fieldnames=fieldnames)
        start = 1 if fieldnames else 2
        try:
            for row in reader:
                if None in row:
                    raise InputError(path, f"line {start}", None,
                                     f"{len(row[None]) + len(row) - 1} cells, header has {len(row) - 1}")
                yield start, row
                start = reader.line_num + 1
        except csv.Error as e:
            raise InputError(path, f"line {reader.line_num}", None, f"bad CSV ({e})") from None


def read_parquet(path: Path) -> Iterator[Row]:
    import pandas as pd

    df = pd.read_parquet(path)
    yield from enumerate(df.to_dict(orient="records"), 1)


def utf8_rows(path: Path, rows: Iterator[Row]) -> Iterator[Row]:
    """Non-UTF-8 bytes -> one line naming the file and the row after the last good one."""
    line = 0
    try:
        for line, row in rows:
            yield line, row
    except UnicodeDecodeError as e:
        raise InputError(path, f"after line {line}" if line else "line 1", None,
                         f"not UTF-8 text (byte 0x{e.object[e.start]:02x}); save the file as UTF-8") from None


def read_rows(path: str | Path, fieldnames: list[str] | None = None) -> Iterator[Row]:
    """Rows of a .jsonl / .json / .csv / .parquet file (text files must be UTF-8)."""
    return utf8_rows(Path(path), _read_rows(path, fieldnames))


def _read_rows(path: str | Path, fieldnames: list[str] | None = None) -> Iterator[Row]:
    p = Path(path)
    if not p.is_file():
        raise WarmbenchError(f"data file not found: {p}")
    suf = p.suffix.lower()
    if suf == ".jsonl":
        return read_jsonl(p)
    if suf == ".json":
        return read_json(p)
    if suf in (".csv", ".tsv"):
        return read_csv(p, fieldnames)
    if suf == ".parquet":
        return read_parquet(p)
    raise WarmbenchError(f"{p}: unsupported file type {suf!r} (use .jsonl, .json, .csv or .parquet)")


def need_str(path: Path | str, line: int, row: dict[str, Any], field: str,
             *, allow_empty: bool = False, prefix: str = "") -> str:
    """A required string field: missing / non-string / empty -> InputError naming it
    (``prefix`` names the enclosing object, e.g. 'base.')."""
    name = prefix + field
    if field not in row or row[field] is None:
        raise InputError(path, f"line {line}", name, "missing")
    v = row[field]
    if isinstance(v, int | float) and not isinstance(v, bool):
        v = str(v)
    if not isinstance(v, str):
        raise InputError(path, f"line {line}", name, f"expected text, got {type(v).__name__}")
    if not allow_empty and not v.strip():
        raise InputError(path, f"line {line}", name, "empty")
    return v


def first_key(row: dict[str, Any], *names: str) -> str | None:
    """The first of ``names`` present in the row (datasets spell fields differently)."""
    return next((n for n in names if n in row), None)
