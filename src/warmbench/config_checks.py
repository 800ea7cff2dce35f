"""Checks a run would fail on later, made before any stage starts (and by ``run --dry-run``).

The config loader checks shapes; what it cannot know without the loaders and backends is
whether a dataset name is one the eval stage loads, whether a sample/local file is there,
and whether a model spec names something its backend accepts (``scripted:ech``). A typo found
after curate, rewrite and training have run costs minutes to hours; found here it costs a line.
Nothing heavy is imported: no model is loaded, no network is reached.
"""

from __future__ import annotations

from pathlib import Path

from .backends.spec import ModelSpec
from .config import ExperimentConfig
from .errors import WarmbenchError


def check_datasets(cfg: ExperimentConfig) -> None:
    """Every eval dataset resolves as the eval stage would resolve it: its registry entry (the
    config loader already refuses an unknown name such as ``trivia_qa``; configs built in code
    are checked here too), then its source: the built-in sample file, or the local file."""
    from .eval.sets import sample_path

    for i, dc in enumerate(cfg.eval.datasets):
        where = f"eval.datasets[{i}]"
        try:
            dc.spec()
            if dc.sample and not sample_path(dc.name).is_file():
                raise WarmbenchError(f"the built-in sample set {dc.name!r} is missing from this "
                                     "installation")
        except WarmbenchError as e:
            raise WarmbenchError(f"{where}: {e}") from None
        local = dc.path or (dc.source if dc.source and not dc.source.startswith("hub:") else None)
        if local and not Path(local).exists():
            field = "path" if dc.path else "source"
            raise WarmbenchError(f"{where}.{field}: {local} does not exist")


def check_spec(spec: ModelSpec, where: str) -> None:
    """A spec its backend accepts (the config parsed it): scripted modes and explicit adapter
    folders checked (both are known without loading anything)."""
    from .backends.adapter import check_adapter

    if spec.backend == "scripted":
        from .backends.scripted import ScriptedBackend

        try:
            ScriptedBackend(spec).close()
        except WarmbenchError as e:
            raise WarmbenchError(f"{where}: {e}") from None
    if spec.adapter:
        check_adapter(spec.adapter, where)


def _with_base(spec: ModelSpec, base: str, where: str) -> ModelSpec:
    try:
        return spec.with_base(base)
    except WarmbenchError as e:
        raise WarmbenchError(f"{where}: {e}") from None


def model_specs(cfg: ExperimentConfig, stages: list[str]) -> list[tuple[str, ModelSpec]]:
    """(where, spec) for every model the chosen stages would call."""
    out: list[tuple[str, ModelSpec]] = []
    if "rewrite" in stages:
        out.append(("rewrite.model", cfg.rewrite.model))
    if "train" in stages and cfg.train.method == "lora":
        out.append(("train.base_model", _with_base(cfg.train.base_model, "x", "train.base_model")))
    if "eval" in stages:
        bases = cfg.base_models or [""]
        for i, arm in enumerate(cfg.arms):
            where = f"arms[{i}] ({arm.name}).model"
            for b in bases:
                out.append((where, _with_base(arm.model, b, where)))
    if "judge" in stages and cfg.judge.model:
        out.append(("judge.model", cfg.judge.model))
    return out


def check_config(cfg: ExperimentConfig, start: str | None = None, stop: str | None = None) -> None:
    """Raise one line naming the field at the first problem a run would hit."""
    from .pipeline import select_stages

    stages = [s.name for s in select_stages(cfg, start, stop)]
    if "eval" in stages:
        check_datasets(cfg)
    for where, spec in model_specs(cfg, stages):
        check_spec(spec, where)
