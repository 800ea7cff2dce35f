"""Epochs -> optimizer steps: the arithmetic behind the study's fractional-epoch checkpoints.

The study saved LoRA checkpoints at epochs 0.5 1 1.5 2 4 6 8 10 with an effective batch of 16
reached by gradient accumulation. An "epoch E" checkpoint here is the adapter after the
**first optimizer step at which at least E epochs of data have been consumed**::

    batches_per_epoch = len(train dataloader on one process)      # ceil(N / (b * w)) or so
    steps_per_epoch   = ceil(batches_per_epoch / grad_accum)      # transformers.Trainer's rule
    step(E)           = ceil(E * steps_per_epoch)                 # rounding documented: up
    max_steps         = ceil(epochs * steps_per_epoch)            # = step(epochs), as Trainer does

Rounding up means a checkpoint never sees less data than its label says. For the study's
1,617 conversations at effective batch 16 there are 102 steps/epoch (1,617 / 16 = 101.06: the
101 full steps plus a last, partial one; e.g. micro-batch 4, accumulation 4: 405 batches ->
102 steps), so epoch 0.5 is step 51 and epoch 2 step 204 (tests/test_train_schedule.py).
When the data set is so small that two labels fall on the same step, both folders hold the
same weights and the metadata says so.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from ..errors import WarmbenchError

# Guard against float noise (0.1 * 30 = 3.0000000000000004 must not round up to 4).
_EPS = 1e-9


def grad_accumulation(effective_batch: int, per_device_batch: int, world_size: int = 1) -> int:
    """Accumulation steps so that per_device * world * accum reaches the effective batch.

    When the effective batch is not a multiple of per_device * world, we round the
    accumulation **up** (the effective batch becomes the next multiple) and the caller records
    the actual effective batch; silently training with a smaller batch would change the
    learning dynamics more than a slightly larger one.
    """
    if effective_batch <= 0 or per_device_batch <= 0 or world_size <= 0:
        raise WarmbenchError(
            f"batch sizes must be positive (effective {effective_batch}, per-device "
            f"{per_device_batch}, world size {world_size})"
        )
    return max(1, math.ceil(effective_batch / (per_device_batch * world_size)))


def steps_per_epoch(batches_per_epoch: int, accum: int) -> int:
    """Optimizer steps in one pass: the last, shorter accumulation still makes a step."""
    return max(1, batches_per_epoch // accum + int(batches_per_epoch % accum > 0))


def epoch_to_step(epoch: float, per_epoch: int) -> int:
    """First optimizer step at which ``epoch`` epochs have been consumed (at least step 1)."""
    return max(1, math.ceil(epoch * per_epoch - _EPS))


def check_epochs(epochs: float, checkpoint_epochs: list[float]) -> list[float]:
    """Validate and sort the checkpoint epochs; the final epoch is always checkpointed."""
    if epochs <= 0:
        raise WarmbenchError(f"train.epochs must be positive (got {epochs})")
    out = sorted({float(e) for e in checkpoint_epochs})
    for e in out:
        if e <= 0 or e > epochs + _EPS:
            raise WarmbenchError(
                f"train.checkpoint_epochs: {e:g} is outside (0, epochs={epochs:g}]"
            )
    if not out or abs(out[-1] - epochs) > _EPS:
        out.append(float(epochs))
    return out


@dataclass(frozen=True)
class Schedule:
    """The optimizer-step plan of one training run."""

    n_examples: int
    per_device_batch: int
    world_size: int
    grad_accum: int
    batches_per_epoch: int
    steps_per_epoch: int
    max_steps: int
    epochs: float
    checkpoints: dict[float, int] = field(default_factory=dict)  # epoch -> step

    @property
    def effective_batch(self) -> int:
        return self.per_device_batch * self.world_size * self.grad_accum

    def steps(self) -> set[int]:
        return set(self.checkpoints.values())

    def epochs_at(self, step: int) -> list[float]:
        return [e for e, s in self.checkpoints.items() if s == step]

    def as_dict(self) -> dict:
        return {
            "n_examples": self.n_examples, "per_device_batch": self.per_device_batch,
            "world_size": self.world_size, "grad_accum": self.grad_accum,
            "effective_batch": self.effective_batch, "batches_per_epoch": self.batches_per_epoch,
            "steps_per_epoch": self.steps_per_epoch, "max_steps": self.max_steps,
            "epochs": self.epochs,
            "checkpoints": [{"epoch": e, "step": s} for e, s in sorted(self.checkpoints.items())],
        }


def make_schedule(n_examples: int, *, per_device_batch: int, world_size: int, grad_accum: int,
                  epochs: float, checkpoint_epochs: list[float],
                  batches_per_epoch: int | None = None) -> Schedule:
    """Plan the run. ``batches_per_epoch`` is the real dataloader length when known (the
    callback passes it); otherwise it is estimated as ceil(N / (b * w)), which is what
    accelerate's sharded sampler gives with ``even_batches`` (the default)."""
    if n_examples <= 0:
        raise WarmbenchError("no training examples left (empty data, or all longer than max_length?)")
    if batches_per_epoch is None:
        batches_per_epoch = math.ceil(math.ceil(n_examples / per_device_batch) / world_size)
    per_epoch = steps_per_epoch(batches_per_epoch, grad_accum)
    ckpts = {e: epoch_to_step(e, per_epoch) for e in check_epochs(epochs, checkpoint_epochs)}
    return Schedule(
        n_examples=n_examples, per_device_batch=per_device_batch, world_size=world_size,
        grad_accum=grad_accum, batches_per_epoch=batches_per_epoch, steps_per_epoch=per_epoch,
        max_steps=epoch_to_step(epochs, per_epoch), epochs=float(epochs), checkpoints=ckpts,
    )
