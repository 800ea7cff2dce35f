"""An independent McNemar implementation the tests check ``warmbench.stats`` against.

Notation used everywhere in ``warmbench.stats`` (one pair = the same prompt answered by the
baseline arm and by the compared arm):

* ``b`` = baseline correct, compared arm wrong   (the persona lost the answer)
* ``c`` = baseline wrong,   compared arm correct (the persona gained the answer)

Under H0 (no difference) the discordant count ``b`` is Binomial(b + c, 1/2). The exact test is
the two-sided binomial test on it; the mid-p variant subtracts half the probability of the
observed table from each tail, which removes most of the exact test's conservatism
(Fagerland, Lydersen & Laake 2013, BMC Med Res Methodol 13:91).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats


@dataclass(frozen=True)
class PairCounts:
    """2x2 table of paired outcomes; n = a + b + c + d pairs."""

    a: int  # both correct
    b: int  # baseline only correct
    c: int  # compared arm only correct
    d: int  # both wrong

    @property
    def n(self) -> int:
        return self.a + self.b + self.c + self.d

    @property
    def discordant(self) -> int:
        return self.b + self.c

    @property
    def acc_baseline(self) -> float:
        return (self.a + self.b) / self.n if self.n else float("nan")

    @property
    def acc_arm(self) -> float:
        return (self.a + self.c) / self.n if self.n else float("nan")


def pair_counts(baseline: np.ndarray, arm: np.ndarray) -> PairCounts:
    """Count the 2x2 table from two aligned 0/1 arrays (NaN-free)."""
    x = np.asarray(baseline, dtype=bool)
    y = np.asarray(arm, dtype=bool)
    if x.shape != y.shape:
        raise ValueError(f"paired arrays differ in length: {x.shape} vs {y.shape}")
    return PairCounts(a=int(np.sum(x & y)), b=int(np.sum(x & ~y)),
                      c=int(np.sum(~x & y)), d=int(np.sum(~x & ~y)))


def mcnemar_exact(b: int, c: int) -> float:
    """Two-sided exact McNemar p-value: binomial test of b successes in b + c trials at p = 1/2.

    With no discordant pairs there is no evidence of a difference: p = 1.
    """
    n = b + c
    if n == 0:
        return 1.0
    return float(stats.binomtest(b, n, 0.5, alternative="two-sided").pvalue)


def mcnemar_midp(b: int, c: int) -> float:
    """Mid-p McNemar: 2 * (P(X <= k) - P(X = k) / 2) with k = min(b, c), X ~ Bin(b + c, 1/2).

    Equals the exact p-value minus the point probability of the observed table, and is 1 when
    b == c (the distribution is symmetric around k then).
    """
    n = b + c
    if n == 0:
        return 1.0
    k = min(b, c)
    p = 2.0 * stats.binom.cdf(k, n, 0.5) - stats.binom.pmf(k, n, 0.5)
    return float(min(1.0, p))
