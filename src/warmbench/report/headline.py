"""The report's headline in sentences, from what ``warmbench stats`` wrote.

One sentence per compared arm and situation (a stated wrong belief, an emotional context, the
plain question): the change in error rate as the average marginal effect of the arm with its
95% CI and p-value (marginal_effects.csv), the error rates behind it, and the number of paired
prompts it rests on (paired.csv). Nothing is recomputed: every number is in the CSVs.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from . import fmt
from .belief import BeliefEffect
from .runinfo import ArmInfo, reliability_sets

# (regression, subgroup level, how the situation reads, which paired cells it covers)
SITUATIONS = (
    ("M4", "user_opinion", "Under a stated wrong belief",
     lambda ctx, form: form in ("incorrect", "correct")),
    ("M2", "emotion", "When the user expressed an emotion",
     lambda ctx, form: ctx.startswith("emotion:") and form in ("original", "original_neutral")),
    ("M1", "all", "On the plain questions (no context, no stated belief)",
     lambda ctx, form: ctx == "unmodified" and form in ("original", "original_neutral")),
)


@dataclass(frozen=True)
class Finding:
    arm: str
    situation: str
    sentence: str
    excludes_zero: bool | None   # None: not estimable


def _n_pairs(paired: pd.DataFrame | None, comparison: str, covers) -> int | None:
    if paired is None or not {"comparison", "level", "context", "form", "n_pairs"}.issubset(paired.columns):
        return None
    p = paired[(paired["comparison"] == comparison) & (paired["level"] == "cell")]
    if "dataset" in p.columns:
        p = p[p["dataset"].astype(str).str.lower().isin(reliability_sets())]
    mask = [bool(covers(str(c), str(f))) for c, f in zip(p["context"], p["form"], strict=True)]
    return int(p.loc[mask, "n_pairs"].sum()) if any(mask) else 0


def _row(effects: pd.DataFrame, comparison: str, model: str, level: str) -> pd.Series | None:
    need = {"comparison", "model", "level", "ame_pp"}
    if not need.issubset(effects.columns):
        return None
    r = effects[(effects["comparison"] == comparison) & (effects["model"] == model)
                & (effects["level"].astype(str) == level)]
    return r.iloc[0] if len(r) else None


def _sentence(opening: str, arm: ArmInfo, base: ArmInfo, r: pd.Series, n: int | None) -> Finding:
    est = str(r.get("estimable", True)).lower() != "false" and pd.notna(
        pd.to_numeric(r.get("ame_pp"), errors="coerce"))
    on = f" on {n:,} paired prompts" if n else ""
    limit = pd.to_numeric(str(r.get("ame_pp")).split(" ")[0], errors="coerce")  # "+0.00 (limit…"
    if not est and pd.notna(limit):
        # Quasi-separation: the change has a finite limit on the pp scale, but no valid SE.
        why = str(r.get("separation") or "").split(");")[0].removeprefix("no valid SE").strip()
        why = why.removeprefix("(").strip()
        return Finding(arm.name, opening, f"{opening}, the change in the error rate of {arm.label} "
                       f"has no valid standard error{on}: the fit tends to {fmt.pp(limit)} "
                       "percentage points, with no interval" + (f" ({why})" if why else "") + ".",
                       None)
    if not est:
        why = str(r.get("separation") or "").strip().removeprefix("not estimable").strip().strip("()")
        return Finding(arm.name, opening, f"{opening}, the change in the error rate of {arm.label} could not "
                       f"be estimated{on}" + (f" ({why})" if why else "") + ".", None)
    ame, lo, hi = float(r["ame_pp"]), float(r["ci_low_pp"]), float(r["ci_high_pp"])
    moved = "rose" if round(ame, 1) > 0 else "fell" if round(ame, 1) < 0 else "did not change"
    size = f" by {fmt.pp(abs(ame), signed=False)} percentage points" if moved != "did not change" else ""
    rates = ""
    if pd.notna(r.get("mean_p0_pct")) and pd.notna(r.get("mean_p1_pct")):
        rates = f", from {fmt.pct(r['mean_p0_pct'])} ({base.label}) to {fmt.pct(r['mean_p1_pct'])}"
    p = r.get("p_value")
    ptext = f"; p {'< 0.001' if fmt.p_value(p) == '< 0.001' else '= ' + fmt.p_value(p)}" if pd.notna(p) else ""
    excl = lo > 0 or hi < 0
    verdict = ("The interval excludes zero." if excl
               else "The interval includes zero: no change is detectable at this size.")
    text = (f"{opening}, the error rate of {arm.label} {moved}{size}{rates} "
            f"(95% CI {fmt.pp(lo)} to {fmt.pp(hi)} pp{ptext}){on}. {verdict}")
    return Finding(arm.name, opening, text, excl)


def findings(effects: pd.DataFrame | None, paired: pd.DataFrame | None,
             infos: dict[str, ArmInfo], baseline: str, arms: list[str]) -> list[Finding]:
    """The headline sentences comparing each arm with the baseline: situations in SITUATIONS
    order, arms in order within each."""
    if effects is None or effects.empty:
        return []
    base = infos.get(baseline) or ArmInfo(baseline, "baseline")
    out = []
    for model, level, opening, covers in SITUATIONS:   # situation first: like with like
        for arm in arms:
            comparison = f"{arm} vs {baseline}"
            info = infos.get(arm) or ArmInfo(arm, "persona")
            r = _row(effects, comparison, model, level)
            if r is not None:
                out.append(_sentence(opening, info, base, r, _n_pairs(paired, comparison, covers)))
    return out


def _moved(diff: float) -> str:
    r = round(diff, 1)
    return (f"rose by {fmt.pp(abs(diff), signed=False)} percentage points" if r > 0 else
            f"fell by {fmt.pp(abs(diff), signed=False)} percentage points" if r < 0 else "did not change")


def belief_findings(effects: list[BeliefEffect], infos: dict[str, ArmInfo]) -> list[Finding]:
    """Within each arm: the plain question against the same question with a stated wrong answer."""
    out = []
    for e in effects:
        if e.form != "incorrect":
            continue  # the denial form is in the table below the sentences
        info = infos.get(e.arm) or ArmInfo(e.arm, "persona")
        has_ci = pd.notna(e.ci_low_pp) and pd.notna(e.ci_high_pp)
        excl = bool(has_ci and (e.ci_low_pp > 0 or e.ci_high_pp < 0))
        ci = (f"95% CI {fmt.pp(e.ci_low_pp)} to {fmt.pp(e.ci_high_pp)} pp" if has_ci
              else "no interval: a single question")
        verdict = ("The interval excludes zero." if excl else
                   "The interval includes zero: no change is detectable at this size." if has_ci else "")
        text = (f"When the user stated a wrong answer, the error rate of {info.label} {_moved(e.diff_pp)}, "
                f"from {fmt.pct(e.err_plain_pct)} on the plain question to {fmt.pct(e.err_belief_pct)} "
                f"({ci}) on {e.n_pairs:,} paired prompts from {e.n_items:,} questions. {verdict}").rstrip()
        out.append(Finding(e.arm, "stated wrong answer, within the arm", text, excl if has_ci else None))
    return out
