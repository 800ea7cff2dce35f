"""Synthetic scored tables with a known persona effect (tests and benchmarks/stats_scale.py).

Every item of every dataset is asked in the study's 28 forms (9 contexts x {original, incorrect,
correct} + the neutral control) to every arm. The probability of an error is
logit⁻¹(difficulty_item + family_offset + belief_shift + effect_arm), where ``effect_arm`` adds
``persona_logit`` (more under a wrong user belief and emotional contexts) for every arm other
than the baseline. The data are simulated, not study results.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.special import expit

from warmbench.config import ALL_CONTEXTS
from warmbench.layout import SCORED_COLUMNS

STUDY_ITEMS = {"triviaqa": 500, "truthfulqa": 500, "medqa": 500, "disinfo": 125}


def forms_grid() -> list[tuple[str, str]]:
    """The 28 (context, form) pairs of the study."""
    grid = [(c, f) for c in ALL_CONTEXTS for f in ("original", "incorrect", "correct")]
    return [*grid, ("unmodified", "original_neutral")]


def synthetic_scored(items: dict[str, int] | None = None, families: tuple[str, ...] = ("fam-a",),
                     arms: tuple[str, ...] = ("original", "warm"), *, persona_logit: float = 0.4,
                     belief_logit: float = 0.3, emotion_logit: float = 0.2, seed: int = 0,
                     general: int = 0) -> pd.DataFrame:
    """A scored table (SCORED_COLUMNS) with ``arms[0]`` as baseline; ``general`` > 0 adds that
    many items of mmlu, gsm8k and advbench (one form each)."""
    rng = np.random.default_rng(seed)
    items = items or STUDY_ITEMS
    grid = forms_grid()
    ctx = np.array([c for c, _ in grid])
    form = np.array([f for _, f in grid])
    belief = np.isin(form, ["incorrect", "correct"]).astype(float)
    emotion = np.char.startswith(ctx.astype(str), "emotion").astype(float)
    frames = []
    for fi, fam in enumerate(families):
        for ds, n in items.items():
            diff = rng.normal(-0.8 + 0.3 * (ds == "medqa"), 1.2, n)   # per-question difficulty
            base = diff[:, None] + 0.2 * fi + 0.8 * belief[None, :]
            for ai, arm in enumerate(arms):
                shift = 0.0 if ai == 0 else persona_logit + belief_logit * belief + emotion_logit * emotion
                p_err = expit(base + shift)
                err = rng.random(p_err.shape) < p_err
                item_ids = np.repeat(np.arange(n), len(grid))
                frames.append(pd.DataFrame({
                    "model_family": fam, "arm": arm, "model": f"synthetic:{fam}/{arm}",
                    "dataset": ds, "item_id": item_ids.astype(str),
                    "context": np.tile(ctx, n), "form": np.tile(form, n),
                    "is_correct": (~err).ravel().astype(float),
                }))
        for ds in ("mmlu", "gsm8k", "advbench")[: 3 if general else 0]:
            acc = rng.uniform(0.6, 0.95)
            for arm in arms:
                frames.append(pd.DataFrame({
                    "model_family": fam, "arm": arm, "model": f"synthetic:{fam}/{arm}",
                    "dataset": ds, "item_id": np.arange(general).astype(str),
                    "context": "unmodified", "form": "original",
                    "is_correct": (rng.random(general) < acc).astype(float),
                }))
    df = pd.concat(frames, ignore_index=True)
    df["prompt_key"] = df["dataset"] + ":" + df["item_id"] + ":" + df["context"] + ":" + df["form"]
    df["prompt"] = ""
    df["answer"] = ""
    df["label"] = np.where(df["is_correct"] == 1.0, "CORRECT", "INCORRECT")
    df["refused"] = False
    df["scorer"] = "synthetic"
    df["sample_index"] = 0
    return df[list(SCORED_COLUMNS)]
