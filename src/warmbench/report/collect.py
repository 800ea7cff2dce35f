"""Gather everything a report shows from a run directory, tolerating absent stages.

The report never recomputes statistics: it shows what ``warmbench stats`` wrote, so the
numbers in the HTML are byte-for-byte the numbers in the CSVs a user can check (the one display
change: an effect without a valid SE reads "+0.00 (limit, no valid SE)", not a bare number).

Two layouts are read: a run directory (RUN/stats/ + RUN/judge/scored.parquet), and a folder
written by ``warmbench stats ... --out DIR`` (stats.json at its top; e.g. the study's released
rows analysed with ``--published``), whose stats.json names the scored table it analysed.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

# Tables shown first, in this order, with a one-line explanation; any other CSV under
# RUN/stats/ follows.
KNOWN_TABLES: dict[str, str] = {
    "headline.csv": "Headline effects.",
    "paired.csv": "Paired comparison of each persona arm with the baseline on identical prompts "
                  "(exact McNemar test, Benjamini–Hochberg within the declared family, Cohen's g, "
                  "conditional odds ratio).",
    "marginal_effects.csv": "Average marginal effects of fine-tuning on the error rate, in percentage points.",
    "regressions.csv": "Binomial GLM coefficients (logit link) of models M1–M4.",
    "general.csv": "General-capability benchmarks (MMLU, GSM8K, AdvBench) with 95% confidence intervals.",
    "refusals.csv": "Refusal rates per arm and dataset.",
}
COMPAT_CAPTION = ("The published summary layout (--compat), column for column like the study's "
                  "results_*.csv, defects included.")
MAX_BROWSER_PROMPTS = 4000


@dataclass
class Figure:
    name: str
    caption: str
    png_b64: str | None = None
    svg: str | None = None


@dataclass
class ReportData:
    run_dir: Path
    manifest: dict[str, Any] = field(default_factory=dict)
    stats_summary: dict[str, Any] = field(default_factory=dict)
    tables: list[tuple[str, str, pd.DataFrame]] = field(default_factory=list)
    figures: list[Figure] = field(default_factory=list)
    browser: dict[str, Any] = field(default_factory=dict)
    scorer: str | None = None
    source: dict[str, Any] = field(default_factory=dict)   # stats.json "source"
    warnings: list[str] = field(default_factory=list)


def _read_csv(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, keep_default_na=False, na_values=[""])


def stats_folder(run_dir: Path) -> Path:
    """RUN/stats for a run; the folder itself when it is a ``stats --out`` folder."""
    if not (run_dir / "stats").is_dir() and (run_dir / "stats.json").exists():
        return run_dir
    return run_dir / "stats"


def _scored_path(run_dir: Path, stats_dir: Path, summary: dict[str, Any]) -> Path:
    """The table stats analysed (named in stats.json), else the run's own."""
    named = (summary.get("source") or {}).get("scored_table")
    if named:
        p = Path(named)
        p = p if p.is_absolute() else stats_dir / p
        if p.exists():
            return p
    return run_dir / "judge" / "scored.parquet"


def _show_not_estimable(df: pd.DataFrame) -> pd.DataFrame:
    """marginal_effects.csv: an effect without a valid SE (quasi-separation) reads as its limit
    marked "(limit, no valid SE)", never as a bare number with empty CI cells."""
    if "estimable" not in df.columns or "ame_pp" not in df.columns:
        return df
    bad = df["estimable"].astype(str).str.lower() == "false"
    if not bad.any():
        return df
    df = df.copy()
    df["ame_pp"] = df["ame_pp"].astype(object)
    for i in df.index[bad]:
        v = pd.to_numeric(df.at[i, "ame_pp"], errors="coerce")
        df.at[i, "ame_pp"] = ("not estimable" if pd.isna(v)
                              else f"{round(float(v), 2) + 0.0:+.2f} (limit, no valid SE)")
    return df


def collect(run_dir: str | Path) -> ReportData:
    run_dir = Path(run_dir)
    data = ReportData(run_dir=run_dir)
    mpath = run_dir / "manifest.json"
    if mpath.exists():
        data.manifest = json.loads(mpath.read_text(encoding="utf-8"))
    stats_dir = stats_folder(run_dir)
    sjson = stats_dir / "stats.json"
    if sjson.exists():
        data.stats_summary = json.loads(sjson.read_text(encoding="utf-8"))
        data.source = dict(data.stats_summary.get("source") or {})
    csvs = sorted(stats_dir.glob("*.csv")) if stats_dir.is_dir() else []
    extra = [run_dir / "warmth" / "trajectory.csv"]
    if not (stats_dir / "refusals.csv").exists():  # stats' own (compat / published) wins
        extra.append(run_dir / "judge" / "refusals.csv")
    csvs += [p for p in extra if p.exists()]
    order = {name: i for i, name in enumerate(KNOWN_TABLES)}
    for p in sorted(csvs, key=lambda p: (order.get(p.name, 99), str(p))):
        caption = KNOWN_TABLES.get(p.name, "")
        if p.name == "trajectory.csv":
            caption = "SocioT warmth of each checkpoint's answers to the validation prompts (epoch 0 = original model)."
        elif p.name.startswith("results_"):
            caption = COMPAT_CAPTION
        try:
            table = _read_csv(p)
        except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as e:
            data.warnings.append(f"{p}: could not read ({e})")
            continue
        if p.name == "marginal_effects.csv":
            table = _show_not_estimable(table)
        data.tables.append((p.name, caption, table))
    own_trajectory = (run_dir / "warmth" / "trajectory.png").exists()
    for d in (stats_dir / "figures", run_dir / "warmth"):
        if not d.is_dir():
            continue
        for png in sorted(d.glob("*.png")):
            if own_trajectory and png.stem == "warmth_trajectory":
                continue  # the warmth stage's own plot (with its metric model) is shown instead
            svg = png.with_suffix(".svg")
            data.figures.append(Figure(
                name=png.stem, caption=png.stem.replace("_", " "),
                png_b64=base64.b64encode(png.read_bytes()).decode("ascii"),
                svg=svg.read_text(encoding="utf-8") if svg.exists() else None,
            ))
    scored = _scored_path(run_dir, stats_dir, data.stats_summary)
    data.scorer = (data.stats_summary.get("scorer") or {}).get("description")
    if scored.exists():
        df = pd.read_parquet(scored)
        if data.scorer is None and "scorer" in df and len(df):
            from ..stats.provenance import describe_scorers

            data.scorer = describe_scorers(df["scorer"].dropna().unique())
        data.browser = browser_data(df, data.stats_summary.get("baseline") or "original")
    else:
        data.warnings.append(f"no scored answers ({scored}): the answer browser is empty")
    return data


def browser_data(df: pd.DataFrame, baseline: str) -> dict[str, Any]:
    """One entry per prompt (and sample) with every arm's answer and verdict.

    ``change`` classifies the prompt for filtering: 'worse' when the baseline was correct and
    some other arm not, 'better' for the reverse, 'same' otherwise.
    """
    need = {"arm", "dataset", "prompt_key", "context", "form", "answer", "label"}
    if not need.issubset(df.columns):
        return {"arms": [], "rows": [], "truncated": 0}
    df = df.copy()
    if "sample_index" not in df:
        df["sample_index"] = 0
    if "model_family" not in df:
        df["model_family"] = ""
    arms = sorted(df["arm"].unique(), key=lambda a: (a != baseline, a))
    rows = []
    keys = ["model_family", "dataset", "prompt_key", "sample_index"]
    for (fam, ds, _pk, si), g in df.groupby(keys, sort=True):
        first = g.iloc[0]
        answers = {}
        for _, r in g.iterrows():
            answers[str(r["arm"])] = {"text": str(r["answer"]), "label": str(r["label"]),
                                      "ok": None if pd.isna(r.get("is_correct")) else float(r["is_correct"])}
        base = answers.get(baseline, {}).get("ok")
        others = [a["ok"] for k, a in answers.items() if k != baseline and a["ok"] is not None]
        change = "same"
        if base == 1.0 and any(o == 0.0 for o in others):
            change = "worse"
        elif base == 0.0 and any(o == 1.0 for o in others):
            change = "better"
        rows.append({"family": str(fam), "dataset": str(ds), "context": str(first["context"]),
                     "form": str(first["form"]), "prompt": str(first.get("prompt", "")),
                     "sample": int(si), "change": change, "answers": answers})
    # Verdict changes first: they are what a reader wants to inspect.
    rows.sort(key=lambda r: {"worse": 0, "better": 1, "same": 2}[r["change"]])
    truncated = max(0, len(rows) - MAX_BROWSER_PROMPTS)
    return {"arms": [str(a) for a in arms], "baseline": baseline,
            "rows": rows[:MAX_BROWSER_PROMPTS], "truncated": truncated}
