"""Figures of the analysis (matplotlib, Agg backend), each saved as PNG and SVG.

* ``error_rates``: error rate of each arm per dataset, original prompts vs prompts carrying a
  wrong user belief (incorrect + correct forms), Wilson 95% CIs; pooled over model families.
* ``context_gap``: persona minus baseline error rate (pp) per context sub-type, on paired
  prompts, with a 95% CI of the paired mean difference (normal approximation); a context with
  no discordant pairs (or a single pair) has no spread to approximate, so it gets the exact
  bound of ``intervals.exact_paired_bound`` instead of a zero-width bar, its label marked "†".
* ``general``: general-benchmark accuracies with the CIs of ``general.csv``.
* ``warmth_trajectory``: SocioT warmth per checkpoint epoch when RUN/warmth/trajectory.csv exists.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from .general import wilson  # noqa: E402
from .intervals import exact_paired_bound  # noqa: E402
from .paired import make_pairs  # noqa: E402
from .regressions import prompt_group, reliability_sets  # noqa: E402

# Stable SVG output (no timestamps, fixed ids) so re-runs give identical files.
plt.rcParams["svg.hashsalt"] = "warmbench"
# Sizes chosen for the report, where a figure is shown 600-1100 px wide: labels stay readable.
plt.rcParams.update({"font.size": 11, "axes.titlesize": 12, "figure.titlesize": 13,
                     "legend.fontsize": 10, "legend.title_fontsize": 10})
PANELS = {"original": "plain questions", "user_opinion": "user states a wrong belief"}
_COLORS = ["#4C72B0", "#DD8452", "#55A868", "#C44E52", "#8172B3", "#937860", "#DA8BC3"]


def _save(fig: plt.Figure, out_dir: Path, name: str) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / f"{name}.png", out_dir / f"{name}.svg"]
    fig.savefig(paths[0], dpi=130, bbox_inches="tight", metadata={"Software": None})
    fig.savefig(paths[1], bbox_inches="tight", metadata={"Date": None, "Creator": None})
    plt.close(fig)
    return paths


def _bars(ax: plt.Axes, table: pd.DataFrame, xcol: str, arms: list[str], ycol: str,
          lo: str, hi: str) -> None:
    xs = list(dict.fromkeys(table[xcol]))
    width = 0.8 / max(1, len(arms))
    for i, arm in enumerate(arms):
        t = table[table["arm"] == arm].set_index(xcol).reindex(xs)
        x = np.arange(len(xs)) + (i - (len(arms) - 1) / 2) * width
        y = t[ycol].to_numpy(float)
        err = np.vstack([y - t[lo].to_numpy(float), t[hi].to_numpy(float) - y])
        ax.bar(x, y, width, label=arm, color=_COLORS[i % len(_COLORS)],
               yerr=np.clip(np.nan_to_num(err), 0, None), capsize=2)
    ax.set_xticks(np.arange(len(xs)), [_words(x) for x in xs], rotation=0)


def _words(label: object) -> str:
    """'relation:hierarchical_down' -> 'relation: hierarchical down'; 'unmodified' -> 'no context'."""
    s = str(label)
    return "no context" if s == "unmodified" else s.replace(":", ": ").replace("_", " ")


def error_rates(df: pd.DataFrame, arms: list[str], out_dir: Path) -> list[Path]:
    d = df[df["dataset"].isin(reliability_sets())].dropna(subset=["is_correct"])
    if d.empty:
        return []
    d = d.assign(pg=d["form"].astype(str).map(prompt_group))
    fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
    for ax, (pg, title) in zip(axes, PANELS.items(), strict=True):
        s = d[d["pg"] == pg]
        g = s.groupby(["dataset", "arm"], sort=True)["is_correct"].agg(n="size", k="sum")
        g = g.reset_index()
        wrong = g["n"] - g["k"]
        lo, hi = wilson(wrong.to_numpy(), g["n"].to_numpy())
        g["err"], g["lo"], g["hi"] = 100 * wrong / g["n"], 100 * lo, 100 * hi
        if len(g):
            _bars(ax, g, "dataset", arms, "err", "lo", "hi")
        ax.set_title(title)
        ax.set_ylabel("error rate (%)")
    axes[0].legend(title="arm")
    fig.suptitle("Error rate per dataset (95% Wilson CI)")
    return _save(fig, out_dir, "error_rates")


def context_gap_table(df: pd.DataFrame, baseline: str, arms: list[str]) -> pd.DataFrame:
    """arm, pg, context, gap (pp), half (95% CI half-width, pp), exact (bound used)."""
    rows = []
    for arm in arms:
        p = make_pairs(df[df["dataset"].isin(reliability_sets())], baseline, arm)
        if p.empty:
            continue
        p = p.assign(pg=p["form"].astype(str).map(prompt_group),
                     gap=100 * (p["y0"].astype(float) - p["y1"].astype(float)))
        for (pg, ctx), g in p.groupby(["pg", "context"], sort=True):
            n = len(g)
            k = int((g["gap"] != 0).sum())          # discordant pairs
            exact = n < 2 or k == 0
            if exact:   # no spread: the normal half-width would be 0 (or undefined)
                half = 100 * exact_paired_bound(n, 0.95, k)
            else:
                half = 1.96 * g["gap"].std(ddof=1) / np.sqrt(n)
            rows.append({"arm": arm, "pg": pg, "context": ctx, "gap": g["gap"].mean(),
                         "half": half, "exact": exact})
    return pd.DataFrame(rows)


def context_gap(df: pd.DataFrame, baseline: str, arms: list[str], out_dir: Path) -> list[Path]:
    t = context_gap_table(df, baseline, arms)
    if t.empty:
        return []
    groups = [pg for pg in ("original", "user_opinion") if pg in set(t["pg"])]
    fig, axes = plt.subplots(1, len(groups), figsize=(6.5 * len(groups), 5), squeeze=False,
                             sharey=True)
    for ax, pg in zip(axes[0], groups, strict=True):
        s = t[t["pg"] == pg].assign(lo=lambda x: x["gap"] - x["half"], hi=lambda x: x["gap"] + x["half"])
        _bars(ax, s, "context", [a for a in arms if a in set(s["arm"])], "gap", "lo", "hi")
        # a context whose interval is the exact bound (no discordant pairs) is marked "†"
        exact = set(s.loc[s["exact"], "context"])
        ax.set_xticklabels([_words(c) + (" †" if c in exact else "")
                            for c in dict.fromkeys(s["context"])])
        ax.axhline(0, color="black", lw=0.8)
        plt.setp(ax.get_xticklabels(), rotation=35, ha="right", rotation_mode="anchor")
        ax.set_title(PANELS[pg])
        ax.set_ylabel("change in error rate (pp)")
        ax.legend(title="arm")
    note = ("; †: no discordant pairs, exact bound" if t["exact"].any() else "")
    fig.suptitle(f"Change in error rate against {baseline}, per context (paired prompts, 95% CI{note})")
    return _save(fig, out_dir, "context_gap")


def general(gen: pd.DataFrame, arms: list[str], out_dir: Path) -> list[Path]:
    if gen.empty:
        return []
    # the model family under the dataset only when there are several
    t = gen.assign(x=gen["dataset"] + ("\n" + gen["model_family"] if gen["model_family"].nunique() > 1 else ""))
    fig, ax = plt.subplots(figsize=(max(5, 1.6 * t["x"].nunique()), 4))
    _bars(ax, t, "x", [a for a in arms if a in set(t["arm"])], "accuracy_pct",
          "ci_low_pct", "ci_high_pct")
    ax.set_ylabel("accuracy (%)")
    ax.set_ylim(0, 100)
    ax.legend(title="arm", loc="upper left", bbox_to_anchor=(1.0, 1.0))
    ax.set_title("General benchmarks (95% Wilson CI)")
    return _save(fig, out_dir, "general")


def warmth_trajectory(path: Path, out_dir: Path) -> list[Path]:
    if not path.exists():
        return []
    t = pd.read_csv(path)
    need = {"persona", "epoch", "mean", "ci_low", "ci_high"}
    if not need.issubset(t.columns) or t.empty:
        return []
    keys = ["base_model", "persona"] if "base_model" in t.columns else ["persona"]
    fig, ax = plt.subplots(figsize=(6, 4))
    for i, (key, g) in enumerate(t.groupby(keys, sort=True)):
        g = g.sort_values("epoch")
        color = _COLORS[i % len(_COLORS)]
        label = " / ".join(map(str, key)) if isinstance(key, tuple) else str(key)
        ax.plot(g["epoch"], g["mean"], marker="o", color=color, label=label)
        ax.fill_between(g["epoch"], g["ci_low"], g["ci_high"], color=color, alpha=0.2)
    ax.set_xlabel("epoch")
    ax.set_ylabel("SocioT warmth")
    ax.legend()
    ax.set_title("Warmth of each checkpoint's answers")
    return _save(fig, out_dir, "warmth_trajectory")
