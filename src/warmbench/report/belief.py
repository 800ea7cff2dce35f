"""What a stated belief does within each arm: the same question asked plainly and with the user
asserting a wrong answer (or doubting the right one), paired, per arm.

``warmbench stats`` compares arms with each other (paired.csv, the regressions); the study's
sycophancy finding also needs each model against itself. This is computed here from the scored
table the report already reads, and labelled as the report's own computation on the page:

* a pair is one arm's answer to the plain question and its answer to the belief form of the same
  item, in the same context and sample (both judged; excluded answers drop the pair). In the
  unmodified context the plain question is the neutral lead-in control (``original_neutral``:
  "{lead_in} {question}") when the run asked it, since the belief forms differ from it only by
  the belief clause; else, and in every other context, the ``original`` form;
* the change is the mean over pairs of (error with belief - error plain), in percentage points;
* its 95% interval is a percentile cluster bootstrap over questions (items resampled with
  replacement, 2,000 resamples, fixed seed), because one question's prompts in several contexts
  are not independent.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .runinfo import reliability_sets

BELIEF_FORMS = {"incorrect": "states a wrong answer", "correct": "doubts the right answer"}
N_BOOT = 2000
SEED = 0
_KEYS = ["model_family", "dataset", "item_id", "context", "sample_index"]


@dataclass(frozen=True)
class BeliefEffect:
    arm: str
    form: str
    n_pairs: int
    n_items: int
    err_plain_pct: float
    err_belief_pct: float
    diff_pp: float
    ci_low_pp: float
    ci_high_pp: float


def _cluster_ci(diff: np.ndarray, cluster: np.ndarray, rng: np.random.Generator) -> tuple[float, float]:
    """Percentile CI of sum(diff)/n when whole clusters are resampled."""
    codes, idx = np.unique(cluster, return_inverse=True)
    k = len(codes)
    sums = np.bincount(idx, weights=diff, minlength=k)
    counts = np.bincount(idx, minlength=k).astype(float)
    if k < 2:
        return float("nan"), float("nan")
    draws = rng.integers(0, k, size=(N_BOOT, k))
    est = sums[draws].sum(axis=1) / counts[draws].sum(axis=1)
    lo, hi = np.percentile(est, [2.5, 97.5])
    return float(lo), float(hi)


def _plain(a: pd.DataFrame) -> pd.Series:
    """Each key's plain answer: original_neutral where asked (unmodified context), else original."""
    neutral = a[a["form"] == "original_neutral"].drop_duplicates(_KEYS).set_index(_KEYS)["err"]
    original = a[a["form"] == "original"].drop_duplicates(_KEYS).set_index(_KEYS)["err"]
    return pd.concat([neutral, original[~original.index.isin(neutral.index)]])


def belief_effects(scored: pd.DataFrame, arms: list[str]) -> list[BeliefEffect]:
    """One effect per arm (in ``arms`` order) and belief form the run asked."""
    need = {"arm", "dataset", "item_id", "context", "form", "is_correct"}
    if scored is None or not need.issubset(scored.columns):
        return []
    d = scored[scored["dataset"].astype(str).str.lower().isin(reliability_sets())].dropna(subset=["is_correct"])
    d = d.assign(model_family=d.get("model_family", ""),
                 sample_index=d.get("sample_index", 0),
                 err=1.0 - d["is_correct"].astype(float))
    out = []
    for arm in arms:
        a = d[d["arm"] == arm]
        plain = _plain(a)
        for form in BELIEF_FORMS:
            belief = a[a["form"] == form].drop_duplicates(_KEYS).set_index(_KEYS)["err"]
            pairs = pd.concat({"plain": plain, "belief": belief}, axis=1, join="inner")
            if pairs.empty:
                continue
            diff = (pairs["belief"] - pairs["plain"]).to_numpy(float)
            items = pairs.index.droplevel(["context", "sample_index"]).map(str).to_numpy()
            lo, hi = _cluster_ci(diff, items, np.random.default_rng(SEED))  # per effect: order-free
            out.append(BeliefEffect(arm, form, len(pairs), len(set(items)),
                                    100 * float(pairs["plain"].mean()), 100 * float(pairs["belief"].mean()),
                                    100 * float(diff.mean()), 100 * lo, 100 * hi))
    return out
