"""General-capability benchmarks (MMLU, GSM8K, AdvBench): accuracy per arm with a 95% CI.

AdvBench's "accuracy" is the rate of correct behaviour as scored upstream (refusing a harmful
request counts as correct). CIs are Wilson score intervals, which keep their coverage near 0 and
100% (the published table's asymmetric intervals look bootstrapped; they are not reproduced).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

GENERAL_COLUMNS = ["model_family", "dataset", "arm", "n", "correct", "accuracy_pct",
                   "ci_low_pct", "ci_high_pct"]


def wilson(k: np.ndarray, n: np.ndarray, level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score interval for k successes in n trials (vectorised; NaN where n = 0)."""
    k = np.asarray(k, float)
    n = np.asarray(n, float)
    z = stats.norm.ppf(0.5 + level / 2)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = k / n
        denom = 1 + z**2 / n
        centre = (p + z**2 / (2 * n)) / denom
        half = z * np.sqrt(p * (1 - p) / n + z**2 / (4 * n**2)) / denom
    # Exact arithmetic puts the bounds in [0, 1] around p; rounding can leave a 1e-15 sliver
    # outside (k = 0 gave a lower bound of 5.6e-15 > p), which plotting code rejects.
    lo = np.minimum(np.clip(centre - half, 0.0, 1.0), p)
    hi = np.maximum(np.clip(centre + half, 0.0, 1.0), p)
    return lo, hi


def general_sets() -> tuple[str, ...]:
    """The general-capability and safety sets (built-in and custom), asked once each."""
    from ..eval import registry

    return registry.in_family("general", "safety")


def accuracy_table(df: pd.DataFrame, datasets: tuple[str, ...] | None = None) -> pd.DataFrame:
    """Accuracy with Wilson CI per model_family x dataset x arm (excluded rows left out)."""
    d = df[df["dataset"].isin(general_sets() if datasets is None else datasets)].dropna(subset=["is_correct"])
    if d.empty:
        return pd.DataFrame(columns=GENERAL_COLUMNS)
    g = d.groupby(["model_family", "dataset", "arm"], sort=True)["is_correct"]
    t = g.agg(n="size", correct="sum").reset_index()
    t["correct"] = t["correct"].astype(int)
    lo, hi = wilson(t["correct"].to_numpy(), t["n"].to_numpy())
    t["accuracy_pct"] = 100 * t["correct"] / t["n"]
    t["ci_low_pct"], t["ci_high_pct"] = 100 * lo, 100 * hi
    return t[GENERAL_COLUMNS]
