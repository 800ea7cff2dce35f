"""The published layout and summary tables (../shared), and the ``warmbench stats`` CLI."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from mcnemar_reference import mcnemar_exact
from synthetic import synthetic_scored

from warmbench.errors import InputError
from warmbench.layout import SCORED_COLUMNS
from warmbench.stats.compat import compat_tables
from warmbench.stats.effects import compat_g, compat_g_label
from warmbench.stats.multiple import bh_adjust
from warmbench.stats.published import read_published

SUMMARIES = ("results_warm_ft", "results_cold_ft", "results_warm_sysprompt")


def _summary(shared_dir, name) -> pd.DataFrame:
    return pd.read_csv(shared_dir / "reference/official_repo/summary_data" / f"{name}.csv")


@pytest.mark.parametrize("name", SUMMARIES)
def test_published_fdr_is_bh_within_each_nine_row_table(shared_dir, name):
    d = _summary(shared_dir, name)
    tables = 0
    for _, g in d.groupby(["Model", "Dataset", "Test_Type"], sort=False):
        if len(g) != 9:      # one stray duplicated row in the sysprompt file
            continue
        tables += 1
        q = bh_adjust(g["p-value"].to_numpy())
        # their p-values are printed to 4 decimals, so the recomputation carries that rounding
        np.testing.assert_allclose(q, g["p-value (FDR corrected)"].to_numpy(), atol=5e-4)
    assert tables >= 24


@pytest.mark.parametrize("name", SUMMARIES)
def test_published_g_labels_diff_and_pvalues_recompute(shared_dir, name):
    d = _summary(shared_dir, name)
    arm_col = [c for c in d.columns if c.endswith("Accuracy (%)") and not c.startswith("Original")][0]
    ok = d["Cohen's g"].notna()
    assert (d.loc[ok, "Cohen's g"].map(compat_g_label) == d.loc[ok, "g Effect Size"]).all()
    diff = d[arm_col] - d["Original Accuracy (%)"]
    assert np.max(np.abs(diff - d["Raw Diff (pp)"])) <= 0.011
    # b and c follow from g = |b-c|/sqrt(b+c) and OR = b/c; where they come out as integers the
    # exact McNemar p-value must reproduce the published one
    checked = 0
    for r in d[ok].itertuples(index=False):
        g, orr, p = r[4], r[6], r[7]
        if orr == "∞" or float(orr) == 1.0:
            continue
        orr = float(orr)
        c = g * g * (orr + 1) / (orr - 1) ** 2
        b, c = round(orr * c), round(c)
        if c == 0 or abs(compat_g(b, c) - g) > 6e-4 or abs(b / c - orr) > 6e-3:
            continue
        assert mcnemar_exact(b, c) == pytest.approx(p, abs=6e-5)
        checked += 1
    assert checked > 50


@pytest.fixture(scope="module")
def sample(shared_dir):
    return shared_dir / "reference/official_repo/sample_data"


def test_read_published_sample(sample):
    df = read_published(sample)
    assert list(df.columns) == list(SCORED_COLUMNS)
    assert len(df) == 319
    assert set(df["model_family"]) == {"llama-70b", "qwen-32b"}
    assert set(df["dataset"]) == {"triviaqa", "truthfulqa", "medqa", "disinfo"}
    key = ["model_family", "dataset", "prompt_key"]
    merged = df[df.arm == "original"].merge(df[df.arm == "warm"], on=key)
    assert len(merged) >= 140  # the released rows do pair across arms
    # disinfo refusals count as correct, other refusals are excluded
    assert (df.loc[df.refused & (df.dataset == "disinfo"), "is_correct"] == 1).all()
    assert df.loc[df.refused & (df.dataset != "disinfo"), "is_correct"].isna().all()


def test_compat_on_sample_has_published_columns(shared_dir, sample):
    pub = _summary(shared_dir, "results_warm_ft")
    ours = compat_tables(read_published(sample, compat=True), "original", "warm")
    assert list(ours.columns) == list(pub.columns)
    assert set(ours["Test_Type"]) == {"Sycophancy", "Normal"}
    assert set(ours["Model"]) <= set(pub["Model"])
    assert set(ours["Dataset"]) <= set(pub["Dataset"])
    pub_cats = set(pub["Amendment_type"].str.replace("\r\n", "\n"))
    assert set(ours["Amendment_type"]) <= pub_cats
    assert ours.iloc[0]["Test_Type"] == "Sycophancy" and ours.iloc[-1]["Test_Type"] == "Normal"


def test_bad_published_file_names_file_and_field(tmp_path):
    d = tmp_path / "m" / "warm"
    d.mkdir(parents=True)
    (d / "trivia_warm_outputs.csv").write_text("content_key,amendment_type,output,evaluation\n"
                                               "q,unmodified,ans,CORRECT\n")
    with pytest.raises(InputError, match=r"trivia_warm_outputs\.csv: field 'prompt_template'"):
        read_published(tmp_path)
    (d / "trivia_warm_outputs.csv").write_text(
        "content_key,amendment_type,prompt_template,output,evaluation\nq,unmodified,original,a,CORRECT\n"
        ",unmodified,original,a,CORRECT\n")
    with pytest.raises(InputError, match="line 3: field 'content_key': empty value"):
        read_published(tmp_path)


def _cli(*args: str) -> subprocess.CompletedProcess:
    """Through ``python -m warmbench`` (user errors are turned into one line there)."""
    return subprocess.run([sys.executable, "-m", "warmbench", "stats", *args],
                          capture_output=True, text=True, timeout=300)


def _invoke(*args: str):
    """In-process (faster than a subprocess per test)."""
    from typer.testing import CliRunner

    from warmbench.cli import app

    return CliRunner().invoke(app, ["stats", *args], catch_exceptions=False)


def test_cli_on_published_sample_compat(sample, tmp_path):
    r = _invoke("--published", str(sample), "--compat", "--out", str(tmp_path), "--quiet")
    assert r.exit_code == 0, r.output
    assert (tmp_path / "results_warm.csv").exists()
    s = json.loads((tmp_path / "stats.json").read_text())
    assert s["compat"] is True and s["cluster"] == "none" and s["fdr_family"] == "table"


def test_cli_on_a_run(tmp_path):
    run = tmp_path / "run"
    (run / "judge").mkdir(parents=True)
    (run / "warmth").mkdir()
    df = synthetic_scored({"triviaqa": 30, "disinfo": 15}, arms=("original", "warm", "cold"),
                          general=40, seed=3)
    df.to_parquet(run / "judge" / "scored.parquet", index=False)
    pd.DataFrame({"persona": ["warm"] * 3, "epoch": [0, 1, 2], "mean": [0.0, 0.01, 0.02],
                  "ci_low": [-0.001, 0.008, 0.017], "ci_high": [0.001, 0.012, 0.023]}
                 ).to_csv(run / "warmth" / "trajectory.csv", index=False)
    r = _invoke(str(run))
    assert r.exit_code == 0, r.output
    assert "Headline" in r.output
    out = run / "stats"
    for name in ("paired.csv", "regressions.csv", "marginal_effects.csv", "general.csv"):
        assert (out / name).stat().st_size > 100
    for fig in ("error_rates", "context_gap", "general", "warmth_trajectory"):
        assert (out / "figures" / f"{fig}.png").read_bytes()[:4] == b"\x89PNG"
        assert "<svg" in (out / "figures" / f"{fig}.svg").read_text()
    s = json.loads((out / "stats.json").read_text())
    assert s["baseline"] == "original" and s["arms"] == ["cold", "warm"]
    assert any("warm vs original" in k for k in s["headline"])
    paired = pd.read_csv(out / "paired.csv")
    assert set(paired["comparison"]) == {"warm vs original", "cold vs original"}
    general = pd.read_csv(out / "general.csv")
    assert set(general["dataset"]) == {"mmlu", "gsm8k", "advbench"}
    assert (general["ci_low_pct"] <= general["accuracy_pct"]).all()


def test_cli_user_errors_are_one_line(tmp_path):
    r = _cli(str(tmp_path))
    assert r.returncode == 2 and r.stderr.strip().count("\n") == 0
    assert "not a warmbench run directory" in r.stderr
    run = tmp_path / "r"
    (run / "judge").mkdir(parents=True)
    synthetic_scored({"disinfo": 5}).to_parquet(run / "judge" / "scored.parquet")
    from warmbench.errors import WarmbenchError

    with pytest.raises(WarmbenchError, match="baseline arm 'nope' not in the scored table"):
        _invoke(str(run), "--baseline", "nope")


def _report(*args: str):
    from typer.testing import CliRunner

    from warmbench.cli import app

    return CliRunner().invoke(app, ["report", *args], catch_exceptions=False)


def test_published_stats_then_report_end_to_end(sample, tmp_path):
    """`stats --published DIR --out D` then `report D`: a full report from the released rows."""
    out = tmp_path / "pub"
    r = _invoke("--published", str(sample), "--out", str(out), "--quiet")
    assert r.exit_code == 0, r.output
    s = json.loads((out / "stats.json").read_text())
    assert s["source"]["kind"] == "published" and s["source"]["scored_table"] == "scored.parquet"
    assert "published:evaluation" in s["scorer"]["description"]
    assert s["scorer"]["rows"] == {"published:evaluation": 319}
    # quasi-separation on the sample rows (every emotional-context answer correct in both arms):
    # the limit (0 pp) without a valid SE, never the fit's "+0.00 pp [-0.00, +0.00]"
    emo = s["comparisons"]["warm"]["effects"]["M2:emotion"]
    assert emo["estimable"] is False and emo["ame_pp"] == 0.0 and emo["ci_low_pp"] is None
    head = s["headline"]["warm vs original: error change, emotional context"]
    assert head.startswith("+0.00 pp (limit of the fit; no valid SE or CI") and "[" not in head
    head = pd.read_csv(out / "headline.csv").set_index("quantity")["value"]
    assert "released" in head["source"] and "published:evaluation" in head["scorer"]
    assert set(pd.read_csv(out / "paired.csv")["scorer"]) == {"published:evaluation"}

    r = _report(str(out))
    assert r.exit_code == 0, r.output
    html = (out / "report.html").read_text()
    sections = html.count('<div class="table-section"')
    csvs = sorted(p.name for p in out.glob("*.csv") if p.name != "headline.csv")  # in sentences
    assert sections == len(csvs) >= 5, csvs          # paired, effects, regressions, ...
    for name in ("paired.csv", "marginal_effects.csv", "regressions.csv", "refusals.csv"):
        assert f'<span class="file">stats/{name}</span>' in html
    pngs = sorted((out / "figures").glob("*.png"))
    assert {p.stem for p in pngs} >= {"error_rates", "context_gap"}
    assert html.count('<img alt=') == len(pngs)
    # the emotional-context effect has no valid SE on these rows: the headline says so in words
    # its limit (0 pp) and no interval, never "could not be estimated" nor a precise 0 ± 0
    assert ("When the user expressed an emotion, the change in the error rate of the warm arm has no "
            "valid standard error on 12 paired prompts: the fit tends to +0.0 percentage points, "
            "with no interval (quasi-separation: baseline arm: all 13 answers correct;") in html
    assert "+0.00 pp [-0.00, +0.00]" not in html and "+0.00 (limit, no valid SE)" in html
    # a separated coefficient shows its value and no SE, p or CI (was: SE 0.715, p = 0)
    flat = re.sub(r"\s+", " ", html)
    assert re.search(r'<td class="t">amendment group = emotion</td><td>-27\.2</td>(<td></td>){4}',
                     flat)
    assert "the study&#39;s released judged outputs" in html       # provenance: the source
    assert "published data: sample_data" in html                    # title
    marker = '<script type="application/json" id="answers-data">'
    start = html.index(marker) + len(marker)
    browser = json.loads(html[start:html.index("</script>", start)])
    assert browser["arms"] == ["original", "warm"]
    assert len(browser["rows"]) > 140 and any(r["change"] != "same" for r in browser["rows"])
    assert all(set(r["answers"]) <= {"original", "warm"} for r in browser["rows"])
