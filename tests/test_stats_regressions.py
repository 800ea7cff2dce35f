"""Regressions M1–M4: fits against statsmodels' formula GLM, AMEs against counterfactual
predictions, delta-method SEs against statsmodels' own margeff, no silently dropped terms."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
import statsmodels.formula.api as smf

from warmbench.errors import WarmbenchError
from warmbench.stats.regressions import (
    FT,
    MODELS,
    fit_model,
    marginal_effect,
    regression_frame,
    run_regressions,
    subset_for,
)
from warmbench.stats.synthetic import synthetic_scored


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
    return smf.glm("is_incorrect ~ " + rhs, data, family=sm.families.Binomial()).fit(**fit_kw)


@pytest.mark.parametrize("spec", MODELS, ids=[m.name for m in MODELS])
def test_fit_matches_statsmodels_formula_glm(spec, frame):
    data = subset_for(spec, frame)
    ours = fit_model(spec, data, cluster="none")
    ref = _formula_fit(spec, data)
    assert ours.result.llf == pytest.approx(ref.llf, rel=1e-9)
    np.testing.assert_allclose(ours.result.fittedvalues, ref.fittedvalues, rtol=0, atol=1e-9)
    ft_ref = "C(is_finetuned, Treatment(0))[T.1]"
    assert ours.params[FT] == pytest.approx(ref.params[ft_ref], rel=1e-8)
    assert ours.result.bse[ours.columns.index(FT)] == pytest.approx(ref.bse[ft_ref], rel=1e-7)
    assert len(ours.columns) == len(ref.params)  # same terms, none dropped


def test_cluster_se_matches_statsmodels(frame):
    spec = MODELS[1]
    data = subset_for(spec, frame)
    ours = fit_model(spec, data, cluster="question")
    groups = pd.factorize(data["cluster"])[0]
    ref = _formula_fit(spec, data, cov_type="cluster", cov_kwds={"groups": groups})
    ft_ref = "C(is_finetuned, Treatment(0))[T.1]"
    assert ours.result.bse[ours.columns.index(FT)] == pytest.approx(ref.bse[ft_ref], rel=1e-7)
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
        assert got["ame_pp"] == pytest.approx(100 * want, abs=1e-7)
        assert got["ci_low_pp"] < got["ame_pp"] < got["ci_high_pp"]


def test_ame_delta_se_matches_statsmodels_margeff(frame):
    data = subset_for(MODELS[0], frame)
    fit = fit_model(MODELS[0], data, cluster="none")
    logit = sm.Logit(data["is_incorrect"].to_numpy(), fit.X).fit(disp=0, method="newton", tol=1e-12)
    me = logit.get_margeff(at="overall", dummy=True)
    j = fit.columns.index(FT) - 1  # margeff leaves out the constant
    got = marginal_effect(fit, np.ones(len(data), bool))
    assert got["ame_pp"] == pytest.approx(100 * me.margeff[j], rel=1e-7)
    assert got["se_pp"] == pytest.approx(100 * me.margeff_se[j], rel=1e-5)


def test_every_reported_effect_uses_existing_terms(scored):
    coefs, effects, fits = run_regressions(scored, "original", "warm")
    assert {f.spec.name for f in fits} == {"M1", "M2", "M3", "M4"}
    by_model = {f.spec.name: set(f.params.index) for f in fits}
    assert len(effects) == 1 + 5 + 10 + 3
    for row in effects.itertuples():
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
