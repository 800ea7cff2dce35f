"""Training arguments across releases: the installed SFTConfig's own field names are passed.

transformers 5.23 renamed ``gradient_checkpointing`` to ``activation_checkpointing``; vLLM 0.34
needs transformers < 5.23. ``make test-lowest`` runs this file (and the training and backend
tests) against the lowest supported transformers, where only the old name exists.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from warmbench.config import parse_config
from warmbench.errors import WarmbenchError
from warmbench.train.lora import LoraJob, installed_args, sft_config


@dataclasses.dataclass
class _Old:  # a transformers < 5.23 / TRL < 0.20 argument class
    gradient_checkpointing: bool = False
    max_seq_length: int = 1024
    bf16: bool = False


@dataclasses.dataclass
class _New:
    activation_checkpointing: bool = False
    gradient_checkpointing: bool = False  # deprecated alias, still a field
    max_length: int = 1024


def test_names_follow_the_installed_class():
    kw = {"activation_checkpointing": True, "max_length": 512}
    assert installed_args(_Old, {**kw, "bf16": True}) == {
        "gradient_checkpointing": True, "max_seq_length": 512, "bf16": True}
    assert installed_args(_New, kw) == kw
    with pytest.raises(WarmbenchError, match=r"'bf16' is unknown to the installed _New \(transformers "):
        installed_args(_New, {"bf16": True})


def test_installed_sft_config_takes_our_arguments(tmp_path: Path):
    pytest.importorskip("trl")
    import transformers

    cfg = parse_config({"run_dir": str(tmp_path), "train": {"per_device_batch_size": 2}})
    job = LoraJob(base_model=cfg.train.base_model, out_dir=tmp_path, persona="warm", dataset=None,
                  data_stats={}, data_hash="h", train=cfg.train)
    # activation checkpointing is what the GPU path asks for; here it is forced on CPU
    args = sft_config(job, 8, activation_checkpointing=True)
    assert args.gradient_checkpointing is True  # the name every release (and TRL) reads
    assert args.gradient_accumulation_steps == 8 and args.max_length == cfg.train.max_length
    assert args.per_device_train_batch_size == 2 and not args.bf16 and not args.fp16
    fields = {f.name for f in dataclasses.fields(type(args))}
    major_minor = tuple(int(x) for x in transformers.__version__.split(".")[:2])
    assert ("activation_checkpointing" in fields) == (major_minor >= (5, 23))
