"""The statistics stage: scored table in, tables + figures + a JSON summary out.

``analyse`` works on any scored table (ours or one converted from the published layout);
``write_outputs`` writes RUN/stats/; ``run_stats`` is the pipeline entry point.

Every output says where its labels came from: stats.json and headline.csv carry the scorer(s)
of the scored table (offline reference scorers, an LLM judge, or the study's released
verdicts) and the source of the table, and paired.csv has a ``scorer`` column, so offline
numbers are never mistaken for judged ones.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..atomic import write_csv, write_parquet, write_text
from ..errors import WarmbenchError
from ..layout import (
    GENERAL_CSV,
    HEADLINE_CSV,
    MARGINAL_EFFECTS_CSV,
    PAIRED_CSV,
    REFUSALS_CSV,
    REGRESSIONS_CSV,
    SCORED_COLUMNS,
    SCORED_PARQUET,
    RunLayout,
    StatsLayout,
    made,
)
from ..manifest import git_revision, package_versions
from ..progress import Progress
from ..safenames import require_name
from ..stage import StageResult
from . import figures
from .compat import compat_tables
from .general import accuracy_table
from .paired import paired_table
from .provenance import describe_scorers, scorer_counts
from .regressions import run_regressions, single_thread_blas

REQUIRED = ("model_family", "arm", "dataset", "item_id", "prompt_key", "context", "form",
            "is_correct", "sample_index")


@dataclass
class Analysis:
    baseline: str
    arms: list[str]
    compat: bool
    cluster: str
    fdr_family: str
    n_rows: int
    paired: pd.DataFrame
    coefficients: pd.DataFrame
    effects: pd.DataFrame
    general: pd.DataFrame
    published: dict[str, pd.DataFrame] = field(default_factory=dict)
    scorers: dict[str, int] = field(default_factory=dict)   # scorer name -> rows it labelled


def compat_refusal(df: pd.DataFrame) -> pd.DataFrame:
    """Re-apply the published refusal handling to a scored table (``stats --compat``).

    The scored table keeps every answer's text and label, so the published phrase list is run
    on the answers again and refused rows are excluded per arm (the published behaviour, which
    breaks pairs; pairwise exclusion is undone too, since it is recomputed from the labels).
    AdvBench rows keep their scorer's refusal decision (the study judged AdvBench with its LLM,
    not with the phrase list). Idempotent: a table judged with ``--refusal compat --exclusion
    per_arm`` is returned unchanged.
    """
    from ..scoring.refusal import apply_refusal_rule, refusal_series

    for col in ("answer", "label", "dataset"):
        if col not in df.columns:
            raise WarmbenchError(f"--compat re-applies the published refusal rule to the answers, "
                                 f"but the scored table has no '{col}' column")
    out = df.copy()
    from ..eval import registry

    adv = out["dataset"].astype(str).str.lower().isin(registry.where(scorer_refusal=True)).to_numpy()
    prior = (out["refused"].fillna(False).astype(bool).to_numpy() if "refused" in out.columns
             else np.zeros(len(out), bool))
    detected = np.asarray(refusal_series(out["answer"].tolist(), "compat"), dtype=bool)
    out["refused"] = np.where(adv, prior, detected)
    out = apply_refusal_rule(out, mode="compat", exclusion="per_arm", text_col=None)
    return out[list(df.columns) + [c for c in ("refused", "is_correct") if c not in df.columns]]


def check_table(df: pd.DataFrame, source: str = "scored table") -> pd.DataFrame:
    missing = [c for c in REQUIRED if c not in df.columns]
    if missing:
        raise WarmbenchError(f"{source}: missing column(s) {missing} "
                             f"(expected the scored-table columns {list(SCORED_COLUMNS)})")
    bad = ~df["is_correct"].isna() & ~df["is_correct"].isin([0, 1])
    if bad.any():
        i = int(bad.to_numpy().nonzero()[0][0])
        raise WarmbenchError(f"{source}: row {i}: field 'is_correct' must be 1, 0 or empty, "
                             f"got {df['is_correct'].iloc[i]!r}")
    return df


def analyse(df: pd.DataFrame, *, baseline: str = "original", compat: bool = False,
            cluster: str | None = None, fdr_family: str | None = None, alpha: float = 0.05,
            progress: Progress | None = None) -> Analysis:
    """Every table of the analysis. ``compat`` switches the defaults to the published choices
    (model-based SEs, BH within each table) and adds the published-format tables."""
    check_table(df)
    arms_all = sorted(map(str, df["arm"].unique()))
    if baseline not in arms_all:
        raise WarmbenchError(f"baseline arm {baseline!r} not in the scored table "
                             f"(arms: {', '.join(arms_all) or 'none'})")
    arms = [a for a in arms_all if a != baseline]
    if not arms:
        raise WarmbenchError(f"only the baseline arm {baseline!r} is present: nothing to compare")
    cluster = cluster or ("none" if compat else "question")
    fdr_family = fdr_family or ("table" if compat else "comparison")
    prog = progress or Progress(enabled=False)
    task = prog.task("stats", total=2 + len(arms))
    with single_thread_blas():
        paired = paired_table(df, baseline, arms, alpha=alpha, family=fdr_family, compat=compat)
        task.advance()
        coefs, effs = [], []
        for arm in arms:
            c, e, _ = run_regressions(df, baseline, arm, cluster=cluster, compat=compat)
            coefs.append(c)
            effs.append(e)
            task.advance()
        published = {arm: compat_tables(df, baseline, arm) for arm in arms} if compat else {}
        general = accuracy_table(df)
        task.advance()
    task.close()
    return Analysis(baseline, arms, compat, cluster, fdr_family, len(df), paired,
                    pd.concat(coefs, ignore_index=True), pd.concat(effs, ignore_index=True),
                    general, published, scorer_counts(df))


def _num(x: Any, nd: int = 2) -> Any:
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else round(float(x), nd)


def _sig(x: Any) -> Any:
    """Three significant digits (p-values span many orders of magnitude)."""
    return None if x is None or math.isnan(float(x)) else float(f"{float(x):.3g}")


def _fmt(x: float | None) -> str:
    """Signed, 2 decimals; -1e-12 prints as "+0.00", not a negative zero "-0.00"."""
    return "n/a" if x is None else f"{round(x, 2) + 0.0:+.2f}"


def _headline_effect(v: dict[str, Any]) -> str:
    """One effect for the headline. A quasi-separated cell has a finite limit on the pp scale
    but no valid SE: the limit, and no interval (never the fit's "+0.00 pp [-0.00, +0.00]")."""
    if v["ame_pp"] is None:
        return "not available"
    if not v["estimable"]:
        why = v["separation"].split(");")[0].removeprefix("no valid SE").strip()
        return (f"{_fmt(v['ame_pp'])} pp (limit of the fit; no valid SE or CI"
                + (f": {why.strip('( )')}" if why else "") + ")")
    text = f"{_fmt(v['ame_pp'])} pp [{_fmt(v['ci_low_pp'])}, {_fmt(v['ci_high_pp'])}]"
    if v.get("ci_method", "").startswith("exact"):
        text += " (exact bound: no discordant pairs)"
    return text


def summary(a: Analysis, source: dict[str, Any] | None = None) -> dict[str, Any]:
    """Headline numbers for the report (stats.json)."""
    comps: dict[str, Any] = {}
    scorer = describe_scorers(a.scorers)
    headline: dict[str, str] = {"scorer": scorer}
    if source and source.get("description"):
        headline["source"] = str(source["description"])
    for arm in a.arms:
        comp = f"{arm} vs {a.baseline}"
        p = a.paired[(a.paired["comparison"] == comp) & (a.paired["level"] == "cell")]
        e = a.effects[a.effects["comparison"] == comp] if len(a.effects) else a.effects
        eff = {f"{r.model}:{r.level}": {"ame_pp": _num(r.ame_pp), "ci_low_pp": _num(r.ci_low_pp),
                                        "ci_high_pp": _num(r.ci_high_pp), "p": _sig(r.p_value),
                                        "n": int(r.n),
                                        "estimable": bool(getattr(r, "estimable", True)),
                                        "ci_method": str(getattr(r, "ci_method", "") or ""),
                                        "separation": str(getattr(r, "separation", "") or "")}
               for r in e.itertuples()}
        comps[arm] = {
            "cells": len(p), "cells_significant_bh": int(p["significant_bh"].sum()),
            "cells_arm_worse_bh": int((p["significant_bh"] & (p["diff_pp"] < 0)).sum()),
            "pairs": int(p["n_pairs"].sum()), "effects": eff,
        }
        for key, label in (("M1:all", "error change, unmodified original prompts"),
                           ("M4:user_opinion", "error change, wrong user belief"),
                           ("M2:emotion", "error change, emotional context")):
            if key in eff:
                headline[f"{comp}: {label}"] = _headline_effect(eff[key])
        headline[f"{comp}: significant cells (BH, {a.fdr_family})"] = \
            f"{comps[arm]['cells_significant_bh']} of {len(p)}"
    return {"baseline": a.baseline, "arms": a.arms, "compat": a.compat, "cluster": a.cluster,
            "fdr_family": a.fdr_family, "n_rows": a.n_rows,
            "scorer": {"description": scorer, "rows": a.scorers},
            "source": source or {}, "versions": package_versions(), "git_revision": git_revision(),
            "comparisons": comps, "headline": headline}


def _relpath(path: Path, start: Path) -> str:
    """``path`` relative to ``start`` when possible (an output folder can then be moved with its
    run), else absolute."""
    try:
        return os.path.relpath(path.resolve(), start.resolve())
    except ValueError:  # another drive on Windows
        return str(path.resolve())


def write_outputs(a: Analysis, out_dir: str | Path, df: pd.DataFrame,
                  trajectory: Path | None = None, *, source: dict[str, Any] | None = None,
                  scored_table: str | Path | None = None,
                  write_table: bool = False) -> dict[str, Any]:
    """Write the CSVs, figures and stats.json under ``out_dir``; return the summary.

    ``source`` describes where the table came from (kind, path, refusal handling; recorded in
    stats.json and shown by the report). ``scored_table`` is the table the report's answer
    browser reads; ``write_table`` saves ``df`` as ``out_dir/scored.parquet`` (with its refusal
    rates as refusals.csv) and points there: for input that has no run, e.g. ``--published``,
    so that ``warmbench report OUT`` finds every answer.
    """
    out = Path(out_dir)
    st = StatsLayout(out)
    files = {
        PAIRED_CSV: a.paired, REGRESSIONS_CSV: a.coefficients,
        MARGINAL_EFFECTS_CSV: a.effects, GENERAL_CSV: a.general,
    }
    for arm, t in a.published.items():
        # Arm names come from the scored table here, not only from a checked config.
        files[st.results(require_name("arm", arm)).name] = t
    if write_table:
        from ..scoring.refusal import refusal_rates

        if "refused" in df.columns:
            files[REFUSALS_CSV] = refusal_rates(df)
        write_parquet(df, made(st.scored))
        scored_table = st.scored
    for name, t in files.items():
        write_csv(t, made(st.file(name)))
    figdir = st.figures
    figs = figures.error_rates(df, [a.baseline, *a.arms], figdir)
    figs += figures.context_gap(df, a.baseline, a.arms, figdir)
    figs += figures.general(a.general, [a.baseline, *a.arms], figdir)
    if trajectory is not None:
        figs += figures.warmth_trajectory(trajectory, figdir)
    src = dict(source or {})
    if scored_table is not None:
        src["scored_table"] = _relpath(Path(scored_table), out)
    s = summary(a, src)
    write_csv(pd.DataFrame({"quantity": list(s["headline"]), "value": list(s["headline"].values())}),
              made(st.headline))
    s["files"] = (sorted([*files, HEADLINE_CSV, *([SCORED_PARQUET] if write_table else [])])
                  + [str(p.relative_to(out)) for p in figs])
    write_text(made(st.json), json.dumps(s, indent=2, default=str))
    return s


def headline(run_dir: Path) -> dict[str, str]:
    """The headline numbers of RUN/stats/stats.json (the stats stage's summary holds only
    counts, and a skipped stage returns its stored summary), {} when there are none."""
    try:
        data = json.loads(RunLayout(run_dir).stats.json.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    head = data.get("headline") if isinstance(data, dict) else None
    return {str(k): str(v) for k, v in head.items()} if isinstance(head, dict) else {}


def _judge_section(run_dir: Path) -> dict[str, Any]:
    m = RunLayout(run_dir).manifest
    try:
        return dict(json.loads(m.read_text(encoding="utf-8")).get("judge") or {})
    except (OSError, json.JSONDecodeError):
        return {}


def load_run_table(run_dir: Path, compat: bool) -> tuple[pd.DataFrame, dict[str, Any]]:
    """RUN/judge/scored.parquet, with the published refusal handling re-applied under
    ``compat``; and the source record for stats.json."""
    scored = RunLayout(run_dir).scored
    if not scored.exists():
        raise WarmbenchError(f"no scored table at {scored}: run `warmbench judge` first")
    df = pd.read_parquet(scored)
    judge = _judge_section(run_dir)
    if compat:
        df = compat_refusal(df)
        refusal = ("compat: the published phrase list re-applied to the stored answers, "
                   "per-arm exclusion (AdvBench: the scorer's decision)")
    else:
        refusal = (f"as scored by `warmbench judge` (refusal {judge.get('refusal', '?')}, "
                   f"exclusion {judge.get('exclusion', '?')})")
    return df, {"kind": "run", "path": str(run_dir), "refusal": refusal,
                "description": f"scored run {run_dir}"}


def _analyse_section(df: pd.DataFrame, st: Any, compat: bool, cluster: str | None,
                     progress: Progress | None = None) -> Analysis:
    """``analyse`` as the ``stats`` config section ``st`` says; ``cluster`` (a command's
    --cluster) overrides the section's."""
    return analyse(df, baseline=st.baseline, compat=compat,
                   # under compat the section's default 'question' gives way to compat's 'none'
                   cluster=cluster or (None if compat and st.cluster == "question" else st.cluster),
                   fdr_family=st.fdr_family, alpha=st.alpha, progress=progress)


def stats_of_run(run_dir: Path, st: Any, *, out_dir: Path | None = None,
                 cluster: str | None = None,
                 progress: Progress | None = None) -> tuple[Analysis, dict[str, Any]]:
    """Analyse RUN/judge/scored.parquet as the ``stats`` config section ``st`` says and write
    the outputs to ``out_dir`` (default RUN/stats); ``cluster`` overrides ``st.cluster``.
    Returns the analysis and the summary written as stats.json."""
    df, source = load_run_table(run_dir, bool(st.compat))
    a = _analyse_section(df, st, bool(st.compat), cluster, progress)
    layout = RunLayout(run_dir)
    s = write_outputs(a, out_dir or layout.stats.root, df, layout.trajectory_csv,
                      source=source, scored_table=layout.scored,
                      write_table=bool(st.compat))  # compat re-applied refusals: save that table
    return a, s


def stats_of_published(published: Path, out_dir: Path, st: Any, *,
                       cluster: str | None = None) -> tuple[Analysis, dict[str, Any]]:
    """The same analysis of data in the study's released layout (``stats --published``); the
    converted table is saved in ``out_dir`` so that ``warmbench report OUT`` finds it."""
    from .published import read_published

    compat = bool(st.compat)
    # read_published applies the refusal rule itself (compat: published list, per arm)
    df = read_published(published, compat=compat)
    source = {"kind": "published", "path": str(published),
              "description": f"the study's released judged outputs ({published})",
              "refusal": ("compat: the published phrase list, per-arm exclusion" if compat
                          else "corrected detector, pairwise exclusion")
                         + " (applied by warmbench to the released answers)"}
    a = _analyse_section(df, st, compat, cluster)
    return a, write_outputs(a, out_dir, df, None, source=source, write_table=True)


def run_stats(cfg: Any, store: Any, progress: Progress | None = None) -> StageResult:
    """Pipeline stage: RUN/judge/scored.parquet -> RUN/stats/. Cheap, so always recomputed."""
    a, s = stats_of_run(Path(store.run_dir), cfg.stats, progress=progress)
    return StageResult({"comparisons": len(a.arms), "rows": a.n_rows, "files": len(s["files"])})
