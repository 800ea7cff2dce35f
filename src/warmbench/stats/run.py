"""The statistics stage: scored table in, tables + figures + a JSON summary out.

``analyse`` works on any scored table (ours or one converted from the published layout);
``write_outputs`` writes RUN/stats/; ``run_stats`` is the pipeline entry point.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from ..errors import WarmbenchError
from ..layout import SCORED_COLUMNS, run_path
from ..progress import Progress
from . import figures
from .compat import compat_tables
from .general import accuracy_table
from .paired import paired_table
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
        paired = paired_table(df, baseline, arms, alpha=alpha, family=fdr_family)
        task.advance()
        coefs, effs = [], []
        for arm in arms:
            c, e, _ = run_regressions(df, baseline, arm, cluster=cluster)
            coefs.append(c)
            effs.append(e)
            task.advance()
        published = {arm: compat_tables(df, baseline, arm) for arm in arms} if compat else {}
        general = accuracy_table(df)
        task.advance()
    task.close()
    return Analysis(baseline, arms, compat, cluster, fdr_family, len(df), paired,
                    pd.concat(coefs, ignore_index=True), pd.concat(effs, ignore_index=True),
                    general, published)


def _num(x: Any, nd: int = 2) -> Any:
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else round(float(x), nd)


def _sig(x: Any) -> Any:
    """Three significant digits (p-values span many orders of magnitude)."""
    return None if x is None or math.isnan(float(x)) else float(f"{float(x):.3g}")


def _fmt(x: float | None) -> str:
    return "n/a" if x is None else f"{x:+.2f}"


def summary(a: Analysis) -> dict[str, Any]:
    """Headline numbers for the report (stats.json)."""
    comps: dict[str, Any] = {}
    headline: dict[str, str] = {}
    for arm in a.arms:
        comp = f"{arm} vs {a.baseline}"
        p = a.paired[(a.paired["comparison"] == comp) & (a.paired["level"] == "cell")]
        e = a.effects[a.effects["comparison"] == comp] if len(a.effects) else a.effects
        eff = {f"{r.model}:{r.level}": {"ame_pp": _num(r.ame_pp), "ci_low_pp": _num(r.ci_low_pp),
                                        "ci_high_pp": _num(r.ci_high_pp), "p": _sig(r.p_value),
                                        "n": int(r.n)}
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
                v = eff[key]
                # A fit that could not estimate the effect (tiny or separated data) gives None.
                headline[f"{comp}: {label}"] = (
                    "not estimable" if v["ame_pp"] is None else
                    f"{v['ame_pp']:+.2f} pp [{_fmt(v['ci_low_pp'])}, {_fmt(v['ci_high_pp'])}]")
        headline[f"{comp}: significant cells (BH, {a.fdr_family})"] = \
            f"{comps[arm]['cells_significant_bh']} of {len(p)}"
    return {"baseline": a.baseline, "arms": a.arms, "compat": a.compat, "cluster": a.cluster,
            "fdr_family": a.fdr_family, "n_rows": a.n_rows, "comparisons": comps,
            "headline": headline}


def write_outputs(a: Analysis, out_dir: str | Path, df: pd.DataFrame,
                  trajectory: Path | None = None) -> dict[str, Any]:
    """Write the CSVs, figures and stats.json under ``out_dir``; return the summary."""
    out = Path(out_dir)
    files = {
        "paired.csv": a.paired, "regressions.csv": a.coefficients,
        "marginal_effects.csv": a.effects, "general.csv": a.general,
    }
    for arm, t in a.published.items():
        files[f"results_{arm}.csv"] = t
    for name, t in files.items():
        t.to_csv(run_path(out, name), index=False)
    figdir = out / "figures"
    figs = figures.error_rates(df, [a.baseline, *a.arms], figdir)
    figs += figures.context_gap(df, a.baseline, a.arms, figdir)
    figs += figures.general(a.general, [a.baseline, *a.arms], figdir)
    if trajectory is not None:
        figs += figures.warmth_trajectory(trajectory, figdir)
    s = summary(a)
    pd.DataFrame({"quantity": list(s["headline"]), "value": list(s["headline"].values())}
                 ).to_csv(run_path(out, "headline.csv"), index=False)
    s["files"] = sorted([*files, "headline.csv"]) + [str(p.relative_to(out)) for p in figs]
    run_path(out, "stats.json").write_text(json.dumps(s, indent=2, default=str), encoding="utf-8")
    return s


def run_stats(cfg: Any, store: Any, progress: Progress | None = None) -> dict[str, Any]:
    """Pipeline stage: RUN/judge/scored.parquet -> RUN/stats/. Cheap, so always recomputed."""
    run_dir = Path(store.run_dir)
    scored = run_dir / "judge" / "scored.parquet"
    if not scored.exists():
        raise WarmbenchError(f"no scored table at {scored}: run `warmbench judge` first")
    df = pd.read_parquet(scored)
    st = cfg.stats
    a = analyse(df, baseline=st.baseline, compat=st.compat,
                cluster=None if st.compat and st.cluster == "question" else st.cluster,
                fdr_family=getattr(st, "fdr_family", None), alpha=st.alpha, progress=progress)
    s = write_outputs(a, run_dir / "stats", df, run_dir / "warmth" / "trajectory.csv")
    return {"comparisons": len(a.arms), "rows": a.n_rows, "files": len(s["files"])}
