"""Effect sizes for paired binary outcomes (see ``mcnemar`` for the b / c notation).

* Cohen's g = max(b, c) / (b + c) - 0.5: how far the split of discordant pairs is from 50:50
  (Cohen 1988, ch. 5). Conventional labels: negligible < 0.05 <= small < 0.15 <= medium < 0.25
  <= large.
* Conditional (McNemar) odds ratio OR = b / c. Direction: OR > 1 means the compared arm
  (persona) is *worse* than the baseline; this is also the published direction. Its exact 95%
  CI comes from the Clopper–Pearson interval [pL, pU] of p = b / (b + c), mapped through
  OR = p / (1 - p) (monotone, so the interval carries over exactly).
* ``compat_g``: the published "Cohen's g", which is really the McNemar z statistic
  |b - c| / sqrt(b + c), with the published labels (Small < 0.2, Medium < 0.5, Large).
"""

from __future__ import annotations

import math

import numpy as np
from scipy import stats


def cohens_g(b: int, c: int) -> float:
    n = b + c
    return max(b, c) / n - 0.5 if n else float("nan")


def g_label(g: float) -> str:
    if math.isnan(g):
        return "n/a"
    if g < 0.05:
        return "negligible"
    if g < 0.15:
        return "small"
    if g < 0.25:
        return "medium"
    return "large"


def compat_g(b: int, c: int) -> float:
    n = b + c
    return abs(b - c) / math.sqrt(n) if n else float("nan")


def compat_g_label(g: float) -> str:
    if math.isnan(g):
        return "N/A"
    if g < 0.2:
        return "Small"
    if g < 0.5:
        return "Medium"
    return "Large"


def odds_ratio(b: int, c: int) -> float:
    """b / c; inf when only b > 0, NaN when there are no discordant pairs."""
    if c > 0:
        return b / c
    return math.inf if b > 0 else float("nan")


def _p_to_or(p: float) -> float:
    return math.inf if p >= 1.0 else p / (1.0 - p)


def odds_ratio_ci(b: int, c: int, level: float = 0.95) -> tuple[float, float]:
    """Exact (Clopper–Pearson based) CI of the conditional odds ratio b / c."""
    n = b + c
    if n == 0:
        return float("nan"), float("nan")
    ci = stats.binomtest(b, n, 0.5).proportion_ci(confidence_level=level, method="exact")
    return _p_to_or(ci.low), _p_to_or(ci.high)


def odds_ratio_ci_vec(b: np.ndarray, c: np.ndarray, level: float = 0.95
                      ) -> tuple[np.ndarray, np.ndarray]:
    """Vectorised ``odds_ratio_ci`` via the beta-quantile form of Clopper–Pearson
    (identical limits; scipy's root-finding version is slow over thousands of rows)."""
    b = np.asarray(b, float)
    n = b + np.asarray(c, float)
    alpha = 1 - level
    with np.errstate(invalid="ignore", divide="ignore"):
        pl = np.where(b > 0, stats.beta.ppf(alpha / 2, b, n - b + 1), 0.0)
        pu = np.where(b < n, stats.beta.ppf(1 - alpha / 2, b + 1, n - b), 1.0)
        lo = np.where(pl >= 1, np.inf, pl / (1 - pl))
        hi = np.where(pu >= 1, np.inf, pu / (1 - pu))
    none = n == 0
    return np.where(none, np.nan, lo), np.where(none, np.nan, hi)
