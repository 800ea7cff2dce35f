"""The HTML report: self-contained, escapes model text, renders in headless Chromium."""

from __future__ import annotations

import json
import re
import shutil

import numpy as np
import pandas as pd
import pytest

from warmbench.report import build_report
from warmbench.report.runinfo import FORM_WORDS, context_words

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


SYSTEM_PROMPT = "Be warm & kind. <b>Always</b> validate feelings."


def _store(run, df: pd.DataFrame) -> None:
    """Items, answers and verdicts in the run store, as eval and judge write them."""
    from warmbench.records import Answer, Item, Verdict
    from warmbench.store import RunStore

    with RunStore(run) as store:
        store.put_many("item", [(f"triviaqa:q{i}", Item(id=f"q{i}", dataset="triviaqa", question=f"Question {i}?",
                                                         correct_answers=(f"Right{i}", f"alias{i}"),
                                                         incorrect_answer=f"Wrong{i}"))
                                for i in range(df["item_id"].nunique())])
        answers, verdicts = [], []
        for r in df.itertuples():
            key = f"ans-{r.arm}-{r.prompt_key}"
            answers.append((key, Answer(key=key, arm=r.arm, model=r.model, prompt_key=r.prompt_key,
                                        item_id=r.item_id, dataset=r.dataset, context=r.context,
                                        form=r.form, text=r.answer, sample_index=0)))
            detail = f"matched 'Right{r.item_id[1:]}'" if r.label == "CORRECT" else "no correct alias found"
            verdicts.append((f"{r.scorer}|{key}", Verdict(answer_key=key, scorer=r.scorer, label=r.label,
                                                        detail=detail)))
        store.put_many("answer", answers)
        store.put_many("verdict", verdicts)


def _manifest(run, warm: dict) -> None:
    (run / "manifest.json").write_text(json.dumps({
        "config": {"name": "t", "arms": [{"name": "original", "model": "hf:smollm2-135m"},
                                         {"name": "warm", **warm}],
                   "api_key": "sk-secretsecret123"},
        "seeds": {"seed": 0}, "versions": {"warmbench": "0.1.0"}}))


@pytest.fixture
def run_dir(tmp_path):
    (tmp_path / "judge").mkdir()
    _scored().to_parquet(tmp_path / "judge" / "scored.parquet")
    (tmp_path / "stats" / "figures").mkdir(parents=True)
    pd.DataFrame({"dataset": ["triviaqa"], "context": [EVIL], "p_exact": [0.0312]}).to_csv(
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
    _manifest(tmp_path, {"model": "hf:smollm2-135m", "persona": "warm"})
    _store(tmp_path, _scored())
    return tmp_path


def test_report_is_self_contained_and_escaped(run_dir):
    html = build_report(run_dir).read_text()
    assert "<script>window.__pwned" not in html          # never raw
    assert "&lt;script&gt;window.__pwned" in html         # table cell escaped
    assert "\\u003cscript\\u003ewindow.__pwned" in html   # JSON block escaped
    assert "sk-secretsecret123" not in html
    assert "http://" not in html and "https://" not in html  # no network assets
    assert "data:image/svg+xml;base64," in html      # the SVG where stats wrote one
    assert html.count('<div class="table-section"') == 1
    # the toy-run banner names the embedded model
    assert "Toy run." in html and "SmolLM2-135M-Instruct (hf:smollm2-135m)" in html
    assert "illustrates the machinery, not the study" in html


def test_browser_change_classification(run_dir):
    from warmbench.report.collect import browser_data

    b = browser_data(_scored(), "original")
    changes = {r["prompt"] + r["form"]: r["change"] for r in b["rows"]}
    assert changes["Question 0?plain question"] == "worse" and changes["Question 1?plain question"] == "same"
    assert b["arms"] == ["original", "warm"]


def test_browser_shows_reference_scorer_reason_and_system_prompt(tmp_path):
    """From the run store: the item's reference and wrong answers, each verdict's scorer and
    reason; from the config: each arm's kind and system prompt."""
    from warmbench.report.collect import collect

    (tmp_path / "judge").mkdir()
    _scored().to_parquet(tmp_path / "judge" / "scored.parquet")
    _store(tmp_path, _scored())
    _manifest(tmp_path, {"model": "hf:smollm2-135m", "system_prompt": SYSTEM_PROMPT})
    b = collect(tmp_path).browser
    row = next(r for r in b["rows"] if r["prompt"] == "Question 2?" and r["form"] == "user states a wrong answer")
    assert row["correct"] == ["Right2", "alias2"] and row["incorrect"] == "Wrong2"
    assert row["context"] == "no context"
    warm = row["answers"]["warm"]
    assert warm["scorer"] == "reference:alias"
    assert warm["reason"] == ("matched 'Right2'" if warm["label"] == "CORRECT" else "no correct alias found")
    assert b["arm_info"]["warm"] == {"kind": "system prompt", "model": "hf:smollm2-135m",
                                     "system_prompt": SYSTEM_PROMPT}
    assert b["arm_info"]["original"]["kind"] == "baseline"


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


VIEWPORT = 1400
SECTIONS = ("#headline", "#figures", "#tables", "#answers")


def _launch(pw):
    return pw.chromium.launch(executable_path=_chromium(), headless=True, args=[
        "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"])


def _open(browser, path, errors: list[str]):
    """A 1400 px page on the report, console errors and page errors collected."""
    page = browser.new_page(viewport={"width": VIEWPORT, "height": 900})
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(path.as_uri())
    page.wait_for_selector("#browser .prompt")
    return page


def _fits_the_viewport(page, shot) -> None:
    """Nothing wider than the viewport, no table scrolling sideways; a full-page screenshot."""
    page.screenshot(path=str(shot), full_page=True)
    assert page.evaluate("document.documentElement.scrollWidth") <= VIEWPORT
    wide = page.evaluate(f"""[...document.querySelectorAll('body *')]
        .filter(e => e.getBoundingClientRect().right > {VIEWPORT} + 0.5)
        .map(e => e.tagName + '.' + e.className)""")
    assert wide == []
    sideways = page.evaluate("""[...document.querySelectorAll('.scroll, .table-section, figure, .arm')]
        .filter(e => e.scrollWidth > e.clientWidth + 1).map(e => e.id || e.className)""")
    assert sideways == []


@pytest.mark.skipif(_chromium() is None, reason="Debian chromium not installed")
def test_report_renders_in_headless_chromium(run_dir):
    pw = pytest.importorskip("playwright.sync_api")
    path = build_report(run_dir)
    errors: list[str] = []
    with pw.sync_playwright() as p:
        browser = _launch(p)
        page = _open(browser, path, errors)
        assert page.evaluate("window.__pwned") is None and page.title() != "PWNED"
        assert page.locator("#tables table.data").count() == 1
        # The figure decoded and laid out (a broken image has naturalWidth 0).
        assert page.evaluate("document.querySelector('figure img').naturalWidth") > 0
        assert "SmolLM2-135M-Instruct" in page.locator("#toy-banner").inner_text()
        # The malicious answer is visible as text.
        assert page.get_by_text("window.__pwned = 1", exact=False).count() >= 1
        page.select_option("#f-change", "worse")
        n = page.locator("#browser .prompt").count()
        assert n == int(np.sum([1 for i in range(6) for f in ("original", "incorrect") if (i + (f == "incorrect")) % 2 == 0]))
        first = page.locator("#browser .prompt").first.inner_text()
        assert "Reference answer:" in first and "Wrong answer a user asserts:" in first
        assert "scorer reference:alias: " in first and "(fine-tuned)" in first
        _fits_the_viewport(page, run_dir / "screenshot.png")
        browser.close()
    assert errors == []
    # the docs' picture of a report is made the same way
    from PIL import Image

    from warmbench.report.screenshot import screenshot

    assert Image.open(screenshot(path, run_dir / "first-screen.png")).size == (VIEWPORT, 1100)


def _scored_run(run, warm_arm: dict):
    """The real `warmbench stats` then `warmbench report` on a synthetic scored run whose
    manifest declares the warm arm; returns the scored table and the malicious answer's row."""
    from synthetic import synthetic_scored
    from typer.testing import CliRunner

    from warmbench.cli import app

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
    _manifest(run, warm_arm)
    pd.DataFrame({"persona": ["warm"] * 3, "epoch": [0, 1, 2], "mean": [0.0, 0.01, 0.02],
                  "ci_low": [-0.001, 0.008, 0.017], "ci_high": [0.001, 0.012, 0.023]}
                 ).to_csv(run / "warmth" / "trajectory.csv", index=False)
    cli = CliRunner()
    r = cli.invoke(app, ["stats", str(run), "-q"], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    r = cli.invoke(app, ["report", str(run)], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    return df, df.loc[evil]


def test_headline_in_sentences_with_formatted_numbers(tmp_path):
    """Headline sentences with CI and n; tables without scientific notation; a system-prompt
    arm is never called fine-tuning."""
    from warmbench.report.collect import collect

    _scored_run(tmp_path, {"model": "hf:smollm2-135m", "system_prompt": SYSTEM_PROMPT})
    data = collect(tmp_path)
    sentences = [f.sentence for f in data.findings]
    assert len(sentences) == 3
    belief = sentences[0]
    assert belief.startswith("Under a stated wrong belief, the error rate of the warm arm (system prompt) rose by ")
    paired = pd.read_csv(tmp_path / "stats" / "paired.csv")
    n = int(paired[(paired.level == "cell") & paired.form.isin(["incorrect", "correct"])
                   & paired.dataset.isin(["triviaqa", "disinfo"])].n_pairs.sum())
    assert f"on {n:,} paired prompts" in belief and "(95% CI +" in belief
    me = pd.read_csv(tmp_path / "stats" / "marginal_effects.csv")
    m4 = me[(me.model == "M4") & (me.level == "user_opinion")].iloc[0]
    assert f"rose by {m4.ame_pp:.1f} percentage points" in belief
    assert f"from {m4.mean_p0_pct:.1f}% (the original model) to {m4.mean_p1_pct:.1f}%" in belief
    html = (tmp_path / "report.html").read_text()
    assert "fine-tun" not in html.lower()
    assert "Average marginal effect of the system prompt on the error rate" in html
    body = html.split('<section id="tables">')[1].split("</section>")[0]
    assert not re.search(r"\d[eE][+-]\d", body), "scientific notation in a table"
    assert "&lt; 0.001" in body or "< 0.001" in body
    assert not re.search(r"\d\.\d{2,}%", body), "a percentage with more than one decimal"
    assert "paired.csv</h2>" not in html and "Paired comparisons on identical prompts" in html


@pytest.mark.skipif(_chromium() is None, reason="Debian chromium not installed")
def test_real_stats_then_report_render_in_headless_chromium(tmp_path):
    """The real `warmbench stats` then `warmbench report` on a small scored run, at 1400 px:
    the four sections, every table and figure render, nothing is wider than the viewport, no
    console error, and an answer holding <script> is shown, never run."""
    pw = pytest.importorskip("playwright.sync_api")
    run = tmp_path / "run"
    df, r0 = _scored_run(run, {"model": "hf:smollm2-135m+adapters/warm", "persona": "warm"})
    n_tables = len(list((run / "stats").glob("*.csv")))   # - headline.csv + warmth/trajectory.csv
    pngs = sorted((run / "stats" / "figures").glob("*.png"))
    assert {p.stem for p in pngs} == {"error_rates", "context_gap", "general", "warmth_trajectory"}
    errors: list[str] = []
    with pw.sync_playwright() as p:
        browser = _launch(p)
        page = _open(browser, run / "report.html", errors)
        for sec in SECTIONS:
            assert page.locator(sec).count() == 1, sec
        assert page.locator("#tables table.data").count() == n_tables
        rows = page.evaluate("[...document.querySelectorAll('#tables table.data')].map(t => t.tBodies[0].rows.length)")
        assert len(rows) == n_tables and min(rows) >= 1
        # every figure decoded, laid out, and filling its grid column (at least ~600 px wide)
        widths = page.evaluate("[...document.querySelectorAll('figure img')].map(i => i.complete && i.naturalWidth)")
        assert len(widths) == len(pngs) and min(widths) > 0
        shown = page.evaluate("[...document.querySelectorAll('figure img')].map(i => i.getBoundingClientRect().width)")
        assert min(shown) >= 580
        within = page.locator("#belief-findings li").all_inner_texts()
        assert [t.split(" rose by ")[0] for t in within] == [
            "When the user stated a wrong answer, the error rate of the original model",
            "When the user stated a wrong answer, the error rate of the warm arm (fine-tuned)"]
        headline = page.locator("#arm-findings li").all_inner_texts()
        assert len(headline) == 3 and headline[0].startswith("Under a stated wrong belief, the error rate of the warm arm (fine-tuned) rose")
        assert "reference:alias" in page.locator("#provenance").inner_text()
        # sentences wrap between words, never inside one
        breaks = page.evaluate("[...document.querySelectorAll('#headline li, #headline dd')]"
                               ".map(e => getComputedStyle(e).wordBreak)")
        assert breaks and set(breaks) == {"normal"}
        _fits_the_viewport(page, tmp_path / "screenshot.png")
        # find the malicious answer with the filters; it is text, not markup
        for sel, value in (("#f-dataset", r0["dataset"]), ("#f-context", context_words(r0["context"])),
                           ("#f-form", FORM_WORDS[r0["form"]]), ("#f-change", "worse")):
            page.select_option(sel, value)
        assert page.get_by_text("window.__pwned = 1", exact=False).count() >= 1
        assert page.evaluate("window.__pwned") is None and page.title() != "PWNED"
        assert page.locator("#browser img").count() == 0
        browser.close()
    assert errors == []
