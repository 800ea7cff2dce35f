"""McNemar, mid-p, BH, effect sizes and odds-ratio CIs against scipy / statsmodels."""

from __future__ import annotations

import math

import numpy as np
import pytest
from mcnemar_reference import mcnemar_exact, mcnemar_midp, pair_counts
from scipy import stats
from statsmodels.stats.contingency_tables import mcnemar as sm_mcnemar
from statsmodels.stats.multitest import multipletests

from warmbench.stats.effects import (
    cohens_g,
    compat_g,
    compat_g_label,
    g_label,
    odds_ratio,
    odds_ratio_ci,
)
from warmbench.stats.multiple import bh_adjust, bh_by_group
from warmbench.stats.paired import exact_p_vec, midp_vec

TABLES = [(0, 1), (1, 0), (3, 9), (9, 3), (7, 7), (0, 12), (25, 40), (130, 98), (1, 1), (501, 420)]


@pytest.mark.parametrize(("b", "c"), TABLES)
def test_exact_p_matches_scipy_binomtest_and_statsmodels(b, c):
    ref = stats.binomtest(b, b + c, 0.5).pvalue
    assert mcnemar_exact(b, c) == pytest.approx(ref, abs=1e-9)
    assert exact_p_vec(np.array([b]), np.array([c]))[0] == pytest.approx(ref, abs=1e-9)
    sm = sm_mcnemar([[10, b], [c, 5]], exact=True).pvalue
    assert mcnemar_exact(b, c) == pytest.approx(sm, abs=1e-9)


@pytest.mark.parametrize(("b", "c"), TABLES)
def test_midp_is_exact_minus_point_probability(b, c):
    n, k = b + c, min(b, c)
    # mid-p: each tail counts the observed table's probability by half
    ref = 2 * (stats.binom.cdf(k, n, 0.5) - 0.5 * stats.binom.pmf(k, n, 0.5))
    assert mcnemar_midp(b, c) == pytest.approx(min(1.0, ref), abs=1e-9)
    assert midp_vec(np.array([b]), np.array([c]))[0] == pytest.approx(min(1.0, ref), abs=1e-9)
    assert mcnemar_midp(b, c) <= mcnemar_exact(b, c) + 1e-15
    if b == c:
        assert mcnemar_midp(b, c) == pytest.approx(1.0, abs=1e-12)


def test_no_discordant_pairs_gives_p_one():
    assert mcnemar_exact(0, 0) == 1.0
    assert mcnemar_midp(0, 0) == 1.0
    assert math.isnan(cohens_g(0, 0)) and g_label(float("nan")) == "n/a"
    assert math.isnan(odds_ratio(0, 0))


def test_pair_counts():
    x = np.array([1, 1, 0, 0, 1, 0, 1])
    y = np.array([1, 0, 1, 0, 0, 0, 1])
    pc = pair_counts(x, y)
    assert (pc.a, pc.b, pc.c, pc.d, pc.n) == (2, 2, 1, 2, 7)
    assert pc.acc_baseline == pytest.approx(4 / 7) and pc.acc_arm == pytest.approx(3 / 7)


def test_bh_matches_statsmodels():
    rng = np.random.default_rng(3)
    for m in (1, 2, 9, 57, 400):
        p = np.concatenate([rng.uniform(0, 0.02, m // 3), rng.uniform(0, 1, m - m // 3)])
        rng.shuffle(p)
        p[: min(2, m)] = p[0]  # ties
        ref = multipletests(p, method="fdr_bh")[1]
        np.testing.assert_allclose(bh_adjust(p), ref, rtol=0, atol=1e-12)


def test_bh_ignores_nan_and_groups():
    import pandas as pd

    p = np.array([0.01, np.nan, 0.04, 0.03, 0.5])
    out = bh_adjust(p)
    assert np.isnan(out[1])
    ref = multipletests(p[~np.isnan(p)], method="fdr_bh")[1]
    np.testing.assert_allclose(out[~np.isnan(p)], ref, atol=1e-12)
    df = pd.DataFrame({"g": ["x", "x", "y", "y", "y"], "p": [0.01, 0.02, 0.01, 0.04, 0.03]})
    q = bh_by_group(df, "p", ["g"])
    np.testing.assert_allclose(q[:2], multipletests([0.01, 0.02], method="fdr_bh")[1])
    np.testing.assert_allclose(q[2:], multipletests([0.01, 0.04, 0.03], method="fdr_bh")[1])


@pytest.mark.parametrize(("b", "c", "g", "label"), [
    (10, 10, 0.0, "negligible"), (52, 48, 0.02, "negligible"), (11, 9, 0.05, "small"),
    (6, 4, 0.1, "small"), (13, 7, 0.15, "medium"), (3, 7, 0.2, "medium"),
    (15, 5, 0.25, "large"), (0, 12, 0.5, "large"),
])
def test_cohens_g_and_labels(b, c, g, label):
    assert cohens_g(b, c) == pytest.approx(g, abs=1e-12)
    assert g_label(cohens_g(b, c)) == label


def test_compat_g_is_mcnemar_z_with_published_labels():
    assert compat_g(9, 3) == pytest.approx(6 / math.sqrt(12), abs=1e-12)
    # the z statistic's square is the (uncorrected) McNemar chi-square of statsmodels
    chi2 = sm_mcnemar([[1, 9], [3, 1]], exact=False, correction=False).statistic
    assert compat_g(9, 3) ** 2 == pytest.approx(chi2, abs=1e-9)
    assert [compat_g_label(x) for x in (0.1, 0.2, 0.49, 0.5, 3.0)] == \
        ["Small", "Medium", "Medium", "Large", "Large"]


@pytest.mark.parametrize(("b", "c"), [(9, 3), (3, 9), (1, 20), (40, 33), (5, 0), (0, 5)])
def test_odds_ratio_and_exact_ci(b, c):
    orr = odds_ratio(b, c)
    assert (orr == math.inf) if c == 0 else orr == pytest.approx(b / c)
    lo, hi = odds_ratio_ci(b, c)
    # Clopper–Pearson limits of b/(b+c) from beta quantiles, mapped to p/(1-p)
    n = b + c
    pl = stats.beta.ppf(0.025, b, n - b + 1) if b > 0 else 0.0
    pu = stats.beta.ppf(0.975, b + 1, n - b) if b < n else 1.0
    assert lo == pytest.approx(pl / (1 - pl), rel=1e-9, abs=1e-12)
    if pu < 1:
        assert hi == pytest.approx(pu / (1 - pu), rel=1e-9)
    else:
        assert hi == math.inf
    assert lo <= orr <= hi


def test_vectorised_or_ci_matches_scipy_root_finding():
    from warmbench.stats.effects import odds_ratio_ci_vec

    bs = np.array([0, 1, 3, 9, 40, 5, 0, 7])
    cs = np.array([4, 0, 9, 3, 33, 5, 0, 1])
    lo, hi = odds_ratio_ci_vec(bs, cs)
    for i, (b, c) in enumerate(zip(bs, cs, strict=True)):
        ref = odds_ratio_ci(int(b), int(c))
        if b + c == 0:
            assert np.isnan(lo[i]) and np.isnan(hi[i])
            continue
        for got, want in ((lo[i], ref[0]), (hi[i], ref[1])):
            assert got == want if math.isinf(want) else got == pytest.approx(want, rel=1e-8, abs=1e-12)
