"""Epochs -> optimizer steps: the arithmetic of the study's fractional-epoch checkpoints."""

from __future__ import annotations

import pytest

from warmbench.errors import WarmbenchError
from warmbench.train.schedule import (
    check_epochs,
    epoch_to_step,
    grad_accumulation,
    make_schedule,
    steps_per_epoch,
)

STUDY_EPOCHS = [0.5, 1, 1.5, 2, 4, 6, 8, 10]


def test_grad_accumulation_reaches_effective_batch():
    assert grad_accumulation(16, 4, 1) == 4
    assert grad_accumulation(16, 2, 4) == 2
    assert grad_accumulation(16, 16, 2) == 1          # already over: one micro-batch
    assert grad_accumulation(16, 3, 1) == 6           # rounds up: effective 18, recorded
    with pytest.raises(WarmbenchError):
        grad_accumulation(16, 0, 1)


def test_study_schedule_1617_conversations():
    # 1,617 conversations, micro-batch 4 on one GPU, accumulation 4 -> 405 batches, 102 steps/epoch.
    s = make_schedule(1617, per_device_batch=4, world_size=1, grad_accum=4, epochs=10,
                      checkpoint_epochs=STUDY_EPOCHS)
    assert s.batches_per_epoch == 405
    assert s.steps_per_epoch == 102                   # 405 // 4 + 1 (last partial accumulation)
    assert s.effective_batch == 16
    assert s.checkpoints == {0.5: 51, 1.0: 102, 1.5: 153, 2.0: 204, 4.0: 408, 6.0: 612,
                             8.0: 816, 10.0: 1020}
    assert s.max_steps == 1020


def test_fractional_epochs_round_up_and_collisions_are_kept():
    assert epoch_to_step(0.5, 3) == 2                 # 1.5 steps of data -> step 2
    assert epoch_to_step(0.1, 30) == 3                # float noise must not give 4
    assert epoch_to_step(0.01, 5) == 1                # never step 0
    s = make_schedule(4, per_device_batch=4, world_size=1, grad_accum=1, epochs=2,
                      checkpoint_epochs=[0.5, 1, 2])
    assert s.checkpoints == {0.5: 1, 1.0: 1, 2.0: 2}
    assert s.epochs_at(1) == [0.5, 1.0]


def test_multi_gpu_batches_and_steps_per_epoch():
    s = make_schedule(100, per_device_batch=2, world_size=4, grad_accum=2, epochs=1,
                      checkpoint_epochs=[0.5, 1])
    assert s.batches_per_epoch == 13                  # ceil(ceil(100/2)/4)
    assert s.steps_per_epoch == steps_per_epoch(13, 2) == 7
    assert s.effective_batch == 16
    assert s.checkpoints == {0.5: 4, 1.0: 7}


def test_check_epochs_adds_final_and_rejects_out_of_range():
    assert check_epochs(3, [2, 1, 1]) == [1.0, 2.0, 3.0]
    with pytest.raises(WarmbenchError, match="outside"):
        check_epochs(2, [0.5, 4])
    with pytest.raises(WarmbenchError, match="positive"):
        check_epochs(0, [1])
