"""File names inside ``RUN/train/<persona>/`` (light: no torch / transformers import).

The names themselves are the run layout's (``layout.py``); this module keeps train's short
aliases and the atomic JSON writer.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..layout import API_JOB_JSON as JOB_FILE
from ..layout import CHECKPOINT_META, TRAINER_DIR, checkpoint_folder
from ..layout import CHECKPOINTS_JSON as CHECKPOINTS
from ..layout import TRAIN_STATE_JSON as STATE

__all__ = ["CHECKPOINTS", "CHECKPOINT_META", "JOB_FILE", "STATE", "TRAINER_DIR", "checkpoint_dir",
           "write_json"]


def checkpoint_dir(out_dir: Path, epoch: float) -> Path:
    """``out_dir`` is RUN/train/<persona>/ (``RunLayout.train_persona``)."""
    return Path(out_dir) / checkpoint_folder(epoch)


def write_json(path: Path, obj: Any) -> None:
    """Write via a temporary file and rename, so readers never see half a file."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(obj, indent=2, default=str), encoding="utf-8")
    tmp.replace(path)


ACCELERATE_CONFIGS = ("multi_gpu", "deepspeed_zero3")


def accelerate_config(name: str) -> Path:
    """Path of a shipped ``accelerate launch --config_file`` YAML (multi_gpu, deepspeed_zero3)."""
    from ..errors import WarmbenchError

    if name not in ACCELERATE_CONFIGS:
        raise WarmbenchError(f"unknown accelerate config {name!r} (known: {', '.join(ACCELERATE_CONFIGS)})")
    return Path(__file__).resolve().parents[1] / "resources" / "accelerate" / f"{name}.yaml"
