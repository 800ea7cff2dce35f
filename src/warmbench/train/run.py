"""``run_train``: fine-tune every persona with identical hyper-parameters, idempotently.

Per persona (``RUN/train/<persona>/``):

- ``checkpoint-epoch-<E>/``  PEFT adapter + ``warmbench_checkpoint.json``, usable as an arm
  ``hf:BASE+RUN/train/<persona>/checkpoint-epoch-<E>``
- ``checkpoints.json``       ``[{epoch, step, path, relpath, spec}]``
- ``train_state.json``       status, signature (data hash + hyper-parameters), schedule, loss
- ``trainer/``               the Trainer's own checkpoints, kept for resuming

A persona whose state is ``done`` with the same signature and all adapters present is
skipped; an interrupted one resumes from its newest Trainer checkpoint; a persona whose data
or hyper-parameters changed since is refused (a different experiment must not be mixed into
the same folder).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

from ..backends.spec import ModelSpec
from ..errors import WarmbenchError
from ..layout import RunLayout
from ..manifest import update_manifest
from ..stage import StageResult
from .data import build_dataset, data_hash, load_conversations
from .lora import LoraJob, load_tokenizer, resolve_base, train_lora
from .paths import CHECKPOINT_META, CHECKPOINTS, STATE, TRAINER_DIR, checkpoint_dir, write_json
from .schedule import check_epochs


def meta_key(persona: str) -> str:
    """Store meta key holding a persona's training summary (checkpoints as arms)."""
    return f"train.{persona}"


def persona_data(cfg, run_dir: Path, personas: list[str] | None,
                 data: str | Path | None = None) -> dict[str, Path]:
    """persona -> SFT JSONL. ``data`` (one file) overrides, for one persona."""
    if data is not None:
        names = personas or [Path(data).stem]
        if len(names) != 1:
            raise WarmbenchError("--data gives one file: name exactly one --persona with it")
        return {names[0]: Path(data)}
    wanted = personas or list(cfg.rewrite.personas)
    layout = RunLayout(run_dir)
    found = {p: layout.rewrite_data(p) for p in wanted}
    missing = [p for p, f in found.items() if not f.exists()]
    if personas and missing:
        raise WarmbenchError(f"no rewrite output for persona(s) {', '.join(missing)} "
                             f"(expected {found[missing[0]]}); run `warmbench rewrite` first or pass --data")
    found = {p: f for p, f in found.items() if f.exists()}
    if not found:
        raise WarmbenchError(f"no rewrite output in {layout.rewrite} for personas "
                             f"{', '.join(wanted)}; run `warmbench rewrite` first or pass --data")
    return found


def _is_main() -> bool:
    return int(os.environ.get("RANK", "0")) == 0


def _wait_for_everyone() -> None:
    """Barrier across the training processes (``accelerate launch`` / torchrun); a no-op alone.

    Uses the process group when it is already up, else accelerate's ``PartialState``, which
    sets it up from the launcher's environment exactly as the Trainer would a moment later
    (same shared state). A single process never imports either."""
    try:
        import torch.distributed as dist
    except ImportError:  # pragma: no cover - torch comes with the ml extra
        dist = None
    if dist is not None and dist.is_available() and dist.is_initialized():
        if dist.get_world_size() > 1:
            dist.barrier()
        return
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        from accelerate import PartialState

        PartialState().wait_for_everyone()


def _read_state(out_dir: Path) -> dict[str, Any] | None:
    p = out_dir / STATE
    return json.loads(p.read_text(encoding="utf-8")) if p.exists() else None


def collect_checkpoints(out_dir: Path, run_dir: Path, base_spec: ModelSpec) -> list[dict[str, Any]]:
    """Read back the exported adapters (sorted by epoch) as arm-ready entries."""
    rows = []
    for d in out_dir.glob("checkpoint-epoch-*"):
        meta_file = d / CHECKPOINT_META
        if d.name.endswith(".tmp") or not meta_file.exists():
            continue
        meta = json.loads(meta_file.read_text(encoding="utf-8"))
        path = d.resolve()
        try:
            rel = str(path.relative_to(run_dir.resolve()))
        except ValueError:
            rel = str(path)
        rows.append({"epoch": meta["epoch"], "step": meta["step"], "path": str(path),
                     "relpath": rel, "spec": base_spec.with_adapter(str(path)).text})
    return sorted(rows, key=lambda r: r["epoch"])


def is_finished(out_dir: Path, signature: str, epochs: list[float]) -> bool:
    state = _read_state(out_dir)
    if not state or state.get("status") != "done" or state.get("signature") != signature:
        return False
    return all((checkpoint_dir(out_dir, e) / CHECKPOINT_META).exists() for e in epochs)


def train_persona(cfg, run_dir: Path, persona: str, data_file: Path, *, progress=None,
                  extra_callbacks: list | None = None, **config_overrides: Any) -> dict[str, Any]:
    """Train one persona (skip if finished, resume if interrupted)."""
    t = cfg.train
    out_dir = RunLayout(run_dir).train_persona(persona)
    conversations = load_conversations(data_file, t.limit)
    job = LoraJob(base_model=t.base_model, out_dir=out_dir, persona=persona, dataset=None,
                  data_stats={"file": str(data_file)}, data_hash=data_hash(conversations),
                  train=t, seed=cfg.seed, extra_callbacks=list(extra_callbacks or []))
    sig = job.signature()
    epochs = check_epochs(t.epochs, t.checkpoint_epochs)
    if is_finished(out_dir, sig, epochs):
        return {"persona": persona, "status": "skipped (already trained)",
                "checkpoints": collect_checkpoints(out_dir, run_dir, t.base_model)}
    state = _read_state(out_dir)
    if state and state.get("signature") != sig:
        raise WarmbenchError(
            f"{out_dir} holds training with different data or hyper-parameters (signature "
            f"{state.get('signature')} != {sig}); delete that folder or use another run directory")
    if state is None and out_dir.exists() and _is_main():
        # Leftovers without a state file cannot be trusted for resuming.
        shutil.rmtree(out_dir / TRAINER_DIR, ignore_errors=True)
    # Every rank waits here (unconditionally, or ranks would deadlock): the others look for a
    # Trainer checkpoint to resume from (train_lora), and must not find, and resume from, the
    # stale one rank 0 is deleting; ranks that resumed differently would hang in the first
    # collective. Every rank has read the state file above, before rank 0 rewrites it below.
    _wait_for_everyone()
    out_dir.mkdir(parents=True, exist_ok=True)

    base_path = resolve_base(t.base_model)
    tok = load_tokenizer(base_path)
    dataset, stats = build_dataset(tok, conversations, t.max_length)
    job.dataset, job.data_stats = dataset, {"file": str(data_file), **stats}
    if _is_main():
        write_json(out_dir / STATE, {"status": "running", "signature": sig, "persona": persona,
                                     "base_model": t.base_model.text, "data_hash": job.data_hash,
                                     "data": job.data_stats})
    summary = train_lora(job, base_path, tok, progress=progress, **config_overrides)
    sched = summary["schedule"]
    if summary["global_step"] < sched["max_steps"]:
        # Stopped early on purpose (a callback): leave state "running" so a rerun resumes.
        return {"persona": persona, "status": "stopped", **summary}
    ckpts = collect_checkpoints(out_dir, run_dir, t.base_model)
    if _is_main():
        write_json(out_dir / CHECKPOINTS, ckpts)
        write_json(out_dir / STATE, {"status": "done", "signature": sig, "persona": persona,
                                     "base_model": t.base_model.text, "data_hash": job.data_hash,
                                     "data": job.data_stats, "schedule": sched,
                                     "train_loss": summary["train_loss"],
                                     "resumed_from": summary["resumed_from"]})
    return {"persona": persona, "status": "trained", "checkpoints": ckpts,
            "train_loss": summary["train_loss"], "schedule": sched,
            "resumed_from": summary["resumed_from"]}


def run_train(cfg, store, progress=None) -> StageResult:
    """Fine-tune each persona (LoRA, or cfg.train.method 'openai'); ``train.personas`` and
    ``train.data`` narrow it to some personas or one file."""
    run_dir = Path(store.run_dir)
    files = persona_data(cfg, run_dir, cfg.train.personas, cfg.train.data)
    method = cfg.train.method
    results: dict[str, Any] = {}
    for persona, f in files.items():
        if method == "openai":
            from .api import train_openai

            res = train_openai(cfg, store, persona, f, progress=progress)
        elif method == "lora":
            res = train_persona(cfg, run_dir, persona, f, progress=progress)
        else:
            raise WarmbenchError(f"unknown training method {method!r} (known: lora, openai)")
        results[persona] = res
        if _is_main():
            store.set_meta(meta_key(persona), {
                "method": method, "status": res["status"],
                "checkpoints": res.get("checkpoints", [])})
    if _is_main():
        update_manifest(run_dir, train={
            "method": method, "base_model": cfg.train.base_model.text if method == "lora" else cfg.train.api_model,
            "personas": {p: {"status": r["status"], "n_checkpoints": len(r.get("checkpoints", []))}
                         for p, r in results.items()},
        })
    return StageResult({"method": method, "personas": {p: r["status"] for p, r in results.items()},
                        "checkpoints": {p: len(r.get("checkpoints", [])) for p, r in results.items()}})
