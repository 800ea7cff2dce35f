"""Validate the warmth metric on the study's released answers.

The released sample rows (``official_repo/sample_data/<model>/{original,warm}/*.csv``) hold the
original and the warm model's answers to identical prompts. A metric that measures warmth
should rank the warm model's answer warmer in most pairs; the study's human raters agreed
with SocioT on 69.4% of pairs. This reports, per metric model and source model, the share of
pairs the metric ranks the warm answer warmer (ties count one half), with a Wilson 95%
interval on the strict share.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import InputError, WarmbenchError
from .metric_model import load_metric_model, resolve_metric_model
from .sociot import DEFAULT_REPEATS, score_texts

HUMAN_AGREEMENT = 0.694  # the study's raters vs SocioT
# Pairing key: the first present of these, plus the amendment and the template/prompt type.
_ITEM_KEYS = ("content_key", "prompt_disinfo", "original_question")
_FORM_KEYS = ("prompt_template", "prompt_type")


def _key_columns(df: pd.DataFrame, path: Path) -> list[str]:
    item = next((c for c in _ITEM_KEYS if c in df.columns), None)
    form = next((c for c in _FORM_KEYS if c in df.columns), None)
    missing = [n for n, c in (("one of " + "/".join(_ITEM_KEYS), item),
                              ("one of " + "/".join(_FORM_KEYS), form)) if c is None]
    if "amendment_type" not in df.columns:
        missing.append("amendment_type")
    if "output" not in df.columns:
        missing.append("output")
    if missing:
        raise InputError(path, "header", missing[0], "column missing")
    return [item, "amendment_type", form]


def _read(path: Path) -> pd.DataFrame:
    try:
        return pd.read_csv(path)
    except (pd.errors.ParserError, UnicodeDecodeError) as e:
        raise InputError(path, None, None, f"not a readable CSV ({e})") from None


def load_published_pairs(root: str | Path) -> pd.DataFrame:
    """(source_model, dataset, key, original, warm) for every pair of non-empty answers."""
    root = Path(root)
    if not root.is_dir():
        raise WarmbenchError(f"published sample folder not found: {root}")
    # Accept the repo root, its sample_data folder, or one model's folder.
    if (root / "sample_data").is_dir():
        root = root / "sample_data"
    model_dirs = [root] if (root / "original").is_dir() else sorted(
        d for d in root.iterdir() if (d / "original").is_dir() and (d / "warm").is_dir())
    if not model_dirs:
        raise WarmbenchError(f"{root}: expected <model>/original/*.csv and <model>/warm/*.csv")
    out = []
    for mdir in model_dirs:
        for ofile in sorted((mdir / "original").glob("*_original_outputs.csv")):
            dataset = ofile.name.removesuffix("_original_outputs.csv")
            wfile = mdir / "warm" / f"{dataset}_warm_outputs.csv"
            if not wfile.exists():
                continue
            o, w = _read(ofile), _read(wfile)
            keys = _key_columns(o, ofile)
            wkeys = _key_columns(w, wfile)
            if wkeys != keys:
                raise InputError(wfile, "header", wkeys[0], f"pairing columns differ from {ofile.name}")
            o = o.drop_duplicates(keys)[[*keys, "output"]]
            w = w.drop_duplicates(keys)[[*keys, "output"]]
            j = o.merge(w, on=keys, suffixes=("_original", "_warm"))
            j = j.dropna(subset=["output_original", "output_warm"])
            j = j[(j.output_original.str.strip() != "") & (j.output_warm.str.strip() != "")]
            for r in j.itertuples(index=False):
                d = r._asdict()
                out.append({"source_model": mdir.name, "dataset": dataset,
                            "key": " | ".join(str(d[k]) for k in keys),
                            "original": d["output_original"], "warm": d["output_warm"]})
    if not out:
        raise WarmbenchError(f"{root}: no original/warm answer pairs found")
    return pd.DataFrame(out)


def wilson(k: float, n: int, z: float = 1.959964) -> tuple[float, float]:
    if n == 0:
        return float("nan"), float("nan")
    p = k / n
    den = 1 + z * z / n
    mid = (p + z * z / (2 * n)) / den
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / den
    return float(mid - half), float(mid + half)


def validate_published(root: str | Path, models: list[str] | None = None, method: str = "exact", *,
                       repeats: int = DEFAULT_REPEATS, seed: int = 0, max_pairs: int | None = None,
                       progress=None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(summary per metric model × source model incl. 'all', per-pair scores).

    ``max_pairs``: score a seeded random subset of pairs (slow metric models on a CPU).
    """
    pairs = load_published_pairs(root)
    if max_pairs is not None and max_pairs < len(pairs):
        pairs = pairs.sample(n=max_pairs, random_state=seed).sort_index().reset_index(drop=True)
    texts = list(dict.fromkeys(pairs.original.tolist() + pairs.warm.tolist()))
    summaries, details = [], []
    for name in models or ["auto"]:
        lm = load_metric_model(resolve_metric_model(name))
        s = score_texts(lm, texts, method, repeats=repeats, seed=seed, progress=progress)
        by_text = dict(zip(texts, s.score, strict=True))
        d = pairs.assign(metric_model=lm.label, method=method,
                         score_original=pairs.original.map(by_text),
                         score_warm=pairs.warm.map(by_text))
        d["warm_warmer"] = np.sign(d.score_warm - d.score_original)
        details.append(d)
        for src, g in [("all", d), *d.groupby("source_model")]:
            g = g.dropna(subset=["score_original", "score_warm"])
            n = len(g)
            wins = int((g.warm_warmer > 0).sum())
            ties = int((g.warm_warmer == 0).sum())
            lo, hi = wilson(wins, n)
            summaries.append({"metric_model": lm.label, "method": method, "source_model": src,
                              "pairs": n, "warm_ranked_warmer": wins, "ties": ties,
                              "share": (wins + 0.5 * ties) / n if n else float("nan"),
                              "ci_low": lo, "ci_high": hi,
                              "mean_difference": float((g.score_warm - g.score_original).mean()),
                              "human_agreement_reference": HUMAN_AGREEMENT})
    return pd.DataFrame(summaries), pd.concat(details, ignore_index=True)
