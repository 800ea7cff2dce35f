"""Regressions M1–M4: fits against statsmodels' formula GLM, AMEs against counterfactual
predictions, delta-method SEs against statsmodels' own margeff and a complex-step Jacobian, no
silently dropped terms, quasi-separated effects reported as not estimable.

Both sides are fitted to the same tight tolerance (``FIT_TOL``), so coefficients, SEs (model-based
and clustered) and AMEs agree to 1e-9 relative."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
import statsmodels.formula.api as smf
from scipy import stats
from statsmodels.tools.numdiff import approx_fprime_cs
from synthetic import synthetic_scored

from warmbench.errors import WarmbenchError
from warmbench.stats.regressions import (
    FIT_RTOL,
    FIT_TOL,
    FT,
    MODELS,
    fit_model,
    marginal_effect,
    regression_frame,
    run_regressions,
    subset_for,
)


@pytest.fixture(scope="module")
def scored() -> pd.DataFrame:
    return synthetic_scored({"triviaqa": 40, "medqa": 30, "disinfo": 20},
                            families=("fam-a", "fam-b"), seed=7)


@pytest.fixture(scope="module")
def frame(scored) -> pd.DataFrame:
    return regression_frame(scored, "original", "warm")


def _formula_fit(spec, data, **fit_kw):
    rhs = "C(is_finetuned, Treatment(0))"
    if spec.group:
        rhs += f" * C({spec.group}, Treatment({spec.reference!r}))"
    rhs += " + C(dataset, Treatment('disinfo')) + C(model_family)"
    return smf.glm("is_incorrect ~ " + rhs, data, family=sm.families.Binomial()).fit(
        tol=FIT_TOL, rtol=FIT_RTOL, **fit_kw)


def _our_name(patsy_name: str) -> str:
    """patsy's 'C(x, Treatment('a'))[T.b]' -> our 'C(x)[T.b]'."""
    return re.sub(r", Treatment\([^)]*\)\)", ")", patsy_name)


def _aligned(ours, ref) -> tuple[list[int], list[str]]:
    """Positions in ``ref.params`` of our columns, in our order (every term must exist)."""
    names = [_our_name(n) for n in ref.params.index]
    assert sorted(names) == sorted(ours.columns)  # same terms, none dropped
    return [names.index(c) for c in ours.columns], names


@pytest.mark.parametrize("spec", MODELS, ids=[m.name for m in MODELS])
def test_fit_matches_statsmodels_formula_glm(spec, frame):
    data = subset_for(spec, frame)
    ours = fit_model(spec, data, cluster="none")
    ref = _formula_fit(spec, data)
    idx, _ = _aligned(ours, ref)
    assert ours.result.llf == pytest.approx(ref.llf, rel=1e-12)
    np.testing.assert_allclose(ours.result.fittedvalues, ref.fittedvalues, rtol=1e-9, atol=0)
    np.testing.assert_allclose(ours.result.params, ref.params.to_numpy()[idx], rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(ours.result.bse, ref.bse.to_numpy()[idx], rtol=1e-9, atol=0)
    np.testing.assert_allclose(ours.result.pvalues, ref.pvalues.to_numpy()[idx], rtol=1e-9, atol=1e-15)


@pytest.mark.parametrize("spec", MODELS, ids=[m.name for m in MODELS])
def test_cluster_se_matches_statsmodels(spec, frame):
    data = subset_for(spec, frame)
    ours = fit_model(spec, data, cluster="question")
    groups = pd.factorize(data["cluster"])[0]
    ref = _formula_fit(spec, data, cov_type="cluster", cov_kwds={"groups": groups})
    idx, _ = _aligned(ours, ref)
    np.testing.assert_allclose(ours.result.params, ref.params.to_numpy()[idx], rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(ours.result.bse, ref.bse.to_numpy()[idx], rtol=1e-9, atol=0)
    assert ours.n_clusters == data["cluster"].nunique()
    assert ours.cov_type == "cluster(question)"


@pytest.mark.parametrize("spec", MODELS, ids=[m.name for m in MODELS])
def test_ame_equals_counterfactual_predictions(spec, frame):
    data = subset_for(spec, frame)
    fit = fit_model(spec, data, cluster="none")
    ref = _formula_fit(spec, data)
    levels = ["all"] + (sorted(data[spec.group].unique()) if spec.group else [])
    for lv in levels:
        rows = np.ones(len(data), bool) if lv == "all" else (data[spec.group] == lv).to_numpy()
        sub = data[rows]
        want = (ref.predict(sub.assign(is_finetuned=1)) - ref.predict(sub.assign(is_finetuned=0))).mean()
        got = marginal_effect(fit, rows)
        assert got["ame_pp"] == pytest.approx(100 * want, rel=1e-9, abs=1e-12)
        assert got["ci_low_pp"] < got["ame_pp"] < got["ci_high_pp"]
        assert got["estimable"] and got["separation"] == ""


def _sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))  # complex-safe, unlike scipy's expit


@pytest.mark.parametrize("spec", MODELS, ids=[m.name for m in MODELS])
def test_clustered_ame_se_matches_complex_step_delta_method(spec, frame):
    """Independent of our code: patsy's counterfactual design, statsmodels' cluster covariance,
    and the Jacobian of the AME by complex-step differentiation (exact to rounding)."""
    import patsy

    data = subset_for(spec, frame)
    fit = fit_model(spec, data, cluster="question")
    ref = _formula_fit(spec, data, cov_type="cluster",
                       cov_kwds={"groups": pd.factorize(data["cluster"])[0]})
    info = ref.model.data.model_spec  # patsy DesignInfo of the fitted formula
    beta, cov = ref.params.to_numpy(), ref.cov_params().to_numpy()
    levels = ["all"] + (sorted(data[spec.group].unique()) if spec.group else [])
    for lv in levels:
        rows = np.ones(len(data), bool) if lv == "all" else (data[spec.group] == lv).to_numpy()
        sub = data[rows]
        x1 = np.asarray(patsy.dmatrix(info, sub.assign(is_finetuned=1)))
        x0 = np.asarray(patsy.dmatrix(info, sub.assign(is_finetuned=0)))

        def ame(b, x1=x1, x0=x0):
            return np.mean(_sigmoid(x1 @ b) - _sigmoid(x0 @ b))

        jac = approx_fprime_cs(beta, ame)
        se = float(np.sqrt(jac @ cov @ jac))
        got = marginal_effect(fit, rows)
        assert got["ame_pp"] == pytest.approx(100 * ame(beta), rel=1e-9), lv
        assert got["se_pp"] == pytest.approx(100 * se, rel=1e-9), lv
        z = stats.norm.ppf(0.975)
        assert got["ci_high_pp"] - got["ci_low_pp"] == pytest.approx(2 * z * 100 * se, rel=1e-9)
        assert got["p_value"] == pytest.approx(2 * stats.norm.sf(abs(ame(beta)) / se), rel=1e-9)


def test_ame_delta_se_matches_statsmodels_margeff(frame):
    data = subset_for(MODELS[0], frame)
    fit = fit_model(MODELS[0], data, cluster="none")
    logit = sm.Logit(data["is_incorrect"].to_numpy(), fit.X).fit(disp=0, method="newton", tol=1e-12)
    me = logit.get_margeff(at="overall", dummy=True)
    j = fit.columns.index(FT) - 1  # margeff leaves out the constant
    got = marginal_effect(fit, np.ones(len(data), bool))
    assert got["ame_pp"] == pytest.approx(100 * me.margeff[j], rel=1e-9)
    # margeff differentiates numerically (forward differences): its SE is good to ~1e-6 only;
    # the exact check of our delta method is the complex-step test above
    assert got["se_pp"] == pytest.approx(100 * me.margeff_se[j], rel=1e-5)


def test_every_reported_effect_uses_existing_terms(scored):
    coefs, effects, fits = run_regressions(scored, "original", "warm")
    assert {f.spec.name for f in fits} == {"M1", "M2", "M3", "M4"}
    by_model = {f.spec.name: set(f.params.index) for f in fits}
    # M1: overall + the published dataset contrasts (medqa, triviaqa vs disinfo)
    assert len(effects) == 1 + 2 + 5 + 10 + 3
    ds = effects[effects["effect"] == "dataset"]
    assert list(ds["level"]) == ["medqa vs disinfo", "triviaqa vs disinfo"]
    assert (ds["model"] == "M1").all() and ds["ame_pp"].notna().all()
    for row in effects[effects["effect"] == "arm"].itertuples():
        terms = row.terms.split(";")
        assert FT in terms
        assert set(terms) <= by_model[row.model], (row.model, row.level)
        if row.level not in ("all", "unmodified", "original"):
            # the sub-group's interaction term is part of its effect (the M4 user-belief
            # effect in particular, which the published script silently dropped)
            assert any(t.endswith(f"[T.{row.level}]") for t in terms), (row.model, row.level)
    for f in fits:
        assert set(coefs.loc[coefs["model"] == f.spec.name, "term"]) == by_model[f.spec.name]
    m4 = effects[(effects["model"] == "M4") & (effects["level"] == "user_opinion")]
    assert len(m4) == 1 and np.isfinite(m4["ame_pp"].iloc[0])


def test_persona_effect_is_recovered():
    df = synthetic_scored({"triviaqa": 150, "disinfo": 60}, persona_logit=0.6, seed=1)
    _, eff, _ = run_regressions(df, "original", "warm")
    m1 = eff[(eff["model"] == "M1") & (eff["level"] == "all")].iloc[0]
    assert m1["ci_low_pp"] > 0  # warm errs more
    m4 = eff[eff["model"] == "M4"].set_index("level")
    assert m4.loc["user_opinion", "ame_pp"] > m4.loc["original", "ame_pp"]


def test_single_level_factor_is_left_out(frame):
    data = subset_for(MODELS[0], frame)
    one = data[data["model_family"] == "fam-a"].reset_index(drop=True)
    fit = fit_model(MODELS[0], one)
    assert not any(c.startswith("C(model_family)") for c in fit.columns)
    assert "C(model_family)" not in fit.formula


def test_unidentified_interaction_raises_instead_of_dropping(frame):
    spec = MODELS[1]
    data = subset_for(spec, frame)
    # no fine-tuned answers in emotional contexts: that interaction cannot be estimated
    data = data[~((data["amendment_group"] == "emotion") & (data["is_finetuned"] == 1))]
    fit = fit_model(spec, data.reset_index(drop=True))
    assert any("emotion" in d for d in fit.dropped)
    from warmbench.stats.regressions import effects

    with pytest.raises(WarmbenchError, match="amendment_group=emotion"):
        effects(fit)


@pytest.fixture(autouse=True)
def _one_blas_thread():
    # the reference statsmodels fits in this module are slow with oversubscribed BLAS threads
    from warmbench.stats.regressions import single_thread_blas

    with single_thread_blas():
        yield


def _separated_emotion(scored: pd.DataFrame, arms: tuple[str, ...] = ("original", "warm")) -> pd.DataFrame:
    """Every original-form answer in an emotional context correct, in the given arms."""
    df = scored.copy()
    m = (df["context"].str.startswith("emotion") & df["form"].isin(["original", "original_neutral"])
         & df["arm"].isin(arms))
    df.loc[m, "is_correct"] = 1.0
    return df


def test_quasi_separated_cell_is_not_estimable_not_a_precise_zero(scored):
    coefs, eff, _ = run_regressions(_separated_emotion(scored), "original", "warm")
    m2 = eff[eff["model"] == "M2"].set_index("level")
    emo = m2.loc["emotion"]
    # the fit's AME here is ~1e-10 with an SE of ~1e-10: it must not be reported as 0 ± 0.
    # Its limit on the pp scale is exactly 0 (both arms right everywhere): that is reported,
    # with no SE, CI or test
    assert not emo["estimable"] and emo["ame_pp"] == 0.0
    for col in ("se_pp", "ci_low_pp", "ci_high_pp", "p_value", "logodds"):
        assert np.isnan(emo[col]), col
    assert emo["ci_method"] == "none (no valid SE)"
    assert emo["separation"].startswith("no valid SE") and "all" in emo["separation"]
    assert "no finite effect" not in emo["separation"] and "finite limit" in emo["separation"]
    assert "baseline arm" in emo["separation"] and "compared arm" in emo["separation"]
    # the other levels are untouched; the pooled effect says some of its rows are degenerate
    for lv in ("relation", "stake", "unmodified"):
        assert m2.loc[lv, "estimable"] and np.isfinite(m2.loc[lv, "ame_pp"])
    assert m2.loc["all", "estimable"] and "fitted probabilities at 0/1" in m2.loc["all", "separation"]
    m3 = eff[eff["model"] == "M3"].set_index("level")
    assert not m3.loc[[lv for lv in m3.index if lv.startswith("emotion")], "estimable"].any()
    # the diverging coefficient is flagged in regressions.csv
    c = coefs[coefs["model"] == "M2"].set_index("term")
    assert c.loc["C(amendment_group)[T.emotion]", "separated"]
    assert abs(c.loc["C(amendment_group)[T.emotion]", "coef"]) > 10
    # ...with no SE, z, p or CI: they are artefacts of where IRLS stopped
    assert c.loc[c["separated"], ["se", "z", "p_value", "ci_low", "ci_high"]].isna().all().all()
    assert not c.loc[FT, "separated"] and np.isfinite(c.loc[FT, "p_value"])


def test_one_arm_separated_is_not_estimable(scored):
    # only the baseline is all-correct in emotional contexts: the persona's error rate there is
    # finite but the baseline's log-odds diverge, so the Wald/delta-method CI is meaningless
    _, eff, _ = run_regressions(_separated_emotion(scored, ("original",)), "original", "warm")
    df = _separated_emotion(scored, ("original",))
    emo = eff[(eff["model"] == "M2") & (eff["level"] == "emotion")].iloc[0]
    assert not emo["estimable"] and np.isnan(emo["se_pp"]) and np.isnan(emo["ci_low_pp"])
    assert "baseline arm: all" in emo["separation"] and "compared arm" not in emo["separation"]
    # the limit: baseline error 0, so the AME tends to the persona's fitted error rate there,
    # which the score equation of its interaction term pins to the observed rate
    arm = df[(df["arm"] == "warm") & df["context"].str.startswith("emotion")
             & df["form"].isin(["original", "original_neutral"])]
    assert emo["ame_pp"] == pytest.approx(100 * (1 - arm["is_correct"].mean()), abs=1e-4)


def test_arms_that_agree_give_zero_not_a_noise_p_value(scored):
    # the persona answers exactly as the original in emotional contexts: AME 0 and cluster SE 0
    # up to rounding (~1e-14 ± 1e-8, or a variance of -1e-20); their ratio must not become a
    # p-value (the quickstart printed p = 0.19 for such a 0 ± 1e-14)
    df = scored.copy()
    key = ["model_family", "dataset", "item_id", "prompt_key"]
    orig = df[df["arm"] == "original"].set_index(key)["is_correct"]
    m = (df["arm"] == "warm") & df["context"].str.startswith("emotion")
    df.loc[m, "is_correct"] = orig.reindex(pd.MultiIndex.from_frame(df.loc[m, key])).to_numpy()
    _, eff, _ = run_regressions(df, "original", "warm")
    emo = eff[eff["level"].str.startswith("emotion")]
    assert len(emo) == 4  # M2 emotion, M3 anger / happy / sad
    # every pair concordant: AME 0, no test, and not a zero-width CI but the exact bound on the
    # paired difference, [-u, +u] with u = 1 - 0.025^(1/n) for n paired prompts
    assert (emo["ame_pp"] == 0).all() and emo["se_pp"].isna().all()
    assert emo["p_value"].isna().all() and emo["estimable"].all()
    assert (emo["discordant_pairs"] == 0).all()
    u = 100 * (1 - 0.025 ** (1 / emo["n_pairs"]))
    assert np.allclose(emo["ci_high_pp"], u) and np.allclose(emo["ci_low_pp"], -u)
    assert (emo["ci_method"] == "exact paired bound (no discordant pairs)").all()
    assert emo["separation"].str.startswith("no discordant pairs").all()
    # a level where the arms differ keeps its test
    rel = eff[(eff["model"] == "M2") & (eff["level"] == "relation")].iloc[0]
    assert rel["se_pp"] > 0.1 and np.isfinite(rel["p_value"])


def test_not_estimable_in_headline_and_cli(scored, tmp_path):
    from typer.testing import CliRunner

    from warmbench.cli import app
    from warmbench.stats.run import analyse, summary

    df = _separated_emotion(scored)
    s = summary(analyse(df))
    head = s["headline"]["warm vs original: error change, emotional context"]
    assert head.startswith("+0.00 pp (limit of the fit; no valid SE or CI") and "[" not in head
    e = s["comparisons"]["warm"]["effects"]["M2:emotion"]
    assert e["estimable"] is False and e["ame_pp"] == 0.0 and e["ci_low_pp"] is None
    run = tmp_path / "run"
    (run / "judge").mkdir(parents=True)
    df.to_parquet(run / "judge" / "scored.parquet", index=False)
    r = CliRunner().invoke(app, ["stats", str(run)], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    assert "(limit)" in r.output
    assert "+0.00 pp [-0.00, +0.00]" not in r.output
    me = pd.read_csv(run / "stats" / "marginal_effects.csv")
    row = me[(me["model"] == "M2") & (me["level"] == "emotion")].iloc[0]
    assert not row["estimable"] and row["ame_pp"] == 0 and np.isnan(row["ci_low_pp"])


def test_one_question_falls_back_to_model_based_errors(frame):
    """A cluster-robust covariance needs two clusters: one question gets model-based SEs,
    labelled as such, instead of a ZeroDivisionError that would stop the analysis."""
    data = subset_for(MODELS[0], frame)
    first = data["cluster"].iloc[0]
    one = data[data["cluster"] == first].reset_index(drop=True)
    fit = fit_model(MODELS[0], one, cluster="question")
    assert fit.cov_type == "model-based (one question: cannot cluster)" and fit.n_clusters == 1
    ref = fit_model(MODELS[0], one, cluster="none")
    assert np.allclose(fit.result.bse, ref.result.bse, rtol=1e-12)
