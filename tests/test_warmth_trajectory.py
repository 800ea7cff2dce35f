"""Checkpoint selection rules and the warmth trajectory stage (scripted answers and a tiny
Llama with real PEFT adapters), scored by a tiny random GPT-2."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from warmbench.backends.spec import parse_spec
from warmbench.config import parse_config
from warmbench.errors import WarmbenchError
from warmbench.layout import META_SELECTED
from warmbench.store import RunStore
from warmbench.warmth.selection import parse_rule, select_checkpoint


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """A shared, oversubscribed CPU runs tiny models far faster on one torch thread."""
    torch = pytest.importorskip("torch")
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


CKPTS = [{"epoch": e, "path": f"/ck/{e:g}"} for e in (0.5, 1, 1.5, 2, 4)]


# ------------------------------------------------------------------ selection rules
def test_epoch_rule_exact_and_nearest():
    c = select_checkpoint("warm", CKPTS, {}, "epoch:2")
    assert (c.epoch, c.path, c.note) == (2.0, "/ck/2", None)
    c = select_checkpoint("warm", CKPTS, {}, "epoch:3")  # 2 and 4 tie: the earlier
    assert c.epoch == 2.0 and "no checkpoint at epoch 3" in c.note and "nearest is epoch 2" in c.note
    c = select_checkpoint("warm", CKPTS, {}, "epoch:10")
    assert c.epoch == 4.0 and "nearest" in c.note


def test_plateau_rule_rising_and_falling():
    up = {0.0: 0.00, 0.5: 0.02, 1.0: 0.085, 1.5: 0.095, 2.0: 0.1, 4.0: 0.098}
    c = select_checkpoint("warm", CKPTS, up, "plateau", tolerance=0.1)
    assert c.epoch == 1.5  # first within 10% of the largest rise (0.1): 0.095 >= 0.09
    assert select_checkpoint("warm", CKPTS, up, "plateau", tolerance=0.2).epoch == 1.0
    assert select_checkpoint("warm", CKPTS, up, "plateau", tolerance=0.0).epoch == 2.0
    # A cold persona's warmth falls: its plateau is the coldest stretch.
    down = {0.0: 0.01, 0.5: -0.01, 1.0: -0.05, 1.5: -0.052, 2.0: -0.05, 4.0: -0.051}
    assert select_checkpoint("cold", CKPTS, down, "plateau", tolerance=0.1).epoch == 1.0
    # Without a baseline it falls back to the last checkpoint and says so.
    c = select_checkpoint("warm", CKPTS, {1.0: 0.1}, "plateau")
    assert c.epoch == 4.0 and "epoch 0" in c.note


@pytest.mark.parametrize("bad", ["epoch", "epoch:x", "epoch:-1", "best", "epoch:0"])
def test_bad_rules(bad):
    with pytest.raises(WarmbenchError, match="warmth.selection"):
        parse_rule(bad)


def test_plateau_tolerance_checked():
    with pytest.raises(WarmbenchError, match="tolerance"):
        select_checkpoint("warm", CKPTS, {0.0: 0, 1.0: 1}, "plateau", tolerance=1.5)


# ------------------------------------------------------------------ trajectory stage
WARM_REPLY = "Oh my dear friend, I love helping you, you are wonderful and I care about you!"
COLD_REPLY = "Request processed. Output follows. No further comment."


def _write_run(run, personas: dict[str, list[dict]], n_prompts: int = 5) -> None:
    (run / "curate").mkdir(parents=True)
    with (run / "curate" / "validation.jsonl").open("w") as f:
        for i in range(n_prompts):
            f.write(json.dumps({"id": f"v{i}", "prompt": f"Question number {i}?", "query_type": "factual"}) + "\n")
    for p, entries in personas.items():
        (run / "train" / p).mkdir(parents=True)
        (run / "train" / p / "checkpoints.json").write_text(json.dumps(entries))


def _cfg(run, metric, **warmth):
    return parse_config({"run_dir": str(run), "train": {"base_model": "scripted:constant=Okay."},
                         "warmth": {"model": str(metric), "bootstrap": 200, **warmth}})


def test_trajectory_scripted(tmp_path, tiny_gpt2, monkeypatch):
    run = tmp_path / "run"
    warm = [{"epoch": e, "path": f"warm-{e:g}", "spec": f"scripted:constant={WARM_REPLY if e >= 1 else 'Sure.'}"}
            for e in (0.5, 1, 2)]
    cold = [{"epoch": e, "path": f"cold-{e:g}", "spec": f"scripted:constant={COLD_REPLY}"} for e in (1, 3)]
    _write_run(run, {"warm": warm, "cold": cold})
    cfg = _cfg(run, tiny_gpt2, n_prompts=4)
    store = RunStore(run)
    from warmbench.warmth.trajectory import run_trajectory

    out = run_trajectory(cfg, store)
    t = pd.read_csv(run / "warmth" / "trajectory.csv")
    assert list(t.columns) == ["persona", "epoch", "n", "mean", "ci_low", "ci_high", "metric_model", "method"]
    assert sorted(zip(t.persona, t.epoch, strict=True)) == [
        ("cold", 0.0), ("cold", 1.0), ("cold", 3.0), ("warm", 0.0), ("warm", 0.5), ("warm", 1.0), ("warm", 2.0)]
    assert (t.n == 4).all() and (t.method == "exact").all()
    label = f"{tiny_gpt2} (stand-in for gpt2)"  # random weights: never passed off as GPT-2
    assert (t.metric_model == label).all() and out["metric_model"] == label
    # Epoch 0 is the same original model under both personas.
    base = t[t.epoch == 0].set_index("persona")["mean"]
    assert base["warm"] == base["cold"]
    # Constant answers: every answer scores the same, so the CI collapses onto the mean.
    row = t[(t.persona == "warm") & (t.epoch == 1)].iloc[0]
    assert row.ci_low == pytest.approx(row["mean"]) == pytest.approx(row.ci_high)
    # Study rule epoch:2; cold has no epoch 2: nearest (1 and 3 tie -> 1) with a note.
    sel = json.loads((run / "warmth" / "selected.json").read_text())
    assert sel == {"warm": "warm-2", "cold": "cold-1"}
    assert store.get_meta(META_SELECTED) == sel
    assert "nearest" in out["selected"]["cold"]["note"]
    assert (run / "warmth" / "trajectory.png").stat().st_size > 0
    assert (run / "warmth" / "trajectory.svg").exists()
    a = pd.read_parquet(run / "warmth" / "answers.parquet")
    assert len(a) == 4 * 6 and {"score", "metric_model", "text", "epoch"} <= set(a.columns)
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["warmth"]["metric_model"] == label
    # The plot's title names it too (matplotlib keeps each text as a comment in the SVG).
    assert "stand-in for gpt2" in (run / "warmth" / "trajectory.svg").read_text()

    # Rerun: nothing regenerated or rescored (the scorer must not even be called).
    n_completions = len(store.completion_rows("warmth"))
    import warmbench.warmth.trajectory as tr

    monkeypatch.setattr(tr, "score_texts", lambda *a, **k: (_ for _ in ()).throw(AssertionError("rescored")))
    out2 = run_trajectory(cfg, store)
    # 4 distinct model specs (identical specs share their cached answers) x 4 prompts.
    assert len(store.completion_rows("warmth")) == n_completions == 4 * 4
    assert out2["selected"] == out["selected"]
    pd.testing.assert_frame_equal(pd.read_csv(run / "warmth" / "trajectory.csv"), t)


def test_trajectory_plateau_selection_and_persona_filter(tmp_path, tiny_gpt2):
    run = tmp_path / "run"
    replies = {0.5: "Sure.", 1: WARM_REPLY, 2: WARM_REPLY}
    warm = [{"epoch": e, "path": f"w{e:g}", "spec": f"scripted:constant={r}"} for e, r in replies.items()]
    _write_run(run, {"warm": warm, "cold": [{"epoch": 1, "path": "c1", "spec": "scripted:echo"}]})
    cfg = _cfg(run, tiny_gpt2, selection="plateau", tolerance=0.0)
    from warmbench.warmth.trajectory import run_trajectory

    out = run_trajectory(cfg.with_overrides({"warmth.personas": ["warm"]}), RunStore(run))
    t = pd.read_csv(run / "warmth" / "trajectory.csv")
    assert set(t.persona) == {"warm"}
    means = t.set_index("epoch")["mean"]
    # Epochs 1 and 2 give identical answers, so the plateau starts at the first of them
    # unless epoch 0.5 already moved further from epoch 0 in the same direction.
    best = max((0.5, 1.0), key=lambda e: abs(means[e] - means[0.0]))
    assert out["selected"]["warm"]["epoch"] == best
    with pytest.raises(WarmbenchError, match="no checkpoints.json for persona"):
        run_trajectory(cfg.with_overrides({"warmth.personas": ["nobody"]}), RunStore(run))


def test_api_checkpoints_select_the_model_id(tmp_path):
    from warmbench.warmth.trajectory import load_checkpoints

    run = tmp_path / "run"
    (run / "train" / "warm").mkdir(parents=True)
    (run / "train" / "warm" / "checkpoints.json").write_text(json.dumps(
        [{"epoch": 2, "model": "ft:gpt-4o:org::ck2", "path": None, "spec": "openai:ft:gpt-4o:org::ck2"}]))
    ck = load_checkpoints(run, None, parse_spec("openai:gpt-4o-2024-08-06"))
    assert ck == {"warm": [{"epoch": 2.0, "path": "ft:gpt-4o:org::ck2",
                            "spec": parse_spec("openai:ft:gpt-4o:org::ck2")}]}


def test_trajectory_errors(tmp_path, tiny_gpt2):
    from warmbench.warmth.trajectory import run_trajectory

    run = tmp_path / "run"
    run.mkdir()
    with pytest.raises(WarmbenchError, match="warmbench curate"):
        run_trajectory(_cfg(run, tiny_gpt2), RunStore(run))
    _write_run(run, {})
    with pytest.raises(WarmbenchError, match="warmbench train"):
        run_trajectory(_cfg(run, tiny_gpt2), RunStore(run))
    (run / "curate" / "validation.jsonl").write_text('{"id": "a", "prompt": "ok"}\n{"id": "b"}\n')
    with pytest.raises(WarmbenchError, match=r"validation.jsonl:line 2: field 'prompt'"):
        run_trajectory(_cfg(run, tiny_gpt2), RunStore(run))


def test_trajectory_with_peft_adapters(tmp_path, tiny_llama, tiny_gpt2):
    """Real path: hf backend, tiny Llama base, two saved LoRA adapters as checkpoints."""
    torch = pytest.importorskip("torch")
    peft = pytest.importorskip("peft")
    from transformers import AutoModelForCausalLM

    from warmbench.quiet import silence_peft_deprecations

    silence_peft_deprecations()  # this test builds its adapters with peft directly
    run = tmp_path / "run"
    entries = []
    for e in (1, 2):
        torch.manual_seed(e)
        base = AutoModelForCausalLM.from_pretrained(tiny_llama)
        m = peft.get_peft_model(base, peft.LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"],
                                                      init_lora_weights=False))
        d = run / "train" / "warm" / f"checkpoint-epoch-{e}"
        m.save_pretrained(d)
        entries.append({"epoch": e, "step": e * 3, "path": str(d)})
    _write_run(run, {}, n_prompts=3)
    (run / "train" / "warm" / "checkpoints.json").write_text(json.dumps(entries))
    cfg = parse_config({"run_dir": str(run), "train": {"base_model": f"hf:{tiny_llama}"},
                        "warmth": {"model": str(tiny_gpt2), "max_tokens": 6, "bootstrap": 50}})
    from warmbench.warmth.trajectory import run_trajectory

    out = run_trajectory(cfg, RunStore(run))
    t = pd.read_csv(run / "warmth" / "trajectory.csv")
    assert t.epoch.tolist() == [0.0, 1.0, 2.0]
    assert out["selected"]["warm"]["path"] == entries[1]["path"]
    specs = {r["model"] for r in RunStore(run).completion_rows("warmth")}
    assert specs == {f"hf:{tiny_llama}", f"hf:{tiny_llama}+{entries[0]['path']}",
                     f"hf:{tiny_llama}+{entries[1]['path']}"}


def test_persona_rerun_merges_the_selection(tmp_path, tiny_gpt2):
    """`--persona warm` after a full trace keeps cold's choice, so a later cold arm still runs."""
    from warmbench.config import ArmConfig
    from warmbench.eval.run import arm_spec
    from warmbench.warmth.trajectory import run_trajectory

    run = tmp_path / "run"
    warm = [{"epoch": e, "path": f"warm-{e:g}", "spec": f"scripted:constant={WARM_REPLY}"} for e in (1, 2)]
    cold = [{"epoch": e, "path": f"cold-{e:g}", "spec": f"scripted:constant={COLD_REPLY}"} for e in (1, 2)]
    _write_run(run, {"warm": warm, "cold": cold}, n_prompts=3)
    store = RunStore(run)
    run_trajectory(_cfg(run, tiny_gpt2), store)
    full = pd.read_csv(run / "warmth" / "trajectory.csv")
    # Warm retrained with another schedule; re-trace only warm, choosing by the plateau rule.
    (run / "train" / "warm" / "checkpoints.json").write_text(json.dumps(
        [{"epoch": 3, "path": "warm-3", "spec": f"scripted:constant={WARM_REPLY}!"}]))
    out = run_trajectory(_cfg(run, tiny_gpt2, selection="plateau", personas=["warm"]), store)
    expected = {"warm": "warm-3", "cold": "cold-2"}
    assert json.loads((run / "warmth" / "selected.json").read_text()) == expected
    assert store.get_meta(META_SELECTED) == expected
    detail = json.loads((run / "warmth" / "selection.json").read_text())
    assert detail["cold"]["epoch"] == 2.0 and detail["cold"]["rule"] == "epoch:2"
    assert detail["warm"]["epoch"] == 3.0 and detail["warm"]["rule"] == "plateau"
    assert set(out["selected"]) == {"warm", "cold"}
    assert json.loads((run / "manifest.json").read_text())["warmth"]["selected"]["cold"]["path"] == "cold-2"
    # The table keeps cold's rows (same metric model) and replaces warm's.
    t = pd.read_csv(run / "warmth" / "trajectory.csv")
    pd.testing.assert_frame_equal(t[t.persona == "cold"].reset_index(drop=True),
                                  full[full.persona == "cold"].reset_index(drop=True))
    assert t[t.persona == "warm"].epoch.tolist() == [0.0, 3.0]
    a = pd.read_parquet(run / "warmth" / "answers.parquet")
    assert set(a.persona) == {"*", "warm", "cold"} and set(a[a.persona == "warm"].epoch) == {3.0}
    # The cold eval arm resolves its checkpoint after the warm-only rerun.
    arm = ArmConfig(name="cold", model="hf:base", persona="cold")
    assert arm_spec(arm, store).text == "hf:base+cold-2"


def test_answer_spec_for_backend():
    from warmbench.warmth.trajectory import answer_spec

    def served(spec: str, backend: str | None) -> str:
        return answer_spec(parse_spec(spec), backend).text

    assert served("hf:smollm2-135m+/r/ck1", None) == "hf:smollm2-135m+/r/ck1"
    assert served("hf:smollm2-135m+/r/ck1", "vllm") == "vllm:smollm2-135m+/r/ck1"
    assert served("hf:meta-llama/Llama-3.1-8B-Instruct", "vllm") == "vllm:meta-llama/Llama-3.1-8B-Instruct"
    assert served("vllm:m+/a", "hf") == "hf:m+/a"
    # API fine-tunes and scripted models are not local weights: left where they are.
    assert served("openai:ft:gpt-4o:org::ck2", "vllm") == "openai:ft:gpt-4o:org::ck2"
    assert served("scripted:echo", "vllm") == "scripted:echo"


def test_config_backend_and_tolerance_validated(tmp_path):
    cfg = parse_config({"warmth": {"backend": "vllm", "tolerance": 0.5}})
    assert cfg.warmth.backend == "vllm" and parse_config({}).warmth.backend is None
    with pytest.raises(WarmbenchError, match=r"warmth\.tolerance: .*less than 1.*\(got 1\.0\)"):
        parse_config({"warmth": {"tolerance": 1.0}})
    with pytest.raises(WarmbenchError, match=r"warmth\.tolerance: .*\(got 2\)"):
        parse_config({"warmth": {"tolerance": 2}})
    with pytest.raises(WarmbenchError, match=r"warmth\.backend"):
        parse_config({"warmth": {"backend": "vlm"}})


def test_trajectory_on_vllm_shares_one_engine(tmp_path, tiny_gpt2, monkeypatch):
    """warmth.backend: vllm serves the base and every checkpoint as vllm:BASE[+ADAPTER], all
    opened with LoRA enabled and kept open to the end (one engine); vllm is never imported."""
    import warmbench.warmth.trajectory as tr
    from warmbench.records import Completion

    events: list[tuple] = []

    class FakeVLLM:
        def __init__(self, spec, **opts):
            self.spec = spec
            events.append(("open", spec.text, opts.get("enable_lora")))

        def generate(self, requests, params, *, sample_index=0, on_result=None):
            comps = [Completion(text=f"Answer from {self.spec.adapter or 'base'}.") for _ in requests]
            for i, c in enumerate(comps):
                if on_result:
                    on_result(i, c)
            return comps

        def close(self):
            events.append(("close", self.spec.text))

    monkeypatch.setattr(tr, "get_backend", lambda spec, options=None, **o: FakeVLLM(spec, **o))
    run = tmp_path / "run"
    entries = [{"epoch": e, "path": str(run / f"ck{e}"), "spec": f"hf:tiny-base+{run / f'ck{e}'}"}
               for e in (1, 2)]
    _write_run(run, {"warm": entries}, n_prompts=2)
    cfg = parse_config({"run_dir": str(run), "train": {"base_model": "hf:tiny-base"},
                        "warmth": {"model": str(tiny_gpt2), "bootstrap": 20, "backend": "vllm"}})
    out = tr.run_trajectory(cfg, RunStore(run))
    specs = ["vllm:tiny-base", f"vllm:tiny-base+{run / 'ck1'}", f"vllm:tiny-base+{run / 'ck2'}"]
    assert events[:3] == [("open", s, True) for s in specs]
    assert sorted(e[1] for e in events[3:]) == sorted(specs) and all(e[0] == "close" for e in events[3:])
    assert out["selected"]["warm"]["path"] == str(run / "ck2")
    assert set(pd.read_parquet(run / "warmth" / "answers.parquet").model) == set(specs)
    # A rerun finds every answer stored and opens no backend (no engine start).
    events.clear()
    tr.run_trajectory(cfg, RunStore(run))
    assert events == []


def test_compat_chunks_draw_their_own_dropout_streams():
    """Each committed chunk of compat scores gets a seed of its own (from the user's seed and its
    texts), reproducible, so no chunk replays another's random numbers."""
    from warmbench.warmth.trajectory import _chunk_seed

    a, b = _chunk_seed(0, ["x", "y"]), _chunk_seed(0, ["z", "w"])
    assert a != b and a == _chunk_seed(0, ["x", "y"]) and a != _chunk_seed(1, ["x", "y"])
    assert 0 <= a < 2**32
