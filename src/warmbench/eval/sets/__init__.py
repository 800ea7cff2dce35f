"""Evaluation sets: one loader per set, reading local files as they are (or hub ids), into
``Item`` records; seeded sampling; the project's own small sample sets.

Named ``sets`` (not ``datasets``) so it never shadows Hugging Face's ``datasets``.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ...config import DatasetConfig
from ...errors import InputError, WarmbenchError
from ...records import Item, stable_hash
from .. import registry
from ..spec import DatasetSpec
from ._io import Row, read_csv, read_rows, utf8_rows
from .custom import custom_items
from .general import advbench_items, gsm8k_items, mmlu_items
from .hub import hub_rows
from .mask import mask_items
from .medqa import medqa_items
from .samples import SAMPLE_SETS, sample_path
from .sharma import is_sharma_row, sharma_items
from .study import disinfo_items, qa_items
from .truthfulqa import truthfulqa_items

KNOWN_DATASETS = registry.builtin_names()
# Study sample sizes (paper): 500 each, all 125 disinformation items.
STUDY_N = {n: s.study_n for n, s in registry.BUILTINS.items() if s.family == "reliability"}

__all__ = ["KNOWN_DATASETS", "LoadedSet", "SAMPLE_SETS", "STUDY_N", "items_from_rows",
           "load_items", "read_items", "sample_items", "sample_path"]


def _peek(rows: Iterator[Row]) -> tuple[dict[str, Any] | None, Iterator[Row]]:
    first = next(rows, None)
    if first is None:
        return None, iter(())

    def chain() -> Iterator[Row]:
        yield first
        yield from rows

    return first[1], chain()


def items_from_rows(name: str, rows: Iterable[Row], where: str | Path, *, seed: int = 0,
                    relatives: str = "drawn", conversational: bool = True,
                    subject: str | None = None, spec: DatasetSpec | None = None,
                    medqa_rule: str = "grammatical") -> list[Item]:
    """Map rows of any supported form to items: a custom set by its field mapping, a built-in by
    its loader, choosing the mapper by the row's fields."""
    spec = spec or registry.spec(name)
    if spec.loader == "custom":
        return custom_items(spec, rows, where)
    head, it = _peek(iter(rows))
    if head is None:
        return []
    name, dataset = spec.loader, name
    if name in ("triviaqa", "truthfulqa"):
        if is_sharma_row(head):
            return sharma_items(it, where, dataset)
        if "content_key" in head:
            return qa_items(it, where, dataset)
        if name == "truthfulqa" and ({"Best Answer", "best_answer"} & set(head)):
            return truthfulqa_items(it, where, dataset)
        return qa_items(it, where, dataset)   # raises naming the first missing field
    if name == "disinfo":
        if "prompt_disinfo" in head or "ground_false" in head:
            return disinfo_items(it, where, dataset)
        return mask_items(it, where, dataset)
    if name == "medqa":
        return medqa_items(it, where, dataset, seed=seed, relatives=relatives,
                           conversational=conversational, rule=medqa_rule)
    if name == "mmlu":
        return mmlu_items(it, where, dataset, subject=subject)
    if name == "gsm8k":
        return gsm8k_items(it, where, dataset)
    if name == "advbench":
        return advbench_items(it, where, dataset)
    raise WarmbenchError(f"dataset {dataset!r}: unknown loader {name!r}")


def _mmlu_files(path: Path) -> list[Path]:
    files = sorted(path.glob("*_test.csv")) or sorted(path.glob("*.csv"))
    if not files:
        raise WarmbenchError(f"{path}: no MMLU CSV files (<subject>_test.csv) in this folder")
    return files


def _mmlu_csv_rows(f: Path) -> Iterator[Row]:
    # hendrycks' original CSVs have no header; some copies add "Question,A,B,C,D,Answer".
    try:
        with f.open(encoding="utf-8-sig") as fh:
            first = fh.readline()
    except UnicodeDecodeError:
        raise InputError(f, "line 1", None, "not UTF-8 text; save the file as UTF-8") from None
    header = first.strip().lower().startswith("question,")
    return utf8_rows(f, read_csv(f, None if header else ["Question", "A", "B", "C", "D", "Answer"]))


def read_items(name: str, path: str | Path, **kw: Any) -> list[Item]:
    """All items of one local file (or, for MMLU, a folder of per-subject CSVs)."""
    p = Path(path)
    spec = kw.get("spec") or registry.spec(name)
    if spec.loader == "mmlu" and (p.is_dir() or p.suffix.lower() == ".csv"):
        out: list[Item] = []
        for f in _mmlu_files(p) if p.is_dir() else [p]:
            subj = f.stem.removesuffix("_test").removesuffix("_dev").removesuffix("_val")
            out.extend(items_from_rows(name, _mmlu_csv_rows(f), f, subject=subj, **kw))
        return out
    if p.is_dir():
        raise WarmbenchError(f"{p} is a folder: give the data file itself")
    return items_from_rows(name, read_rows(p), p, **kw)


def sample_items(items: list[Item], n: int | None, seed: int, dataset: str) -> list[Item]:
    """``n`` items drawn with the seed (all when n is None or >= len), in file order.

    The draw depends only on (seed, dataset, the set of item ids), not on the file order."""
    if n is None or n >= len(items):
        return list(items)
    if n <= 0:
        raise WarmbenchError(f"eval.datasets[{dataset}].n must be positive, got {n}")
    ids = sorted(it.id for it in items)
    rng = random.Random(int(stable_hash([seed, dataset, "sample"], n=16), 16))
    chosen = set(rng.sample(ids, n))
    return [it for it in items if it.id in chosen]


@dataclass
class LoadedSet:
    name: str
    items: list[Item]
    source: str
    total: int
    info: dict[str, Any] = field(default_factory=dict)


def _source_rows(dc: DatasetConfig) -> tuple[str, Callable[..., list[Item]]]:
    if dc.sample:
        p = sample_path(dc.name)
        return f"builtin-sample:{dc.name}", lambda **kw: read_items(dc.name, p, **kw)
    path, hub = dc.path, dc.hub
    if dc.source:
        hub = dc.source.removeprefix("hub:") if dc.source.startswith("hub:") else None
        path = None if hub else dc.source
    if path:
        return path, lambda **kw: read_items(dc.name, path, **kw)
    if hub:
        return f"hub:{hub}", lambda **kw: items_from_rows(dc.name, hub_rows(hub), f"hub:{hub}", **kw)
    raise WarmbenchError(f"eval dataset {dc.name!r}: give a source (path or hub:ID), or sample: true")


def load_items(dc: DatasetConfig, seed: int, *, relatives: str = "drawn",
               conversational: bool = True, medqa_rule: str = "grammatical") -> LoadedSet:
    """Load one configured set and draw ``dc.n`` items with the seed."""
    spec = dc.spec()
    source, load = _source_rows(dc)
    # Only MedQA's mapper reads the conversion options; the others ignore them.
    kw: dict[str, Any] = {"seed": seed, "spec": spec, "relatives": relatives,
                          "conversational": conversational, "medqa_rule": medqa_rule}
    items = load(**kw)
    if not items:
        raise WarmbenchError(f"eval dataset {dc.name!r}: no items in {source}")
    chosen = sample_items(items, dc.n, seed, dc.name)
    info: dict[str, Any] = {"source": source, "total": len(items), "sampled": len(chosen),
                            "n": dc.n, "seed": seed,
                            "item_ids_hash": stable_hash(sorted(i.id for i in chosen))}
    if any("converted" in i.metadata for i in items):
        conv = sum(1 for i in items if i.metadata.get("converted"))
        info["medqa_conversion"] = {"converted": conv, "unconverted": len(items) - conv,
                                    "rate": round(conv / len(items), 4), "relatives": relatives,
                                    "rule": medqa_rule}
    return LoadedSet(dc.name, chosen, source, len(items), info)
