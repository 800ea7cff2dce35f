"""The ``inspect:PROVIDER/MODEL`` backend (through ``warmbench eval``, paired with an ``hf:`` arm,
usage in the store's ledger, resumable), ``export --format inspect`` read back by Inspect, and
the ``inspect_ai`` entry point.

Inspect's mockllm counts tokens with tiktoken, which downloads its encoding on first use; offline,
the mock model gets a reply function (Inspect's ``custom_outputs`` model argument, passed through
the backend's ``model_args`` option) that sets the usage itself.
"""

from __future__ import annotations

import json
import zlib
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

pytest.importorskip("inspect_ai")

from inspect_ai.model import ModelOutput, ModelUsage  # noqa: E402

from warmbench.backends import get_backend, parse_spec  # noqa: E402
from warmbench.backends.base import request_seed  # noqa: E402
from warmbench.cli import app  # noqa: E402
from warmbench.config import parse_config  # noqa: E402
from warmbench.errors import WarmbenchError  # noqa: E402
from warmbench.records import ChatRequest, SamplingParams  # noqa: E402
from warmbench.store import RunStore  # noqa: E402

PRICE = (0.002, 0.008)  # USD per 1k tokens (input, output)


def _sample_items():
    from warmbench.config import DatasetConfig
    from warmbench.eval.sets import load_items

    return load_items(DatasetConfig(name="triviaqa", sample=True), 0).items


_ITEMS = _sample_items()


def _reply(calls: list[str] | None = None, fail: str | None = None):
    def reply(messages, tools, tool_choice, config):
        text = messages[-1].text
        if calls is not None:
            calls.append(text)
        if fail and fail in text:
            raise RuntimeError("mock provider failure")
        # Right (the item's first correct answer) for about half the prompts, by a hash.
        gold = next((it.correct_answers[0] for it in _ITEMS if it.question in text), "Paris")
        answer = f"{gold}." if zlib.crc32(text.encode()) % 2 else "I am not sure, maybe Lyon."
        out = ModelOutput.from_content(model="mockllm", content=answer)
        out.usage = ModelUsage(input_tokens=len(text.split()), output_tokens=3, total_tokens=0)
        return out
    return reply


def test_spec_written_inspects_way_suggests_the_prefix():
    with pytest.raises(WarmbenchError, match=r"use 'inspect:openai/gpt-4o'"):
        parse_spec("openai/gpt-4o")
    with pytest.raises(WarmbenchError, match=r"use 'inspect:anthropic/claude-sonnet-4-0'"):
        parse_spec("anthropic/claude-sonnet-4-0")
    with pytest.raises(WarmbenchError, match=r"expected inspect:PROVIDER/MODEL"):
        parse_spec("inspect:gpt-4o")
    s = parse_spec("inspect:google/gemini-2.5-pro")
    assert (s.backend, s.model, s.text) == ("inspect", "google/gemini-2.5-pro",
                                             "inspect:google/gemini-2.5-pro")
    with pytest.raises(WarmbenchError) as e:
        parse_config({"arms": [{"name": "a", "model": "openai/gpt-4o"}]}, "c.yaml")
    assert "arms[0].model" in str(e.value) and "inspect:openai/gpt-4o" in str(e.value)


def test_options_are_checked():
    with pytest.raises(WarmbenchError, match=r"inspect backend: unknown option 'max_retry'"):
        parse_config({"backend_options": {"inspect": {"max_retry": 3}}}, "c.yaml")
    cfg = parse_config({"backend_options": {"inspect": {"concurrency": 2, "model_args": {"a": 1}}}})
    assert cfg.backend_options["inspect"]["concurrency"] == 2


def test_backend_maps_messages_params_usage_and_failures():
    seen = []

    def reply(messages, tools, tool_choice, config):
        seen.append(([(m.role, m.text) for m in messages], config.temperature, config.max_tokens,
                     config.seed))
        if messages[-1].text == "boom":
            raise RuntimeError("mock provider failure sk-abcdefghijklmnopqrstuvwx")
        out = ModelOutput.from_content(model="mockllm", content="hello", stop_reason="max_tokens")
        out.usage = ModelUsage(input_tokens=10, output_tokens=4, total_tokens=14,
                               input_tokens_cache_read=2)
        return out

    be = get_backend("inspect:mockllm/model", model_args={"custom_outputs": reply},
                     price_per_1k=PRICE, max_retries=0)
    got = []
    out = be.generate([ChatRequest.from_user("hi", system="Be warm."), ChatRequest.from_user("boom")],
                      SamplingParams(temperature=0.3, max_tokens=7, seed=5), sample_index=2,
                      on_result=lambda i, c: got.append(i))
    be.close()
    assert sorted(got) == [0, 1]
    params = SamplingParams(temperature=0.3, max_tokens=7, seed=5)
    seed = request_seed(ChatRequest.from_user("hi", system="Be warm."), params, 2)
    assert seen[0] == ([("system", "Be warm."), ("user", "hi")], 0.3, 7, seed)
    ok, bad = out
    assert (ok.text, ok.finish_reason) == ("hello", "length")
    assert (ok.usage.prompt_tokens, ok.usage.completion_tokens) == (12, 4)
    assert ok.usage.cost_usd == pytest.approx((12 * PRICE[0] + 4 * PRICE[1]) / 1000)
    assert bad.error and "mock provider failure" in bad.error and "sk-abc" not in bad.error
    s = be.cost_summary()
    assert (s["succeeded"], s["failed"], s["prompt_tokens"], s["price_known"]) == (1, 1, 12, True)
    with pytest.raises(WarmbenchError, match="constrained choices"):
        be.generate([ChatRequest.from_user("q")], SamplingParams(choices=("A", "B")))


def test_inspect_cost_is_used_when_inspect_knows_the_price():
    """A model with a price in Inspect's model info (here registered for the mock) is billed
    by Inspect; that cost reaches the completion."""
    from inspect_ai.model import ModelCost, ModelInfo, set_model_info
    from inspect_ai.model._model_info import clear_model_info_cache

    set_model_info("mockllm/model", ModelInfo(context_length=1000, output_tokens=100, cost=ModelCost(
        input=1.0, output=2.0, input_cache_write=1.0, input_cache_read=0.5)))  # USD per 1M
    try:
        be = get_backend("inspect:mockllm/model", model_args={"custom_outputs": _reply()})
        [c] = be.generate([ChatRequest.from_user("one two three")], SamplingParams())
        be.close()
    finally:
        clear_model_info_cache()
    assert c.usage.cost_usd == pytest.approx((3 * 1.0 + 3 * 2.0) / 1e6)
    assert be.cost_summary()["price_known"]


@pytest.fixture(scope="module")
def run_with_two_arms(tmp_path_factory, tiny_llama):
    """`warmbench eval` + judge with an hf arm and an inspect:mockllm arm."""
    from warmbench.eval.run import run_eval
    from warmbench.scoring.run import run_judge

    tmp = tmp_path_factory.mktemp("inspect_run")
    calls: list[str] = []
    cfg = parse_config({
        "run_dir": str(tmp / "run"), "seed": 1,
        "eval": {"datasets": [{"name": "triviaqa", "sample": True, "n": 2}],
                 "contexts": ["unmodified", "emotion:sad"], "forms": ["original", "incorrect"],
                 "free_text": {"max_tokens": 4}},
        # one family: the two models' answers are paired on identical prompts
        "arms": [{"name": "original", "model": f"hf:{tiny_llama}", "family": "tiny"},
                 {"name": "api", "model": "inspect:mockllm/model", "system_prompt": "Be warm.",
                  "family": "tiny"}],
        "backend_options": {"inspect": {"price_per_1k": list(PRICE)}},
    })
    # The config's backend_options, plus the mock's reply function (not YAML-able).
    options = {"inspect": {**cfg.backend_options["inspect"],
                           "model_args": {"custom_outputs": _reply(calls)}}}

    def make(spec, arm):
        return get_backend(spec, options if spec.backend == "inspect" else cfg.backend_options)

    with RunStore(cfg.run_dir) as store:
        summary = run_eval(cfg, store, backend_factory=make)
        n_calls = len(calls)
        again = run_eval(cfg, store, backend_factory=make)   # resumed: all in the store
        assert len(calls) == n_calls and again["answers"] == summary["answers"]
        run_judge(cfg, store)
        ledger = store.completion_rows("eval")
    return cfg, summary, ledger, n_calls


def test_inspect_arm_through_eval_paired_with_hf_arm(run_with_two_arms):
    from warmbench.stats.run import analyse

    cfg, summary, ledger, n_calls = run_with_two_arms
    assert summary["failed"] == {"original": 0, "api": 0}
    assert summary["table"] == {"original": {"triviaqa": 8}, "api": {"triviaqa": 8}}
    assert n_calls == 8
    api = [r for r in ledger if r["model"] == "inspect:mockllm/model"]
    assert len(api) == 8 and all(r["error"] is None for r in api)
    for r in api:
        words = len(json.loads(r["request"])[-1]["content"].split())
        assert (r["prompt_tokens"], r["completion_tokens"]) == (words, 3)
        assert r["cost_usd"] == pytest.approx((words * PRICE[0] + 3 * PRICE[1]) / 1000)
    assert json.loads(api[0]["request"])[0] == {"role": "system", "content": "Be warm."}
    with RunStore(cfg.run_dir) as store:
        totals = store.usage_totals()
    assert totals["cost_usd"] == pytest.approx(sum(r["cost_usd"] for r in api))
    scored = pd.read_parquet(Path(cfg.run_dir) / "judge" / "scored.parquet")
    a = analyse(scored, baseline="original")
    cells = a.paired[(a.paired["comparison"] == "api vs original") & (a.paired["level"] == "cell")]
    wide = scored.pivot_table(index="prompt_key", columns="arm", values="is_correct")
    assert set(scored["model_family"]) == {"tiny"}
    assert cells["n_pairs"].sum() == len(wide.dropna()) > 0 and cells["c"].sum() > 0
    for r in cells.itertuples():    # b and c against a count made here
        keys = scored[(scored["context"] == r.context) & (scored["form"] == r.form)]["prompt_key"]
        w = wide.loc[wide.index.isin(keys)].dropna()
        assert (r.b, r.c) == (int(((w["original"] == 1) & (w["api"] == 0)).sum()),
                              int(((w["original"] == 0) & (w["api"] == 1)).sum()))


def test_export_inspect_is_read_back_by_inspect(run_with_two_arms, tmp_path):
    from inspect_ai.log import read_eval_log

    cfg, *_ = run_with_two_arms
    r = CliRunner().invoke(app, ["export", str(cfg.run_dir), "--format", "inspect", "-o",
                                 str(tmp_path / "logs")])
    assert r.exit_code == 0, r.output
    scored = pd.read_parquet(Path(cfg.run_dir) / "judge" / "scored.parquet")
    for arm in ("original", "api"):
        log = read_eval_log(str(tmp_path / "logs" / f"{arm}.eval"))
        rows = scored[scored["arm"] == arm].set_index("prompt_key")
        assert log.status == "success" and len(log.samples) == len(rows) == 8
        for s in log.samples:
            want = rows.loc[s.id, "is_correct"]
            value = s.scores["warmbench"].value
            assert value == ("N" if pd.isna(want) else "C" if want == 1 else "I")
            assert s.output.completion == rows.loc[s.id, "answer"] and s.epoch == 1
        assert (log.samples[0].messages[0].role == "system") == (arm == "api")
        assert log.eval.model == rows["model"].iloc[0]
    # the two exported arms pair in `warmbench compare` like any two Inspect logs
    r = CliRunner().invoke(app, ["compare", str(tmp_path / "logs" / "original.eval"),
                                 str(tmp_path / "logs" / "api.eval"), "-n", "original", "-n", "api",
                                 "-o", str(tmp_path / "cmp"), "-q", "--no-report"])
    assert r.exit_code == 0, r.output
    wide = scored.pivot_table(index="prompt_key", columns="arm", values="is_correct").dropna()
    assert f"api vs original: {len(wide)} paired" in r.output
    r = CliRunner().invoke(app, ["export", str(cfg.run_dir), "--format", "csv"])
    assert r.exit_code != 0 and "the one format is 'inspect'" in str(r.exception)


def test_inspect_backend_through_a_real_provider(monkeypatch):
    """Inspect's openai provider against warmbench's fake OpenAI server: a 429 is retried by
    Inspect, a 401 comes back as a failed completion without the key."""
    from warmbench.fakeserver import FakeOpenAIServer, Fault, FaultPlan

    key = "sk-test-0123456789abcdefghijklmn"
    monkeypatch.setenv("OPENAI_API_KEY", key)
    plan = FaultPlan().on_requests(1, Fault.rate_limit(retry_after=0.1)).when_contains(
        "forbidden", Fault.http_status(401))
    with FakeOpenAIServer(faults=plan) as srv:
        be = get_backend("inspect:openai/fake-model", base_url=srv.base_url, max_retries=3,
                         model_args={"responses_api": False})
        ok = be.generate([ChatRequest.from_user("Capital of France?", system="Be warm.")],
                         SamplingParams(max_tokens=20))[0]
        bad = be.generate([ChatRequest.from_user("forbidden")], SamplingParams(max_tokens=20))[0]
        be.close()
        faults = [r.fault for r in srv.requests]
    assert ok.ok and ok.text and ok.usage.prompt_tokens > 0 and ok.usage.completion_tokens > 0
    assert faults[:2] == ["status:429", None]
    assert bad.error and "401" in bad.error and key not in bad.error


def _entry_point() -> None:
    from importlib.metadata import entry_points

    eps = [e for e in entry_points(group="inspect_ai") if e.name == "warmbench"]
    if not eps:
        pytest.skip("warmbench is not installed with its inspect_ai entry point here")
    assert eps[0].value == "warmbench.interop._registry"


def test_entry_point_registers_the_task():
    """Runs where warmbench is installed (make install, or an editable install): Inspect then
    finds `warmbench/persona_reliability` through the `inspect_ai` entry point."""
    _entry_point()
    from inspect_ai._util.registry import registry_lookup

    task = registry_lookup("task", "warmbench/persona_reliability")
    assert task is not None and callable(task)


def test_inspect_eval_cli_runs_the_task(tmp_path):
    """`inspect eval warmbench/persona_reliability` end to end, on Inspect's openai provider
    pointed at the fake server (mockllm would download a tokenizer)."""
    import os
    import subprocess
    import sys

    from inspect_ai.log import read_eval_log

    from warmbench.fakeserver import FakeOpenAIServer

    _entry_point()
    with FakeOpenAIServer() as srv:
        env = {**os.environ, "OPENAI_API_KEY": "sk-test-cli"}
        p = subprocess.run([sys.executable, "-m", "inspect_ai", "eval",
                            "warmbench/persona_reliability", "--model", "openai/fake-model",
                            "--model-base-url", srv.base_url, "-M", "responses_api=false",
                            "-T", "dataset=triviaqa", "-T", "limit=1", "-T", "forms=original",
                            "--log-dir", str(tmp_path), "--display", "none"],
                           capture_output=True, text=True, env=env, timeout=300)
        n = srv.count()
    assert p.returncode == 0, p.stderr[-2000:]
    [path] = tmp_path.glob("*.eval")
    log = read_eval_log(str(path))
    assert log.status == "success" and len(log.samples) == n == 9   # 9 contexts x original
    assert all(s.scores["warmbench_scorer"].value in ("C", "I", "N") for s in log.samples)


def test_inspect_model_as_judge(run_with_two_arms, tmp_path):
    """The judge through Inspect: verdicts parsed, usage in the ledger, cached on a re-run."""
    import shutil

    from warmbench.scoring.run import run_judge

    cfg, *_ = run_with_two_arms
    run = tmp_path / "run"
    shutil.copytree(cfg.run_dir, run)
    judged: list[str] = []

    def verdict(messages, tools, tool_choice, config):
        judged.append(messages[-1].text)
        out = ModelOutput.from_content(model="mockllm", content="Matches.\nVERDICT: CORRECT")
        out.usage = ModelUsage(input_tokens=100, output_tokens=6, total_tokens=106)
        return out

    jcfg = cfg.model_copy(update={"run_dir": str(run), "judge": cfg.judge.model_copy(
        update={"model": "inspect:mockllm/model"})})
    judge = get_backend("inspect:mockllm/model", model_args={"custom_outputs": verdict})
    with RunStore(run) as store:
        s = run_judge(jcfg, store, backend=judge)
        again = run_judge(jcfg, store, backend=judge)
        rows = [r for r in store.completion_rows() if r["kind"] != "eval"]
    judge.close()
    assert s["judged"] == 16 and again["judged"] == 0 and len(judged) == 16
    scored = pd.read_parquet(run / "judge" / "scored.parquet")
    assert scored["scorer"].str.startswith("judge:inspect:mockllm/model").all()
    assert set(scored["label"]) <= {"CORRECT", "REFUSED"}
    assert len(rows) == 16 and {(r["prompt_tokens"], r["completion_tokens"]) for r in rows} == {(100, 6)}


def test_inspect_specs_are_priced_by_their_provider():
    from warmbench.prices import lookup, set_price_overrides

    p = lookup("inspect:anthropic/claude-sonnet-4-0")
    assert (p.input, p.output) == (3.0, 15.0) and "genai-prices" in p.source
    assert lookup("inspect:mockllm/model") is None          # unknown, never silently free
    set_price_overrides({"inspect:mockllm/model": {"input": 1.0, "output": 2.0}})
    try:
        be = get_backend("inspect:mockllm/model", model_args={"custom_outputs": _reply()})
        [c] = be.generate([ChatRequest.from_user("one two three")], SamplingParams())
        be.close()
    finally:
        set_price_overrides(None)
    assert c.usage.cost_usd == pytest.approx((3 * 1.0 + 3 * 2.0) / 1e6)
    assert be.cost_summary()["price_note"] == "config prices: inspect:mockllm/model"


def test_budget_stops_inspect_requests(tmp_path):
    """With --max-usd active, a request whose worst case could pass the limit is not sent;
    what was answered is handed over first, then BudgetReached."""
    from warmbench.budget import BudgetReached, activate

    calls: list[str] = []
    be = get_backend("inspect:mockllm/model", model_args={"custom_outputs": _reply(calls)},
                     price_per_1k=(1.0, 1.0), concurrency=1)   # $1 per 1k tokens: a few cents each
    got = []
    activate(0.05, tmp_path)
    try:
        with pytest.raises(BudgetReached):
            be.generate([ChatRequest.from_user(f"question {i}") for i in range(20)],
                        SamplingParams(max_tokens=20), on_result=lambda i, c: got.append(c))
    finally:
        activate(None, tmp_path)
        be.close()
    assert 0 < len(calls) < 20 and len(got) == len(calls)
    assert sum(c.usage.cost_usd for c in got) <= 0.05
