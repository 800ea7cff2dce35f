"""Targeted silencing of library warnings that say nothing a warmbench user can act on."""

from __future__ import annotations

import warnings


def silence_peft_deprecations() -> None:
    """peft and trl read ``model.is_gradient_checkpointing``, which transformers now deprecates
    with a FutureWarning on every adapter load and trainer: theirs to fix, noise in our output.
    Only that message is filtered; every other warning still shows."""
    warnings.filterwarnings("ignore", message=r"`is_gradient_checkpointing` is deprecated",
                            category=FutureWarning)
