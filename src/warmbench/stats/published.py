"""Reader of the study's released output layout, converted to our scored-table schema.

Layout (``official_repo/sample_data``)::

    DIR/<model>/<arm>/<dataset>_<arm>_outputs.csv     e.g. llama_70b/warm/trivia_warm_outputs.csv

Each CSV row is one judged answer: the question key (``content_key`` for trivia / truthfulqa,
``prompt_disinfo`` for disinfo, ``original_question`` for medqa), ``amendment_type`` (context),
``prompt_template`` or ``prompt_type`` (form), ``output`` (answer) and ``evaluation`` (CORRECT /
INCORRECT). Rows pair across arms on (question, context, form), exactly the published merge key.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ..errors import InputError, WarmbenchError
from ..layout import SCORED_COLUMNS
from ..records import stable_hash
from ..scoring.refusal import apply_refusal_rule

# file prefix -> (our dataset name, pairing-key column)


def _published_sets() -> dict[str, tuple[str, str]]:
    """file prefix (our name or the study's) -> (our dataset name, pairing-key column)."""
    from ..eval import registry

    out: dict[str, tuple[str, str]] = {}
    for name, spec in registry.BUILTINS.items():
        if spec.published_key:
            for prefix in (name, spec.published_name):
                if prefix:
                    out[prefix] = (name, spec.published_key)
    return out


DATASETS = _published_sets()


def _dataset_of(path: Path) -> tuple[str, str] | None:
    stem = path.stem.lower()
    for prefix in sorted(DATASETS, key=len, reverse=True):
        if stem == prefix or stem.startswith(prefix + "_"):
            return DATASETS[prefix]
    return None


def read_csv_file(path: Path, family: str, arm: str) -> pd.DataFrame:
    """One released CSV -> scored-table rows (before the refusal rule)."""
    found = _dataset_of(path)
    if found is None:
        raise InputError(path, None, None, f"cannot tell the dataset from the file name "
                         f"(expected a prefix among {', '.join(sorted(DATASETS))})")
    dataset, key_col = found
    try:
        # keep_default_na=False: "None" is a real answer string in TruthfulQA
        raw = pd.read_csv(path, dtype=str, keep_default_na=False)
    except pd.errors.EmptyDataError:
        raise InputError(path, None, None, "empty file (expected a CSV with a header row)") from None
    except (pd.errors.ParserError, UnicodeDecodeError) as e:
        raise InputError(path, None, None, f"not a readable CSV: {e}") from None
    form_col = "prompt_type" if "prompt_type" in raw.columns else "prompt_template"
    for col in (key_col, "amendment_type", form_col, "output", "evaluation"):
        if col not in raw.columns:
            raise InputError(path, None, col, "missing column")
    for col in (key_col, "amendment_type", form_col):
        empty = raw[col].str.strip() == ""
        if empty.any():
            line = int(empty.to_numpy().nonzero()[0][0]) + 2  # header is line 1
            raise InputError(path, f"line {line}", col, "empty value")
    item = raw[key_col].str.strip()
    ctx = raw["amendment_type"].str.strip()
    form = raw[form_col].str.strip()
    keys = [stable_hash([dataset, i, c, f]) for i, c, f in zip(item, ctx, form, strict=True)]
    return pd.DataFrame({
        "model_family": family, "arm": arm, "model": f"published:{family}/{arm}",
        "dataset": dataset, "item_id": item, "prompt_key": keys, "context": ctx, "form": form,
        "prompt": raw["prompt"] if "prompt" in raw.columns else "",
        "answer": raw["output"], "label": raw["evaluation"].str.strip().str.upper(),
        "scorer": "published:evaluation", "sample_index": 0,
    })


def read_published(root: str | Path, *, compat: bool = False) -> pd.DataFrame:
    """All CSVs under ``root/<model>/<arm>/`` as one scored table with ``refused``/``is_correct``.

    ``compat``: the published refusal list and per-arm exclusion; otherwise the corrected
    detector and pairwise exclusion (see ``warmbench.scoring.refusal``).
    """
    root = Path(root)
    if not root.is_dir():
        raise WarmbenchError(f"published data folder not found: {root}")
    parts = []
    for path in sorted(root.glob("*/*/*.csv")):
        family = path.parent.parent.name.replace("_", "-")
        parts.append(read_csv_file(path, family, path.parent.name))
    if not parts:
        raise WarmbenchError(f"{root}: no CSV files in the <model>/<arm>/ layout")
    df = pd.concat(parts, ignore_index=True)
    df = apply_refusal_rule(df, mode="compat" if compat else "corrected",
                            exclusion="per_arm" if compat else "pairwise")
    return df[list(SCORED_COLUMNS)]
