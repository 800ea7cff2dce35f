"""Warmth of any texts (``warmbench warmth score``): read a table of texts or a run's answers,
score each text, summarise per group with bootstrap CIs."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..errors import InputError, WarmbenchError
from ..jsonl import read_jsonl


def read_texts(path: Path, column: str):
    """A table of texts from JSONL, CSV or parquet; one-line errors name file, row and field."""
    import pandas as pd

    if not path.exists():
        raise WarmbenchError(f"input file not found: {path}")
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".ndjson"):
        rows = []
        for i, row in read_jsonl(path):
            if not isinstance(row.get(column), str):
                raise InputError(path, f"line {i}", column, "missing or not a string")
            rows.append(row)
        df = pd.DataFrame(rows)
    elif suffix in (".csv", ".tsv"):
        df = pd.read_csv(path, sep="\t" if suffix == ".tsv" else ",")
    elif suffix == ".parquet":
        df = pd.read_parquet(path)
    else:
        raise WarmbenchError(f"{path}: unsupported input type {suffix!r} (use .jsonl, .csv or .parquet)")
    if column not in df.columns:
        raise InputError(path, "header", column, f"column missing (columns: {', '.join(map(str, df.columns))})")
    bad = df[column].map(lambda v: not isinstance(v, str))
    if bad.any():
        row = int(bad.to_numpy().nonzero()[0][0])
        where = f"line {row + 1}" if suffix in (".jsonl", ".ndjson") else f"row {row + 2}"
        raise InputError(path, where, column, "missing or not text")
    if df.empty:
        raise WarmbenchError(f"{path}: no rows")
    return df


def run_answers(run_dir: Path):
    """Every eval answer a run's store holds (``warmbench warmth score RUN``)."""
    import pandas as pd

    from ..layout import KIND_ANSWER, RunLayout
    from ..store import RunStore

    if not RunLayout(run_dir).store.exists():
        raise WarmbenchError(f"no run store at {RunLayout(run_dir).store}")
    rows = list(RunStore(run_dir).iter(KIND_ANSWER))
    if not rows:
        raise WarmbenchError(f"{run_dir}: the run holds no answers yet (run `warmbench eval`)")
    return pd.DataFrame(rows)


def score_table(df: Any, column: str, model: str, method: str, *, by: Sequence[str] = (),
                repeats: int = 100, seed: int = 0, bootstrap: int = 1000,
                store_dir: Path | None = None, progress: Any = None) -> tuple[Any, Any, Any]:
    """(per-text table with score, se, n_tokens, metric_model, method; the summary per ``by``
    group; the metric model). With ``store_dir`` the scores are cached in that folder's store:
    resumable, and a repeat scores only new texts."""
    import pandas as pd

    from .metric_model import load_metric_model, resolve_metric_model
    from .sociot import score_texts
    from .summary import summarise

    metric = resolve_metric_model(model)
    if store_dir is not None:
        from ..store import RunStore
        from .trajectory import cached_scores

        sc = cached_scores(RunStore(store_dir), df[column].tolist(), metric, method,
                           repeats=repeats, seed=seed, progress=progress)
    else:
        lm = load_metric_model(metric)
        s = score_texts(lm, df[column].tolist(), method, repeats=repeats, seed=seed,
                        progress=progress)
        sc = pd.DataFrame({"score": s.score, "se": s.se, "n_tokens": s.n_tokens})
    for c in by:
        if c not in df.columns:
            raise WarmbenchError(f"--by {c!r}: no such column (columns: {', '.join(map(str, df.columns))})")
    out = df.reset_index(drop=True).drop(columns=[c for c in ("score", "se", "n_tokens")
                                                  if c in df.columns])
    for c in ("score", "se", "n_tokens"):
        out[c] = sc[c].to_numpy()
    out["metric_model"], out["method"] = metric.label, method
    summary = summarise(out, list(by), n_boot=bootstrap, seed=seed)
    summary["metric_model"], summary["method"] = metric.label, method
    return out, summary, metric
