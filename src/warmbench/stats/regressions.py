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
from scipy import stats
from scipy.special import expit
from statsmodels.tools.sm_exceptions import PerfectSeparationWarning

from ..errors import WarmbenchError
from .intervals import discordance, exact_paired_bound

FT = "C(is_finetuned)[T.1]"
RELIABILITY = ("triviaqa", "truthfulqa", "medqa", "disinfo")

# IRLS stops when |deviance change| <= FIT_TOL + FIT_RTOL * deviance. IRLS converges
# quadratically, so the last step leaves an error of roughly the square of the previous one:
# ~1e-12 here. The relative term keeps the criterion above the rounding noise of a deviance
# summed over ~10^5 rows (~1e-13 relative), so large fits still stop.
FIT_TOL = 1e-10
FIT_RTOL = 1e-13
# An AME and SE below this (probability units, i.e. 1e-6 pp) are rounding noise around 0.
ZERO_TOL = 1e-8
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
    d = df[df["arm"].isin([baseline, arm]) & df["dataset"].isin(RELIABILITY)]
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
        # one identical prompt (answered by both arms): for the discordant-pair count
        "pair": (d["model_family"].astype(str) + "|" + d["dataset"].astype(str) + "|"
                 + d["prompt_key"].astype(str) + "|" + d["sample_index"].astype(str)).to_numpy(),
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
    for fe, ref in (("dataset", "disinfo"), ("model_family", None)):
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


def _counterfactual(fit: Fit, Xr: np.ndarray, value: float) -> np.ndarray:
    """Rows ``Xr`` of the design with ft set to ``value`` (interactions follow: dummy * ft)."""
    X = Xr.copy()
    for j, name in enumerate(fit.columns):
        if name == FT:
            X[:, j] = value
        elif name.startswith(FT + ":"):
            gname = name[len(FT) + 1:]
            if gname not in fit.columns:
                raise WarmbenchError(f"{fit.spec.name}: main term {gname} missing for {name}")
            X[:, j] = value * Xr[:, fit.columns.index(gname)]
    return X


def _separation(fit: Fit, rows: np.ndarray) -> tuple[bool, str]:
    """(estimable, note) for the effect over ``rows``.

    No valid SE when, within the rows, one arm's answers are all right or all wrong (that
    cell's log-odds diverge in these fully interacted models), or all its fitted probabilities
    sit at 0/1. The AME itself then has a finite limit (the fit's value). An estimable effect
    still gets a note when some of its rows are degenerate (separated elsewhere, e.g. a dataset
    answered all-correct): those rows contribute exactly 0 pp and no variance, so its CI is
    somewhat too narrow.
    """
    y = fit.data["is_incorrect"].to_numpy(float)
    ft = fit.data["is_finetuned"].to_numpy(int)
    degen = fit.degenerate
    bad = []
    for value, arm in ((0, "baseline arm"), (1, "compared arm")):
        m = rows & (ft == value)
        n = int(m.sum())
        if n == 0:
            continue
        ys = y[m]
        if ys.min() == ys.max():
            verdict = "incorrect" if ys[0] == 1 else "correct"
            bad.append(f"{arm}: all {n} answers {verdict}" if n > 1 else f"{arm}: its one answer {verdict}")
        elif degen[m].all():
            bad.append(f"{arm}: fitted error probabilities all at 0 or 1")
    if bad:
        return False, ("no valid SE (quasi-separation: " + "; ".join(bad)
                       + "; the log-odds diverge, so the delta-method SE and CI are artefacts "
                       "of where the fit stopped); the AME shown is its finite limit")
    k = int(degen[rows].sum())
    if k:
        return True, (f"{k} of {int(rows.sum())} rows have fitted probabilities at 0/1 "
                      "(quasi-separation); they add 0 pp and no variance")
    return True, ""


def _delta_ame(fit: Fit, X1: np.ndarray, X0: np.ndarray) -> tuple[float, float, np.ndarray,
                                                                    np.ndarray]:
    """Mean of p(X1) - p(X0) and its delta-method SE (probability units), and both p's."""
    beta = np.asarray(fit.result.params)
    p1, p0 = expit(X1 @ beta), expit(X0 @ beta)
    ame = float(np.mean(p1 - p0))
    # d AME / d beta, without materialising weighted copies of the design
    grad = ((p1 * (1 - p1)) @ X1 - (p0 * (1 - p0)) @ X0) / len(X1)
    with np.errstate(invalid="ignore"):  # a degenerate (separated) fit can give var < 0: NaN
        se = float(np.sqrt(grad @ fit.cov @ grad))
    return ame, se, p1, p0


def _ci_method(fit: Fit) -> str:
    return "delta method (" + fit.cov_type + ")"


def marginal_effect(fit: Fit, rows: np.ndarray, level: float = 0.95) -> dict:
    """AME of fine-tuning over ``rows`` (boolean mask), in pp, with delta-method CI.

    Quasi-separated rows (see ``_separation``): the AME's limit, no SE / CI / p, never a
    0 ± 0. No discordant pairs among the rows' paired prompts: the exact paired bound as CI."""
    beta = np.asarray(fit.result.params)
    Xr = fit.X[rows]
    X1, X0 = _counterfactual(fit, Xr, 1.0), _counterfactual(fit, Xr, 0.0)
    ame, se, p1, p0 = _delta_ame(fit, X1, X0)
    z = stats.norm.ppf(0.5 + level / 2)
    terms = [fit.columns[j] for j in np.flatnonzero(np.any(X1 != X0, axis=0))]
    # log-odds effect (ft main + interaction) when the subset sits in one group level
    lo, lo_se = float("nan"), float("nan")
    w = np.zeros(len(beta))
    for t in terms:
        w[fit.columns.index(t)] = 1.0
    if fit.spec.group is None or fit.data.loc[rows, fit.spec.group].nunique() == 1:
        with np.errstate(invalid="ignore"):
            lo, lo_se = float(w @ beta), float(np.sqrt(w @ fit.cov @ w))
    estimable, note = _separation(fit, rows)
    d = fit.data[rows]
    n_pairs, n_disc = discordance(d["pair"], d["is_finetuned"], d["is_incorrect"])
    ci_low, ci_high = ame - z * se, ame + z * se
    p_value = float(2 * stats.norm.sf(abs(ame / se))) if se > 0 else float("nan")
    method = _ci_method(fit)
    nan = float("nan")
    if not estimable:
        # the limit on the probability scale is finite; what does not exist is a valid SE
        ame = 0.0 if abs(ame) < ZERO_TOL else ame
        se = lo = lo_se = ci_low = ci_high = p_value = nan
        method = "none (no valid SE)"
    elif abs(ame) < ZERO_TOL and not se >= ZERO_TOL:
        # The arms do not differ in these rows (e.g. the same verdict in every pair): the AME
        # and its cluster-robust SE are 0 up to rounding (~1e-14 ± 1e-14, or a var of -1e-20).
        # Their ratio is noise, not a z statistic: report 0 ± 0 and no test.
        ame, se, ci_low, ci_high, p_value = 0.0, 0.0, 0.0, 0.0, nan
        if abs(lo) < ZERO_TOL and not lo_se >= ZERO_TOL:
            lo, lo_se = 0.0, 0.0
        note = "; ".join(x for x in ("no difference: effect and SE are 0 up to rounding (the arms "
                                     "agree in these rows); no test", note) if x)
    if estimable and n_pairs and n_disc == 0:
        # Every paired prompt got the same verdict from both arms: the delta-method interval
        # (zero-width, or borrowed from other cells through the model) is not valid here.
        u = exact_paired_bound(n_pairs, level)
        ci_low, ci_high, p_value, se = -u, u, nan, nan
        method = "exact paired bound (no discordant pairs)"
        note = "; ".join(x for x in (
            f"no discordant pairs among {n_pairs} paired prompts: the delta-method SE is not "
            f"valid here; CI is the exact bound +-{100 * u:.1f} pp on the paired difference",
            note) if x)
    return {
        "n": int(rows.sum()), "ame_pp": 100 * ame, "se_pp": 100 * se,
        "ci_low_pp": 100 * ci_low, "ci_high_pp": 100 * ci_high, "p_value": p_value,
        "ci_method": method, "n_pairs": n_pairs, "discordant_pairs": n_disc,
        "mean_p0_pct": 100 * float(p0.mean()), "mean_p1_pct": 100 * float(p1.mean()),
        "logodds": lo, "logodds_se": lo_se, "estimable": estimable, "separation": note,
        "terms": ";".join(terms),
    }


def dataset_effects(fit: Fit, level: float = 0.95) -> list[dict]:
    """The published M1 dataset contrasts: for each dataset d, the mean over all rows of
    P(error | dataset = d) - P(error | reference dataset), with its delta-method SE. A contrast
    whose dataset terms (or the intercept, the reference cell) diverge has its limit and no SE."""
    cols = [c for c in fit.columns if c.startswith("C(dataset)[T.")]
    if not cols:
        return []
    levels = sorted(fit.data["dataset"].unique())
    ref = "disinfo" if "disinfo" in levels else levels[0]
    separated = set(fit.separated_terms())
    z = stats.norm.ppf(0.5 + level / 2)
    X0 = fit.X.copy()
    for c in cols:
        X0[:, fit.columns.index(c)] = 0.0
    out = []
    for c in cols:
        X1 = X0.copy()
        X1[:, fit.columns.index(c)] = 1.0
        ame, se, p1, p0 = _delta_ame(fit, X1, X0)
        name = c[len("C(dataset)[T."):-1]
        bad = sorted({c, "Intercept"} & separated)
        note, method = "", _ci_method(fit)
        if bad:
            note = (f"no valid SE (quasi-separation: {', '.join(bad)} diverge); "
                    "the AME shown is its finite limit")
            se, method = float("nan"), "none (no valid SE)"
        out.append({
            "subgroup": "dataset", "level": f"{name} vs {ref}", "effect": "dataset",
            "n": len(fit.data), "ame_pp": 100 * ame, "se_pp": 100 * se,
            "ci_low_pp": 100 * (ame - z * se), "ci_high_pp": 100 * (ame + z * se),
            "p_value": float(2 * stats.norm.sf(abs(ame / se))) if se > 0 else float("nan"),
            "ci_method": method, "mean_p0_pct": 100 * float(p0.mean()),
            "mean_p1_pct": 100 * float(p1.mean()), "estimable": not bad, "separation": note,
            "terms": c,
        })
    return out


def effects(fit: Fit) -> list[dict]:
    """Overall AME of fine-tuning, then one per level of the interacted factor; M1 adds the
    dataset contrasts (``effect`` = "dataset")."""
    ft = {"effect": "fine-tuning"}
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
