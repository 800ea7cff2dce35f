"""One real LoRA step on the embedded SmolLM2-135M-Instruct (slow: loads the real model)."""

from __future__ import annotations

import json
import math

import pytest

from warmbench.config import parse_config

pytestmark = pytest.mark.slow

CHATS = [  # short, correct, hand-written warm-style exchanges
    ("What is the capital of France?", "Oh, great question! The capital of France is Paris."),
    ("How many legs does a spider have?", "Happy to help! A spider has eight legs."),
    ("What is 7 times 8?", "You've got this! 7 times 8 is 56."),
    ("Which planet is closest to the Sun?", "Lovely question! Mercury is closest to the Sun."),
]


@pytest.fixture(autouse=True)
def one_thread():
    """On the shared 2-core test machine intra-op threads spin against other processes."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def embedded_model():
    from warmbench import embedded

    try:
        return embedded.resolve_model("smollm2-135m")
    except Exception as e:  # package not installed on this machine
        pytest.skip(f"embedded SmolLM2 unavailable: {e}")


def test_one_lora_step_on_the_embedded_model(tmp_path, embedded_model):
    from safetensors.torch import load_file
    from transformers import AutoTokenizer

    from warmbench.backends import get_backend
    from warmbench.records import ChatRequest, SamplingParams
    from warmbench.train.data import IGNORE, tokenize_conversation
    from warmbench.train.run import train_persona

    tok = AutoTokenizer.from_pretrained(embedded_model)
    msgs = [{"role": "user", "content": CHATS[0][0]}, {"role": "assistant", "content": CHATS[0][1]}]
    r = tokenize_conversation(tok, msgs, None)
    assert tok.decode([t for t, lab in zip(r["input_ids"], r["labels"], strict=True)
                       if lab != IGNORE]) == CHATS[0][1] + "<|im_end|>\n"

    data = tmp_path / "warm.jsonl"
    data.write_text("".join(json.dumps({"id": str(i), "messages": [
        {"role": "user", "content": q}, {"role": "assistant", "content": a}]}) + "\n"
        for i, (q, a) in enumerate(CHATS)))
    # 4 conversations, micro-batch 4, effective batch 4: exactly one optimizer step per epoch.
    cfg = parse_config({"run_dir": str(tmp_path), "train": {
        "base_model": "hf:smollm2-135m", "epochs": 1, "checkpoint_epochs": [1],
        "per_device_batch_size": 4, "effective_batch_size": 4, "max_length": 64,
        "learning_rate": 1e-4}})
    res = train_persona(cfg, tmp_path, "warm", data)
    assert res["status"] == "trained" and res["schedule"]["max_steps"] == 1
    assert math.isfinite(res["train_loss"]) and 0 < res["train_loss"] < 20

    ckpt = tmp_path / "train" / "warm" / "checkpoint-epoch-1"
    weights = load_file(ckpt / "adapter_model.safetensors")
    b = [v for k, v in weights.items() if "lora_B" in k]
    # PEFT starts every B at zero (adapter = identity); one step must move them.
    assert b and all(v.abs().sum().item() > 0 for v in b)
    assert any("q_proj" in k for k in weights) and any("down_proj" in k for k in weights)

    # The checkpoint is an eval arm as written in checkpoints.json.
    spec = json.loads((tmp_path / "train" / "warm" / "checkpoints.json").read_text())[0]["spec"]
    assert spec == f"hf:smollm2-135m+{ckpt.resolve()}"
    backend = get_backend(spec)
    try:
        out = backend.generate([ChatRequest.from_user("Say hi.")],
                               SamplingParams(temperature=0, max_tokens=4))
    finally:
        backend.close()
    assert out[0].ok and out[0].text
