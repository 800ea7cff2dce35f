"""A PEFT adapter folder (``BACKEND:BASE+ADAPTER``): checked in one place, hashed in one place.

Every local backend (hf, vLLM) and the config checks call :func:`check_adapter`; the content
hash (:func:`adapter_hash`, cached by mtime) is what a spec's identity carries, so cached
generations, answer keys and the hf backend's loaded-adapter table all follow the weights,
not the path.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from ..errors import WarmbenchError

ADAPTER_CONFIG = "adapter_config.json"
# The files that define an adapter's weights (the folder may hold others: a README, a trainer
# state); only these enter the hash.
_WEIGHT_FILES = (ADAPTER_CONFIG, "adapter_model.safetensors", "adapter_model.bin")


def adapter_rank(adapter_dir: str | Path) -> int | None:
    """The LoRA rank ``r`` from a PEFT ``adapter_config.json`` (None when unreadable)."""
    try:
        cfg = json.loads((Path(adapter_dir) / ADAPTER_CONFIG).read_text())
    except (OSError, ValueError):
        return None
    r = cfg.get("r") if isinstance(cfg, dict) else None
    return int(r) if isinstance(r, int) else None


def check_adapter(adapter_dir: str, who: str, max_rank: int | None = None) -> None:
    """Raise one line when ``adapter_dir`` is not a usable PEFT adapter folder.

    ``who`` starts the message (``hf backend``, ``vllm backend``, a config field); ``max_rank``
    is the LoRA rank bound an engine was started with (vLLM allocates its LoRA slots for it).
    """
    p = Path(adapter_dir)
    if not p.exists():
        raise WarmbenchError(f"{who}: adapter folder {adapter_dir} does not exist (expected a "
                             f"PEFT adapter folder with {ADAPTER_CONFIG})")
    if not (p / ADAPTER_CONFIG).is_file():
        raise WarmbenchError(f"{who}: adapter folder {adapter_dir!r} has no {ADAPTER_CONFIG} "
                             "(not a PEFT adapter folder)")
    if max_rank is not None:
        r = adapter_rank(p)
        if r is not None and r > max_rank:
            raise WarmbenchError(
                f"{who}: adapter {adapter_dir}: LoRA rank {r} exceeds max_lora_rank={max_rank}")


_HASH_CACHE: dict[tuple[str, float], str] = {}


def adapter_hash(path: str) -> str:
    """Content hash of an adapter folder's weight and config files (cached by mtime)."""
    p = Path(path)
    if not p.exists():
        return "missing:" + hashlib.sha256(str(p).encode()).hexdigest()[:12]
    files = sorted(f for f in p.iterdir() if f.is_file() and f.suffix in (".safetensors", ".bin", ".json"))
    mtime = max((f.stat().st_mtime for f in files), default=0.0)
    ck = (str(p.resolve()), mtime)
    if ck in _HASH_CACHE:
        return _HASH_CACHE[ck]
    h = hashlib.sha256()
    for f in files:
        if f.name in _WEIGHT_FILES:
            h.update(f.name.encode())
            h.update(f.read_bytes())
    digest = h.hexdigest()[:16]
    _HASH_CACHE[ck] = digest
    return digest
