"""How much warmbench prints: the global ``--quiet`` / ``--verbose`` level, and targeted
silencing of library output that says nothing a warmbench user can act on."""

from __future__ import annotations

import os
import sys
import warnings

QUIET, NORMAL, VERBOSE = -1, 0, 1
_level = NORMAL


def set_verbosity(level: int) -> None:
    """Set by the CLI's ``--quiet`` / ``--verbose`` (global, before any command runs)."""
    global _level
    _level = level


def verbosity() -> int:
    return _level


def is_quiet() -> bool:
    """Quiet: no progress, no stage lines, no tables; results (paths) and errors still print."""
    return _level <= QUIET


def is_verbose() -> bool:
    return _level >= VERBOSE


def silence_third_party_bars(stream=None) -> None:
    """Turn off tqdm bars (transformers, datasets, huggingface_hub, sentence-transformers all
    draw with tqdm) unless the output is a terminal and the user did not ask for quiet.

    In a log file or pipe each bar redraw is a new line of carriage-return noise, interleaved
    with our own progress lines. Environment variables, because the libraries are imported
    lazily later (tqdm >= 4.66 reads ``TQDM_DISABLE``); values a user set are kept.
    ``--verbose`` leaves them on, even in a pipe."""
    stream = stream if stream is not None else sys.stderr
    if is_verbose() or (stream.isatty() and not is_quiet()):
        return
    for var in ("TQDM_DISABLE", "HF_HUB_DISABLE_PROGRESS_BARS", "HF_DATASETS_DISABLE_PROGRESS_BARS"):
        os.environ.setdefault(var, "1")


def silence_peft_deprecations() -> None:
    """peft and trl read ``model.is_gradient_checkpointing``, which transformers now deprecates
    with a FutureWarning on every adapter load and trainer: theirs to fix, noise in our output.
    Only that message is filtered; every other warning still shows."""
    warnings.filterwarnings("ignore", message=r"`is_gradient_checkpointing` is deprecated",
                            category=FutureWarning)
