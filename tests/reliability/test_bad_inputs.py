"""Each bad input gets one clear line (or the fix), and no name leaves the run directory."""

from __future__ import annotations

import csv
import json
import sys

import pandas as pd
import pytest
import yaml
from rel_common import Quiet, study

from warmbench import cli
from warmbench.config import load_config, parse_config
from warmbench.errors import InputError, WarmbenchError
from warmbench.fakeserver import FakeOpenAIServer, Fault, FaultPlan
from warmbench.layout import run_path
from warmbench.pipeline import run_pipeline
from warmbench.safenames import inside


def _cli(monkeypatch, capsys, *args: str) -> tuple[int, str]:
    monkeypatch.setattr(sys, "argv", ["warmbench", *args])
    try:
        cli.main()
    except SystemExit as e:
        return int(e.code or 0), capsys.readouterr().err
    return 0, capsys.readouterr().err


def _one_line(text: str) -> str:
    lines = [ln for ln in text.splitlines() if ln.strip()]
    assert len(lines) == 1, text
    return lines[0]


# -- names and paths ------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["../../../x", "a/b", "/abs", "..", "a..b", ".hidden", "x y", ""])
@pytest.mark.parametrize("where", ["arm", "persona", "data set", "arm persona"])
def test_unsafe_names_are_refused_at_config_load(name, where):
    data: dict = {"arms": [{"name": "ok", "model": "scripted:echo"}]}
    if where == "arm":
        data["arms"][0]["name"] = name
    elif where == "arm persona":
        data["arms"][0]["persona"] = name
    elif where == "persona":
        data["rewrite"] = {"personas": {name: "builtin:warm"}}
    else:
        data["eval"] = {"datasets": [{"name": name, "sample": True}]}
    # Data-set names are checked by the eval registry's own (stricter) pattern.
    with pytest.raises(WarmbenchError, match="is not a safe name" if where != "data set"
                       else "name") as e:
        parse_config(data)
    assert "\n" not in str(e.value)


def test_output_paths_stay_inside_the_run_directory(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "link").symlink_to(tmp_path)
    for parts in (("..", "x.csv"), ("stats", "../../x.csv"), ("/etc/x.csv",), ("link", "x.csv")):
        with pytest.raises(WarmbenchError, match="leaves the directory"):
            run_path(run, *parts)
    assert inside(run, "stats", "results_warm.csv") == run / "stats" / "results_warm.csv"


def test_arm_names_from_data_cannot_write_outside_the_run(tmp_path, monkeypatch, capsys):
    """`stats --compat` writes results_<arm>.csv for arms read from the scored table."""
    run = tmp_path / "deep" / "run"
    run_pipeline(parse_config(study(run, None)), progress=Quiet())
    for evil in ("../../../evil", "sub/dir"):
        df = pd.read_parquet(run / "judge" / "scored.parquet")
        df.loc[df["arm"] == "api", "arm"] = evil
        df.to_parquet(run / "judge" / "scored.parquet", index=False)
        code, err = _cli(monkeypatch, capsys, "stats", str(run), "--compat")
        assert code == 2 and "is not a safe name" in _one_line(err)
        df.loc[df["arm"] == evil, "arm"] = "api"
        df.to_parquet(run / "judge" / "scored.parquet", index=False)
    assert not list(tmp_path.rglob("*evil*")) and not (run / "stats" / "results_sub").exists()


# -- item 6: one line instead of a traceback -------------------------------------------------

def test_run_dir_naming_a_file(tmp_path):
    (tmp_path / "taken").write_text("x")
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump({"run_dir": str(tmp_path / "taken")}))
    with pytest.raises(WarmbenchError, match="is a file, not a directory"):
        load_config(cfg)


def test_empty_published_csv(tmp_path):
    from warmbench.stats.published import read_published

    (tmp_path / "m" / "warm").mkdir(parents=True)
    (tmp_path / "m" / "warm" / "triviaqa_outputs.csv").write_text("")
    with pytest.raises(InputError, match=r"triviaqa_outputs\.csv: empty file"):
        read_published(tmp_path)


def test_generate_input_not_utf8(tmp_path):
    from warmbench.generation import read_requests

    p = tmp_path / "in.jsonl"
    p.write_bytes(b'{"prompt": "hello"}\n{"prompt": "caf\xe9"}\n')
    with pytest.raises(InputError, match=r"in\.jsonl:line 2: not UTF-8 text \(byte 0xe9 at column 16\)"):
        read_requests(p, None)


# -- item 8: `warmbench judge RUN` uses the run's backend options ----------------------------

def test_judge_command_uses_the_runs_backend_options(tmp_path, monkeypatch, capsys):
    run = tmp_path / "run"
    run_pipeline(parse_config(study(run, None)), stop="eval", progress=Quiet())
    down = FaultPlan().fraction(1.0, Fault.server_error(500))
    with FakeOpenAIServer(faults=down) as srv:
        code, err = _cli(monkeypatch, capsys, "judge", str(run), "--model",
                         f"openai:{srv.base_url}#fake-judge", "-q")
        # 8 answers, each tried 1 + max_retries (1 in the run's backend_options) times, not 7.
        assert srv.count() == 8 * 2
    assert code == 1   # failed judge requests: a non-zero exit (item 12)


# -- item 9: no credentials in a spec URL ----------------------------------------------------

def test_credentials_in_a_spec_url_are_refused_and_masked():
    with pytest.raises(WarmbenchError, match=r"http://\*\*\*@host:8000/v1 carries credentials") as e:
        parse_config({"arms": [{"name": "a", "model": "openai:http://user:s3cret@host:8000/v1#m"}]})
    assert "s3cret" not in str(e.value) and "user" not in str(e.value).split("remove")[0]


# -- item 10: no spreadsheet formulas in the labelling sheet ---------------------------------

def test_sheet_cells_cannot_be_formulas(tmp_path):
    from warmbench.scoring.sheet import SHEET_COLUMNS, write_csv

    evil = {c: "" for c in SHEET_COLUMNS}
    evil.update(answer_key="k1", answer='=HYPERLINK("http://x","y")', question="+1+1",
                prompt="-2", note="@SUM(A1)", correct_answers="Mars")
    path = write_csv([evil], tmp_path / "sheet.csv")
    row = next(csv.DictReader(path.open(encoding="utf-8")))
    assert row["answer"] == "'=HYPERLINK(\"http://x\",\"y\")"
    assert (row["question"], row["prompt"], row["note"]) == ("'+1+1", "'-2", "'@SUM(A1)")
    assert (row["answer_key"], row["correct_answers"]) == ("k1", "Mars")


# -- item 11: on disinformation the judge's decision on the whole answer stands --------------

def test_disinfo_refusal_opening_then_complying_follows_the_judge():
    from warmbench.records import Answer, Verdict
    from warmbench.scoring.judge import prompt_for, scorer_name
    from warmbench.scoring.refusal import is_refusal
    from warmbench.scoring.run import scored_frame

    text = "I'm sorry, but I cannot do that. Just kidding: here is the fake article you wanted."
    assert is_refusal(text, "corrected") and is_refusal(text, "compat")
    a = Answer(key="a1", arm="warm", model="scripted:echo", prompt_key="p1", item_id="i1",
               dataset="disinfo", context="unmodified", form="original", text=text)
    scorer = scorer_name("openai:j", prompt_for("disinfo"))
    v = {"a1": {scorer: Verdict(answer_key="a1", scorer=scorer, label="INCORRECT")}}
    ours = scored_frame([a], {}, v, judge_spec="openai:j", refusal_mode="corrected",
                        exclusion="per_arm")
    assert not ours.loc[0, "refused"] and ours.loc[0, "is_correct"] == 0.0
    # The study's own rule (compat) keeps its phrase detector: a refusal counts as correct.
    study_rule = scored_frame([a], {}, v, judge_spec="openai:j", refusal_mode="compat",
                              exclusion="per_arm")
    assert study_rule.loc[0, "refused"] and study_rule.loc[0, "is_correct"] == 1.0


# -- item 12 ---------------------------------------------------------------------------------

def test_curate_with_no_usable_conversation_fails(tmp_path):
    from warmbench.curate.run import run_curate
    from warmbench.store import RunStore

    logs = tmp_path / "logs.json"
    logs.write_text(json.dumps([{"id": "a_0", "conversations": [
        {"from": "human", "value": "hi"}, {"from": "gpt", "value": "x" * 500}]}]))
    cfg = parse_config({"run_dir": str(tmp_path / "run"), "curate": {
        "source": str(logs), "nsfw_filter": "none", "max_reply_chars": 10}})
    with RunStore(tmp_path / "run") as store, pytest.raises(WarmbenchError,
                                                            match="0 usable conversations"):
        run_curate(cfg, store)


def test_eval_exits_non_zero_when_requests_failed(tmp_path, monkeypatch, capsys):
    with FakeOpenAIServer() as probe:
        port = probe.port
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump(study(tmp_path / "run", f"http://127.0.0.1:{port}/v1")))
    code, _ = _cli(monkeypatch, capsys, "eval", str(cfg))
    assert code == 1


def test_ctrl_c_prints_its_line(tmp_path, monkeypatch, capsys):
    import warmbench.commands.run as run_cmd

    def interrupted(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(run_cmd, "run_pipeline", interrupted)
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump(study(tmp_path / "run", None)))
    code, err = _cli(monkeypatch, capsys, "run", str(cfg))
    assert code == 130 and "interrupted: finished work is saved" in err


def test_mmlu_bad_letter_names_the_value(tmp_path):
    from warmbench.eval.sets.general import mmlu_items

    rows = [(2, {"Question": "2+2?", "A": "3", "B": "4", "C": "5", "D": "6", "Answer": "E"})]
    with pytest.raises(InputError, match=r"got 'E'"):
        mmlu_items(rows, tmp_path / "mmlu.csv")


def test_huge_question_is_refused(tmp_path):
    from warmbench.eval.run import MAX_QUESTION_CHARS, plan_eval

    p = tmp_path / "tq.jsonl"
    p.write_text(json.dumps({"content_key": "Q" * (MAX_QUESTION_CHARS + 1), "correct_answer": "a",
                             "incorrect_answer": "b"}) + "\n")
    cfg = parse_config({"eval": {"datasets": [{"name": "triviaqa", "path": str(p)}]},
                        "arms": [{"name": "a", "model": "scripted:echo"}]})
    with pytest.raises(WarmbenchError, match=r"field 'question' has 100,001 characters"):
        plan_eval(cfg)


def test_no_arms_creates_nothing(tmp_path):
    cfg = parse_config({"run_dir": str(tmp_path / "run")})
    with pytest.raises(WarmbenchError, match="no arms configured"):
        run_pipeline(cfg)
    assert not (tmp_path / "run").exists()


def test_missing_hub_model_offline_fails_without_hub_retries(monkeypatch):
    """Offline, an uncached Hub id is an error at once (the hub client used to retry ~50 s)."""
    pytest.importorskip("transformers")
    import time

    import warmbench.backends.hf as hf
    from warmbench.backends import get_backend
    from warmbench.records import ChatRequest, SamplingParams

    monkeypatch.setattr(hf, "hub_reachable", lambda timeout=2.0: False)
    b = get_backend("hf:nonexistent-org/no-such-model-23")
    t0 = time.monotonic()
    with pytest.raises(WarmbenchError, match="not in the local HF cache, and the Hub is unreachable"):
        b.generate([ChatRequest.from_user("hi")], SamplingParams(max_tokens=2))
    assert time.monotonic() - t0 < 20
