"""Fine-tuning: LoRA on the study's schedule (TRL + PEFT) and OpenAI API fine-tuning."""

from .run import run_train

__all__ = ["run_train"]
