"""Other tools' per-sample results as one table: Inspect eval logs and lm-eval sample files.

Each source becomes rows of ``OUTCOME_COLUMNS``: one per sample and epoch, with its pairing key
(``task``, ``sample_id``, ``epoch``), the mapped outcome ``correct`` (1.0 / 0.0, NaN when the
sample cannot be used) and, for an unusable sample, ``dropped`` saying why (errored, cancelled,
no score, a score value that maps to neither). Nothing is dropped silently: ``compare`` counts
these reasons.

* Inspect: ``.eval`` and ``.json`` logs, read with ``inspect_ai.log.read_eval_log``. The score is
  the one named by ``ScoreMap.scorer`` (default: the log's first scorer).
* lm-eval: the ``samples_<task>_<date>.jsonl`` files ``lm_eval --log_samples`` writes (one JSON
  object per document: ``doc_id``, ``doc``, ``target``, ``arguments``, ``resps``,
  ``filtered_resps``, ``filter``, ``metrics`` and one field per metric). The metric is chosen by
  ``ScoreMap.metric`` (default: the first listed); documents pair by task and ``doc_id``.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from ..errors import InputError, WarmbenchError
from ..jsonl import read_jsonl

OUTCOME_COLUMNS = ["source", "arm", "model", "task", "sample_id", "epoch", "dataset", "item_id",
                   "context", "form", "prompt", "answer", "score", "correct", "dropped", "scorer"]

# Inspect's score letters (inspect_ai.scorer: CORRECT, INCORRECT, PARTIAL, NOANSWER). Partial
# credit and no answer are excluded by default, like warmbench's own UNPARSEABLE / refused.
DEFAULT_VALUE_MAP: dict[str, float | None] = {
    "C": 1.0, "I": 0.0, "P": None, "N": None,
    "CORRECT": 1.0, "INCORRECT": 0.0, "TRUE": 1.0, "FALSE": 0.0, "YES": 1.0, "NO": 0.0,
}


@dataclass
class ScoreMap:
    """How a score value becomes correct (1.0) / incorrect (0.0) / excluded (None)."""

    scorer: str | None = None       # Inspect: which scorer's score (default: the first)
    metric: str | None = None       # lm-eval: which metric (default: the first listed)
    lm_filter: str | None = None    # lm-eval: which filter's rows (default: the only one)
    threshold: float = 0.5          # a number >= threshold counts as correct
    values: dict[str, float | None] = field(default_factory=lambda: dict(DEFAULT_VALUE_MAP))

    def outcome(self, value: Any) -> tuple[float | None, str | None]:
        """(1.0 / 0.0, None), or (None, why it is excluded)."""
        if value is None:
            return None, "missing score"
        if isinstance(value, bool):
            return float(value), None
        if isinstance(value, int | float):
            if isinstance(value, float) and math.isnan(value):
                return None, "missing score"
            return (1.0 if value >= self.threshold else 0.0), None
        if isinstance(value, str):
            key = value.strip().upper()
            if key in self.values:
                v = self.values[key]
                return (v, None) if v is not None else (None, f"score {value!r} not mapped")
            try:
                return self.outcome(float(value))
            except ValueError:
                return None, f"score {value[:20]!r} not mapped"
        return None, f"score of type {type(value).__name__} not mapped"


def parse_value_map(items: list[str] | None) -> dict[str, float | None]:
    """``["P=1", "N=0", "C=drop"]`` over the defaults; a bad item is a one-line error."""
    out = dict(DEFAULT_VALUE_MAP)
    for it in items or []:
        k, sep, v = it.partition("=")
        v = v.strip().lower()
        if not sep or not k.strip() or v not in ("1", "0", "drop"):
            raise WarmbenchError(f"--map {it!r}: expected VALUE=1, VALUE=0 or VALUE=drop")
        out[k.strip().upper()] = None if v == "drop" else float(v)
    return out


def _text(x: Any) -> str:
    """A sample's input: a string, or the last user message of a chat."""
    if isinstance(x, str):
        return x
    if isinstance(x, list):
        users = [m for m in x if getattr(m, "role", None) == "user"]
        m = users[-1] if users else (x[-1] if x else None)
        return str(getattr(m, "text", "") or "") if m is not None else ""
    return str(x or "")


def _not_a_log(path: Path, why: str) -> WarmbenchError:
    return WarmbenchError(f"{path}: not an Inspect eval log (.eval/.json) nor an lm-eval "
                          f"samples file (samples_*.jsonl): {why}")


def read_source(path: Path, smap: ScoreMap) -> tuple[pd.DataFrame, dict[str, Any]]:
    """One file's outcomes and a description of it (kind, task, model, status, scorer)."""
    path = Path(path)
    if not path.is_file():
        raise WarmbenchError(f"{path}: no such file")
    if path.suffix == ".jsonl":
        return read_lm_eval(path, smap)
    if path.suffix in (".eval", ".json"):
        return read_inspect(path, smap)
    raise _not_a_log(path, f"unknown suffix {path.suffix or '(none)'!r}")


# -- Inspect ---------------------------------------------------------------------------------
def read_inspect(path: Path, smap: ScoreMap) -> tuple[pd.DataFrame, dict[str, Any]]:
    try:
        from inspect_ai.log import read_eval_log
    except ImportError as exc:
        from ..errors import MissingExtraError

        raise MissingExtraError("inspect-ai", "inspect", "reading Inspect logs") from exc
    try:
        log = read_eval_log(str(path), resolve_attachments=True)
    except Exception as exc:  # zip, JSON or schema errors: this is not a log
        raise _not_a_log(path, f"{type(exc).__name__}: {str(exc).splitlines()[0][:160]}") from None
    ev = log.eval
    scorers = [s.name for s in (ev.scorers or [])]
    if not scorers and log.results is not None:
        scorers = [s.name for s in log.results.scores]
    samples = log.samples or []
    if not scorers:  # older logs: the keys of the first scored sample
        scorers = next((list(s.scores) for s in samples if s.scores), [])
    scorer = smap.scorer or (scorers[0] if scorers else None)
    if smap.scorer and scorers and smap.scorer not in scorers:
        raise WarmbenchError(f"{path}: no scorer {smap.scorer!r} in this log "
                             f"(scorers: {', '.join(scorers)})")
    task = ev.task.split("/")[-1]
    rows = []
    for s in samples:
        md = s.metadata or {}
        score = (s.scores or {}).get(scorer) if scorer else None
        value = score.value if score is not None else None
        correct, dropped = smap.outcome(value)
        if s.error is not None:
            msg = str(getattr(s.error, "message", s.error))
            correct, dropped = None, ("cancelled" if "cancel" in msg.lower()
                                      else f"errored: {msg.splitlines()[0][:80]}")
        elif score is None:
            correct, dropped = None, "missing score"
        rows.append({
            "task": task, "sample_id": str(s.id), "epoch": int(s.epoch),
            "dataset": str(md.get("dataset") or task), "item_id": str(md.get("item_id") or s.id),
            "context": str(md.get("context") or "unmodified"),
            "form": str(md.get("form") or "original"),
            "prompt": _text(s.input), "answer": s.output.completion if s.output else "",
            "score": None if value is None else str(value), "correct": correct,
            "dropped": dropped, "scorer": f"inspect:{scorer}" if scorer else "none",
        })
    info = {"kind": "inspect", "task": task, "model": ev.model, "status": log.status,
            "scorer": scorer, "samples": len(samples),
            "planned": (ev.dataset.samples or 0) * int(getattr(ev.config, "epochs", None) or 1),
            "system_prompt": (ev.task_args or {}).get("system_prompt")}
    return _frame(rows, path, ev.model), info


# -- lm-eval ---------------------------------------------------------------------------------
_LM_FILE = re.compile(r"^samples_(?P<task>.+)_(?P<date>\d{4}-\d{2}-\d{2}T[\d\-.:]+)$")
_LM_FIELDS = ("doc_id", "filter", "metrics")


def lm_eval_task(path: Path) -> str:
    m = _LM_FILE.match(path.stem)
    return m.group("task") if m else path.stem.removeprefix("samples_")


def _flat(x: Any) -> str:
    while isinstance(x, list) and len(x) == 1:
        x = x[0]
    return x if isinstance(x, str) else json.dumps(x, ensure_ascii=False)


def read_lm_eval(path: Path, smap: ScoreMap) -> tuple[pd.DataFrame, dict[str, Any]]:
    docs: list[dict[str, Any]] = []
    try:
        for n, d in read_jsonl(path):
            missing = [k for k in _LM_FIELDS if k not in d]
            if missing:
                raise _not_a_log(path, f"line {n} has no field {missing[0]!r}")
            docs.append(d)
    except InputError as exc:   # "PATH:line N: not valid JSON (...)"
        raise _not_a_log(path, str(exc).removeprefix(f"{path}:")) from None
    if not docs:
        raise _not_a_log(path, "no samples in the file")
    filters = sorted({str(d["filter"]) for d in docs})
    lm_filter = smap.lm_filter or (filters[0] if len(filters) == 1 else None)
    if lm_filter is None or lm_filter not in filters:
        raise WarmbenchError(f"{path}: choose a filter with --filter "
                             f"(this file has: {', '.join(filters)})")
    docs = [d for d in docs if str(d["filter"]) == lm_filter]
    metrics = list(docs[0]["metrics"])
    metric = smap.metric or (metrics[0] if metrics else None)
    if metric is None:
        raise WarmbenchError(f"{path}: line 1 lists no metrics; name one with --metric")
    if smap.metric and not any(smap.metric in d for d in docs):
        raise WarmbenchError(f"{path}: no metric {smap.metric!r} in any sample "
                             f"(metrics: {', '.join(metrics) or 'none'})")
    task = lm_eval_task(path)
    rows = []
    for d in docs:
        correct, dropped = smap.outcome(d.get(metric))
        args = d.get("arguments") or {}
        first = next(iter(args.values()), {}) if isinstance(args, dict) else (args[0] if args else [])
        prompt = (next(iter(first.values()), "") if isinstance(first, dict)
                  else (first[0] if first else ""))
        rows.append({
            "task": task, "sample_id": str(d["doc_id"]), "epoch": 0, "dataset": task,
            "item_id": str(d["doc_id"]), "context": "unmodified", "form": "original",
            "prompt": str(prompt), "answer": _flat(d.get("filtered_resps", d.get("resps", ""))),
            "score": None if d.get(metric) is None else str(d.get(metric)), "correct": correct,
            "dropped": dropped, "scorer": f"lm-eval:{metric}",
        })
    # lm-eval writes samples under OUTPUT/<model_name_sanitized>/: the folder names the model.
    model = path.parent.name or path.stem
    info = {"kind": "lm-eval", "task": task, "model": model, "status": "success",
            "scorer": metric, "samples": len(docs), "planned": len(docs), "filter": lm_filter,
            "system_prompt": None}
    return _frame(rows, path, model), info


def _frame(rows: list[dict[str, Any]], path: Path, model: str) -> pd.DataFrame:
    df = pd.DataFrame(rows, columns=[c for c in OUTCOME_COLUMNS if c not in ("source", "arm", "model")])
    df.insert(0, "source", str(path))
    df.insert(1, "arm", "")
    df.insert(2, "model", model)
    df["correct"] = pd.to_numeric(df["correct"], errors="coerce")
    dup = df.duplicated(["task", "sample_id", "epoch"], keep="first")
    if dup.any():
        r = df[dup].iloc[0]
        raise WarmbenchError(f"{path}: sample {r['sample_id']!r} (epoch {r['epoch']}) appears "
                             "twice; pairing needs one row per sample and epoch")
    return df[OUTCOME_COLUMNS]
