"""Trainer callbacks: save PEFT adapters at exactly the study's fractional epochs, report progress.

``EpochCheckpointCallback`` recomputes the schedule from the *real* train dataloader when
training starts (its length already reflects packing, dropped rows and the number of
processes), asks the Trainer to write its own resumable checkpoint at each target step, and
once that is on disk copies the adapter out into ``RUN/train/<persona>/checkpoint-epoch-<E>/``
with ``warmbench_checkpoint.json``. Copying from the Trainer's checkpoint, rather than calling
``model.save_pretrained`` here, keeps saving correct under DeepSpeed ZeRO-3, where only the
Trainer knows how to gather the sharded weights.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

from .paths import CHECKPOINT_META, checkpoint_dir
from .schedule import Schedule, make_schedule

# Files of a PEFT adapter inside a Trainer checkpoint folder.
_ADAPTER_FILES = ("adapter_config.json", "adapter_model.safetensors", "adapter_model.bin")


class EpochCheckpointCallback(TrainerCallback):
    """Save at the steps of ``checkpoint_epochs``; also every ``save_steps`` for resuming."""

    def __init__(self, out_dir: Path, *, epochs: float, checkpoint_epochs: list[float],
                 n_examples: int, meta: dict[str, Any], save_steps: int | None = None,
                 on_checkpoint: Callable[[float, int, Path], None] | None = None):
        self.out_dir = Path(out_dir)
        self.epochs = epochs
        self.checkpoint_epochs = checkpoint_epochs
        self.n_examples = n_examples
        self.meta = meta
        self.save_steps = save_steps
        self.on_checkpoint = on_checkpoint
        self.schedule: Schedule | None = None
        self.losses: dict[int, float] = {}

    def on_train_begin(self, args, state, control, train_dataloader=None, **kwargs):
        batches = len(train_dataloader) if train_dataloader is not None else None
        self.schedule = make_schedule(
            self.n_examples, per_device_batch=args.per_device_train_batch_size,
            world_size=args.world_size, grad_accum=args.gradient_accumulation_steps,
            epochs=self.epochs, checkpoint_epochs=self.checkpoint_epochs,
            batches_per_epoch=batches,
        )
        if state.max_steps != self.schedule.max_steps:
            # Would only differ through float rounding of num_train_epochs; the Trainer's
            # final step is what gets trained, so the last checkpoint follows it.
            last = max(self.schedule.checkpoints)
            ckpts = dict(self.schedule.checkpoints)
            ckpts[last] = state.max_steps
            self.schedule = Schedule(**{**self.schedule.__dict__, "max_steps": state.max_steps,
                                        "checkpoints": ckpts})
        return control

    def on_log(self, args, state, control, logs=None, **kwargs):
        if logs and "loss" in logs:
            self.losses[state.global_step] = float(logs["loss"])
        return control

    def on_step_end(self, args, state, control, **kwargs):
        assert self.schedule is not None
        step = state.global_step
        if step in self.schedule.steps() or (self.save_steps and step % self.save_steps == 0):
            control.should_save = True
        return control

    def on_save(self, args, state, control, **kwargs):
        assert self.schedule is not None
        step = state.global_step
        epochs = self.schedule.epochs_at(step)
        if not epochs or not state.is_world_process_zero:
            return control
        src = Path(args.output_dir) / f"checkpoint-{step}"
        for epoch in epochs:
            dst = checkpoint_dir(self.out_dir, epoch)
            self._export(src, dst, epoch, step, epochs, state)
            if self.on_checkpoint is not None:
                self.on_checkpoint(epoch, step, dst)
        return control

    def _export(self, src: Path, dst: Path, epoch: float, step: int, same_step: list[float],
                state) -> None:
        tmp = dst.with_name(dst.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        copied = [f for f in _ADAPTER_FILES if (src / f).exists()]
        if "adapter_config.json" not in copied:
            raise RuntimeError(f"Trainer checkpoint {src} holds no PEFT adapter")
        for f in copied:
            shutil.copy2(src / f, tmp / f)
        loss = next((state.log_history[i]["loss"] for i in range(len(state.log_history) - 1, -1, -1)
                     if "loss" in state.log_history[i] and state.log_history[i].get("step", 0) <= step),
                    None)
        meta = {
            **self.meta,
            "epoch": epoch, "step": step, "epoch_exact": step / self.schedule.steps_per_epoch,
            "same_step_as": [e for e in same_step if e != epoch],
            "last_logged_loss": loss,
            "schedule": self.schedule.as_dict(),
        }
        (tmp / CHECKPOINT_META).write_text(json.dumps(meta, indent=2, default=str), encoding="utf-8")
        # Rename last so a half-written folder is never mistaken for a finished checkpoint.
        shutil.rmtree(dst, ignore_errors=True)
        tmp.rename(dst)


class ProgressCallback(TrainerCallback):
    """Drive a warmbench Progress task, one tick per optimizer step."""

    def __init__(self, progress, description: str):
        self.progress, self.description, self.task = progress, description, None

    def on_train_begin(self, args, state, control, **kwargs):
        if self.progress is not None:
            self.task = self.progress.task(self.description, state.max_steps)
            if state.global_step:
                self.task.advance(state.global_step)
        return control

    def on_step_end(self, args, state, control, **kwargs):
        if self.task is not None:
            self.task.advance(1)
        return control

    def on_train_end(self, args, state, control, **kwargs):
        if self.task is not None:
            self.task.close()
        return control


class TrainingInterrupted(RuntimeError):
    """Raised by StopAfterSteps(hard=True): stands in for a killed process in resume tests."""


class StopAfterSteps(TrainerCallback):
    """Interrupt training once ``n`` optimizer steps are done (and saved, if step n saves).

    Checked at the start of the next step, so the Trainer has finished saving step n.
    ``hard=True`` raises, as a killed process would; otherwise training stops cleanly.
    """

    def __init__(self, n: int, hard: bool = True):
        self.n, self.hard = n, hard

    def on_step_begin(self, args, state, control, **kwargs):
        if state.global_step >= self.n:
            if self.hard:
                raise TrainingInterrupted(f"stopped after step {state.global_step}")
            control.should_training_stop = True
        return control
