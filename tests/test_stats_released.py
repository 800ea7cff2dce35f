"""The statistics on the study's released rows (../shared): one test per defect of issue 21.

The released sample has 1-10 answers per context and arm, so it exercises every small-sample
edge: quasi-separated cells, cells without discordant pairs, tables with no testable row. Each
analysis runs once per module (a few seconds)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
import statsmodels.formula.api as smf

from warmbench.stats.compat import compat_tables
from warmbench.stats.figures import context_gap_table
from warmbench.stats.published import read_published
from warmbench.stats.regressions import MODELS, regression_frame, run_regressions, subset_for
from warmbench.stats.run import analyse, summary


@pytest.fixture(scope="module")
def sample(shared_dir):
    return shared_dir / "reference/official_repo/sample_data"


@pytest.fixture(scope="module")
def default(sample):
    df = read_published(sample)
    return df, analyse(df)


@pytest.fixture(scope="module")
def compat(sample):
    df = read_published(sample, compat=True)
    return df, analyse(df, compat=True)


def _effect(a, model: str, level: str) -> pd.Series:
    e = a.effects
    return e[(e["model"] == model) & (e["level"] == level)].iloc[0]


def _coefs(a, model: str) -> pd.DataFrame:
    c = a.coefficients
    return c[c["model"] == model].set_index("term")


def test_1_separated_coefficients_have_no_z_p_or_ci(default, compat):
    for _, a in (default, compat):
        c = a.coefficients
        sep = c[c["separated"]]
        assert len(sep) >= 10
        # clustered SEs gave M2 emotion -27.18 "± 0.715", p = 0: blank, in every mode
        assert sep[["se", "z", "p_value", "ci_low", "ci_high"]].isna().all().all()
        assert sep["coef"].notna().all()
        assert c.loc[~c["separated"], "p_value"].notna().all()
    emo = _coefs(default[1], "M2").loc["C(amendment_group)[T.emotion]"]
    assert emo["coef"] == pytest.approx(-27.18, abs=0.01) and emo["separated"]


def test_2_no_discordant_pairs_get_an_exact_interval_not_delta_precision(default):
    _, a = default
    rc = _effect(a, "M3", "relation:close")
    # was: -1.53 pp [-5.23, +2.17] (cluster-robust delta method, 13 questions, 0 discordant)
    assert rc["n_pairs"] == 13 and rc["discordant_pairs"] == 0
    assert rc["ci_method"] == "exact paired bound (no discordant pairs)"
    u = 100 * (1 - 0.025 ** (1 / 13))
    assert rc["ci_low_pp"] == pytest.approx(-u) and rc["ci_high_pp"] == pytest.approx(u)
    assert u == pytest.approx(24.7, abs=0.05)
    assert np.isnan(rc["se_pp"]) and np.isnan(rc["p_value"])
    assert "delta-method SE is not valid" in rc["separation"]
    # effects with discordant pairs keep the delta method
    assert _effect(a, "M4", "user_opinion")["ci_method"].startswith("delta method")
    # the context-gap figure: no zero-width "95% CI" bar
    t = context_gap_table(default[0], "original", ["warm"])
    assert (t["half"] > 0).all()
    close = t[(t["pg"] == "original") & (t["context"] == "relation:close")].iloc[0]
    assert close["exact"] and close["gap"] == 0 and close["half"] == pytest.approx(u)


def test_3_separated_effects_report_their_finite_limit_and_no_se(default):
    df, a = default
    emo = _effect(a, "M2", "emotion")
    assert not emo["estimable"] and emo["ame_pp"] == 0.0
    up = _effect(a, "M3", "relation:hierarchical_up")
    assert not up["estimable"] and up["ame_pp"] == pytest.approx(15.6, abs=0.05)
    for r in (emo, up):
        assert np.isnan(r["se_pp"]) and np.isnan(r["ci_low_pp"]) and np.isnan(r["p_value"])
        assert r["separation"].startswith("no valid SE") and "finite limit" in r["separation"]
        assert "no finite effect" not in r["separation"]
    head = summary(a)["headline"]["warm vs original: error change, emotional context"]
    assert head.startswith("+0.00 pp (limit of the fit; no valid SE or CI")


def test_4_compat_paired_bh_is_the_published_table_family(compat):
    _, a = compat
    p = a.paired
    pub = compat_tables(compat[0], "original", "warm")
    ds = {"trivia": "triviaqa"}
    for r in pub.itertuples(index=False):
        ctx = r.Amendment_type.split("\n")[0]
        form = "user_belief" if r.Test_Type == "Sycophancy" else "original"
        q = p[(p["model_family"] == r.Model) & (p["dataset"] == ds.get(r.Dataset, r.Dataset))
              & (p["context"] == ctx) & (p["form"] == form)]
        assert len(q) == 1, (r.Model, r.Dataset, ctx, form)
        ours = q["p_bh"].iloc[0]
        fdr = r[9]  # "p-value (FDR corrected)"
        assert (f"{ours:.4f}" if np.isfinite(ours) else "") == (fdr if fdr != "N/A" else ""), \
            (r.Model, r.Dataset, ctx, form)
    # the case of the issue: one belief form only (disinfo relation:close, b=2, c=0)
    row = p[(p["model_family"] == "llama-70b") & (p["dataset"] == "disinfo")
            & (p["context"] == "relation:close") & (p["form"] == "user_belief")].iloc[0]
    assert (row["b"], row["c"]) == (2, 0) and row["p_bh"] == pytest.approx(0.5)


def test_5_compat_stops_irls_where_statsmodels_default_stops(default, compat):
    icpt = _coefs(compat[1], "M1").loc["Intercept"]
    assert icpt["coef"] == pytest.approx(-21.11, abs=0.005) and icpt["separated"]
    assert _coefs(default[1], "M1").loc["Intercept", "coef"] == pytest.approx(-26.11, abs=0.005)
    # the same as statsmodels' formula GLM with its default fit
    data = subset_for(MODELS[0], regression_frame(compat[0], "original", "warm"))
    ref = smf.glm("is_incorrect ~ C(is_finetuned) + C(dataset, Treatment('disinfo'))"
                  " + C(model_family)", data, family=sm.families.Binomial()).fit()
    assert icpt["coef"] == pytest.approx(ref.params["Intercept"], rel=1e-9)
    # where the MLE exists the stopping rule does not matter (same rows, tight tolerance)
    tight, _, _ = run_regressions(compat[0], "original", "warm", cluster="none")
    for model in ("M1", "M2", "M3", "M4"):
        c0 = tight[tight["model"] == model].set_index("term")
        c1 = _coefs(compat[1], model)
        ok = ~c1["separated"]
        np.testing.assert_allclose(c1.loc[ok, "coef"], c0.loc[ok, "coef"], rtol=1e-5, atol=1e-6)


def test_6_m1_dataset_marginal_effects_as_published(default, compat):
    for _, a in (default, compat):
        e = a.effects[(a.effects["model"] == "M1") & (a.effects["effect"] == "dataset")]
        got = dict(zip(e["level"], e["ame_pp"].round(2), strict=True))
        # the published script's "Dataset: X vs disinfo" lines on these rows
        assert got == {"medqa vs disinfo": 75.31, "triviaqa vs disinfo": 27.39,
                       "truthfulqa vs disinfo": 12.69}
        # disinfo is answered all-correct here: its log-odds diverge, so no valid SE
        assert (~e["estimable"]).all() and e["se_pp"].isna().all()


def test_7_no_effect_size_label_below_six_discordant_pairs(default, compat):
    p = default[1].paired
    disc = p["b"] + p["c"]
    one = p[disc == 1]
    assert len(one) > 5 and (one["cohens_g"] == 0.5).all()
    assert (one["g_label"] == "n/a (< 6 discordant pairs)").all()
    assert (p.loc[disc == 0, "g_label"] == "n/a").all()
    assert p.loc[disc >= 6, "g_label"].isin(["negligible", "small", "medium", "large"]).all()
    # the published table keeps its own label (compat reproduces it): g = 1 -> "Large"
    pub = compat[1].published["warm"]
    assert (pub.loc[pub["Cohen's g"] == "1.000", "g Effect Size"] == "Large").all()


def test_8_compat_fdr_cells_are_empty_in_tables_without_a_testable_row(compat):
    pub = compat[1].published["warm"]
    keys = ["Model", "Dataset", "Test_Type"]
    seen = 0
    for _, g in pub.groupby(keys):
        if (g["p-value"] == "N/A").all():
            seen += 1
            assert (g["p-value (FDR corrected)"] == "").all()
            assert (g["Significant (FDR)"] == "").all()
        else:
            assert (g["p-value (FDR corrected)"] != "").all()
    assert seen == 4   # qwen-32b: disinfo Sycophancy and Normal, medqa and trivia Normal


def test_discordance_and_exact_bound_by_hand():
    from warmbench.stats.intervals import discordance, exact_paired_bound

    # prompt 0 concordant, 1 discordant, 2 one arm only (no pair), 3 duplicated: first answer
    pair, arm, y = [0, 0, 1, 1, 2, 3, 3, 3], [0, 1, 0, 1, 0, 0, 1, 1], [1, 1, 0, 1, 0, 1, 0, 1]
    assert discordance(np.array(pair), np.array(arm), np.array(y)) == (3, 2)
    assert discordance(np.array([], int), np.array([], int), np.array([])) == (0, 0)
    assert exact_paired_bound(13) == pytest.approx(1 - 0.025 ** (1 / 13))
    # with k discordant of n: the Clopper-Pearson upper limit (scipy's exact binomial CI)
    from scipy.stats import binomtest

    assert exact_paired_bound(20, 0.95, 3) == pytest.approx(
        binomtest(3, 20).proportion_ci(0.95, "exact").high)
    assert exact_paired_bound(1, 0.95, 1) == 1.0 and np.isnan(exact_paired_bound(0))
