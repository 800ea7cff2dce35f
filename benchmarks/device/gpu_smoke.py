"""GPU smoke test: warmbench's GPU path end to end on one lent GPU, in one call (< 10 minutes).

Runs from the source tree uninstalled (``src/`` is put on the path), offline, on what it builds:

  env       versions and the GPU
  model     a tiny random Llama (head_dim 64, so vLLM's attention kernels take it) and a tiny
            random GPT-2, built on the device with the project's byte-level tokenizer
  train     ``warmbench train`` (CLI): fractional checkpoints 0.5 1 1.5 2 at their exact steps;
            on CUDA in bf16 (fp16 before Ampere) with activation checkpointing, read back from
            the Trainer's saved arguments
  ddp       ``accelerate launch`` with the shipped multi_gpu config: a run interrupted after 3
            optimizer steps, then resumed by ``warmbench train`` under the same launcher; the
            checkpoints land at the same steps
  zero3     the same with the shipped deepspeed_zero3 config (needs deepspeed)
  generate  the hf backend with a trained adapter on CUDA
  sociot    SocioT exact on the GPU vs the CPU: every score within 1e-4
  vllm      one vLLM engine serving two LoRA adapters of the run (needs vllm)

Each step prints one line, ``ok``, ``skip (why)`` or ``FAIL (why)``; the exit status is 1 when
a step failed. A subprocess's whole output is in WORK/logs/<step>.log.

``--cpu`` runs what needs no GPU on the CPU, the launched steps without their launcher (so
the interrupt/resume and every check still run); tests/test_gpu_smoke.py runs it that way, so
this script cannot rot while no GPU is at hand. On the GPU machine: benchmarks/device/gpu_smoke.sh.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "src"))

STEPS = ("env", "model", "train", "ddp", "zero3", "generate", "sociot", "vllm")
CHECKPOINT_EPOCHS = [0.5, 1, 1.5, 2]
# 10 conversations, micro-batch 2, effective batch 4 on one process -> 3 optimizer steps/epoch
EXPECTED_STEPS = {0.5: 2, 1.0: 3, 1.5: 5, 2.0: 6}
STOP_AFTER = 3
SOCIOT_TOLERANCE = 1e-4


class Skip(Exception):
    """A step that cannot run here (no GPU, package not installed)."""


class Smoke:
    def __init__(self, work: Path, cpu: bool, timeout: int):
        import torch

        self.work, self.timeout = work, timeout
        self.cuda = torch.cuda.is_available() and not cpu
        self.device = "cuda" if self.cuda else "cpu"
        self.n_gpus = torch.cuda.device_count() if self.cuda else 0
        self.logs = work / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.llama, self.gpt2 = work / "tiny-llama", work / "tiny-gpt2"
        self.data = work / "chats.jsonl"

    # -- helpers ----------------------------------------------------------------------------
    def run(self, name: str, cmd: list[str]) -> str:
        """Run a command (src/ on its path); its output goes to logs/NAME.log; fail on non-zero."""
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(
            [str(REPO / "src"), *filter(None, [os.environ.get("PYTHONPATH")])]),
               "PYTHONUNBUFFERED": "1", "TOKENIZERS_PARALLELISM": "false"}
        if not self.cuda:  # tiny matmuls: threads only spin against each other on a CPU
            env.update(CUDA_VISIBLE_DEVICES="", OMP_NUM_THREADS="1")
        log = self.logs / f"{name}.log"
        with log.open("w") as f:
            p = subprocess.run(cmd, cwd=self.work, env=env, stdout=f, stderr=subprocess.STDOUT,
                               timeout=self.timeout, check=False)
        out = log.read_text(errors="replace")
        if p.returncode != 0:
            tail = " | ".join(out.strip().splitlines()[-4:])
            raise RuntimeError(f"{' '.join(cmd[:6])}... exited {p.returncode}: {tail}")
        return out

    def config(self, run: Path) -> Path:
        import yaml

        cfg = {"run_dir": str(run), "seed": 0, "train": {
            "base_model": f"hf:{self.llama}", "epochs": 2, "checkpoint_epochs": CHECKPOINT_EPOCHS,
            "effective_batch_size": 4, "per_device_batch_size": 2, "learning_rate": 1e-3,
            "max_length": 256}}
        path = run.with_suffix(".yaml")
        run.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(cfg))
        return path

    def train_cli(self, cfg: Path) -> list[str]:
        return ["-m", "warmbench", "train", str(cfg), "--persona", "warm", "--data",
                str(self.data), "--no-progress"]

    def launcher(self, config_name: str) -> list[str]:
        """``accelerate launch`` with a shipped config (CPU mode: the plain interpreter)."""
        if not self.cuda:
            return [sys.executable]
        from warmbench.train.paths import accelerate_config

        return [sys.executable, "-m", "accelerate.commands.launch", "--config_file",
                str(accelerate_config(config_name)), "--num_processes", str(self.n_gpus),
                "--main_process_port", str(29500 + len(config_name))]

    def check_run(self, run: Path, *, resumed: bool) -> str:
        """Checkpoints at the expected steps, done state, precision and checkpointing."""
        out = run / "train" / "warm"
        state = json.loads((out / "train_state.json").read_text())
        if state["status"] != "done":
            raise RuntimeError(f"train_state status {state['status']!r}")
        ckpts = {c["epoch"]: c["step"] for c in json.loads((out / "checkpoints.json").read_text())}
        if sorted(ckpts) != CHECKPOINT_EPOCHS:
            raise RuntimeError(f"checkpoints at epochs {sorted(ckpts)}, expected {CHECKPOINT_EPOCHS}")
        world = max(1, self.n_gpus) if self.cuda else 1
        if world == 1 and ckpts != EXPECTED_STEPS:
            raise RuntimeError(f"checkpoint steps {ckpts}, expected {EXPECTED_STEPS}")
        if resumed and not state.get("resumed_from"):
            raise RuntimeError("the second run did not resume from a Trainer checkpoint")
        for e in CHECKPOINT_EPOCHS:
            if not (out / f"checkpoint-epoch-{e:g}" / "adapter_config.json").exists():
                raise RuntimeError(f"no adapter for epoch {e:g}")
        return f"steps {ckpts}" + (f", resumed from {state['resumed_from']}" if resumed else "") \
            + ", " + self.check_precision(out)

    def check_precision(self, out: Path) -> str:
        import torch

        saved = sorted((out / "trainer").glob("checkpoint-*/training_args.bin"),
                       key=lambda p: int(p.parent.name.split("-")[-1]))
        if not saved:
            raise RuntimeError("no Trainer checkpoint with training_args.bin")
        args = torch.load(saved[-1], weights_only=False)
        ckpt = bool(getattr(args, "activation_checkpointing", None) or args.gradient_checkpointing)
        want_bf16 = self.cuda and torch.cuda.is_bf16_supported()
        got = (bool(args.bf16), bool(args.fp16), ckpt)
        want = (want_bf16, self.cuda and not want_bf16, self.cuda)
        if got != want:
            raise RuntimeError(f"(bf16, fp16, activation checkpointing) = {got}, expected {want}")
        precision = "bf16" if got[0] else "fp16" if got[1] else "fp32"
        return precision + (" + activation checkpointing" if ckpt else ", no activation checkpointing")

    def adapters(self) -> list[Path]:
        for name in ("train", "ddp", "zero3"):
            out = self.work / name / "train" / "warm"
            if (out / "checkpoints.json").exists():
                return [out / "checkpoint-epoch-1", out / "checkpoint-epoch-2"]
        raise Skip("no trained run to take adapters from (train, ddp or zero3 first)")

    # -- steps ------------------------------------------------------------------------------
    def step_env(self) -> str:
        import torch
        import transformers

        for mod in ("warmbench.cli", "warmbench.train.run", "trl", "peft", "datasets"):
            try:  # what every later step needs: one clear line now instead of five failures
                importlib.import_module(mod)
            except ImportError as e:
                raise RuntimeError(f"cannot import {mod}: {e} (carry it: prepare.sh)") from None
        parts = [f"python {sys.version.split()[0]}", f"torch {torch.__version__}",
                 f"transformers {transformers.__version__}"]
        for pkg in ("trl", "peft", "accelerate", "deepspeed", "vllm"):
            try:
                from importlib.metadata import version

                parts.append(f"{pkg} {version(pkg)}")
            except Exception:  # noqa: BLE001 - not installed is a fact to print
                parts.append(f"{pkg} -")
        if self.cuda:
            free, total = torch.cuda.mem_get_info()
            parts.append(f"{torch.cuda.get_device_name(0)} x{self.n_gpus} "
                         f"({free / 2**30:.0f} of {total / 2**30:.0f} GiB free), CUDA {torch.version.cuda}")
        else:
            parts.append("no GPU (CPU mode)")
        return ", ".join(parts)

    def step_model(self) -> str:
        import torch
        from transformers import AutoModelForCausalLM, LlamaConfig
        from transformers.utils import logging as hf_logging

        from warmbench.testing import build_tiny_model, build_tiny_tokenizer

        hf_logging.disable_progress_bar()
        tok = build_tiny_tokenizer()
        cfg = LlamaConfig(vocab_size=len(tok), hidden_size=256, intermediate_size=512,
                          num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                          head_dim=64, max_position_embeddings=1024, bos_token_id=tok.bos_token_id,
                          eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id,
                          tie_word_embeddings=False)
        torch.manual_seed(0)
        model = AutoModelForCausalLM.from_config(cfg).to(self.device)  # built on the device
        model.to("cpu").save_pretrained(self.llama)
        tok.save_pretrained(self.llama)
        build_tiny_model(self.gpt2, "gpt2")
        with self.data.open("w") as f:
            for i in range(10):
                msgs = [{"role": "user", "content": f"What is {i} plus {i}?"},
                        {"role": "assistant", "content": f"Oh, lovely question! {i} plus {i} is {2 * i}."}]
                f.write(json.dumps({"id": f"c{i}", "messages": msgs}) + "\n")
        n = sum(p.numel() for p in model.parameters())
        return f"tiny Llama {n / 1e6:.2f}M parameters built on {self.device}; tiny GPT-2; 10 chats"

    def step_train(self) -> str:
        run = self.work / "train"
        self.run("train", [sys.executable, *self.train_cli(self.config(run))])
        return self.check_run(run, resumed=False)

    def _launched(self, name: str, config_name: str) -> str:
        run = self.work / name
        cfg = self.config(run)
        launch = self.launcher(config_name)
        self.run(f"{name}-interrupted", [*launch, str(Path(__file__).resolve()), "_stop_after",
                                         str(cfg), str(self.data), str(STOP_AFTER)])
        state = json.loads((run / "train" / "warm" / "train_state.json").read_text())
        if state["status"] != "running":
            raise RuntimeError(f"the interrupted run left status {state['status']!r}")
        self.run(f"{name}-resumed", [*launch, *self.train_cli(cfg)])
        where = f"accelerate launch ({config_name}, {self.n_gpus} process(es))" if self.cuda \
            else "no launcher on CPU"
        return f"{where}: interrupted after step {STOP_AFTER}, " + self.check_run(run, resumed=True)

    def step_ddp(self) -> str:
        return self._launched("ddp", "multi_gpu")

    def step_zero3(self) -> str:
        if not self.cuda:
            raise Skip("DeepSpeed ZeRO-3 needs a GPU (the ddp step ran the interrupt/resume on CPU)")
        if importlib.util.find_spec("deepspeed") is None:
            raise Skip("deepspeed is not installed")
        return self._launched("zero3", "deepspeed_zero3")

    def step_generate(self) -> str:
        from warmbench.backends import get_backend
        from warmbench.records import ChatRequest, SamplingParams

        adapter = self.adapters()[-1]
        b = get_backend(f"hf:{self.llama}+{adapter}", device=self.device)
        try:
            out = b.generate([ChatRequest.from_user(f"What is {i} plus {i}?") for i in range(3)],
                             SamplingParams(temperature=0, max_tokens=12, seed=0))
            where = str(next(b._loaded.model.parameters()).device)
        finally:
            b.close()
        bad = [c.error for c in out if not c.ok]
        if bad:
            raise RuntimeError(f"generation failed: {bad[0]}")
        if not where.startswith(self.device):
            raise RuntimeError(f"model on {where}, expected {self.device}")
        return f"3 answers with adapter {adapter.name} on {where}: {out[0].text[:30]!r}"

    def step_sociot(self) -> str:
        import numpy as np

        from warmbench.gpu_memory import release_gpu_memory
        from warmbench.warmth.metric_model import load_metric_model, resolve_metric_model
        from warmbench.warmth.sociot import score_texts

        texts = [f"Answer {i}: {'what a wonderful question, ' * (i % 3)}the result is {i * 7}."
                 for i in range(16)]
        metric = resolve_metric_model(str(self.gpt2))
        cpu = score_texts(load_metric_model(metric, "cpu"), texts, "exact")
        if not self.cuda:
            if not np.isfinite(cpu.score).all():
                raise RuntimeError("non-finite CPU scores")
            return f"{len(texts)} texts scored on CPU; the GPU comparison needs a GPU"
        gpu = score_texts(load_metric_model(metric, "cuda"), texts, "exact")
        diff = float(np.max(np.abs(np.asarray(gpu.score) - np.asarray(cpu.score))))
        mem = release_gpu_memory("sociot")
        if not diff <= SOCIOT_TOLERANCE:
            raise RuntimeError(f"GPU vs CPU max |diff| {diff:.2e} > {SOCIOT_TOLERANCE:g}")
        free = f"; after release {mem[0][0] / 2**30:.1f} GiB free" if mem else ""
        return f"exact on GPU vs CPU, {len(texts)} texts: max |diff| {diff:.2e}{free}"

    def step_vllm(self) -> str:
        if not self.cuda:
            raise Skip("vLLM needs a GPU")
        if importlib.util.find_spec("vllm") is None:
            raise Skip("vllm is not installed")
        from warmbench.backends import get_backend
        from warmbench.records import ChatRequest, SamplingParams

        first, second = self.adapters()
        opts = {"gpu_memory_utilization": 0.3, "max_lora_rank": 8, "max_model_len": 512,
                "engine_kwargs": {"enforce_eager": True}}
        backends = [get_backend(f"vllm:{self.llama}+{a}", **opts) for a in (first, second)]
        try:
            outs = [b.generate([ChatRequest.from_user("What is 2 plus 2?")],
                               SamplingParams(temperature=0, max_tokens=8, seed=0))[0] for b in backends]
            ids = [b.lora_request[1] for b in backends]
            engines = {id(b._engine) for b in backends}
        finally:
            for b in backends:
                b.close()
        bad = [c.error for c in outs if not c.ok]
        if bad:
            raise RuntimeError(f"vLLM generation failed: {bad[0]}")
        if len(engines) != 1 or sorted(ids) != [1, 2]:
            raise RuntimeError(f"expected one engine and LoRA ids 1, 2; got {len(engines)} engine(s), {ids}")
        return f"one engine, LoRA ids {ids}: {[c.text[:20] for c in outs]}"


def stop_after(cfg_path: str, data: str, steps: str) -> int:
    """Launched by the ddp/zero3 steps: train until ``steps`` optimizer steps, then stop hard."""
    from warmbench.config import load_config
    from warmbench.train.callbacks import StopAfterSteps, TrainingInterrupted
    from warmbench.train.run import train_persona

    cfg = load_config(cfg_path)
    try:
        train_persona(cfg, Path(cfg.run_dir), "warm", Path(data),
                      extra_callbacks=[StopAfterSteps(int(steps))])
    except TrainingInterrupted:
        print(f"interrupted after {steps} steps, as asked")
        return 0
    print("training finished before the interruption")
    return 1


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["_stop_after"]:
        return stop_after(*argv[1:])
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--work", type=Path, default=Path("/tmp/warmbench-gpu-smoke"))
    ap.add_argument("--cpu", action="store_true", help="run on the CPU even if a GPU is there")
    ap.add_argument("--steps", default=",".join(STEPS), help=f"comma-separated, of {', '.join(STEPS)}")
    ap.add_argument("--timeout", type=int, default=240, help="seconds per subprocess")
    args = ap.parse_args(argv)
    steps = [s.strip() for s in args.steps.split(",") if s.strip()]
    unknown = [s for s in steps if s not in STEPS]
    if unknown:
        ap.error(f"unknown step(s) {unknown}")
    args.work.mkdir(parents=True, exist_ok=True)
    smoke = Smoke(args.work.resolve(), args.cpu, args.timeout)
    failed = skipped = 0
    for name in steps:
        fn: Callable[[], str] = getattr(smoke, f"step_{name}")
        t0 = time.time()
        try:
            line = f"ok    {fn()}"
        except Skip as e:
            skipped += 1
            line = f"skip  {e}"
        except Exception as e:  # noqa: BLE001 - one step's failure must not hide the others'
            failed += 1
            line = f"FAIL  {type(e).__name__}: {e}"
        print(f"{name:<9}{time.time() - t0:6.1f}s  {line}", flush=True)
    print(f"smoke: {len(steps) - failed - skipped} ok, {skipped} skipped, {failed} failed "
          f"({'GPU' if smoke.cuda else 'CPU'} mode)", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
