"""Average marginal effects of a fitted regression (``regressions.Fit``), in percentage points.

* ``marginal_effect``: the AME of fine-tuning over a subset of rows, with its delta-method CI;
  a quasi-separated subset gets its finite limit and no SE, a subset whose paired prompts have
  no discordant pairs the exact paired bound (``intervals``) instead of the delta method.
* ``dataset_effects``: the published M1 dataset contrasts (each dataset vs the reference).

See ``regressions`` for the models and the notes on separation.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from scipy import stats
from scipy.special import expit

from ..errors import WarmbenchError
from .intervals import discordance, exact_paired_bound

if TYPE_CHECKING:
    from .regressions import Fit

FT = "C(is_finetuned)[T.1]"
# An AME and SE below this (probability units, i.e. 1e-6 pp) are rounding noise around 0.
ZERO_TOL = 1e-8


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
    # the reference is the one level without a column of its own (disinfo in the study)
    named = {c[len("C(dataset)[T."):-1] for c in cols}
    ref = next(lv for lv in sorted(fit.data["dataset"].unique()) if lv not in named)
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
