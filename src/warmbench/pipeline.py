"""``warmbench run``: chain every stage of the study over one run directory.

curate → rewrite → train → warmth (trajectory + checkpoint choice) → eval → judge → stats → report

Stages never import each other; this module only calls their entry points in order with one
shared store and one progress view. Every stage is idempotent (it skips finished work), so a
killed run restarted simply runs again: finished stages return at once, the interrupted one
resumes from what its store already holds.

A stage is "done" only with an unchanged config, unchanged input data, zero failed rows and
readable, unchanged outputs (``stage_state``); one with failed rows stops the run with a
one-line ``StageIncomplete`` and is retried, row for row, by the next run. One process per run
directory (``runlock``).
"""

from __future__ import annotations

import importlib
import re
import shutil
import time
import traceback
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from .atomic import write_csv, write_parquet
from .config import ExperimentConfig
from .errors import WarmbenchError
from .gpu_memory import releasing
from .layout import RunLayout, made
from .manifest import update_manifest
from .progress import Progress
from .records import stable_hash
from .runlock import run_lock
from .stage import StageFn
from .stage_state import (
    failure_line,
    input_digest,
    output_digest,
    unreadable_output,
)
from .store import RunStore


class StageError(WarmbenchError):
    """A stage crashed; its traceback is in RUN/logs/<stage>.traceback.txt."""


@dataclass(frozen=True)
class Stage:
    name: str
    target: str          # "module:function", a ``stage.StageFn``: run(cfg, store, progress)
    own: tuple[str, ...]  # config sections this stage itself reads
    summary: str
    # Sections whose change makes the stage run again: its own plus every upstream stage's
    # (filled in by ``_cumulative``). A stage's output depends on everything before it, so an
    # upstream change must re-run the whole rest of the chain; listing sections per stage by
    # hand let eval/judge/stats stay "done" on answers of adapters trained before a rewrite
    # change. Re-running is cheap: generations are cached by content key in the store.
    sections: tuple[str, ...] = ()

    def load(self) -> StageFn:
        mod, fn = self.target.split(":")
        return releasing(getattr(importlib.import_module(mod), fn), self.name)  # GPU freed after


def _cumulative(stages: tuple[Stage, ...]) -> tuple[Stage, ...]:
    out: list[Stage] = []
    seen: list[str] = []
    for s in stages:
        seen += [k for k in s.own if k not in seen]
        out.append(replace(s, sections=tuple(seen)))
    return tuple(out)


# ``seed`` is drawn from by every stage (sampling, statements, generation, bootstrap).
# ``base_models`` goes with eval: it decides which models are evaluated and pooled (per-base
# sub-runs have it empty, so it only moves the top-level stats; not a persona stage, so it
# still counts when no arm names a persona).
# ``backend_options`` (batch sizes, parallelism, timeouts) and ``name`` change how or under
# which title the work is done, not what it computes, so they are in no fingerprint.
SEED_SECTIONS = ("seed",)
# What the stage commands' --persona / --data select (config fields since stages take only
# cfg, store, progress). Left out of the fingerprint while unset, so the stages of a run made
# before these fields existed are still done.
SELECTION_FIELDS = {"train": ("personas", "data"), "warmth": ("personas",)}
STAGES: tuple[Stage, ...] = _cumulative((
    Stage("curate", "warmbench.curate.run:run_curate", ("seed", "curate"),
          "ShareGPT conversations → NSFW filter → query types → balanced sample + validation prompts"),
    Stage("rewrite", "warmbench.rewrite.run:run_rewrite", ("rewrite",),
          "every assistant turn rewritten per persona, checked, SFT JSONL per persona"),
    Stage("train", "warmbench.train.run:run_train", ("train",),
          "LoRA per persona with the checkpoint schedule"),
    Stage("warmth", "warmbench.warmth.trajectory:run_trajectory", ("warmth",),
          "SocioT warmth per checkpoint, checkpoint choice"),
    Stage("eval", "warmbench.eval.run:run_eval", ("eval", "arms", "base_models"),
          "every arm answers every item in every prompt form"),
    Stage("judge", "warmbench.scoring.run:run_judge", ("judge",),
          "refusals, verdicts, scored table"),
    Stage("stats", "warmbench.stats.run:run_stats", ("stats",),
          "paired McNemar tests, BH, effect sizes, regressions M1–M4, figures"),
    # Always rebuilt (cheap, and must show the latest stats): its fingerprint is never compared.
    Stage("report", "warmbench.report:run_report", (),
          "one self-contained HTML report"),
))
STAGE_NAMES = tuple(s.name for s in STAGES)

# Stages that only matter when some arm is a fine-tuned persona.
PERSONA_STAGES = ("curate", "rewrite", "train", "warmth")


def select_stages(cfg: ExperimentConfig, start: str | None, stop: str | None) -> list[Stage]:
    for label, v in (("--from", start), ("--to", stop)):
        if v is not None and v not in STAGE_NAMES:
            raise WarmbenchError(f"{label} {v!r}: unknown stage (stages: {', '.join(STAGE_NAMES)})")
    i = STAGE_NAMES.index(start) if start else 0
    j = STAGE_NAMES.index(stop) if stop else len(STAGES) - 1
    if i > j:
        raise WarmbenchError(f"--from {start} comes after --to {stop}")
    chosen = list(STAGES[i : j + 1])
    if not any(a.persona for a in cfg.arms):
        chosen = [s for s in chosen if s.name not in PERSONA_STAGES]
    return chosen


def stage_fingerprint(cfg: ExperimentConfig, stage: Stage) -> str:
    """Hash of every config section the stage's output depends on (``Stage.sections``).

    Without a persona arm the persona stages are not run and nothing downstream reads their
    outputs, so their sections are left out: editing an unused ``rewrite`` section must not
    re-run eval (the seed, which curate also owns, always counts).
    """
    sections = stage.sections
    if not any(a.persona for a in cfg.arms):
        unused = {k for s in STAGES if s.name in PERSONA_STAGES for k in s.own} - set(SEED_SECTIONS)
        sections = tuple(k for k in sections if k not in unused)
    data = cfg.model_dump()
    for sec, keys in SELECTION_FIELDS.items():   # unset: as if the field did not exist
        for k in keys:
            if data[sec].get(k) is None:
                del data[sec][k]
    fp = {k: data.get(k) for k in sections}
    if "eval" in sections:   # custom sets' files and rubric files: their content counts too
        from .eval.custom_spec import input_stamps

        if stamps := input_stamps(cfg.eval, rubrics="judge" in sections):
            fp["eval_inputs"] = stamps
    return stable_hash(fp)


def base_slug(base: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", base.split("/")[-1]).strip("_") or "model"


def expand_base(cfg: ExperimentConfig, base: str) -> ExperimentConfig:
    """The sub-experiment of one base model: '{base}' substituted, its own run directory."""
    overrides: dict[str, Any] = {
        "base_models": [], "run_dir": str(RunLayout(cfg.run_dir).base_run(base_slug(base)).root),
        "train.base_model": cfg.train.base_model.with_base(base).text,
    }
    for i, arm in enumerate(cfg.arms):
        overrides[f"arms.{i}.model"] = arm.model.with_base(base).text
    return cfg.with_overrides(overrides, source=f"base_models: {base}")


def only_bases(cfg: ExperimentConfig, wanted: list[str]) -> ExperimentConfig:
    """The config with only the base models named in ``wanted`` (``run --base``: the full name
    or its last path part)."""
    keep = [b for b in cfg.base_models if b in wanted or b.split("/")[-1] in wanted]
    if not keep:
        raise WarmbenchError(f"--base {', '.join(wanted)}: not in base_models "
                             f"({', '.join(cfg.base_models) or 'none configured'})")
    return cfg.model_copy(update={"base_models": keep})


# Stages run once per base model when ``base_models`` is set; the others run once overall.
PER_BASE = ("train", "warmth", "eval", "judge")


def run_pipeline(cfg: ExperimentConfig, *, start: str | None = None, stop: str | None = None,
                 force: bool = False, progress: Progress | None = None) -> dict[str, Any]:
    """Run the chosen stages in order; return {stage: summary}. Raises on the first failure,
    after recording it, leaving every finished stage's outputs intact.

    One process per run directory: a second one gets ``RunDirLocked`` at once. A stage with
    failed rows raises ``StageIncomplete`` (one line naming them) and is not marked done."""
    from .budget import activate

    if not cfg.arms:
        # Before anything is created: every stage chain ends in eval/judge/stats over arms.
        raise WarmbenchError("no arms configured: add e.g. arms: [{name: original, "
                             "model: hf:smollm2-135m}]")
    stages = select_stages(cfg, start, stop)
    with run_lock(cfg.run_dir):
        # The budget spans the whole run directory (every base model's sub-run included).
        activate(cfg.budget_usd, cfg.run_dir, "warmbench run CONFIG --max-usd <more>")
        try:
            if cfg.base_models:
                return _run_multi_base(cfg, start=start, stop=stop, force=force,
                                       progress=progress)
            return _run_stages(cfg, stages, force=force, progress=progress)
        finally:
            activate(None, cfg.run_dir)  # a later command in this process has no budget


def _run_multi_base(cfg: ExperimentConfig, *, start: str | None, stop: str | None, force: bool,
                    progress: Progress | None) -> dict[str, Any]:
    stages = select_stages(cfg, start, stop)
    prog = progress or Progress()
    results: dict[str, Any] = {}
    with prog:
        shared = [s for s in stages if s.name in ("curate", "rewrite")]
        if shared:
            results.update(_run_stages(cfg, shared, force=force, progress=prog))
        per_base = [s for s in stages if s.name in PER_BASE]
        for base in cfg.base_models:
            sub = expand_base(cfg, base)
            _share_persona_data(Path(cfg.run_dir), Path(sub.run_dir))
            prog.log(f"== base model {base} → {sub.run_dir}")
            if per_base:
                results[base] = _run_stages(sub, per_base, force=force, progress=prog)
        if any(s.name == "judge" for s in stages) or any(s.name in ("stats", "report") for s in stages):
            _pool_base_outputs(cfg)
        rest = [s for s in stages if s.name in ("stats", "report")]
        if rest:
            results.update(_run_stages(cfg, rest, force=force, progress=prog))
    return results


def _share_persona_data(top: Path, sub: Path) -> None:
    """Sub-runs read the shared curate/rewrite outputs (copied: small JSONL files)."""
    src, dst = RunLayout(top), RunLayout(sub)
    for here, there in ((src.curate, dst.curate), (src.rewrite, dst.rewrite)):
        if here.is_dir():
            shutil.copytree(here, there, dirs_exist_ok=True)


def _pool_base_outputs(cfg: ExperimentConfig) -> None:
    """Concatenate every base model's scored table and warmth trajectory at the top level."""
    import pandas as pd

    top = RunLayout(cfg.run_dir)
    scored, traj = [], []
    for base in cfg.base_models:
        sub = top.base_run(base_slug(base))
        if sub.scored.exists():
            scored.append(pd.read_parquet(sub.scored))
        if sub.trajectory_csv.exists():
            t = pd.read_csv(sub.trajectory_csv)
            t.insert(0, "base_model", base)
            traj.append(t)
    if scored:
        write_parquet(pd.concat(scored, ignore_index=True), top.scored)
    if traj:
        write_csv(pd.concat(traj, ignore_index=True), top.trajectory_csv)


class StageIncomplete(WarmbenchError):
    """A stage ended with failed rows (e.g. API requests that failed after their retries). It is
    not marked done, so the next run retries exactly those rows; later stages are not run on
    the incomplete data."""


def _is_done(stage: Stage, mark: dict[str, Any] | None, fp: str, inputs: str | None,
             cfg: ExperimentConfig, store: RunStore) -> bool:
    """Done = same config, same input data, zero failed rows, outputs present, readable and
    unchanged since (``stage_state``)."""
    run_dir = Path(store.run_dir)
    if stage.name == "report" or not mark or mark.get("status") != "done":
        return False
    if mark.get("fingerprint") != fp or mark.get("inputs") != inputs:
        return False
    if unreadable_output(stage.name, cfg, run_dir) is not None:
        return False
    return mark.get("wrote") == output_digest(stage.name, cfg, store)


def _run_stages(cfg: ExperimentConfig, stages: list[Stage], *, force: bool,
                progress: Progress | None) -> dict[str, Any]:
    from .prices import set_price_overrides

    set_price_overrides(cfg.prices)
    run_dir = Path(cfg.run_dir)
    store = RunStore(run_dir)
    try:
        update_manifest(run_dir, config=cfg.model_dump(mode="json"), seeds={"seed": cfg.seed},
                        stages=[s.name for s in stages])
        results: dict[str, Any] = {}
        prog = progress or Progress()
        with prog:
            overall = prog.task(f"warmbench run · {cfg.name}", total=len(stages))
            for stage in stages:
                results[stage.name] = _run_one(stage, cfg, store, prog, force=force)
                overall.advance()
        update_manifest(run_dir, stage_results=results)
        return results
    finally:
        store.close()


def _run_one(stage: Stage, cfg: ExperimentConfig, store: RunStore, prog: Progress, *,
             force: bool) -> Any:
    run_dir = Path(cfg.run_dir)
    fp = stage_fingerprint(cfg, stage)
    inputs = input_digest(stage.name, cfg, store)
    mark = store.get_meta(f"stage.{stage.name}")
    if not force and _is_done(stage, mark, fp, inputs, cfg, store):
        prog.log(f"[{stage.name}] already done — skipped")
        return mark.get("summary", {})
    bad = unreadable_output(stage.name, cfg, run_dir) if mark and mark.get("status") == "done" else None
    if bad:
        prog.log(f"[{stage.name}] output {bad} is missing or unreadable: running again")
    prog.log(f"[{stage.name}] {stage.summary}")
    t0 = time.time()
    base = {"fingerprint": fp, "inputs": inputs, "started": t0}
    store.set_meta(f"stage.{stage.name}", {"status": "running", **base})
    try:
        result = stage.load()(cfg, store, prog)
    except BaseException as e:
        trace = traceback.format_exc()
        store.set_meta(f"stage.{stage.name}", {
            "status": "failed", **base, "error": f"{type(e).__name__}: {e}"[:2000],
            "trace": trace[-4000:] if not isinstance(e, WarmbenchError) else None,
        })
        if isinstance(e, WarmbenchError | KeyboardInterrupt) or not isinstance(e, Exception):
            raise
        # A bug, not a user error: one readable line, the traceback in a file.
        log = made(RunLayout(run_dir).traceback(stage.name))
        log.write_text(trace, encoding="utf-8")
        raise StageError(
            f"stage '{stage.name}' failed: {type(e).__name__}: {e} (traceback: {log}); "
            "earlier stages are kept — fix and run again to resume") from e
    summary = _jsonable(result.summary)
    n_failed, rows = result.failed, result.failed_rows
    status = "incomplete" if n_failed else "done"
    store.set_meta(f"stage.{stage.name}", {"status": status, **base,
                                           "seconds": round(time.time() - t0, 1),
                                           "summary": summary, "failed": n_failed,
                                           "wrote": output_digest(stage.name, cfg, store)})
    if n_failed:
        line = failure_line(stage.name, n_failed, rows)
        store.set_meta(f"stage.{stage.name}", {**store.get_meta(f"stage.{stage.name}"),
                                               "error": line[:2000]})
        raise StageIncomplete(line)
    return summary


def _jsonable(obj: Any) -> Any:
    import json

    return json.loads(json.dumps(obj, default=str))


def stage_status(run_dir: str | Path) -> dict[str, dict[str, Any]]:
    """What the store says about each stage (for `warmbench run --status`)."""
    if not RunLayout(run_dir).store.is_file():   # nothing ran: create nothing either
        return {s.name: {"status": "pending"} for s in STAGES}
    with RunStore(run_dir) as store:
        return {s.name: store.get_meta(f"stage.{s.name}", {"status": "pending"}) for s in STAGES}
