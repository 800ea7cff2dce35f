"""A ``DatasetSpec`` from a ``DatasetConfig``: a built-in's entry (a rubric of its own if the
config names one), or a custom set's spec with the kind's defaults."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import WarmbenchError
from . import registry
from .rubric import BUILTIN, load_rubric
from .spec import KIND_DEFAULTS, KIND_FIELDS, DatasetSpec

if TYPE_CHECKING:
    from ..config import DatasetConfig


def _check_fields(dc: DatasetConfig, kind: str) -> dict[str, str | list[str]]:
    required, optional = KIND_FIELDS[kind]
    for k in dc.fields:
        if k not in required + optional:
            raise WarmbenchError(f"eval.datasets[{dc.name}].fields.{k}: not a field of kind {kind} "
                                 f"(fields: {', '.join(required + optional)})")
    fields = {f: dc.fields.get(f, f) for f in required} | \
        {f: dc.fields[f] for f in optional if f in dc.fields}
    for k, v in fields.items():
        if isinstance(v, list) and (k != "choices" or not v or not all(isinstance(x, str) for x in v)):
            raise WarmbenchError(f"eval.datasets[{dc.name}].fields.{k}: one column name"
                                 + (" or a list of column names" if k == "choices" else ""))
    return fields


def spec_from_config(dc: DatasetConfig) -> DatasetSpec:
    builtin = registry.BUILTINS.get(dc.name)
    if builtin is not None and dc.kind is None:
        if dc.judge_rubric is None:
            return builtin
        rubric = dc.judge_rubric
        load_rubric(rubric, BUILTIN + ("harmful" if builtin.kind == "open" else "answer"))
        return builtin.model_copy(update={"judge_rubric": rubric, "judged": True})
    if dc.kind is None:
        raise WarmbenchError(f"unknown dataset {dc.name!r}: a set of your own needs a kind")
    family, scorer, judged, rubric, fmt, structured, refusal_ok = KIND_DEFAULTS[dc.kind]
    if dc.judge_rubric is not None:
        load_rubric(dc.judge_rubric, BUILTIN + (rubric or "answer"))   # placeholders checked here
        judged = True
    return DatasetSpec(
        name=dc.name, kind=dc.kind, family=dc.family or family, loader="custom",
        source=dc.source or dc.path or (f"hub:{dc.hub}" if dc.hub else None),
        fields=_check_fields(dc, dc.kind), grid=dc.kind == "gridded", structured=structured,
        prompt_format=fmt, scorer=dc.scorer or scorer, judged=judged,
        judge_rubric=dc.judge_rubric or (BUILTIN + rubric if rubric else None),
        refusal_correct=refusal_ok, scorer_refusal=dc.kind == "open")


def source_rows(spec: DatasetSpec) -> int | None:
    """Rows in a custom set's local JSONL/CSV file (for the plan), or None when unknown."""
    src = spec.source
    if spec.loader != "custom" or not src or src.startswith("hub:"):
        return None
    from pathlib import Path

    p = Path(src)
    if not p.is_file() or p.suffix.lower() not in (".jsonl", ".csv"):
        return None
    with p.open("rb") as f:
        n = sum(1 for line in f if line.strip())
    return max(n - (p.suffix.lower() == ".csv"), 0)


def input_stamps(ev: object, *, rubrics: bool) -> dict[str, object]:
    """What the config's YAML does not show but a stage's output depends on, for the pipeline's
    fingerprints: a custom set's source file (size, mtime) and, with ``rubrics``, each judge
    rubric file's content hash, so an edited file re-runs the stages that read it. Empty when
    no set uses such files (fingerprints of other runs stay as they were)."""
    from pathlib import Path

    out: dict[str, object] = {}
    for dc in getattr(ev, "datasets", []):
        if dc.kind is not None and dc.source and not dc.source.startswith("hub:"):
            try:
                st = Path(dc.source).stat()
                out[f"{dc.name}.source"] = [st.st_size, st.st_mtime_ns]
            except OSError:
                out[f"{dc.name}.source"] = None
        if rubrics and dc.judge_rubric and not dc.judge_rubric.startswith(BUILTIN):
            out[f"{dc.name}.rubric"] = load_rubric(dc.judge_rubric).digest
    return out
