"""Paired comparison table on hand-made scored rows, and the published-format (compat) tables."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from statsmodels.stats.multitest import multipletests

from warmbench.layout import SCORED_COLUMNS
from warmbench.stats.compat import compat_columns, compat_tables
from warmbench.stats.paired import PAIRED_COLUMNS, make_pairs, paired_table


def _rows(arm: str, cells: dict[tuple[str, str], list[float]], family: str = "fam",
          dataset: str = "triviaqa") -> list[dict]:
    out = []
    for (ctx, form), ys in cells.items():
        for i, y in enumerate(ys):
            out.append({"model_family": family, "arm": arm, "model": f"x:{arm}", "dataset": dataset,
                        "item_id": str(i), "prompt_key": f"{dataset}:{i}:{ctx}:{form}",
                        "context": ctx, "form": form, "prompt": "", "answer": "", "label": "",
                        "refused": False, "is_correct": y, "scorer": "t", "sample_index": 0})
    return out


def _table() -> pd.DataFrame:
    nan = float("nan")
    base = {("unmodified", "original"): [1, 1, 1, 1, 0, 0, 1, 1],
            ("emotion:sad", "original"): [1, 1, 1, 0, 1, 1],
            ("emotion:sad", "incorrect"): [1, 1, 1, 1, 1],
            ("emotion:sad", "correct"): [1, 0, 1, 1]}
    warm = {("unmodified", "original"): [1, 0, 0, 1, 0, 1, 1, nan],  # last pair excluded
            ("emotion:sad", "original"): [0, 0, 1, 0, 1, 1],
            ("emotion:sad", "incorrect"): [0, 0, 0, 1, 0],
            ("emotion:sad", "correct"): [0, 0, 1, 1]}
    rows = _rows("original", base) + _rows("warm", warm)
    return pd.DataFrame(rows)[list(SCORED_COLUMNS)]


def test_cells_counts_and_tests():
    t = paired_table(_table(), "original", ["warm"])
    assert list(t.columns) == PAIRED_COLUMNS
    cell = t[(t["level"] == "cell") & (t["context"] == "unmodified")].iloc[0]
    # 7 pairs left (one excluded): a=3 (0,3,6) b=2 (1,2) c=1 (5) d=1 (4)
    assert (cell.n_pairs, cell.a, cell.b, cell.c, cell.d) == (7, 3, 2, 1, 1)
    assert cell.acc_baseline_pct == pytest.approx(500 / 7)
    assert cell.diff_pp == pytest.approx(100 * (4 - 5) / 7)
    assert cell.p_exact == pytest.approx(stats.binomtest(2, 3).pvalue, abs=1e-12)
    assert cell.cohens_g == pytest.approx(2 / 3 - 0.5)
    assert cell.odds_ratio == pytest.approx(2.0)
    assert cell.or_ci_low < 2.0 < cell.or_ci_high


def test_pooled_rows_and_bh_family():
    t = paired_table(_table(), "original", ["warm"])
    belief = t[(t["form"] == "user_belief") & (t["context"] == "emotion:sad")].iloc[0]
    assert belief.level == "pooled" and belief.n_pairs == 9
    assert (belief.b, belief.c) == (5, 0)   # 4 from incorrect + 1 from correct
    allorig = t[(t["context"] == "all") & (t["form"] == "original")].iloc[0]
    assert allorig.n_pairs == 13
    # pooled rows are only written when they merge two or more cells
    assert not ((t["context"] == "all") & (t["form"] == "incorrect")).any()
    ref = multipletests(t["p_exact"], method="fdr_bh")[1]
    np.testing.assert_allclose(t["p_bh"], ref, atol=1e-12)
    per_table = paired_table(_table(), "original", ["warm"], family="table")
    g = per_table[(per_table["level"] == "cell") & (per_table["form"] == "original")]
    np.testing.assert_allclose(g["p_bh"], multipletests(g["p_exact"], method="fdr_bh")[1])


def test_pairs_need_both_arms_and_duplicates_pair_in_order():
    df = _table()
    dup = df[(df["arm"] == "warm") & (df["item_id"] == "0") & (df["context"] == "unmodified")]
    df2 = pd.concat([df, dup, df[(df["arm"] == "original") & (df["item_id"] == "0")
                                  & (df["context"] == "unmodified")]], ignore_index=True)
    ordinal = make_pairs(df2, "original", "warm")
    cartesian = make_pairs(df2, "original", "warm", ordinal=False)
    assert len(ordinal) == len(make_pairs(df, "original", "warm")) + 1
    assert len(cartesian) == len(ordinal) + 2
    only_base = df[df["arm"] == "original"]
    assert make_pairs(only_base, "original", "warm").empty


def test_compat_tables_shape_and_published_conventions():
    df = _table()
    c = compat_tables(df, "original", "warm")
    assert list(c.columns) == compat_columns()
    syc = c[c["Test_Type"] == "Sycophancy"]
    normal = c[c["Test_Type"] == "Normal"]
    assert list(syc["Amendment_type"]) == ["emotion:sad"]
    assert sorted(normal["Amendment_type"]) == ["emotion:sad\noriginal",
                                                "unmodified\noriginal_combined"]
    row = normal[normal["Amendment_type"] == "unmodified\noriginal_combined"].iloc[0]
    # b=2, c=1: published "Cohen's g" = |b-c|/sqrt(b+c)
    assert row["Cohen's g"] == f"{1 / np.sqrt(3):.3f}" and row["g Effect Size"] == "Large"
    assert row["Odds Ratio"] == "2.00" and row["Dataset"] == "trivia"
    s = syc.iloc[0]
    assert s["Odds Ratio"] == "∞" and s["p-value"] == f"{stats.binomtest(5, 5).pvalue:.4f}"


def test_compat_drops_neutral_rows_like_the_published_code():
    df = _table()
    extra = pd.DataFrame(_rows("original", {("unmodified", "original_neutral"): [1, 1, 1]})
                         + _rows("warm", {("unmodified", "original_neutral"): [0, 0, 0]}))
    c = compat_tables(pd.concat([df, extra], ignore_index=True), "original", "warm")
    before = compat_tables(df, "original", "warm")
    pd.testing.assert_frame_equal(c, before)
    ours = paired_table(pd.concat([df, extra], ignore_index=True), "original", ["warm"])
    assert (ours["form"] == "original_neutral").any()  # our table keeps them


def test_run_stats_stage_with_config_and_store(tmp_path):
    import json

    from synthetic import synthetic_scored

    from warmbench.config import parse_config
    from warmbench.stats.run import run_stats
    from warmbench.store import RunStore

    cfg = parse_config({"run_dir": str(tmp_path), "stats": {"compat": True}})
    store = RunStore(tmp_path)
    (tmp_path / "judge").mkdir()
    df = synthetic_scored({"triviaqa": 12, "disinfo": 8}, seed=2)
    # an answer the published phrase list (not our detector) counts as a refusal
    hedge = (df["arm"] == "warm") & (df["dataset"] == "triviaqa") & (df["is_correct"] == 1)
    hedge &= hedge.cumsum() == 1
    df.loc[hedge, "answer"] = "I cannot stress enough how sure I am: Paris."
    df.to_parquet(tmp_path / "judge" / "scored.parquet", index=False)
    out = run_stats(cfg, store)
    assert out["comparisons"] == 1
    s = json.loads((tmp_path / "stats" / "stats.json").read_text())
    assert s["compat"] is True and s["cluster"] == "none" and s["fdr_family"] == "table"
    assert s["source"]["refusal"].startswith("compat: the published phrase list re-applied")
    pub = pd.read_csv(tmp_path / "stats" / "results_warm.csv", keep_default_na=False)
    assert list(pub.columns) == compat_columns()
    assert (tmp_path / "stats" / "headline.csv").exists()
    # the analysed table (refusals re-applied) is saved and named for the report
    analysed = pd.read_parquet(tmp_path / "stats" / "scored.parquet")
    assert s["source"]["scored_table"] == "scored.parquet"
    key = df.loc[hedge, "prompt_key"].iloc[0]
    row = analysed[(analysed["arm"] == "warm") & (analysed["prompt_key"] == key)].iloc[0]
    assert row["refused"] and np.isnan(row["is_correct"])
    other = analysed[(analysed["arm"] == "original") & (analysed["prompt_key"] == key)].iloc[0]
    assert other["is_correct"] == df.loc[(df["arm"] == "original") & (df["prompt_key"] == key),
                                         "is_correct"].iloc[0]    # per-arm exclusion
    # the same through the CLI; without --compat the table is used as scored
    from typer.testing import CliRunner

    from warmbench.cli import app

    r = CliRunner().invoke(app, ["stats", str(tmp_path), "--compat", "-q", "--out",
                                 str(tmp_path / "cli")], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "cli" / "scored.parquet"), analysed)
    r = CliRunner().invoke(app, ["stats", str(tmp_path), "--no-compat", "-q", "--out",
                                 str(tmp_path / "plain")], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    plain = json.loads((tmp_path / "plain" / "stats.json").read_text())
    assert not (tmp_path / "plain" / "scored.parquet").exists()
    assert plain["source"]["refusal"].startswith("as scored")
    assert plain["source"]["scored_table"].endswith("judge/scored.parquet")


def test_table_family_is_exactly_the_published_nine_row_tables():
    """BH 'table' family: each family of per-context rows is one published 9-row table; the
    rows pooled over every context (context=all) form their own family instead of joining the
    user_belief table as a 10th test."""
    from synthetic import synthetic_scored

    from warmbench.stats.multiple import bh_adjust
    from warmbench.stats.paired import FDR_FAMILIES

    df = synthetic_scored({"triviaqa": 25, "disinfo": 15}, families=("fam-a", "fam-b"), seed=4)
    t = paired_table(df, "original", ["warm"], family="table")
    keys = [k for k in FDR_FAMILIES["table"] if k in t.columns]
    per_ctx = t[t["context"] != "all"]
    sizes = per_ctx.groupby(keys).size()
    forms = sizes.index.get_level_values("form")
    assert (sizes[forms != "original_neutral"] == 9).all()
    assert (sizes[forms == "original_neutral"] == 1).all()
    for _, g in t.groupby([*keys, t["context"] == "all"]):
        np.testing.assert_allclose(g["p_bh"], bh_adjust(g["p_exact"].to_numpy()), atol=1e-15)
    # the published tables themselves: Sycophancy = user_belief per context, Normal = original
    pub = compat_tables(df, "original", "warm")
    assert (pub.groupby(["Model", "Dataset", "Test_Type"]).size() == 9).all()
    compared = 0
    for (fam, ds), g in pub.groupby(["Model", "Dataset"]):
        name = "triviaqa" if ds == "trivia" else ds
        for test_type, form, level in (("Sycophancy", "user_belief", "pooled"),
                                       ("Normal", "original", "cell")):
            ours = t[(t["model_family"] == fam) & (t["dataset"] == name) & (t["form"] == form)
                     & (t["level"] == level) & (t["context"] != "all")].sort_values("context")
            theirs = g[g["Test_Type"] == test_type].sort_values("Amendment_type")
            assert len(ours) == len(theirs) == 9
            if (ours["b"] + ours["c"] > 0).all():  # published leaves b + c = 0 out of BH
                np.testing.assert_allclose(
                    ours["p_bh"], theirs["p-value (FDR corrected)"].astype(float), atol=5e-5)
                compared += 1
    assert compared >= 4


def test_compat_refusal_reapplies_the_published_list_per_arm():
    from warmbench.stats.run import compat_refusal

    df = _table()
    df["answer"] = "Paris."
    df["label"] = np.where(df["is_correct"] == 1, "CORRECT", "INCORRECT")
    df.loc[df["is_correct"].isna(), "label"] = "UNPARSEABLE"
    hedge = (df["arm"] == "warm") & (df["context"] == "emotion:sad") & (df["form"] == "original") \
        & (df["item_id"] == "0")
    curly = (df["arm"] == "warm") & (df["context"] == "emotion:sad") & (df["form"] == "original") \
        & (df["item_id"] == "1")
    # a hedge the published list counts as a refusal; a curly-apostrophe refusal it misses
    df.loc[hedge, "answer"] = "I cannot stress enough: Paris."
    df.loc[curly, "answer"] = "I can’t help with that."
    df.loc[curly, ["refused", "is_correct"]] = [True, np.nan]   # as scored (corrected)
    base_curly = (df["arm"] == "original") & (df["prompt_key"] == df.loc[curly, "prompt_key"].iloc[0])
    df.loc[base_curly, "is_correct"] = np.nan                     # pairwise exclusion
    out = compat_refusal(df)
    assert list(out.columns) == list(df.columns)
    assert out.loc[hedge, "refused"].all() and out.loc[hedge, "is_correct"].isna().all()
    base_hedge = (df["arm"] == "original") & (df["prompt_key"] == df.loc[hedge, "prompt_key"].iloc[0])
    assert out.loc[base_hedge, "is_correct"].notna().all()        # per arm: the pair is broken
    assert not out.loc[curly, "refused"].any() and (out.loc[curly, "is_correct"] == 0).all()
    assert out.loc[base_curly, "is_correct"].notna().all()        # pairwise exclusion undone
    pd.testing.assert_frame_equal(compat_refusal(out), out)        # idempotent


def test_scorer_is_recorded_in_every_output(tmp_path):
    import json

    from synthetic import synthetic_scored

    from warmbench.stats.run import analyse, write_outputs

    df = synthetic_scored({"triviaqa": 10, "medqa": 8, "disinfo": 6}, seed=5)
    df["scorer"] = df["dataset"].map({"triviaqa": "reference:alias", "medqa": "reference:choice",
                                      "disinfo": "reference:embedding"})
    s = write_outputs(analyse(df), tmp_path, df)
    desc = s["scorer"]["description"]
    assert desc.startswith("offline reference scorers") and "no LLM judge" in desc
    assert s["scorer"]["rows"]["reference:alias"] == int((df["dataset"] == "triviaqa").sum())
    assert json.loads((tmp_path / "stats.json").read_text())["scorer"]["description"] == desc
    head = pd.read_csv(tmp_path / "headline.csv").set_index("quantity")["value"]
    assert head["scorer"] == desc
    paired = pd.read_csv(tmp_path / "paired.csv")
    assert dict(zip(paired["dataset"], paired["scorer"], strict=True)) == {
        "triviaqa": "reference:alias", "medqa": "reference:choice", "disinfo": "reference:embedding"}
    judged = df.assign(scorer=np.where(df["dataset"] == "triviaqa",
                                       "judge:openai:gpt-4o-2024-08-06@answer.v1", df["scorer"]))
    desc = analyse(judged).scorers
    from warmbench.stats.provenance import describe_scorers

    text = describe_scorers(desc)
    assert text.startswith("LLM judge openai:gpt-4o-2024-08-06") and "no LLM judge" not in text
