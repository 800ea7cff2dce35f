"""File names inside ``RUN/train/<persona>/`` (light: no torch / transformers import)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..layout import epoch_label

CHECKPOINT_META = "warmbench_checkpoint.json"   # inside each checkpoint-epoch-<E>/
STATE = "train_state.json"                      # status, signature, schedule, loss
CHECKPOINTS = "checkpoints.json"                # [{epoch, step, path, relpath, spec}]
JOB_FILE = "api_job.json"                       # API fine-tuning: ids, status, checkpoints


def checkpoint_dir(out_dir: Path, epoch: float) -> Path:
    return Path(out_dir) / f"checkpoint-epoch-{epoch_label(epoch)}"


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
