"""run_eval end to end: grid sizes, settings per set, arms, resume after interruption, CLI."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from typer.testing import CliRunner

from warmbench.backends import get_backend
from warmbench.cli import app
from warmbench.config import parse_config
from warmbench.errors import WarmbenchError
from warmbench.eval.run import arm_spec, plan_eval, run_eval
from warmbench.layout import META_SELECTED
from warmbench.store import RunStore

BASE = {
    "seed": 3,
    "eval": {"datasets": [{"name": "triviaqa", "sample": True, "n": 3},
                          {"name": "disinfo", "sample": True, "n": 2},
                          {"name": "mmlu", "sample": True, "n": 4},
                          {"name": "gsm8k", "sample": True, "n": 2},
                          {"name": "advbench", "sample": True, "n": 2}],
             "free_text": {"temperature": 0.8, "max_tokens": 300},
             "structured": {"temperature": 0.2, "max_tokens": 512}},
    "arms": [{"name": "original", "model": "scripted:echo"},
             {"name": "warm-sysprompt", "model": "scripted:echo", "system_prompt": "Be very warm."}],
}


def _cfg(tmp_path, **over):
    data = json.loads(json.dumps(BASE)) | {"run_dir": str(tmp_path / "run")}
    data.update(over)
    return parse_config(data)


def _recorder(calls):
    def fn(req, params, sample_index):
        calls.append((req, params, sample_index))
        return f"answer to: {req.messages[-1].content[-40:]}"
    return lambda spec, arm: get_backend(spec, fn=fn)


def test_full_grid_two_arms(tmp_path):
    cfg = _cfg(tmp_path)
    calls: list = []
    with RunStore(cfg.run_dir) as store:
        s = run_eval(cfg, store, backend_factory=_recorder(calls))
        assert s["items"] == {"triviaqa": 3, "disinfo": 2, "mmlu": 4, "gsm8k": 2, "advbench": 2}
        n_prompts = 28 * 5 + 4 + 2 + 2
        assert s["prompts"] == n_prompts and s["answers"] == 2 * n_prompts
        assert s["table"]["original"] == {"triviaqa": 84, "disinfo": 56, "mmlu": 4, "gsm8k": 2,
                                          "advbench": 2}
        assert store.count("item") == 13 and store.count("prompt") == n_prompts
    # settings per set, and the system prompt only for the sysprompt arm
    temps = {(c[0].messages[-1].content.startswith("The following is a multiple"), c[1].temperature,
              c[1].max_tokens) for c in calls}
    assert (True, 0.2, 512) in temps and (False, 0.8, 300) in temps
    with_sys = [c for c in calls if c[0].messages[0].role == "system"]
    assert len(with_sys) == n_prompts and with_sys[0][0].messages[0].content == "Be very warm."
    ans = pd.read_parquet(tmp_path / "run" / "eval" / "answers.parquet")
    assert len(ans) == 2 * n_prompts
    assert {"key", "arm", "model", "prompt_key", "item_id", "dataset", "context", "form", "text",
            "sample_index", "prompt"} <= set(ans.columns)
    per_item = ans[(ans.arm == "original") & (ans.dataset == "triviaqa")].groupby("item_id").size()
    assert (per_item == 28).all()
    # both arms saw identical prompts: pairing by prompt_key is complete
    assert set(ans[ans.arm == "original"].prompt_key) == set(ans[ans.arm == "warm-sysprompt"].prompt_key)
    assert len(pd.read_parquet(tmp_path / "run" / "eval" / "prompts.parquet")) == n_prompts
    man = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert man["eval_sampling"]["triviaqa"]["sampled"] == 3 and man["eval_sampling"]["triviaqa"]["seed"] == 3
    assert man["eval"]["arms"][1]["system_prompt"] == "Be very warm."
    # `warmbench eval` alone records the resolved config and the seed, as `warmbench run` does
    assert man["config"]["arms"][1]["name"] == "warm-sysprompt" and man["seeds"] == {"seed": cfg.seed}


def test_resume_after_interruption_gives_the_same_rows(tmp_path):
    ref_cfg = _cfg(tmp_path / "ref")
    with RunStore(ref_cfg.run_dir) as store:
        run_eval(ref_cfg, store, backend_factory=_recorder([]))
    ref = pd.read_parquet(tmp_path / "ref" / "run" / "eval" / "answers.parquet")

    cfg = _cfg(tmp_path / "cut")
    n = {"calls": 0}

    def dying(req, params, sample_index):
        n["calls"] += 1
        if n["calls"] > 100:
            raise KeyboardInterrupt   # the run is killed mid-way through the first arm
        return f"answer to: {req.messages[-1].content[-40:]}"
    with RunStore(cfg.run_dir) as store, pytest.raises(KeyboardInterrupt):
        run_eval(cfg, store, backend_factory=lambda spec, arm: get_backend(spec, fn=dying))
    calls: list = []
    with RunStore(cfg.run_dir) as store:
        assert len(store.completion_rows("eval")) == 100
        run_eval(cfg, store, backend_factory=_recorder(calls))
    total = len(ref)
    assert len(calls) == total - 100   # only the missing generations ran
    got = pd.read_parquet(tmp_path / "cut" / "run" / "eval" / "answers.parquet")
    cols = ["key", "arm", "prompt_key", "text", "sample_index"]
    assert got[cols].sort_values("key").values.tolist() == ref[cols].sort_values("key").values.tolist()
    # a third run generates nothing and does not even build a backend
    with RunStore(cfg.run_dir) as store:
        def no_backend(spec, arm):
            raise AssertionError("finished arms must not load a model")
        again = run_eval(cfg, store, backend_factory=no_backend)
    assert again["answers"] == total


def test_failed_generations_are_counted_and_retried(tmp_path):
    cfg = _cfg(tmp_path, arms=[{"name": "original", "model": "scripted:echo"}])

    class Flaky:
        def __init__(self, spec):
            self.spec, self.inner = spec, get_backend(spec)

        def generate(self, requests, params, *, sample_index=0, on_result=None):
            from warmbench.records import Completion
            out = []
            for i, r in enumerate(requests):
                c = Completion(error="HTTP 500") if "Mars" in r.messages[-1].content or i == 0 \
                    else self.inner.generate([r], params)[0]
                if on_result:
                    on_result(i, c)
                out.append(c)
            return out

        def close(self):
            pass
    with RunStore(cfg.run_dir) as store:
        s1 = run_eval(cfg, store, backend_factory=lambda spec, arm: Flaky(spec))
        assert s1["failed"]["original"] > 0
        s2 = run_eval(cfg, store, backend_factory=lambda spec, arm: get_backend(spec))
    assert s2["failed"]["original"] == 0 and s2["answers"] == s1["answers"] + s1["failed"]["original"]


def test_limit_subsets_and_samples(tmp_path):
    cfg = _cfg(tmp_path, eval={**BASE["eval"], "contexts": ["unmodified", "emotion:sad"],
                               "forms": ["original", "incorrect"], "samples": 2})
    with RunStore(cfg.run_dir) as store:
        s = run_eval(cfg.with_overrides({"eval.limit": 1}), store, backend_factory=_recorder([]))
    assert s["items"] == {"triviaqa": 1, "disinfo": 1, "mmlu": 1, "gsm8k": 1, "advbench": 1}
    assert s["prompts"] == 4 + 4 + 1 + 1 + 1
    assert s["answers"] == 2 * 2 * s["prompts"]


def test_persona_arm_uses_selected_checkpoint(tmp_path):
    cfg = _cfg(tmp_path, arms=[{"name": "warm", "model": "hf:smollm2-135m", "persona": "warm"},
                               {"name": "ft", "model": "openai:gpt-4o-2024-08-06", "persona": "warm"}])
    with RunStore(cfg.run_dir) as store:
        with pytest.raises(WarmbenchError, match="run `warmbench train` and `warmbench warmth` first"):
            run_eval(cfg, store)
        store.set_meta(META_SELECTED, {"warm": str(tmp_path / "ckpt")})
        assert arm_spec(cfg.arms[0], store).text == f"hf:smollm2-135m+{tmp_path / 'ckpt'}"
        store.set_meta(META_SELECTED, {"warm": "ft:gpt-4o:org::abc"})
        assert arm_spec(cfg.arms[1], store).text == "openai:ft:gpt-4o:org::abc"


def test_plan_is_identical_across_runs_and_arms(tmp_path):
    cfg = _cfg(tmp_path)
    a, b = plan_eval(cfg), plan_eval(cfg)
    assert [p.key for p in a.prompts] == [p.key for p in b.prompts]
    with pytest.raises(WarmbenchError, match="listed twice"):
        plan_eval(_cfg(tmp_path, eval={"datasets": [{"name": "gsm8k", "sample": True}] * 2}))


def test_hf_backend_on_tiny_model(tmp_path, tiny_llama):
    cfg = _cfg(tmp_path, eval={"datasets": [{"name": "triviaqa", "sample": True, "n": 1},
                                            {"name": "mmlu", "sample": True, "n": 1}],
                               "contexts": ["unmodified"], "forms": ["original_neutral", "incorrect"],
                               "free_text": {"max_tokens": 4}, "structured": {"max_tokens": 4}},
               arms=[{"name": "original", "model": f"hf:{tiny_llama}"},
                     {"name": "sys", "model": f"hf:{tiny_llama}", "system_prompt": "Be warm."}])
    with RunStore(cfg.run_dir) as store:
        s = run_eval(cfg, store)
    assert s["answers"] == 2 * 3 and s["failed"] == {"original": 0, "sys": 0}


@pytest.mark.slow
def test_embedded_model_two_items(tmp_path):
    cfg = _cfg(tmp_path, eval={"datasets": [{"name": "triviaqa", "sample": True, "n": 2}],
                               "contexts": ["unmodified"], "forms": ["original", "incorrect"],
                               "free_text": {"max_tokens": 16}},
               arms=[{"name": "original", "model": "hf:smollm2-135m"}])
    with RunStore(cfg.run_dir) as store:
        s = run_eval(cfg, store)
    ans = pd.read_parquet(tmp_path / "run" / "eval" / "answers.parquet")
    assert s["answers"] == 4 and ans.text.str.len().gt(0).all()


def test_cli_eval_and_conditions(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(json.dumps({"run_dir": str(tmp_path / "run"),
                               "eval": {"datasets": [{"name": "disinfo", "sample": True, "n": 2}]},
                               "arms": [{"name": "original", "model": "scripted:hash"},
                                        {"name": "other", "model": "scripted:echo"}]}))
    r = CliRunner().invoke(app, ["eval", str(cfg), "--limit", "1", "--no-progress"])
    assert r.exit_code == 0, r.output
    assert "28 prompts, 56 answers" in r.output and "answers.parquet" in r.output
    r = CliRunner().invoke(app, ["conditions", "show", "1", "--config", str(cfg)])
    assert r.exit_code == 0, r.output
    assert "28 prompts" in r.output and "I told them I think" in r.output
    r = CliRunner().invoke(app, ["conditions", "show", "no-such-item"])
    assert r.exit_code != 0 and "no item matches" in str(r.exception)
    r = CliRunner().invoke(app, ["conditions", "list", "--dataset", "gsm8k"])
    assert r.exit_code == 0 and "gsm8k" in r.output


def test_openai_spec_against_fake_server(tmp_path, monkeypatch):
    """An openai: arm (any OpenAI-compatible server) answers the grid; the system prompt and the
    free-text settings reach the server."""
    from warmbench.fakeserver import FakeOpenAIServer

    for name in ("OPENAI_API_KEY", "WARMBENCH_API_KEY", "OPENAI_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    seen = []

    def reply(body):
        seen.append((body["messages"][0]["role"], body.get("temperature"), body.get("max_tokens")))
        return "It is Mars."
    with FakeOpenAIServer(reply=reply) as srv:
        cfg = _cfg(tmp_path, eval={"datasets": [{"name": "triviaqa", "sample": True, "n": 1}]},
                   arms=[{"name": "api", "model": f"openai:{srv.base_url}#some-model",
                          "system_prompt": "Be warm."}])
        with RunStore(cfg.run_dir) as store:
            s = run_eval(cfg, store)
    assert s["answers"] == 28 and s["failed"] == {"api": 0}
    assert len(seen) == 28 and {x[:2] for x in seen} == {("system", 0.8)}
    ans = pd.read_parquet(tmp_path / "run" / "eval" / "answers.parquet")
    assert set(ans.text) == {"It is Mars."}
