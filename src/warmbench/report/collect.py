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

from ..layout import (
    GENERAL_CSV,
    HEADLINE_CSV,
    MARGINAL_EFFECTS_CSV,
    PAIRED_CSV,
    PAIRING_CSV,
    REFUSALS_CSV,
    REGRESSIONS_CSV,
    TRAJECTORY_CSV,
    RunLayout,
    StatsLayout,
)
from .belief import BeliefEffect, belief_effects
from .browser import browser_data, store_details
from .headline import Finding, belief_findings, findings
from .runinfo import ArmInfo, arm_infos, effect_noun, forms_note, toy_models

# Tables shown first, in this order, with a one-line explanation; any other CSV under
# RUN/stats/ follows. headline.csv is shown as sentences (headline.py), not as a table.
KNOWN_TABLES: dict[str, str] = {
    PAIRED_CSV: "Each persona arm against the baseline on identical prompts: the share answered "
                "correctly by each, the pairs only one of them got right, the exact McNemar test "
                "and its Benjamini–Hochberg adjustment, Cohen's g and the conditional odds ratio. "
                "One row per model, dataset, context and form, plus pooled rows.",
    MARGINAL_EFFECTS_CSV: "Average marginal effect of {noun} on the error rate, in percentage "
                          "points, from the study's regressions: M1 plain questions; M2 by "
                          "context group; M3 by context; M4 with and without a stated belief.",
    REGRESSIONS_CSV: "Coefficients (log-odds) of the binomial regressions M1–M4 behind the effects above.",
    GENERAL_CSV: "Accuracy on the general benchmarks (MMLU, GSM8K; AdvBench: share refused) with "
                 "95% Wilson intervals.",
    REFUSALS_CSV: "Refusal rates per arm and dataset.",
    PAIRING_CSV: "`warmbench compare`: samples paired per comparison, and why each other sample "
                 "of the compared logs was dropped.",
}
FIGURE_CAPTIONS = {
    "error_rates": "Error rate of each arm per dataset, on the plain questions and when the user "
                   "states a wrong belief (95% Wilson intervals).",
    "context_gap": "Change in error rate against the baseline, per context, on identical prompts "
                   "(95% intervals).",
    "general": "Accuracy on the general benchmarks (95% Wilson intervals).",
    "warmth_trajectory": "Warmth (SocioT) of each checkpoint's answers; epoch 0 is the original model.",
    "trajectory": "Warmth (SocioT) of each checkpoint's answers; epoch 0 is the original model.",
}
FIGURE_ORDER = {"error_rates": 0, "context_gap": 1, "general": 2, "warmth_trajectory": 3}
COMPAT_CAPTION = ("The published summary layout (--compat), column for column like the study's "
                  "results_*.csv, defects included.")


@dataclass
class Figure:
    name: str
    caption: str
    png_b64: str | None = None
    svg: str | None = None
    wide: bool = False   # wider than about twice its height: spans the whole row


@dataclass
class ReportData:
    run_dir: Path
    manifest: dict[str, Any] = field(default_factory=dict)
    stats_summary: dict[str, Any] = field(default_factory=dict)
    tables: list[tuple[str, str, pd.DataFrame]] = field(default_factory=list)   # file, caption, raw
    table_files: dict[str, str] = field(default_factory=dict)   # file name -> where it is, shown
    arms_info: dict[str, ArmInfo] = field(default_factory=dict)
    findings: list[Finding] = field(default_factory=list)        # each arm vs the baseline
    belief: list[BeliefEffect] = field(default_factory=list)      # a stated belief, within each arm
    belief_findings: list[Finding] = field(default_factory=list)
    toy_models: list[str] = field(default_factory=list)
    forms_note: str | None = None
    effect_noun: str = "the persona"
    figures: list[Figure] = field(default_factory=list)
    browser: dict[str, Any] = field(default_factory=dict)
    scorer: str | None = None
    source: dict[str, Any] = field(default_factory=dict)   # stats.json "source"
    warnings: list[str] = field(default_factory=list)


def _read_csv(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, keep_default_na=False, na_values=[""])


def stats_folder(run_dir: Path) -> StatsLayout:
    """RUN/stats for a run; the folder itself when it is a ``stats --out`` folder."""
    own, folder = RunLayout(run_dir).stats, StatsLayout(run_dir)
    if not own.root.is_dir() and folder.json.exists():
        return folder
    return own


def _scored_path(run_dir: Path, stats_dir: Path, summary: dict[str, Any]) -> Path:
    """The table stats analysed (named in stats.json), else the run's own."""
    named = (summary.get("source") or {}).get("scored_table")
    if named:
        p = Path(named)
        p = p if p.is_absolute() else stats_dir / p
        if p.exists():
            return p
    return RunLayout(run_dir).scored


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


def _png_size(blob: bytes) -> tuple[int, int]:
    """Width and height from a PNG's IHDR chunk (0, 0 when it is not a PNG)."""
    if blob[:8] != b"\x89PNG\r\n\x1a\n" or len(blob) < 24:
        return 0, 0
    return int.from_bytes(blob[16:20], "big"), int.from_bytes(blob[20:24], "big")


def collect(run_dir: str | Path) -> ReportData:
    run_dir = Path(run_dir)
    layout = RunLayout(run_dir)
    data = ReportData(run_dir=run_dir)
    if layout.manifest.exists():
        data.manifest = json.loads(layout.manifest.read_text(encoding="utf-8"))
    stats = stats_folder(run_dir)
    stats_dir = stats.root
    if stats.json.exists():
        data.stats_summary = json.loads(stats.json.read_text(encoding="utf-8"))
        data.source = dict(data.stats_summary.get("source") or {})
    csvs = sorted(stats_dir.glob("*.csv")) if stats_dir.is_dir() else []
    extra = [layout.trajectory_csv]
    if not stats.file(REFUSALS_CSV).exists():  # stats' own (compat / published) wins
        extra.append(layout.refusals)
    csvs += [p for p in extra if p.exists()]
    order = {name: i for i, name in enumerate(KNOWN_TABLES)}
    for p in sorted(csvs, key=lambda p: (order.get(p.name, 99), str(p))):
        if p.name == HEADLINE_CSV:
            continue  # the headline section says it in sentences
        caption = KNOWN_TABLES.get(p.name, "")
        if p.name == TRAJECTORY_CSV:
            caption = ("SocioT warmth of each checkpoint's answers to the validation prompts "
                       "(epoch 0 = the original model).")
        elif p.name.startswith("results_"):
            caption = COMPAT_CAPTION
        try:
            table = _read_csv(p)
        except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as e:
            data.warnings.append(f"{p}: could not read ({e})")
            continue
        if p.name == MARGINAL_EFFECTS_CSV:
            table = _show_not_estimable(table)
        data.tables.append((p.name, caption, table))
        # Where the page says the table is: stats files as stats/<name> (also in a `stats --out`
        # folder), the others relative to the run (warmth/trajectory.csv, judge/refusals.csv).
        data.table_files[p.name] = (f"{layout.stats.root.name}/{p.name}" if p.parent == stats_dir
                                    else p.relative_to(run_dir).as_posix())
    st = data.stats_summary
    cfg = data.manifest.get("config") or {}
    baseline = str(st.get("baseline") or "original")
    arms = [str(a) for a in st.get("arms") or []]
    declared = [str(a.get("name")) for a in cfg.get("arms") or []]
    arms.sort(key=lambda a: declared.index(a) if a in declared else len(declared))  # config order
    data.arms_info = arm_infos(cfg, baseline, arms)
    data.effect_noun = effect_noun(data.arms_info, arms)
    data.tables = [(n, c.replace("{noun}", data.effect_noun), t) for n, c, t in data.tables]
    raw = {n: t for n, _, t in data.tables}
    data.findings = findings(raw.get(MARGINAL_EFFECTS_CSV), raw.get(PAIRED_CSV),
                             data.arms_info, baseline, arms)
    data.toy_models = toy_models(cfg)
    own_trajectory = layout.trajectory_png.exists()
    for d in (stats.figures, layout.warmth):
        if not d.is_dir():
            continue
        # the error rates first: they are what the headline is about
        for png in sorted(d.glob("*.png"), key=lambda p: (FIGURE_ORDER.get(p.stem, 9), p.stem)):
            if own_trajectory and png.stem == "warmth_trajectory":
                continue  # the warmth stage's own plot (with its metric model) is shown instead
            svg = png.with_suffix(".svg")
            blob = png.read_bytes()
            w, h = _png_size(blob)
            data.figures.append(Figure(
                name=png.stem, caption=FIGURE_CAPTIONS.get(png.stem, png.stem.replace("_", " ")),
                png_b64=base64.b64encode(blob).decode("ascii"),
                svg=svg.read_text(encoding="utf-8") if svg.exists() else None,
                wide=bool(h) and w / h > 1.8,
            ))
    scored = _scored_path(run_dir, stats_dir, data.stats_summary)
    data.scorer = (data.stats_summary.get("scorer") or {}).get("description")
    if scored.exists():
        df = pd.read_parquet(scored)
        if data.scorer is None and "scorer" in df and len(df):
            from ..stats.provenance import describe_scorers

            data.scorer = describe_scorers(df["scorer"].dropna().unique())
        data.forms_note = forms_note(df)
        order = [baseline, *arms] if arms else sorted(df["arm"].astype(str).unique(), key=lambda a: (a != baseline, a))
        data.belief = belief_effects(df, order)
        data.belief_findings = belief_findings(data.belief, data.arms_info)
        refs, reasons = store_details(run_dir)
        data.browser = browser_data(df, baseline, refs=refs, reasons=reasons, arms_info=data.arms_info)
    else:
        data.warnings.append(f"no scored answers ({scored}): the answer browser is empty")
    return data


__all__ = ["ReportData", "browser_data", "collect", "stats_folder"]
