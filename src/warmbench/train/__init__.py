"""Fine-tuning: LoRA on the study's schedule (TRL + PEFT) and OpenAI API fine-tuning.

Imports are lazy: ``warmbench.train.schedule`` must not pull in torch / transformers.
"""

from __future__ import annotations

from typing import Any

__all__ = ["run_train"]


def __getattr__(name: str) -> Any:
    if name == "run_train":
        from .run import run_train

        return run_train
    raise AttributeError(name)
