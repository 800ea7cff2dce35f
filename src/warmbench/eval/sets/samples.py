"""The project's own small sample sets (written for warmbench, not taken from the originals):
10-20 items per set in the same row formats as the real files, so the quickstart and tests
run without any download."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from ...errors import WarmbenchError
from .. import registry

SAMPLE_SETS = registry.sample_names()


def sample_path(name: str) -> Path:
    spec = registry.BUILTINS.get(name)
    if spec is None or not spec.sample:
        raise WarmbenchError(f"no built-in sample set {name!r} (have: {', '.join(SAMPLE_SETS)})")
    p = resources.files("warmbench").joinpath(f"resources/samples/{spec.sample}.jsonl")
    return Path(str(p))
