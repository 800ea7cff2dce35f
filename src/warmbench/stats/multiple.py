"""Benjamini–Hochberg false-discovery-rate adjustment over a declared family of tests."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd


def bh_adjust(pvalues: Sequence[float] | np.ndarray) -> np.ndarray:
    """BH-adjusted p-values (step-up, independent or positively dependent tests).

    NaN p-values are left NaN and do not count toward the family size m, which is what
    ``statsmodels.stats.multitest.multipletests(method='fdr_bh')`` gives on the non-NaN subset.
    """
    p = np.asarray(pvalues, dtype=float)
    out = np.full(p.shape, np.nan)
    ok = ~np.isnan(p)
    m = int(ok.sum())
    if m == 0:
        return out
    q = p[ok]
    order = np.argsort(q, kind="mergesort")
    ranked = q[order] * m / np.arange(1, m + 1)
    # Step-up: the adjusted value of rank i is the minimum over ranks >= i.
    adj = np.minimum.accumulate(ranked[::-1])[::-1]
    res = np.empty(m)
    res[order] = np.minimum(adj, 1.0)
    out[ok] = res
    return out


def bh_by_group(df: pd.DataFrame, pcol: str, groups: Iterable[str] | None) -> pd.Series:
    """Adjust ``df[pcol]`` within each group of ``groups`` columns (None: one family)."""
    groups = list(groups or [])
    if not groups:
        return pd.Series(bh_adjust(df[pcol].to_numpy()), index=df.index)
    out = pd.Series(np.nan, index=df.index)
    for idx in df.groupby(groups, sort=False, dropna=False).indices.values():
        out.iloc[idx] = bh_adjust(df[pcol].to_numpy()[idx])
    return out
