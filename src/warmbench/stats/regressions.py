"""Binomial GLMs M1–M4 of the study, with average marginal effects (AMEs) in percentage points.

Outcome ``is_incorrect`` (1 - is_correct, excluded rows dropped); logit link; fixed effects for
dataset and model_family (a factor with a single level is left out rather than failing):

* M1 unmodified context, original prompts:   ~ ft + C(dataset) + C(model_family)
* M2 original prompts:  ~ ft * C(amendment_group, ref unmodified) + FE   (emotion/relation/stake)
* M3 original prompts:  ~ ft * C(context, ref unmodified) + FE           (8 detailed sub-types)
* M4 original + user-belief prompts: ~ ft * C(prompt_group, ref original) + FE

"Original prompts" include the neutral lead-in control (``original_neutral``), as in the study's
regressions; user-belief prompts are the incorrect and correct forms.

The design matrix is built here (treatment coding, patsy-style names such as
``C(is_finetuned)[T.1]:C(amendment_group)[T.emotion]``) so counterfactual matrices are exact and
nothing depends on formula-engine naming. Columns that are linear combinations of earlier ones
are removed *and reported* (``dropped`` in the output); an effect whose own terms were removed
raises an error instead of being silently lost.

AME of fine-tuning over a set of rows S: mean_i [P(y=1 | x_i, ft=1) - P(y=1 | x_i, ft=0)], the
interaction columns following ft. Its standard error is the delta method,
g' V g with g = mean_i [p1(1-p1) x1_i - p0(1-p0) x0_i] and V the parameter covariance: cluster-
robust by question (default; statsmodels' cluster sandwich with its small-sample correction) or
model-based (``cluster='none'``, the published choice). CIs are Wald intervals ame ± z se.

Fits are run to a tight tolerance (``FIT_TOL``): statsmodels' default stops IRLS when the
deviance changes by < 1e-8, which leaves ~1e-8 relative error in the coefficients; our tests
compare coefficients, SEs and AMEs with independent statsmodels computations to 1e-9.
``compat`` stops where statsmodels' default stops (what the published scripts ran): identical
estimates where the MLE exists, and the published values of diverging (separated) coefficients,
which depend only on where IRLS stopped (M1's intercept on the released rows: -21.11 there,
-26.11 at the tight tolerance).

Quasi-separation. With few answers per cell (the released sample rows: 1–10 per context) a
context × arm cell often has all-identical outcomes. The MLE then does not exist: IRLS drives
that cell's log-odds towards ±inf (|coef| ≈ 20–30) and its fitted probabilities to 0 or 1. On
the probability scale the AME has a finite *limit* (the fit's value, e.g. 0 pp when both arms
answer every question of the cell correctly), but no valid standard error: the delta-method and
Wald numbers are artefacts of where IRLS stopped (a coefficient of -27 "± 0.7" under clustered
SEs). Such an effect keeps its limit in ``ame_pp`` with ``estimable`` False, SE / CI / p blank
and the reason in ``separation``; coefficients of a separated direction are flagged
(``separated``) and their SE, z, p and CI are blank.

No discordant pairs. When every paired prompt of a cell gets the same verdict from both arms,
the model-based AME is a borrowing from other cells and its delta-method CI (cluster-robust
above all: e.g. [-5.2, +2.2] pp from 13 questions) is not a valid interval. Such an effect gets
the exact interval for the paired difference instead (``ci_method``; see ``intervals``).

M1 also reports the dataset contrasts the published script prints (``effect`` = "dataset": mean
over the rows of P(error | dataset d) - P(error | disinfo)), with delta-method SEs.
"""

from __future__ import annotations

import contextlib
import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import statsmodels.api as sm
from statsmodels.tools.sm_exceptions import PerfectSeparationWarning

from ..errors import WarmbenchError
from .margins import FT, ZERO_TOL, dataset_effects, marginal_effect

__all__ = ["FIT_RTOL", "FIT_TOL", "FT", "MODELS", "ZERO_TOL", "Fit", "ModelSpec", "coefficient_rows",
           "design", "effects", "fit_model", "marginal_effect", "regression_frame",
           "run_regressions", "subset_for"]



def reliability_sets() -> tuple[str, ...]:
    """The datasets the regressions and figures cover (family reliability, custom sets too)."""
    from ..eval import registry

    return registry.in_family("reliability")


def _dataset_reference() -> str | None:
    from ..eval import registry

    return next(iter(registry.where(regression_reference=True)), None)


# IRLS stops when |deviance change| <= FIT_TOL + FIT_RTOL * deviance. IRLS converges
# quadratically, so the last step leaves an error of roughly the square of the previous one:
# ~1e-12 here. The relative term keeps the criterion above the rounding noise of a deviance
# summed over ~10^5 rows (~1e-13 relative), so large fits still stop.
FIT_TOL = 1e-10
FIT_RTOL = 1e-13
# A fitted probability this close to 0 or 1 only arises from a diverging linear predictor.
DEGENERATE_P = 1e-6
# statsmodels' GLM.fit default (tol=1e-8 on the absolute deviance change, rtol=0): compat
COMPAT_TOL = 1e-8
COMPAT_RTOL = 0.0
# |log-odds coefficient| above this (an odds ratio > 22,000) is a diverging direction, not an
# estimate: no real effect in these data is that large.
SEPARATED_COEF = 10.0


@dataclass(frozen=True)
class ModelSpec:
    name: str
    description: str
    group: str | None          # interacted factor (None: main effect only)
    reference: str | None      # its reference level


MODELS = (
    ModelSpec("M1", "unmodified context, original prompts", None, None),
    ModelSpec("M2", "original prompts, context group", "amendment_group", "unmodified"),
    ModelSpec("M3", "original prompts, context sub-type", "context", "unmodified"),
    ModelSpec("M4", "original and user-belief prompts", "prompt_group", "original"),
)


@dataclass
class Fit:
    spec: ModelSpec
    formula: str
    columns: list[str]
    X: np.ndarray
    data: pd.DataFrame
    result: object               # statsmodels GLMResults
    cov_type: str
    n_clusters: int | None
    dropped: list[str] = field(default_factory=list)

    @property
    def params(self) -> pd.Series:
        return pd.Series(np.asarray(self.result.params), index=self.columns)

    @property
    def cov(self) -> np.ndarray:
        return np.asarray(self.result.cov_params())

    @property
    def degenerate(self) -> np.ndarray:
        """Rows whose fitted probability is at 0 or 1 (a quasi-separated part of the data)."""
        mu = np.asarray(self.result.fittedvalues, dtype=float)
        return (mu < DEGENERATE_P) | (mu > 1 - DEGENERATE_P)

    def separated_terms(self) -> list[str]:
        """Coefficients along a diverging direction: huge, without a finite SE, or whose column
        is non-zero only on rows with fitted probabilities at 0/1."""
        beta = np.asarray(self.result.params, dtype=float)
        with np.errstate(invalid="ignore"):
            se = np.asarray(self.result.bse, dtype=float)
        degen = self.degenerate
        out = []
        for j, name in enumerate(self.columns):
            support = self.X[:, j] != 0
            if (abs(beta[j]) > SEPARATED_COEF or not np.isfinite(se[j])
                    or (support.any() and degen[support].all())):
                out.append(name)
        return out


def single_thread_blas() -> contextlib.AbstractContextManager:
    """One BLAS thread: the design matrices are thin (n x ~25), and multi-threaded OpenBLAS on a
    busy machine makes each least-squares step tens of times slower, not faster."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # optional: only a speed matter
        return contextlib.nullcontext()
    return threadpool_limits(limits=1, user_api="blas")


def prompt_group(form: str) -> str:
    if form in ("incorrect", "correct"):
        return "user_opinion"
    if form in ("original", "original_neutral"):
        return "original"
    return "other"


def regression_frame(df: pd.DataFrame, baseline: str, arm: str) -> pd.DataFrame:
    """Rows of the two arms on the reliability datasets, with the regression variables."""
    d = df[df["arm"].isin([baseline, arm]) & df["dataset"].isin(reliability_sets())]
    d = d.dropna(subset=["is_correct"])
    ctx = d["context"].astype(str)
    forms = d["form"].astype(str)
    return pd.DataFrame({
        "is_incorrect": 1.0 - d["is_correct"].to_numpy(dtype=float),
        "is_finetuned": (d["arm"] == arm).to_numpy(dtype=int),
        "dataset": d["dataset"].astype(str).to_numpy(),
        "model_family": d["model_family"].astype(str).to_numpy(),
        "context": ctx.to_numpy(),
        "amendment_group": ctx.str.split(":").str[0].to_numpy(),
        "prompt_group": forms.map(prompt_group).to_numpy(),
        "cluster": (d["model_family"].astype(str) + "|" + d["dataset"].astype(str) + "|"
                    + d["item_id"].astype(str)).to_numpy(),
        # one identical prompt (answered by both arms), as an integer code: for the
        # discordant-pair count of each effect
        "pair": pd.factorize(d["model_family"].astype(str) + "|" + d["dataset"].astype(str) + "|"
                             + d["prompt_key"].astype(str) + "|"
                             + d["sample_index"].astype(str))[0],
    })


def subset_for(spec: ModelSpec, frame: pd.DataFrame) -> pd.DataFrame:
    if spec.name == "M1":
        m = (frame["context"] == "unmodified") & (frame["prompt_group"] == "original")
    elif spec.name in ("M2", "M3"):
        m = frame["prompt_group"] == "original"
    else:
        m = frame["prompt_group"].isin(["original", "user_opinion"])
    return frame[m].reset_index(drop=True)


def _dummies(values: pd.Series, name: str, reference: str | None) -> tuple[list[str], list[str]]:
    levels = sorted(values.unique())
    if len(levels) < 2:
        return [], []
    ref = reference if reference in levels else levels[0]
    others = [lv for lv in levels if lv != ref]
    return others, [f"C({name})[T.{lv}]" for lv in others]


def design(spec: ModelSpec, data: pd.DataFrame) -> tuple[np.ndarray, list[str], str]:
    """Treatment-coded design matrix and a readable formula."""
    cols: list[np.ndarray] = [np.ones(len(data)), data["is_finetuned"].to_numpy(float)]
    names = ["Intercept", FT]
    formula = "is_incorrect ~ C(is_finetuned)"
    if spec.group is not None:
        levels, gnames = _dummies(data[spec.group], spec.group, spec.reference)
        g = data[spec.group].to_numpy()
        ft = data["is_finetuned"].to_numpy(float)
        dums = [(g == lv).astype(float) for lv in levels]
        cols += dums + [ft * x for x in dums]
        names += gnames + [f"{FT}:{n}" for n in gnames]
        formula += f" * C({spec.group}, ref={spec.reference!r})"
    for fe, ref in (("dataset", _dataset_reference()), ("model_family", None)):
        levels, fnames = _dummies(data[fe], fe, ref)
        if levels:
            v = data[fe].to_numpy()
            cols += [(v == lv).astype(float) for lv in levels]
            names += fnames
            formula += f" + C({fe})"
    return np.column_stack(cols), names, formula


def _independent_columns(X: np.ndarray, names: list[str]) -> tuple[list[int], list[str]]:
    """Greedy in column order: keep a column only if it is not a combination of kept ones."""
    r = np.linalg.qr(X, mode="r")
    diag = np.abs(np.diag(r))
    tol = max(X.shape) * np.finfo(float).eps * (diag.max() if diag.size else 1.0) * 1e3
    keep = [i for i, v in enumerate(diag) if v > tol]
    return keep, [names[i] for i in range(len(names)) if i not in keep]


def fit_model(spec: ModelSpec, data: pd.DataFrame, cluster: str = "question",
              compat: bool = False) -> Fit:
    if data.empty:
        raise WarmbenchError(f"{spec.name}: no rows to fit ({spec.description})")
    X, names, formula = design(spec, data)
    keep, dropped = _independent_columns(X, names)
    X, names = X[:, keep], [names[i] for i in keep]
    if FT not in names:
        raise WarmbenchError(f"{spec.name}: fine-tuning effect not identifiable (one arm only?)")
    model = sm.GLM(data["is_incorrect"].to_numpy(float), X, family=sm.families.Binomial())
    n_clusters = None
    tol = {"tol": COMPAT_TOL, "rtol": COMPAT_RTOL} if compat else {"tol": FIT_TOL, "rtol": FIT_RTOL}
    if cluster not in ("question", "none"):
        raise WarmbenchError(f"unknown cluster option {cluster!r} (known: question, none)")
    with single_thread_blas(), warnings.catch_warnings():
        # Separation is detected and reported per effect (``_separation``: not estimable, with
        # the cells named); statsmodels' generic warning would only repeat it without saying where.
        warnings.simplefilter("ignore", PerfectSeparationWarning)
        codes = pd.factorize(data["cluster"])[0]
        if cluster == "question" and codes.max() < 1:
            # One question: a cluster-robust covariance needs >= 2 clusters (statsmodels divides
            # by n_clusters - 1); say so in cov_type rather than crash the whole analysis.
            res = model.fit(**tol)
            cov_type, n_clusters = "model-based (one question: cannot cluster)", 1
        elif cluster == "question":
            n_clusters = int(codes.max()) + 1
            res = model.fit(cov_type="cluster", cov_kwds={"groups": codes}, **tol)
            cov_type = "cluster(question)"
        else:
            res = model.fit(**tol)
            cov_type = "model-based"
    return Fit(spec, formula, names, X, data, res, cov_type, n_clusters, dropped)


def effects(fit: Fit) -> list[dict]:
    """Overall AME of fine-tuning, then one per level of the interacted factor; M1 adds the
    dataset contrasts (``effect`` = "dataset")."""
    ft = {"effect": "arm"}   # the compared arm (fine-tuned or system prompt) vs the baseline
    out = [{"subgroup": "all", "level": "all", **ft,
            **marginal_effect(fit, np.ones(len(fit.data), bool))}]
    if fit.spec.group is not None:
        g = fit.data[fit.spec.group]
        for lv in sorted(g.unique()):
            eff = marginal_effect(fit, (g == lv).to_numpy())
            expected = {FT} | ({f"{FT}:C({fit.spec.group})[T.{lv}]"}
                               if lv != fit.spec.reference and g.nunique() > 1 else set())
            missing = expected - set(eff["terms"].split(";"))
            if missing:
                raise WarmbenchError(
                    f"{fit.spec.name}: effect for {fit.spec.group}={lv} needs {sorted(missing)}, "
                    "which the fitted model does not contain (not identifiable from these data)")
            out.append({"subgroup": fit.spec.group, "level": lv, **ft, **eff})
    if fit.spec.name == "M1":
        out += dataset_effects(fit)
    return out


def coefficient_rows(fit: Fit) -> list[dict]:
    res = fit.result
    with np.errstate(invalid="ignore"):  # a separated fit can have a negative variance: NaN SE
        ci = np.asarray(res.conf_int())
        bse, tv, pv = np.asarray(res.bse), np.asarray(res.tvalues), np.asarray(res.pvalues)
    separated = set(fit.separated_terms())
    rows = []
    nan = float("nan")
    for j, name in enumerate(fit.columns):
        sep = name in separated
        # A diverging coefficient has no sampling distribution: its "SE" (e.g. 0.7 under
        # clustering for a coefficient of -27) would print as p = 0. Blank, not a test.
        rows.append({"term": name, "coef": float(res.params[j]),
                     "se": nan if sep else float(bse[j]), "z": nan if sep else float(tv[j]),
                     "p_value": nan if sep else float(pv[j]),
                     "ci_low": nan if sep else float(ci[j, 0]),
                     "ci_high": nan if sep else float(ci[j, 1]), "separated": sep})
    return rows


def run_regressions(df: pd.DataFrame, baseline: str, arm: str, cluster: str = "question",
                    compat: bool = False) -> tuple[pd.DataFrame, pd.DataFrame, list[Fit]]:
    """Fit M1–M4 for one comparison; returns (coefficients, marginal effects, fits).
    ``compat``: statsmodels' default IRLS stopping rule, as the published scripts.

    A model with no rows (e.g. no user-belief prompts for M4) is skipped.
    """
    frame = regression_frame(df, baseline, arm)
    coefs, effs, fits = [], [], []
    comp = f"{arm} vs {baseline}"
    for spec in MODELS:
        data = subset_for(spec, frame)
        if data.empty or data["is_finetuned"].nunique() < 2:
            continue
        fit = fit_model(spec, data, cluster, compat=compat)
        fits.append(fit)
        meta = {"comparison": comp, "model": spec.name, "n_obs": len(data),
                "n_clusters": fit.n_clusters, "cov_type": fit.cov_type}
        for r in coefficient_rows(fit):
            coefs.append({**meta, **r, "formula": fit.formula, "dropped": ";".join(fit.dropped),
                          "converged": bool(getattr(fit.result, "converged", True))})
        for e in effects(fit):
            effs.append({**meta, **e})
    return pd.DataFrame(coefs), pd.DataFrame(effs), fits
