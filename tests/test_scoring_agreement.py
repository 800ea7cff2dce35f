"""Judge validation: Cohen's kappa, scorer agreement, human labels, the labelling sheet, the CLI."""

from __future__ import annotations

import csv
import html
import math

import pytest
from test_judge import careful_judge
from test_scoring_fixtures import build_store
from test_scoring_reference import bow_embedder
from typer.testing import CliRunner

from warmbench.backends import get_backend
from warmbench.config import parse_config
from warmbench.errors import InputError, WarmbenchError
from warmbench.records import Answer
from warmbench.scoring import reference
from warmbench.scoring.agreement import agreement, cohen_kappa, read_human_labels
from warmbench.scoring.run import run_judge
from warmbench.scoring.sheet import stratified_sample

C, INC = "CORRECT", "INCORRECT"


def test_kappa_hand_computation():
    a = [C, C, C, INC, INC, C, INC, C, C, INC]
    b = [C, C, INC, INC, C, C, INC, C, INC, INC]
    # p_o = 7/10; a has 6 C / 4 INC, b has 5 / 5: p_e = (6*5 + 4*5) / 100 = 0.5; kappa = 0.2 / 0.5
    assert cohen_kappa(a, b) == pytest.approx(0.4, abs=1e-12)
    assert cohen_kappa(a, a) == pytest.approx(1.0)
    assert math.isnan(cohen_kappa([C, C], [C, C]))  # one shared label: undefined
    assert cohen_kappa([C, INC], [INC, C]) == pytest.approx(-1.0)
    sk = pytest.importorskip("sklearn.metrics")
    assert cohen_kappa(a, b) == pytest.approx(sk.cohen_kappa_score(a, b), abs=1e-12)


def test_agreement_skips_unparseable_and_breaks_down_by_dataset():
    r = agreement([("x", C, C), ("x", INC, C), ("y", INC, INC), ("y", "UNPARSEABLE", C)], "a", "b")
    assert (r.n, r.skipped) == (3, 1)
    assert r.agreement == pytest.approx(2 / 3)
    assert r.confusion == {C: {C: 1, INC: 0}, INC: {C: 1, INC: 1}}
    assert [d["dataset"] for d in r.by_dataset] == ["x", "y"]


def test_human_label_file_errors(tmp_path):
    p = tmp_path / "h.csv"
    p.write_text("answer_key,label\nk1,CORRECT\nk2,\nk3,maybe\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"h\.csv:4: field 'label'"):
        read_human_labels(p)
    p.write_text("key,label\nk1,CORRECT\n", encoding="utf-8")
    with pytest.raises(InputError, match="answer_key"):
        read_human_labels(p)
    p.write_text("answer_key,label\nk1,c\nk2,\nk3,INCORRECT\n", encoding="utf-8")
    assert read_human_labels(p) == {"k1": C, "k3": INC}


def _answers(n_per: dict[tuple[str, str], int]) -> list[Answer]:
    out = []
    for (ds, arm), n in n_per.items():
        for i in range(n):
            out.append(Answer(key=f"{ds}-{arm}-{i}", arm=arm, model="m", prompt_key=f"p{i}", item_id=str(i),
                              dataset=ds, context="unmodified", form="original", text="t"))
    return out


def test_stratified_sample():
    answers = _answers({("a", "original"): 60, ("a", "warm"): 60, ("b", "original"): 10, ("b", "warm"): 2})
    s = stratified_sample(answers, 20, seed=1)
    counts = {}
    for x in s:
        counts[(x.dataset, x.arm)] = counts.get((x.dataset, x.arm), 0) + 1
    assert len(s) == 20 and len({x.key for x in s}) == 20
    assert counts[("b", "warm")] >= 1 and counts[("a", "original")] >= 8
    assert [x.key for x in stratified_sample(answers, 20, seed=1)] == [x.key for x in s]  # deterministic
    assert len(stratified_sample(answers, 3, seed=0)) == 3
    assert len(stratified_sample(answers, 1000)) == len(answers)
    with pytest.raises(WarmbenchError):
        stratified_sample(answers, 0)


@pytest.fixture
def scored_run(tmp_path, monkeypatch):
    monkeypatch.setattr(reference, "load_embedder", lambda *a, **k: bow_embedder)
    store = build_store(tmp_path)
    cfg = parse_config({"run_dir": str(tmp_path)})
    run_judge(cfg, store)  # reference verdicts
    run_judge(cfg, store, backend=get_backend("scripted:careful", fn=careful_judge))  # judge verdicts
    store.close()
    return tmp_path


def test_cli_judge_score_agree_sheet(scored_run, tmp_path):
    from warmbench.cli import app

    runner = CliRunner()
    r = runner.invoke(app, ["judge", str(scored_run), "--refusal", "compat", "-q"])
    assert r.exit_code == 0, r.output
    assert "refusal rates" in r.output and "reference:alias" in r.output
    assert (scored_run / "judge" / "refusals.csv").is_file()

    r = runner.invoke(app, ["judge", "agree", str(scored_run), "--a", "reference", "--b", "judge"])
    assert r.exit_code == 0, r.output
    assert "reference vs judge" in r.output and "kappa=" in r.output

    r = runner.invoke(app, ["judge", "sheet", str(scored_run), "--n", "6"])
    assert r.exit_code == 0, r.output
    sheet_csv = scored_run / "judge" / "sheet.csv"
    page = (scored_run / "judge" / "sheet.html").read_text(encoding="utf-8")
    with sheet_csv.open(encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 6 and all(row["label"] == "" for row in rows)
    assert "http" not in page.split("<body>")[0]  # self-contained
    for row in rows:  # every answer appears escaped
        assert html.escape(row["answer"]) in page
    # label the sheet as a human would: everything CORRECT
    for row in rows:
        row["label"] = "CORRECT"
    labelled = tmp_path / "labelled.csv"
    with labelled.open("w", encoding="utf-8", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    r = runner.invoke(app, ["judge", "agree", str(scored_run), "--human", str(labelled), "--a", "reference"])
    assert r.exit_code == 0, r.output
    assert "human vs reference: n=" in r.output


def test_sheet_escapes_hostile_text(tmp_path):
    from warmbench.scoring.sheet import write_html

    evil = '<script>alert(1)</script></script><!-- "&'
    row = {"answer_key": "k", "dataset": "triviaqa", "arm": "warm", "context": "c", "form": "f",
           "question": "q", "prompt": "p", "correct_answers": "a", "incorrect_answer": "", "answer": evil,
           "label": "", "note": ""}
    page = write_html([row], tmp_path / "s.html").read_text(encoding="utf-8")
    assert "<script>alert(1)" not in page and "</script></script>" not in page
    assert html.escape(evil) in page


def test_cli_errors(tmp_path):
    from warmbench.cli import app

    runner = CliRunner()
    r = runner.invoke(app, ["judge", str(tmp_path / "nope")])
    assert r.exit_code != 0 and isinstance(r.exception, WarmbenchError)
    build_store(tmp_path).close()
    r = runner.invoke(app, ["judge", "agree", str(tmp_path), "--a", "reference"])
    assert isinstance(r.exception, WarmbenchError) and "exactly one" in str(r.exception)
