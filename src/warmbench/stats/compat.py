"""The published per-condition tables, column for column (``--compat``).

Reproduces the computation behind ``summary_data/results_warm_ft.csv`` of the study's release,
defects included, so numbers can be lined up with the paper's tables:

* pairs = inner join on (question, context, form): duplicated keys pair every-with-every;
* "Sycophancy" table: incorrect + correct forms pooled, one row per context (9 rows);
* "Normal" table: the original form per context; the unmodified row is labelled
  ``unmodified\\noriginal_combined`` and was meant to pool the neutral lead-in control, but the
  published code matches ``'original neutral'`` (space) while the data say ``original_neutral``,
  so neutral rows are dropped: reproduced here;
* "Cohen's g" = |b - c| / sqrt(b + c) (the McNemar z statistic) with labels Small < 0.2 <=
  Medium < 0.5 <= Large; odds ratio b / c (> 1 = fine-tuned worse), "∞" when c = 0;
* exact McNemar p (NaN without discordant pairs, then left out of the FDR);
* BH within each 9-row table; numbers formatted as strings with the published decimals; a table
  without a testable row has empty FDR cells (the published code adds no FDR columns to it).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from ..eval import registry
from .effects import compat_g, compat_g_label, odds_ratio
from .multiple import bh_adjust
from .paired import exact_p_vec, make_pairs

# Our dataset names -> the published file/table names.


def compat_columns(arm_label: str = "Fine-tuned") -> list[str]:
    return ["Amendment_type", "Original Accuracy (%)", f"{arm_label} Accuracy (%)", "Raw Diff (pp)",
            "Cohen's g", "g Effect Size", "Odds Ratio", "p-value", "Significant (p < 0.05)",
            "p-value (FDR corrected)", "Significant (FDR)", "Model", "Dataset", "Test_Type"]


def arm_label_for(arm: str) -> str:
    """Column label of the compared arm, as in the published files."""
    return "System Prompt" if "sys" in arm.lower() else "Fine-tuned"


def _category_rows(pairs: pd.DataFrame, category: pd.Series) -> list[dict]:
    rows = []
    for cat, g in pairs.groupby(category, sort=True):
        y0 = g["y0"].to_numpy(dtype=bool)
        y1 = g["y1"].to_numpy(dtype=bool)
        b, c = int(np.sum(y0 & ~y1)), int(np.sum(~y0 & y1))
        acc0, acc1 = 100 * y0.mean(), 100 * y1.mean()
        p = float(exact_p_vec(np.array([b]), np.array([c]))[0]) if b + c else float("nan")
        rows.append({"category": cat, "acc0": acc0, "acc1": acc1, "b": b, "c": c, "p": p})
    return rows


def _yes(x: bool) -> str:
    return "Yes" if x else "No"


def _fmt(rows: list[dict], arm_label: str, model: str, dataset: str, test_type: str) -> list[dict]:
    p = np.array([r["p"] for r in rows])
    q = bh_adjust(p)
    testable = bool(np.isfinite(p).any())
    out = []
    for r, qv in zip(rows, q, strict=True):
        g = compat_g(r["b"], r["c"])
        orr = odds_ratio(r["b"], r["c"])
        out.append({
            "Amendment_type": r["category"],
            "Original Accuracy (%)": f"{r['acc0']:.2f}",
            f"{arm_label} Accuracy (%)": f"{r['acc1']:.2f}",
            "Raw Diff (pp)": f"{r['acc1'] - r['acc0']:.2f}",
            "Cohen's g": "N/A" if math.isnan(g) else f"{g:.3f}",
            "g Effect Size": compat_g_label(g),
            "Odds Ratio": "N/A" if math.isnan(orr) else ("∞" if math.isinf(orr) else f"{orr:.2f}"),
            "p-value": "N/A" if math.isnan(r["p"]) else f"{r['p']:.4f}",
            # NaN < 0.05 is False: "No", as published
            "Significant (p < 0.05)": _yes(r["p"] < 0.05),
            # A table with no testable row has no FDR columns in the published code (empty
            # cells once the tables are concatenated); otherwise untested rows read "N/A".
            "p-value (FDR corrected)": ("" if not testable else
                                        "N/A" if math.isnan(qv) else f"{qv:.4f}"),
            # left empty for untested rows, as in the released files
            "Significant (FDR)": "" if math.isnan(qv) else _yes(qv < 0.05),
            "Model": model, "Dataset": dataset, "Test_Type": test_type,
        })
    return out


def compat_tables(df: pd.DataFrame, baseline: str, arm: str) -> pd.DataFrame:
    """Published-format rows (Sycophancy, then Normal) for every model_family x dataset."""
    label = arm_label_for(arm)
    pairs = make_pairs(df, baseline, arm, ordinal=False)
    syc_rows: list[dict] = []
    normal_rows: list[dict] = []
    for (family, dataset), g in pairs.groupby(["model_family", "dataset"], sort=True):
        ctx = g["context"].astype(str).str.strip()
        form = g["form"].astype(str).str.strip()
        spec = registry.get(dataset)
        name = (spec.published_name if spec else None) or dataset
        syc = g[form.str.contains("correct|incorrect", case=False, regex=True)]
        if len(syc):
            syc_rows += _fmt(_category_rows(syc, syc["context"].astype(str).str.strip()),
                             label, family, name, "Sycophancy")
        # the published filter, bug included: 'original neutral' never matches original_neutral
        keep = form.isin(["original", "original neutral"])
        normal = g[keep]
        if len(normal):
            group = np.where(ctx[keep] == "unmodified", "original_combined", form[keep])
            cat = ctx[keep] + "\n" + pd.Series(group, index=normal.index)
            normal_rows += _fmt(_category_rows(normal, cat), label, family, name, "Normal")
    # published order: every Sycophancy table first, then every Normal table
    return pd.DataFrame(syc_rows + normal_rows, columns=compat_columns(label))
