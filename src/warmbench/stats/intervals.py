"""Intervals for paired differences where the delta method has nothing to work with.

When every paired prompt of a cell gets the same verdict from both arms (no discordant pairs),
the paired difference in error rates is exactly 0 in the sample, and any standard error built
from the data's spread is 0 or borrowed from other cells: a "95% CI" of zero width, or the
regression's spuriously narrow cluster-robust interval. A valid interval still exists.

Exact bound. With n pairs, let pi be the probability that a pair is discordant and D the paired
difference in error rates (arm minus baseline). Then |D| <= pi, and with 0 discordant pairs of n
the exact (Clopper-Pearson) two-sided 1 - alpha interval of pi is [0, 1 - (alpha/2)^(1/n)]. So
[-u, +u] with u = 1 - (alpha/2)^(1/n) covers D with probability >= 1 - alpha: an exact,
conservative interval (13 pairs: +-24.7 pp; 100 pairs: +-3.6 pp).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats


def exact_paired_bound(n_pairs: int, level: float = 0.95, discordant: int = 0) -> float:
    """u (a proportion) of the exact interval [-u, +u] for a paired difference with
    ``discordant`` discordant pairs among ``n_pairs`` (the Clopper-Pearson upper limit of the
    discordant proportion; closed form for 0); NaN without pairs. Valid for any count, and
    what a small cell gets when no normal approximation applies."""
    if n_pairs <= 0:
        return float("nan")
    alpha = 1.0 - level
    if discordant <= 0:
        return float(1.0 - (alpha / 2.0) ** (1.0 / n_pairs))
    if discordant >= n_pairs:
        return 1.0
    return float(stats.beta.ppf(1 - alpha / 2, discordant + 1, n_pairs - discordant))


def discordance(pair: pd.Series | np.ndarray, arm: pd.Series | np.ndarray,
                y: pd.Series | np.ndarray) -> tuple[int, int]:
    """(complete pairs, discordant pairs) of a long table: ``pair`` an integer prompt code,
    ``arm`` 0/1 (baseline / compared), ``y`` the outcome. A code answered by one arm only is not
    a pair; a code answered twice by one arm uses its first answer. NumPy only: it runs once per
    reported effect, over up to the whole table."""
    p, a = np.asarray(pair, dtype=np.int64), np.asarray(arm, dtype=np.int64)
    yv = np.asarray(y)
    if p.size == 0:
        return 0, 0
    keys, first = np.unique(p * 2 + a, return_index=True)   # sorted: arm 0 before arm 1
    code, side, out = keys // 2, keys % 2, yv[first]
    both = (code[:-1] == code[1:]) & (side[:-1] == 0) & (side[1:] == 1)
    return int(both.sum()), int(np.sum(out[:-1][both] != out[1:][both]))
