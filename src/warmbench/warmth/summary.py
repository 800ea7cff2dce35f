"""Dataset-level warmth: means with seeded percentile-bootstrap confidence intervals."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd


def bootstrap_ci(values: Sequence[float], *, n_boot: int = 1000, level: float = 0.95,
                 seed: int = 0) -> tuple[float, float, float]:
    """(mean, low, high): percentile bootstrap over texts; NaNs (empty texts) are dropped.

    Resampling texts (not model passes) is what carries the uncertainty of a dataset mean;
    the same seed gives the same interval.
    """
    v = np.asarray(values, dtype=float)
    v = v[~np.isnan(v)]
    if len(v) == 0:
        return float("nan"), float("nan"), float("nan")
    mean = float(v.mean())
    if len(v) == 1 or n_boot <= 0:
        return mean, float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    # n_boot × n indices at once; chunked so 1000 × 100k texts stays small in memory.
    means = []
    step = max(1, 2_000_000 // len(v))
    for s in range(0, n_boot, step):
        idx = rng.integers(0, len(v), size=(min(step, n_boot - s), len(v)))
        means.append(v[idx].mean(axis=1))
    m = np.concatenate(means)
    alpha = (1 - level) / 2
    lo, hi = np.quantile(m, [alpha, 1 - alpha])
    return mean, float(lo), float(hi)


def summarise(frame: pd.DataFrame, by: Sequence[str], *, value: str = "score", n_boot: int = 1000,
              seed: int = 0, level: float = 0.95) -> pd.DataFrame:
    """One row per group: n (texts with a score), mean, ci_low, ci_high."""
    rows = []
    groups = frame.groupby(list(by), sort=True, dropna=False) if by else [((), frame)]
    for key, g in groups:
        key = key if isinstance(key, tuple) else (key,)
        vals = g[value].to_numpy(dtype=float)
        mean, lo, hi = bootstrap_ci(vals, n_boot=n_boot, seed=seed, level=level)
        rows.append({**dict(zip(by, key, strict=True)), "n": int((~np.isnan(vals)).sum()),
                     "mean": mean, "ci_low": lo, "ci_high": hi})
    return pd.DataFrame(rows, columns=[*by, "n", "mean", "ci_low", "ci_high"])
