"""The HTML report: self-contained, escapes model text, renders in headless Chromium."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest

from warmbench.report import build_report

EVIL = "<script>window.__pwned = 1; document.title = 'PWNED'</script><img src=x onerror=\"window.__pwned=2\">"


def _scored(n_items: int = 6) -> pd.DataFrame:
    rows = []
    for arm in ("original", "warm"):
        for i in range(n_items):
            for form in ("original", "incorrect"):
                ok = 1.0 if (arm == "original" or (i + (form == "incorrect")) % 2) else 0.0
                rows.append(dict(model_family="hf:tiny", arm=arm, model=f"hf:tiny+{arm}", dataset="triviaqa",
                                 item_id=f"q{i}", prompt_key=f"p{i}-{form}", context="unmodified", form=form,
                                 prompt=f"Question {i}?", answer=EVIL if (arm == "warm" and i == 0) else f"ans {i}",
                                 label="CORRECT" if ok else "INCORRECT", refused=False, is_correct=ok,
                                 scorer="reference:alias", sample_index=0))
    return pd.DataFrame(rows)


@pytest.fixture
def run_dir(tmp_path):
    (tmp_path / "judge").mkdir()
    _scored().to_parquet(tmp_path / "judge" / "scored.parquet")
    (tmp_path / "stats" / "figures").mkdir(parents=True)
    pd.DataFrame({"dataset": ["triviaqa"], "note": [EVIL], "p_value": [0.0312]}).to_csv(
        tmp_path / "stats" / "paired.csv", index=False)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(3, 2))
    ax.bar(["original", "warm"], [0.1, 0.3])
    fig.savefig(tmp_path / "stats" / "figures" / "error_rates.png")
    fig.savefig(tmp_path / "stats" / "figures" / "error_rates.svg")
    plt.close(fig)
    (tmp_path / "stats" / "stats.json").write_text(json.dumps({"headline": {"warm − original error (pp)": 25.0}}))
    (tmp_path / "manifest.json").write_text(json.dumps({
        "config": {"name": "t", "arms": [{"name": "original", "model": "hf:tiny"},
                                         {"name": "warm", "model": "hf:tiny", "persona": "warm"}],
                   "api_key": "sk-secretsecret123"},
        "seeds": {"seed": 0}, "versions": {"warmbench": "0.1.0"}}))
    return tmp_path


def test_report_is_self_contained_and_escaped(run_dir):
    html = build_report(run_dir).read_text()
    assert "<script>window.__pwned" not in html          # never raw
    assert "&lt;script&gt;window.__pwned" in html         # table cell escaped
    assert "\\u003cscript\\u003ewindow.__pwned" in html   # JSON block escaped
    assert "sk-secretsecret123" not in html
    assert "http://" not in html and "https://" not in html  # no network assets
    assert "data:image/png;base64," in html
    assert html.count("<section class=\"table-section\">") == 1


def test_browser_change_classification(run_dir):
    from warmbench.report.collect import browser_data

    b = browser_data(_scored(), "original")
    changes = {r["prompt"] + r["form"]: r["change"] for r in b["rows"]}
    assert changes["Question 0?original"] == "worse" and changes["Question 1?original"] == "same"
    assert b["arms"] == ["original", "warm"]


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(_chromium() is None, reason="Debian chromium not installed")
def test_report_renders_in_headless_chromium(run_dir):
    pw = pytest.importorskip("playwright.sync_api")
    path = build_report(run_dir)
    with pw.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=_chromium(), headless=True, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--no-first-run"])
        page = browser.new_page()
        page.goto(path.as_uri())
        page.wait_for_selector("#browser .prompt")
        assert page.evaluate("window.__pwned") is None and page.title() != "PWNED"
        assert page.locator("table.data").count() == 1
        # The figure decoded and laid out (a broken image has naturalWidth 0).
        assert page.evaluate("document.querySelector('figure img').naturalWidth") > 0
        # The malicious answer is visible as text.
        assert page.get_by_text("window.__pwned = 1", exact=False).count() >= 1
        page.select_option("#f-change", "worse")
        n = page.locator("#browser .prompt").count()
        assert n == int(np.sum([1 for i in range(6) for f in ("original", "incorrect") if (i + (f == "incorrect")) % 2 == 0]))
        browser.close()


@pytest.mark.skipif(_chromium() is None, reason="Debian chromium not installed")
def test_real_stats_then_report_render_in_headless_chromium(tmp_path):
    """The real `warmbench stats` then `warmbench report` on a small scored run: every table
    and every figure renders, and an answer holding <script> is shown, never run."""
    pw = pytest.importorskip("playwright.sync_api")
    from synthetic import synthetic_scored
    from typer.testing import CliRunner

    from warmbench.cli import app

    run = tmp_path / "run"
    (run / "judge").mkdir(parents=True)
    (run / "warmth").mkdir()
    df = synthetic_scored({"triviaqa": 8, "disinfo": 5}, general=12, seed=11)
    df["scorer"] = "reference:alias"
    df["prompt"] = "Question " + df["item_id"] + "?"
    df["answer"] = "ans " + df["item_id"]
    # the malicious answer sits on a prompt the persona got wrong and the baseline right
    base = df[df["arm"] == "original"].set_index("prompt_key")["is_correct"]
    worse = (df["arm"] == "warm") & (df["is_correct"] == 0) & (df["prompt_key"].map(base) == 1) \
        & (df["dataset"] == "triviaqa")
    evil = df.index[worse][0]
    df.loc[evil, "answer"] = EVIL
    df.to_parquet(run / "judge" / "scored.parquet", index=False)
    pd.DataFrame({"persona": ["warm"] * 3, "epoch": [0, 1, 2], "mean": [0.0, 0.01, 0.02],
                  "ci_low": [-0.001, 0.008, 0.017], "ci_high": [0.001, 0.012, 0.023]}
                 ).to_csv(run / "warmth" / "trajectory.csv", index=False)
    cli = CliRunner()
    r = cli.invoke(app, ["stats", str(run), "-q"], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    r = cli.invoke(app, ["report", str(run)], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    n_tables = len(list((run / "stats").glob("*.csv"))) + 1          # + warmth/trajectory.csv
    pngs = sorted((run / "stats" / "figures").glob("*.png"))
    assert {p.stem for p in pngs} == {"error_rates", "context_gap", "general", "warmth_trajectory"}
    with pw.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=_chromium(), headless=True, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--no-first-run"])
        page = browser.new_page()
        page.goto((run / "report.html").as_uri())
        page.wait_for_selector("#browser .prompt")
        assert page.locator("table.data").count() == n_tables
        rows = page.evaluate("[...document.querySelectorAll('table.data')].map(t => t.tBodies[0].rows.length)")
        assert len(rows) == n_tables and min(rows) >= 1
        # every figure decoded and laid out (a broken image has naturalWidth 0)
        widths = page.evaluate("[...document.querySelectorAll('figure img')].map(i => i.complete && i.naturalWidth)")
        assert len(widths) == len(pngs) and min(widths) > 0
        assert page.locator("#headline dd").count() >= 4
        assert "reference:alias" in page.locator("#provenance").inner_text()
        # find the malicious answer with the filters; it is text, not markup
        r0 = df.loc[evil]
        for sel, value in (("#f-dataset", r0["dataset"]), ("#f-context", r0["context"]),
                           ("#f-form", r0["form"]), ("#f-change", "worse")):
            page.select_option(sel, value)
        assert page.get_by_text("window.__pwned = 1", exact=False).count() >= 1
        assert page.evaluate("window.__pwned") is None and page.title() != "PWNED"
        assert page.locator("#browser img").count() == 0
        browser.close()
