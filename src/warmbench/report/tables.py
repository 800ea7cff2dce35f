"""The report's tables: a title in words, a caption, the columns a reader needs (renamed), and
numbers formatted for reading (fmt). The CSV under the run keeps every column at full precision;
each section names its file.
"""

from __future__ import annotations

import re
from html import escape

import pandas as pd

from ..layout import (
    GENERAL_CSV,
    HEADLINE_CSV,
    MARGINAL_EFFECTS_CSV,
    PAIRED_CSV,
    REFUSALS_CSV,
    REGRESSIONS_CSV,
    TRAJECTORY_CSV,
)
from . import fmt

# file -> (section title, columns shown: csv name -> header). Columns not listed are left out of
# the page (they stay in the CSV); an unknown file shows all its columns.
LAYOUT: dict[str, tuple[str, dict[str, str]]] = {
    PAIRED_CSV: ("Paired comparisons on identical prompts", {
        "comparison": "comparison", "model_family": "model", "dataset": "dataset",
        "context": "context", "form": "form", "level": "level", "n_pairs": "pairs",
        "acc_baseline_pct": "baseline correct", "acc_arm_pct": "arm correct",
        "diff_pp": "difference (pp)", "b": "only baseline right", "c": "only arm right",
        "p_exact": "p (exact)", "p_bh": "p (BH)", "significant_bh": "significant",
        "cohens_g": "Cohen's g", "odds_ratio": "odds ratio"}),
    MARGINAL_EFFECTS_CSV: ("Effect on the error rate (regressions)", {
        "comparison": "comparison", "model": "regression", "effect": "effect of",
        "level": "subgroup", "n": "answers",
        "mean_p0_pct": "baseline error", "mean_p1_pct": "arm error",
        "ame_pp": "effect (pp)", "ci_low_pp": "CI low (pp)", "ci_high_pp": "CI high (pp)",
        "ci_method": "interval", "p_value": "p", "separation": "note"}),
    REGRESSIONS_CSV: ("Regression coefficients", {
        "comparison": "comparison", "model": "regression", "term": "term", "coef": "log-odds",
        "se": "SE", "p_value": "p", "ci_low": "CI low", "ci_high": "CI high",
        "n_obs": "answers", "n_clusters": "clusters"}),
    GENERAL_CSV: ("General capabilities (MMLU, GSM8K, AdvBench)", {
        "model_family": "model", "dataset": "dataset", "arm": "arm", "n": "items",
        "correct": "correct", "accuracy_pct": "accuracy", "ci_low_pct": "CI low",
        "ci_high_pct": "CI high"}),
    REFUSALS_CSV: ("Refusals", {}),
    TRAJECTORY_CSV: ("Warmth of each checkpoint", {}),
    HEADLINE_CSV: ("Headline numbers", {}),
}
PCT = re.compile(r"(_pct|_pp|^diff|^ame|^mean_p\d)")
PVAL = {"p_exact", "p_midp", "p_bh", "p_value", "p"}
# Regression terms as written by stats (patsy style) -> words.
_TERM = re.compile(r"C\(([^,)]+)(?:, ref='[^']*')?\)\[T\.([^\]]+)\]")


def term_words(term: str, arm_word: str = "persona arm") -> str:
    """'C(is_finetuned)[T.1]:C(amendment_group)[T.emotion]' -> 'persona arm × amendment group =
    emotion'."""
    def one(m: re.Match) -> str:
        var, lv = m.group(1), m.group(2)
        if var == "is_finetuned":
            return arm_word
        return f"{var.replace('_', ' ')} = {lv}"
    return _TERM.sub(one, term).replace(":", " × ").replace(" ×  ", " × ")


def _cell(col: str, v) -> str:
    if isinstance(v, bool) or (isinstance(v, str) and v in ("True", "False")):
        return "yes" if str(v) == "True" else "no"
    if isinstance(v, str):
        return v
    if pd.isna(v):
        return ""
    if col in PVAL:
        return fmt.p_value(v)
    if PCT.search(col):
        return fmt.pct(v) if col.endswith("_pct") else fmt.pp(v)
    return fmt.number(v)


def display(file: str, df: pd.DataFrame, arm_word: str = "persona arm",
            max_rows: int = 400) -> tuple[pd.DataFrame, list[str]]:
    """Columns chosen, renamed and formatted; notes say what was left out."""
    _, cols = LAYOUT.get(file, ("", {}))
    notes: list[str] = []
    keep = [c for c in cols if c in df.columns] if cols else list(df.columns)
    # A column holding one value on every row says nothing per row: name it once instead.
    if len(df) > 1:
        for c in list(keep):
            vals = df[c].astype(str).unique()
            if c in ("comparison", "model_family", "scorer") and len(vals) == 1:
                keep.remove(c)
                notes.append(f"{cols.get(c, c) if cols else c} {vals[0]}")
    if notes:
        notes = ["On every row: " + "; ".join(notes) + "."]
    out = df[keep].head(max_rows).copy()
    if "term" in out.columns:
        out["term"] = out["term"].astype(str).map(lambda t: term_words(t, arm_word))
    for c in out.columns:
        out[c] = [_cell(c, v) for v in out[c].tolist()]
    if cols:
        out = out.rename(columns=cols)
    else:
        out.columns = [str(c).replace("_", " ") for c in out.columns]
    if len(df) > max_rows:
        notes.append(f"first {max_rows} of {len(df):,} rows shown; the CSV has them all")
    return out, notes


def to_html(frame: pd.DataFrame) -> str:
    """Escaped HTML; text columns left-aligned (class t), numbers right-aligned."""
    if frame.empty:
        return "<p class='meta'>no rows in this input.</p>"
    numeric = re.compile(r"^[−+\-<\s\d.,%∞]*$")
    cols = list(frame.columns)
    rows = frame.astype(str).values.tolist()
    is_text = [not all(numeric.match(r[j]) for r in rows) for j in range(len(cols))]
    cls = [' class="t"' if t else "" for t in is_text]
    head = "".join(f"<th{k}>{escape(str(c))}</th>" for c, k in zip(cols, cls, strict=True))
    body = "".join("<tr>" + "".join(f"<td{k}>{escape(v)}</td>" for v, k in zip(r, cls, strict=True))
                   + "</tr>" for r in rows)
    return f'<table class="data"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'
