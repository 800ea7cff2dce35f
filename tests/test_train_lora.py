"""LoRA training on the tiny random model: exact checkpoint steps, loss mask, resume, arms, CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from warmbench.config import parse_config
from warmbench.errors import InputError, WarmbenchError
from warmbench.store import RunStore

# 10 conversations, micro-batch 2, effective batch 4 -> accumulation 2, 5 batches/epoch,
# 3 optimizer steps/epoch. Epoch E -> step ceil(3E): 0.5->2, 1->3, 1.5->5, 2->6.
EXPECTED_STEPS = {0.5: 2, 1.0: 3, 1.5: 5, 2.0: 6}


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """The tiny model's 32-wide matmuls gain nothing from threads, and on a shared 2-core
    machine intra-op threads spin against other processes (10x slower)."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def write_chats(path: Path, persona: str, n: int = 10) -> Path:
    """Hand-written sample conversations (content is irrelevant to the tiny random model)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as f:
        for i in range(n):
            msgs = [{"role": "user", "content": f"What is {i} plus {i}?"},
                    {"role": "assistant", "content": f"{persona}: {i} plus {i} is {2 * i}."}]
            if i % 3 == 0:
                msgs = [{"role": "system", "content": "Be brief."}, *msgs,
                        {"role": "user", "content": "Thanks!"},
                        {"role": "assistant", "content": "You're welcome."}]
            f.write(json.dumps({"id": f"{persona}-{i}", "messages": msgs}) + "\n")
    return path


def make_cfg(run: Path, model: Path, **train):
    t = {"base_model": f"hf:{model}", "epochs": 2, "checkpoint_epochs": [0.5, 1, 1.5, 2],
         "effective_batch_size": 4, "per_device_batch_size": 2, "learning_rate": 1e-3, **train}
    return parse_config({"run_dir": str(run), "train": t})


@pytest.fixture(scope="module")
def trained(tmp_path_factory, tiny_llama):
    """One uninterrupted warm + cold run, shared by several tests."""
    from warmbench.train import run_train

    run = tmp_path_factory.mktemp("run")
    for p in ("warm", "cold"):
        write_chats(run / "rewrite" / f"{p}.jsonl", p)
    cfg = make_cfg(run, tiny_llama)
    summary = run_train(cfg, RunStore(run))
    return run, cfg, summary


def test_loss_mask_covers_exactly_the_assistant_turns(tiny_llama):
    from transformers import AutoTokenizer

    from warmbench.train.data import IGNORE, tokenize_conversation

    tok = AutoTokenizer.from_pretrained(tiny_llama)
    msgs = [{"role": "system", "content": "S."}, {"role": "user", "content": "Hi?"},
            {"role": "assistant", "content": "Hello!"}, {"role": "user", "content": "Bye?"},
            {"role": "assistant", "content": "Bye."}]
    r = tokenize_conversation(tok, msgs, None)
    trained = [t for t, lab in zip(r["input_ids"], r["labels"], strict=True) if lab != IGNORE]
    # Each assistant turn: its text and the end-of-turn marker that teaches the model to stop.
    assert tok.decode(trained) == "Hello!<|im_end|>\nBye.<|im_end|>\n"
    assert len(r["input_ids"]) == len(tok(tok.apply_chat_template(msgs, tokenize=False),
                                          add_special_tokens=False)["input_ids"])
    cut = tokenize_conversation(tok, msgs, 20)
    assert len(cut["input_ids"]) == 20 and len(cut["labels"]) == 20


def test_bad_lines_name_file_line_and_field(tmp_path):
    from warmbench.train.data import load_conversations

    f = tmp_path / "bad.jsonl"
    good = json.dumps({"id": "a", "messages": [{"role": "user", "content": "q"},
                                               {"role": "assistant", "content": "a"}]})
    f.write_text(good + "\n" + json.dumps({"id": "b", "messages": [{"role": "bot", "content": "x"}]}) + "\n")
    with pytest.raises(InputError, match=r"bad\.jsonl:line 2: field 'messages\[0\]\.role'"):
        load_conversations(f)
    f.write_text(good + "\n{not json\n")
    with pytest.raises(InputError, match=r"line 2: not valid JSON"):
        load_conversations(f)
    f.write_text(json.dumps({"messages": [{"role": "user", "content": "q"}]}) + "\n")
    with pytest.raises(InputError, match=r"line 1: field 'messages': has no non-empty assistant"):
        load_conversations(f)
    f.write_text(good + "\n" + json.dumps({"messages": [{"role": "user", "content": 3}]}))
    with pytest.raises(InputError, match=r"line 2: field 'messages\[0\]\.content'"):
        load_conversations(f)
    assert len(load_conversations(tmp_path / "bad.jsonl", limit=1)) == 1


def test_checkpoints_at_exact_steps_for_every_persona(trained):
    run, cfg, summary = trained
    assert summary["personas"] == {"warm": "trained", "cold": "trained"}
    metas = {}
    for p in ("warm", "cold"):
        rows = json.loads((run / "train" / p / "checkpoints.json").read_text())
        assert {r["epoch"]: r["step"] for r in rows} == EXPECTED_STEPS
        for r in rows:
            d = Path(r["path"])
            assert d.name == f"checkpoint-epoch-{r['epoch']:g}"
            assert (d / "adapter_model.safetensors").exists()
            assert r["spec"] == f"{cfg.train.base_model}+{d}"
            meta = json.loads((d / "warmbench_checkpoint.json").read_text())
            assert (meta["epoch"], meta["step"]) == (r["epoch"], r["step"])
            assert meta["base_model"] == cfg.train.base_model.text and meta["data_hash"]
            assert meta["schedule"]["steps_per_epoch"] == 3 and meta["effective_batch"] == 4
            assert meta["data"]["n_examples"] == 10
        metas[p] = meta
    # Identical hyper-parameters for both personas; only the data differ.
    assert metas["warm"]["config"] == metas["cold"]["config"]
    assert metas["warm"]["data_hash"] != metas["cold"]["data_hash"]
    assert RunStore(run).get_meta("train.warm")["checkpoints"][0]["step"] == 2


def test_finished_personas_are_skipped_and_changed_config_refused(trained):
    from warmbench.train import run_train

    run, cfg, _ = trained
    again = run_train(cfg, RunStore(run))
    assert set(again["personas"].values()) == {"skipped (already trained)"}
    with pytest.raises(WarmbenchError, match="different data or hyper-parameters"):
        run_train(make_cfg(run, Path(cfg.train.base_model.model), learning_rate=5e-4), RunStore(run))


def test_interrupted_run_resumes_to_the_same_steps_and_weights(trained, tmp_path, tiny_llama):
    from safetensors.torch import load_file

    from warmbench.train.callbacks import StopAfterSteps, TrainingInterrupted
    from warmbench.train.run import train_persona

    run_full = trained[0]
    write_chats(tmp_path / "rewrite" / "warm.jsonl", "warm")
    cfg = make_cfg(tmp_path, tiny_llama)
    data = tmp_path / "rewrite" / "warm.jsonl"
    with pytest.raises(TrainingInterrupted):
        train_persona(cfg, tmp_path, "warm", data, extra_callbacks=[StopAfterSteps(4)])
    out = tmp_path / "train" / "warm"
    assert sorted(p.name for p in out.glob("checkpoint-epoch-*")) == [
        "checkpoint-epoch-0.5", "checkpoint-epoch-1"]
    assert not (out / "checkpoints.json").exists()
    res = train_persona(cfg, tmp_path, "warm", data)
    assert res["status"] == "trained" and res["resumed_from"] == "checkpoint-3"
    assert {r["epoch"]: r["step"] for r in res["checkpoints"]} == EXPECTED_STEPS
    a = load_file(out / "checkpoint-epoch-2" / "adapter_model.safetensors")
    b = load_file(run_full / "train" / "warm" / "checkpoint-epoch-2" / "adapter_model.safetensors")
    assert a.keys() == b.keys()
    for k in a:  # RNG state and data order are restored: same weights as without the break
        assert (a[k] - b[k]).abs().max().item() < 1e-5, k


def test_checkpoint_loads_as_peft_adapter_and_changes_the_model(trained, tiny_llama):
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from warmbench.quiet import silence_peft_deprecations

    silence_peft_deprecations()  # this test loads the adapter with peft directly
    run = trained[0]
    ckpt = run / "train" / "warm" / "checkpoint-epoch-2"
    base = AutoModelForCausalLM.from_pretrained(tiny_llama)
    x = torch.tensor([[5, 6, 7, 8]])
    with torch.no_grad():
        before = base(x).logits
        model = PeftModel.from_pretrained(base, ckpt).eval()
        after = model(x).logits
    cfg = model.peft_config["default"]
    assert (cfg.r, cfg.lora_alpha, cfg.lora_dropout) == (8, 16, 0.1)
    assert set(cfg.target_modules) == {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj",
                                       "up_proj", "down_proj"}
    assert not torch.allclose(before, after)


def test_cli_trains_from_a_data_file(tmp_path, tiny_llama):
    from typer.testing import CliRunner

    from warmbench.cli import app

    data = write_chats(tmp_path / "chats.jsonl", "warm", n=4)
    res = CliRunner().invoke(app, [
        "train", "--data", str(data), "--persona", "warm", "--base-model", f"hf:{tiny_llama}",
        "--epochs", "1", "--checkpoint-epochs", "0.5,1", "--per-device-batch", "2",
        "--run-dir", str(tmp_path / "run"), "--no-progress"])
    assert res.exit_code == 0, res.output
    assert "warm: trained; 2 checkpoint(s)" in res.output
    rows = json.loads((tmp_path / "run" / "train" / "warm" / "checkpoints.json").read_text())
    # 4 conversations, micro-batch 2 -> 2 batches; accumulation 8 -> 1 step per epoch.
    assert [(r["epoch"], r["step"]) for r in rows] == [(0.5, 1), (1.0, 1)]
    res = CliRunner().invoke(app, ["train", "--run-dir", str(tmp_path / "empty")])
    assert res.exit_code != 0 and "no rewrite output" in str(res.exception)


def test_shipped_accelerate_configs_load_with_accelerate():
    from accelerate.commands.config.config_args import load_config_from_file
    from typer.testing import CliRunner

    from warmbench.cli import app
    from warmbench.train.paths import accelerate_config

    ddp = load_config_from_file(str(accelerate_config("multi_gpu")))
    z3 = load_config_from_file(str(accelerate_config("deepspeed_zero3")))
    # precision is left to the training arguments (bf16, or fp16 before Ampere): see the yaml
    assert (ddp.distributed_type.value, ddp.mixed_precision, z3.mixed_precision) == (
        "MULTI_GPU", "no", "no")
    assert z3.deepspeed_config["zero_stage"] == 3 and z3.deepspeed_config["zero3_init_flag"]
    res = CliRunner().invoke(app, ["train", "--accelerate-config", "deepspeed_zero3"])
    assert res.exit_code == 0 and res.output.strip() == str(accelerate_config("deepspeed_zero3"))
    with pytest.raises(WarmbenchError, match="unknown accelerate config"):
        accelerate_config("fsdp")


def test_target_modules_override_reaches_the_peft_config(tmp_path, tiny_llama):
    """train.target_modules replaces the per-architecture choice in the adapter PEFT writes."""
    from warmbench.train.run import train_persona

    data = write_chats(tmp_path / "chats.jsonl", "warm", n=4)
    cfg = make_cfg(tmp_path / "run", tiny_llama, epochs=1, checkpoint_epochs=[1],
                   target_modules=["q_proj", "v_proj"])
    res = train_persona(cfg, tmp_path / "run", "warm", data)
    assert res["status"] == "trained"
    ckpt = tmp_path / "run" / "train" / "warm" / "checkpoint-epoch-1"
    adapter = json.loads((ckpt / "adapter_config.json").read_text())
    assert set(adapter["target_modules"]) == {"q_proj", "v_proj"}
    meta = json.loads((ckpt / "warmbench_checkpoint.json").read_text())
    assert meta["target_modules"] == ["q_proj", "v_proj"]
    from safetensors.torch import load_file

    names = load_file(ckpt / "adapter_model.safetensors").keys()
    assert names and all(".q_proj." in k or ".v_proj." in k for k in names)


def test_stale_trainer_folder_is_gone_before_any_rank_passes_the_barrier(tmp_path, tiny_llama,
                                                                         monkeypatch):
    """Leftover Trainer checkpoints without a state file are deleted by rank 0 only, and every
    rank then waits at a barrier, so none can resume from the stale checkpoint."""
    import shutil

    import warmbench.train.run as tr
    from warmbench.train.lora import latest_trainer_checkpoint

    data = write_chats(tmp_path / "chats.jsonl", "warm", n=4)
    cfg = make_cfg(tmp_path / "run", tiny_llama)
    out = tmp_path / "run" / "train" / "warm"
    events: list[tuple[str, object]] = []

    def stale() -> None:
        (out / "trainer" / "checkpoint-5").mkdir(parents=True, exist_ok=True)
        (out / "trainer" / "checkpoint-5" / "trainer_state.json").write_text("{}")

    def fake_train_lora(job, base, tok, progress=None, **kw):
        events.append(("resume_from", latest_trainer_checkpoint(job.out_dir)))
        return {"schedule": {"max_steps": 1}, "global_step": 0}  # "stopped": no export

    def rank0_deletes_meanwhile() -> None:
        # What the barrier means for rank 1: by the time it returns, rank 0 has deleted.
        events.append(("barrier", (out / "trainer").exists()))
        if not tr._is_main():
            shutil.rmtree(out / "trainer")

    monkeypatch.setattr(tr, "train_lora", fake_train_lora)
    monkeypatch.setattr(tr, "_wait_for_everyone", rank0_deletes_meanwhile)
    # Rank 0 (single process): deletes, then the barrier, then looks for a checkpoint.
    stale()
    assert tr.train_persona(cfg, tmp_path / "run", "warm", data)["status"] == "stopped"
    assert events == [("barrier", False), ("resume_from", None)]
    # Rank 1 of 2: deletes nothing itself, but reaches the barrier too before resuming.
    (out / "train_state.json").unlink()  # rank 0 wrote "running": back to leftovers only
    stale()
    events.clear()
    monkeypatch.setenv("RANK", "1")
    assert tr.train_persona(cfg, tmp_path / "run", "warm", data)["status"] == "stopped"
    assert events == [("barrier", True), ("resume_from", None)]


def test_wait_for_everyone_single_process_and_process_group(tmp_path, monkeypatch):
    import accelerate
    import torch.distributed as dist

    from warmbench.train.run import _wait_for_everyone

    monkeypatch.delenv("WORLD_SIZE", raising=False)
    _wait_for_everyone()  # alone: nothing to wait for, nothing set up
    assert not dist.is_initialized()
    # Launched with several processes but no process group yet: accelerate's PartialState.
    calls = []

    class FakeState:
        def wait_for_everyone(self):
            calls.append("accelerate")

    monkeypatch.setattr(accelerate, "PartialState", FakeState)
    monkeypatch.setenv("WORLD_SIZE", "2")
    _wait_for_everyone()
    assert calls == ["accelerate"]
    # A process group already up: torch.distributed's barrier (gloo, one process here).
    monkeypatch.setenv("WORLD_SIZE", "1")
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'pg'}", rank=0, world_size=1)
    try:
        _wait_for_everyone()
    finally:
        dist.destroy_process_group()
    assert calls == ["accelerate"]
