"""LoRA fine-tuning of one persona with TRL's SFTTrainer and PEFT, on the study's schedule.

Study defaults (cfg.train): r 8, alpha 16, dropout 0.1, lr 1e-5, max length 1024, effective
batch 16 through gradient accumulation, 10 epochs, checkpoints at epochs 0.5 1 1.5 2 4 6 8 10,
loss on assistant tokens only. The Trainer's own checkpoints (adapter + optimizer + RNG) live
in ``OUT/trainer/`` so an interrupted run resumes exactly where it stopped.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..backends.spec import ModelSpec
from ..errors import MissingExtraError, WarmbenchError
from ..records import stable_hash
from .paths import TRAINER_DIR
from .schedule import check_epochs, grad_accumulation

# LoRA targets per architecture (config.model_type). The study does not name its targets; we
# adapt every attention and MLP projection, the common choice for instruction tuning (QLoRA
# and most TRL recipes); cfg.train.target_modules overrides. Unknown types use PEFT's
# "all-linear" (every linear layer except the output head).
_LLAMA_LIKE = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
TARGET_MODULES: dict[str, list[str]] = {
    **{t: _LLAMA_LIKE for t in ("llama", "mistral", "mixtral", "qwen2", "qwen2_moe", "qwen3",
                                "qwen3_moe", "gemma", "gemma2", "gemma3", "gemma3_text",
                                "olmo", "olmo2", "granite", "smollm3", "ministral")},
    "phi3": ["qkv_proj", "o_proj", "gate_up_proj", "down_proj"],
    "gpt2": ["c_attn", "c_proj", "c_fc"],
    "gpt_neox": ["query_key_value", "dense", "dense_h_to_4h", "dense_4h_to_h"],
    "falcon": ["query_key_value", "dense", "dense_h_to_4h", "dense_4h_to_h"],
}

# Hyper-parameters that define the weights; a change means a different training run.
SIGNATURE_FIELDS = ("base_model", "r", "alpha", "dropout", "learning_rate", "max_length",
                    "effective_batch_size", "per_device_batch_size", "epochs", "target_modules",
                    "packing", "lr_scheduler")


def target_modules_for(model_type: str, override: list[str] | None = None) -> list[str] | str:
    if override:
        return list(override)
    return TARGET_MODULES.get(model_type, "all-linear")


def resolve_base(spec: ModelSpec) -> str:
    """``hf:NAME`` -> a loadable name or folder (embedded names are converted once, offline)."""
    if spec.backend != "hf":
        raise WarmbenchError(f"train.base_model must be an hf: spec (got {spec.text!r})")
    if spec.adapter:
        raise WarmbenchError(f"train.base_model {spec.text!r}: training on top of an adapter "
                             "is not supported; merge it first or give the plain base model")
    try:
        from ..embedded import resolve_model
    except ImportError:
        return spec.model
    return resolve_model(spec.model)


def _need_ml() -> None:
    try:
        import peft  # noqa: F401
        import trl  # noqa: F401
    except ImportError as e:
        raise MissingExtraError(e.name or "trl", "ml", "LoRA training") from None


def device_kind() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def world_size() -> int:
    """Processes training together (set by ``accelerate launch`` / torchrun)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def load_tokenizer(path: str):
    from transformers import AutoTokenizer

    _quiet_libraries()
    return AutoTokenizer.from_pretrained(path)


def load_model(path: str):
    """bf16 on GPU, fp32 on CPU. Call it after the training arguments exist: under DeepSpeed
    ZeRO-3 they register the config that makes ``from_pretrained`` shard the weights as they
    load (a 70B model would otherwise be loaded whole by every process)."""
    import torch
    from transformers import AutoModelForCausalLM

    _quiet_libraries()
    cuda = device_kind() == "cuda"
    dtype = torch.bfloat16 if cuda and torch.cuda.is_bf16_supported() else torch.float32
    return AutoModelForCausalLM.from_pretrained(path, dtype=dtype)


def load_base(path: str):
    """Model and tokenizer (single process use: tests, benchmarks)."""
    return load_model(path), load_tokenizer(path)


@dataclass
class LoraJob:
    """Everything one persona's training needs; built by ``run_train`` from the config."""

    base_model: ModelSpec           # the config's train.base_model (an hf: spec)
    out_dir: Path                   # RUN/train/<persona>
    persona: str
    dataset: Any                    # datasets.Dataset of {input_ids, labels}
    data_stats: dict[str, Any]
    data_hash: str
    train: Any                      # config.TrainConfig
    seed: int = 0
    padding_free: bool = False      # benchmark option: flatten batches without packing
    extra_callbacks: list = field(default_factory=list)
    on_checkpoint: Any = None

    def signature(self) -> str:
        t = self.train.model_dump()
        return stable_hash({"data": self.data_hash, "seed": self.seed,
                            "train": {k: t.get(k) for k in SIGNATURE_FIELDS}}, n=16)


# Training arguments renamed across releases: our name -> the older spelling. The installed
# SFTConfig's fields decide which is passed. transformers 5.23 renamed gradient_checkpointing to
# activation_checkpointing, and vLLM 0.34 needs transformers < 5.23, so both are live; TRL
# before 0.20 called max_length max_seq_length.
RENAMED_ARGS = {"activation_checkpointing": "gradient_checkpointing",
                "max_length": "max_seq_length"}


def installed_args(config_cls: type, kw: dict[str, Any]) -> dict[str, Any]:
    """``kw`` with each name spelled as ``config_cls`` (a dataclass: SFTConfig) spells it.

    A name the class lacks under either spelling is an error naming the versions, rather than
    a TypeError deep in TRL or an argument silently dropped."""
    fields = {f.name for f in dataclasses.fields(config_cls)}
    out: dict[str, Any] = {}
    for name, value in kw.items():
        if name not in fields:
            old = RENAMED_ARGS.get(name)
            if old not in fields:
                raise WarmbenchError(
                    f"training argument {name!r} is unknown to the installed {config_cls.__name__} "
                    f"({_versions()}); see the supported versions in docs/training.md")
            name = old
        out[name] = value
    return out


def _versions() -> str:
    from importlib.metadata import PackageNotFoundError, version

    parts = []
    for pkg in ("transformers", "trl"):
        try:
            parts.append(f"{pkg} {version(pkg)}")
        except PackageNotFoundError:
            parts.append(f"{pkg} not installed")
    return ", ".join(parts)


def sft_config(job: LoraJob, accum: int, **overrides: Any):
    import torch
    from trl import SFTConfig

    cuda = device_kind() == "cuda"
    bf16 = cuda and torch.cuda.is_bf16_supported()
    t = job.train
    kw: dict[str, Any] = dict(
        output_dir=str(job.out_dir / TRAINER_DIR),
        per_device_train_batch_size=t.per_device_batch_size,
        gradient_accumulation_steps=accum,
        learning_rate=t.learning_rate,
        lr_scheduler_type=t.lr_scheduler,
        num_train_epochs=t.epochs,
        # Data are pre-truncated to max_length; padding-free without packing needs None here.
        max_length=None if (job.padding_free and not t.packing) else t.max_length,
        packing=t.packing,
        padding_free=job.padding_free,
        # Our callback decides when to save (checkpoint epochs, save_steps); keep the two
        # newest Trainer checkpoints for resuming; the adapters are copied out at each save.
        save_strategy="no",
        save_total_limit=2,
        logging_steps=1,
        report_to="none",
        seed=job.seed,
        data_seed=job.seed,
        bf16=bf16,                      # Ampere and later; fp16 on older GPUs
        fp16=cuda and not bf16,
        # Recompute activations on GPU (memory for long chats); on CPU it only costs time.
        activation_checkpointing=cuda,
        dataloader_num_workers=0,
        dataloader_pin_memory=cuda,
        disable_tqdm=True,
    )
    kw.update(overrides)
    return SFTConfig(**installed_args(SFTConfig, kw))


def lora_config(train, model_type: str):
    from peft import LoraConfig

    return LoraConfig(r=train.r, lora_alpha=train.alpha, lora_dropout=train.dropout,
                      target_modules=target_modules_for(model_type, train.target_modules),
                      bias="none", task_type="CAUSAL_LM")


def _quiet_libraries() -> None:
    """datasets' map bars and transformers' weight-loading bars would interleave with ours;
    peft's and trl's deprecation noise says nothing to a user (``quiet``)."""
    import datasets
    import transformers

    from ..quiet import silence_peft_deprecations

    datasets.disable_progress_bars()
    transformers.utils.logging.disable_progress_bar()
    silence_peft_deprecations()


def latest_trainer_checkpoint(out_dir: Path) -> Path | None:
    """The newest complete Trainer checkpoint under OUT/trainer (None when none)."""
    root = out_dir / TRAINER_DIR
    if not root.is_dir():
        return None
    done = [p for p in root.glob("checkpoint-*")
            if p.name.split("-")[-1].isdigit() and (p / "trainer_state.json").exists()]
    return max(done, key=lambda p: int(p.name.split("-")[-1]), default=None)


def train_lora(job: LoraJob, model, tokenizer, progress=None, **config_overrides: Any) -> dict:
    """Train (or resume) one persona's adapter; returns a summary with the saved checkpoints.

    ``model`` is a loaded model or a path, loaded here after the training arguments (ZeRO-3).
    """
    _need_ml()
    from trl import SFTTrainer

    from .callbacks import EpochCheckpointCallback, ProgressCallback

    t = job.train
    epochs = check_epochs(t.epochs, t.checkpoint_epochs)
    ws = world_size()
    accum = grad_accumulation(t.effective_batch_size, t.per_device_batch_size, ws)
    args = sft_config(job, accum, **config_overrides)
    if isinstance(model, str | Path):
        model = load_model(str(model))
    model_type = getattr(model.config, "model_type", "")
    meta = {
        "persona": job.persona, "base_model": job.base_model.text,
        "base_model_type": model_type, "data_hash": job.data_hash, "data": job.data_stats,
        "signature": job.signature(), "seed": job.seed, "packing": t.packing,
        "config": t.model_dump(), "effective_batch": t.per_device_batch_size * ws * accum,
        "target_modules": target_modules_for(model_type, t.target_modules),
    }
    ckpt_cb = EpochCheckpointCallback(
        job.out_dir, epochs=t.epochs, checkpoint_epochs=epochs, n_examples=len(job.dataset),
        meta=meta, save_steps=t.save_steps, on_checkpoint=job.on_checkpoint)
    callbacks = [ckpt_cb, *job.extra_callbacks]
    if progress is not None:
        callbacks.append(ProgressCallback(progress, f"train {job.persona}"))
    _quiet_libraries()
    trainer = SFTTrainer(model=model, args=args, train_dataset=job.dataset,
                         processing_class=tokenizer, peft_config=lora_config(t, model_type),
                         callbacks=callbacks)
    # Losses go to the progress bar / trainer_state.json, not as dicts printed to stdout.
    from transformers.trainer_callback import PrinterCallback

    trainer.remove_callback(PrinterCallback)
    resume = latest_trainer_checkpoint(job.out_dir)
    out = trainer.train(resume_from_checkpoint=str(resume) if resume else None)
    sched = ckpt_cb.schedule
    assert sched is not None
    return {
        "persona": job.persona, "resumed_from": resume.name if resume else None,
        "global_step": trainer.state.global_step, "train_loss": out.training_loss,
        "schedule": sched.as_dict(), "examples_after_prep": len(trainer.train_dataset),
        "meta": meta,
    }
