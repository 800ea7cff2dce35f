"""The project's own small sample sets (written for warmbench, not taken from the originals):
10-20 items per set in the same row formats as the real files, so the quickstart and tests
run without any download."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from ...errors import WarmbenchError

SAMPLE_SETS = ("triviaqa", "truthfulqa", "medqa", "disinfo", "mmlu", "gsm8k", "advbench")


def sample_path(name: str) -> Path:
    if name not in SAMPLE_SETS:
        raise WarmbenchError(f"no built-in sample set {name!r} (have: {', '.join(SAMPLE_SETS)})")
    p = resources.files("warmbench").joinpath(f"resources/samples/{name}.jsonl")
    return Path(str(p))
