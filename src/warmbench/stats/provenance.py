"""Who produced the labels: readable scorer descriptions for stats.json, headline and report.

Kept free of heavy imports (no matplotlib / statsmodels) so the report can use it too.
"""

from __future__ import annotations

from collections.abc import Iterable

import pandas as pd


def describe_scorers(names: Iterable[str]) -> str:
    """One readable line saying who produced the labels, e.g.
    'offline reference scorers (reference:alias, reference:choice); no LLM judge'."""
    names = sorted({str(n) for n in names if str(n) not in ("", "nan", "None")})
    if not names:
        return "unknown (the scored table has no scorer column)"
    judge = [n for n in names if n.startswith("judge:")]
    ref = [n for n in names if n.startswith("reference:")]
    pub = [n for n in names if n.startswith("published:")]
    other = [n for n in names if n not in judge + ref + pub]
    parts = []
    if judge:
        specs = sorted({n[len("judge:"):].rsplit("@", 1)[0] for n in judge})
        parts.append(f"LLM judge {', '.join(specs)} ({', '.join(judge)})")
    if ref:
        parts.append(f"offline reference scorers ({', '.join(ref)})"
                     + ("" if judge else "; no LLM judge"))
    if pub:
        parts.append(f"the study's released verdicts ({', '.join(pub)}: the authors' GPT-4o "
                     "judge, as published)")
    if other:
        parts.append("other: " + ", ".join("none (unscored rows)" if n == "none" else n
                                           for n in other))
    return "; ".join(parts)


def scorer_counts(df: pd.DataFrame) -> dict[str, int]:
    if "scorer" not in df.columns:
        return {}
    return {str(k): int(v) for k, v in df["scorer"].astype(str).value_counts().sort_index().items()}
