"""Paired comparison of two arms on identical prompts (default, corrected analysis).

Rows of the scored table are paired on (model_family, dataset, prompt_key, sample_index): the
same prompt, answered by the baseline arm and by the compared arm. A pair whose outcome is
excluded (``is_correct`` NaN) on either side is dropped, so both accuracies of a row are
computed on the same prompts.

One output row per model_family x dataset x context x form ("cell"), plus pooled rows
("pooled"): the two wrong-user-belief forms (incorrect + correct) pooled per context as in the
study (form ``user_belief``), and every form pooled over all contexts (context ``all``). A
pooled row is only written when it merges at least two cells, except under ``compat``, where
every context with user-belief rows gets its ``user_belief`` row (even from one form, e.g. a
disinformation context whose only belief form is ``incorrect``): those rows are then exactly the
published nine-row "Sycophancy" table, and BH runs over them, leaving out rows with no
discordant pairs (the published code gives those no p-value, so they are not in its FDR family).

Effect-size labels (``g_label``) need at least ``MIN_DISCORDANT_FOR_LABEL`` discordant pairs:
with fewer, no split of them can reach p < 0.05 in the exact test (5:0 gives p = 0.0625), and one
discordant pair would read as a "large" g of 0.5.

``scorer`` names who labelled the answers of each row (both arms' rows of that model family x
dataset), so a row scored offline is never read as a judged one.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd
from scipy import stats

from .effects import cohens_g, g_label, odds_ratio, odds_ratio_ci_vec
from .multiple import bh_by_group

PAIR_KEYS = ["model_family", "dataset", "prompt_key", "sample_index"]
CELL_KEYS = ["model_family", "dataset", "context", "form"]
BELIEF_FORMS = ("incorrect", "correct")
USER_BELIEF = "user_belief"

PAIRED_COLUMNS = [
    "comparison", "baseline", "arm", "model_family", "dataset", "context", "form", "level",
    "n_pairs", "acc_baseline_pct", "acc_arm_pct", "diff_pp", "a", "b", "c", "d",
    "p_exact", "p_midp", "p_bh", "significant_bh", "cohens_g", "g_label",
    "odds_ratio", "or_ci_low", "or_ci_high", "scorer",
]
# Temporary column for the "table" family: is the row pooled over all contexts?
_ALL_CONTEXTS = "_all_contexts"
# Fewest discordant pairs for an effect-size label (see the module docstring).
MIN_DISCORDANT_FOR_LABEL = 6
FDR_FAMILIES = {
    # every test of one baseline-vs-arm comparison (cells and pooled rows, all families/datasets)
    "comparison": ["comparison"],
    # the study's choice: within each table of contexts (one model x dataset x form x level).
    # The rows pooled over every context (context=all) are not rows of such a table: they form
    # their own family. Without that split the context=all user_belief row joined the nine
    # per-context user_belief rows (the published "Sycophancy" table) as a tenth test.
    "table": ["comparison", "model_family", "dataset", "level", "form", _ALL_CONTEXTS],
}


def make_pairs(df: pd.DataFrame, baseline: str, arm: str, *, ordinal: bool = True) -> pd.DataFrame:
    """Join baseline and arm rows on the pairing key; columns y0 (baseline), y1 (arm).

    ``ordinal=True`` pairs duplicated keys one-to-one in order of appearance (k-th with k-th);
    ``ordinal=False`` is a plain inner join (every duplicate with every duplicate), which is
    what the published analysis does.
    """
    cols = [*PAIR_KEYS, "item_id", "context", "form", "is_correct"]
    left = df.loc[df["arm"] == baseline, cols]
    right = df.loc[df["arm"] == arm, [*PAIR_KEYS, "is_correct"]]
    keys = list(PAIR_KEYS)
    if ordinal:
        left = left.assign(_k=left.groupby(PAIR_KEYS, sort=False).cumcount())
        right = right.assign(_k=right.groupby(PAIR_KEYS, sort=False).cumcount())
        keys.append("_k")
    m = left.merge(right, on=keys, how="inner", suffixes=("_0", "_1"), sort=False)
    m = m.rename(columns={"is_correct_0": "y0", "is_correct_1": "y1"})
    m = m.dropna(subset=["y0", "y1"])
    return m.drop(columns=["_k"], errors="ignore")


def _count(pairs: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    y0 = pairs["y0"].to_numpy(dtype=bool)
    y1 = pairs["y1"].to_numpy(dtype=bool)
    t = pairs[keys].assign(a=y0 & y1, b=y0 & ~y1, c=~y0 & y1, d=~y0 & ~y1)
    g = t.groupby(keys, sort=True, observed=True)[["a", "b", "c", "d"]].sum().reset_index()
    g["_cells"] = pairs.groupby(keys, sort=True, observed=True)["_cell"].nunique().to_numpy()
    return g


def count_table(pairs: pd.DataFrame, compat: bool = False) -> pd.DataFrame:
    """a/b/c/d counts per cell and per pooled group (see module docstring)."""
    pairs = pairs.assign(_cell=pairs["context"].astype(str) + "|" + pairs["form"].astype(str))
    parts = [_count(pairs, CELL_KEYS).assign(level="cell")]
    belief = pairs[pairs["form"].isin(BELIEF_FORMS)].assign(form=USER_BELIEF)
    if len(belief):
        parts.append(_count(belief, CELL_KEYS).assign(level="pooled"))
    both = pd.concat([pairs, belief], ignore_index=True)
    parts.append(_count(both.assign(context="all"), CELL_KEYS).assign(level="pooled"))
    out = pd.concat(parts, ignore_index=True)
    keep = (out["level"] == "cell") | (out["_cells"] >= 2)
    if compat:  # the published Sycophancy table has a row per context, whatever its forms
        keep |= (out["form"] == USER_BELIEF) & (out["context"] != "all")
    out = out[keep].drop(columns="_cells")
    return out.reset_index(drop=True)


def exact_p_vec(b: np.ndarray, c: np.ndarray) -> np.ndarray:
    """Vectorised ``mcnemar.mcnemar_exact``: min(1, 2 P(X <= min(b, c))), X ~ Bin(b+c, 1/2)."""
    n = b + c
    p = np.minimum(1.0, 2.0 * stats.binom.cdf(np.minimum(b, c), n, 0.5))
    return np.where(n == 0, 1.0, p)


def midp_vec(b: np.ndarray, c: np.ndarray) -> np.ndarray:
    n = b + c
    k = np.minimum(b, c)
    p = np.minimum(1.0, 2.0 * stats.binom.cdf(k, n, 0.5) - stats.binom.pmf(k, n, 0.5))
    return np.where(n == 0, 1.0, p)


def add_tests(t: pd.DataFrame, alpha: float = 0.05, family: str = "comparison",
              compat: bool = False) -> pd.DataFrame:
    """Accuracies, difference, McNemar exact and mid-p, BH, Cohen's g, odds ratio + exact CI."""
    if family not in FDR_FAMILIES:
        raise ValueError(f"unknown FDR family {family!r} (known: {', '.join(FDR_FAMILIES)})")
    t = t.copy()
    a, b, c, d = (t[k].to_numpy(dtype=np.int64) for k in "abcd")
    n = a + b + c + d
    t["n_pairs"] = n
    with np.errstate(invalid="ignore", divide="ignore"):
        t["acc_baseline_pct"] = 100.0 * (a + b) / n
        t["acc_arm_pct"] = 100.0 * (a + c) / n
    # arm minus baseline, like the study's "Raw Diff": negative = the persona is less accurate
    t["diff_pp"] = t["acc_arm_pct"] - t["acc_baseline_pct"]
    t["p_exact"] = exact_p_vec(b, c)
    t["p_midp"] = midp_vec(b, c)
    t[_ALL_CONTEXTS] = t["context"].astype(str) == "all"
    # compat: untestable rows (no discordant pairs) are not in the family, as published
    t["_p_family"] = np.where(compat & (b + c == 0), np.nan, t["p_exact"])
    t["p_bh"] = bh_by_group(t, "_p_family", FDR_FAMILIES[family])
    t = t.drop(columns="_p_family")
    t = t.drop(columns=_ALL_CONTEXTS)
    t["significant_bh"] = t["p_bh"] < alpha
    t["cohens_g"] = [cohens_g(int(x), int(y)) for x, y in zip(b, c, strict=True)]
    t["g_label"] = [g_label(g) if x + y >= MIN_DISCORDANT_FOR_LABEL else
                    f"n/a (< {MIN_DISCORDANT_FOR_LABEL} discordant pairs)" if x + y else "n/a"
                    for g, x, y in zip(t["cohens_g"], b, c, strict=True)]
    t["odds_ratio"] = [odds_ratio(int(x), int(y)) for x, y in zip(b, c, strict=True)]
    t["or_ci_low"], t["or_ci_high"] = odds_ratio_ci_vec(b, c)
    return t


def paired_comparison(df: pd.DataFrame, baseline: str, arm: str, compat: bool = False
                      ) -> pd.DataFrame:
    """Counts for one comparison, before tests (BH needs the whole family)."""
    pairs = make_pairs(df, baseline, arm)
    t = count_table(pairs, compat=compat)
    t.insert(0, "comparison", f"{arm} vs {baseline}")
    t.insert(1, "baseline", baseline)
    t.insert(2, "arm", arm)
    return t.merge(scorers_by_dataset(df, [baseline, arm]), on=["model_family", "dataset"],
                   how="left").fillna({"scorer": "unknown"})


def scorers_by_dataset(df: pd.DataFrame, arms: list[str]) -> pd.DataFrame:
    """model_family, dataset, scorer: the scorer names of those arms' rows, ';'-joined."""
    d = df[df["arm"].isin(arms)]
    if "scorer" not in d.columns:
        d = d.assign(scorer="unknown")
    g = d.groupby(["model_family", "dataset"], sort=True)["scorer"]
    return g.agg(lambda x: ";".join(sorted(set(map(str, x))))).reset_index()


def paired_table(df: pd.DataFrame, baseline: str, arms: Iterable[str], *, alpha: float = 0.05,
                 family: str = "comparison", compat: bool = False) -> pd.DataFrame:
    """Paired tests of every arm against ``baseline``; BH within the declared family.
    ``compat``: the published table rows and FDR family (module docstring)."""
    parts = [paired_comparison(df, baseline, arm, compat) for arm in arms]
    parts = [p for p in parts if len(p)]
    if not parts:
        return pd.DataFrame(columns=PAIRED_COLUMNS)
    t = add_tests(pd.concat(parts, ignore_index=True), alpha=alpha, family=family, compat=compat)
    return t[PAIRED_COLUMNS]
