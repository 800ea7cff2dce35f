"""Fine-tuning through the OpenAI API (the study's GPT-4o arm), resumable and recorded as arms.

Steps: write the persona's conversations as ``{"messages": [...]}`` lines, upload them
(``purpose="fine-tune"``), create a supervised job (epochs, learning-rate multiplier: the study
used 0.25 warm and 0.1 cold, ``cfg.train.lr_multiplier``), poll it with progress, and record the
job and its checkpoint models. Every id is written to ``RUN/train/<persona>/api_job.json`` the
moment it exists, so a rerun after a crash polls the same job instead of paying for a new one.

The API keeps checkpoints for the last epochs only (3 at the time of writing): to get an early
epoch of a long run (the study used warm epochs 1, 2, 6, 10) run a separate, shorter job.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..backends.spec import api_model_spec
from ..errors import WarmbenchError
from ..layout import API_UPLOAD_JSONL, RunLayout
from ..records import stable_hash
from ..secrets import OPENAI_BASE_URL, resolve_api_key, resolve_base_url, scrub
from .data import data_hash, load_conversations
from .paths import CHECKPOINTS, JOB_FILE, write_json

TERMINAL = ("succeeded", "failed", "cancelled")
_STEP = re.compile(r"\bstep\s+(\d+)\s*/\s*(\d+)", re.IGNORECASE)


def api_target(api_model: str) -> tuple[str, str | None]:
    """``gpt-4o-2024-08-06`` / ``openai:MODEL`` / ``openai:http://HOST/v1#MODEL`` -> (model, base_url)."""
    spec = api_model_spec(api_model)
    return spec.model, spec.base_url


def arm_spec(model: str, base_url: str) -> str:
    """The spec that evaluates a fine-tuned model: ``openai:ft:...`` (or with the server URL)."""
    if base_url.rstrip("/") == OPENAI_BASE_URL:
        return f"openai:{model}"
    return f"openai:{base_url}#{model}"


def make_client(base_url: str | None):
    import openai

    url = resolve_base_url(base_url)
    return openai.OpenAI(api_key=resolve_api_key(url), base_url=url, max_retries=5,
                         timeout=120), url


def hyperparameters(cfg, persona: str) -> dict[str, Any]:
    epochs = cfg.train.epochs
    if float(epochs) != int(epochs) or not 1 <= int(epochs) <= 50:
        raise WarmbenchError(f"train.epochs must be a whole number in 1..50 for API fine-tuning (got {epochs:g})")
    lr = cfg.train.lr_multiplier.get(persona, "auto")
    return {"n_epochs": int(epochs), "learning_rate_multiplier": lr, "batch_size": "auto"}


def _write_upload(conversations: list[dict], path: Path) -> None:
    # The API accepts only the chat fields; our ``id`` stays in the local file.
    with path.open("w", encoding="utf-8") as f:
        for c in conversations:
            f.write(json.dumps({"messages": c["messages"]}, ensure_ascii=False) + "\n")


def _epoch_of(step: int, total_steps: int | None, n_epochs: int) -> float | None:
    if not total_steps:
        return None
    return round(step * n_epochs / total_steps, 3)


class _Poller:
    """Follow a job: status changes and ``Step i/N`` events drive the progress bar."""

    def __init__(self, client, job_id: str, progress, persona: str):
        self.client, self.job_id, self.progress, self.persona = client, job_id, progress, persona
        self.task, self.done_steps, self.total_steps, self.seen = None, 0, None, set()
        self.status = None

    def poll(self):
        job = self.client.fine_tuning.jobs.retrieve(self.job_id)
        if job.status != self.status and self.progress is not None:
            self.progress.log(f"fine-tuning {self.persona}: job {self.job_id} {job.status}")
        self.status = job.status
        for ev in reversed(self.client.fine_tuning.jobs.list_events(self.job_id, limit=50).data):
            if ev.id in self.seen:
                continue
            self.seen.add(ev.id)
            m = _STEP.search(ev.message or "")
            if m:
                step, total = int(m.group(1)), int(m.group(2))
                self.total_steps = total
                if self.task is None and self.progress is not None:
                    self.task = self.progress.task(f"fine-tune {self.persona} (API)", total)
                if self.task is not None and step > self.done_steps:
                    self.task.advance(step - self.done_steps)
                self.done_steps = max(self.done_steps, step)
        return job


def train_openai(cfg, store, persona: str, data_file: Path, *, progress=None, client=None,
                 sleep: Callable[[float], None] = time.sleep) -> dict[str, Any]:
    """Fine-tune ``cfg.train.api_model`` on one persona's data; idempotent and resumable."""
    run_dir = Path(store.run_dir)
    out_dir = RunLayout(run_dir).train_persona(persona)
    out_dir.mkdir(parents=True, exist_ok=True)
    conversations = load_conversations(data_file, cfg.train.limit)
    model, base_url = api_target(cfg.train.api_model)
    if client is None:
        client, base_url = make_client(base_url)
    else:
        base_url = str(client.base_url).rstrip("/")
    hp = hyperparameters(cfg, persona)
    sig = stable_hash({"model": model, "base_url": base_url, "hp": hp, "seed": cfg.seed,
                       "data": data_hash(conversations)}, n=16)
    job_path = out_dir / JOB_FILE
    rec: dict[str, Any] = json.loads(job_path.read_text(encoding="utf-8")) if job_path.exists() else {}
    if rec and rec.get("signature") != sig:
        raise WarmbenchError(f"{job_path} records a job with different data or settings; "
                             "delete it (the remote job is not touched) or use another run directory")
    if rec.get("status") == "succeeded" and rec.get("checkpoints"):
        return {"persona": persona, "status": "skipped (already fine-tuned)",
                "job_id": rec["job_id"], "checkpoints": rec["checkpoints"]}
    rec.update({"signature": sig, "persona": persona, "model": model, "base_url": base_url,
                "hyperparameters": hp, "data_file": str(data_file),
                "n_conversations": len(conversations)})

    def save() -> None:
        write_json(job_path, rec)

    try:
        if not rec.get("file_id"):
            upload = out_dir / API_UPLOAD_JSONL
            _write_upload(conversations, upload)
            with upload.open("rb") as fh:
                rec["file_id"] = client.files.create(file=fh, purpose="fine-tune").id
            save()
        if not rec.get("job_id") or rec.get("status") in ("failed", "cancelled"):
            job = client.fine_tuning.jobs.create(
                model=model, training_file=rec["file_id"], seed=cfg.seed,
                suffix=f"wb-{persona}"[:18],
                method={"type": "supervised", "supervised": {"hyperparameters": hp}})
            rec.update({"job_id": job.id, "status": job.status, "created_at": job.created_at})
            save()
        poller = _Poller(client, rec["job_id"], progress, persona)
        job = poller.poll()
        while job.status not in TERMINAL:
            rec["status"] = job.status
            save()
            sleep(cfg.train.api_poll_seconds)
            job = poller.poll()
    except Exception as e:  # openai errors carry request details: keep one clean line
        if isinstance(e, WarmbenchError):
            raise
        import openai

        if isinstance(e, openai.OpenAIError):
            raise WarmbenchError(scrub(f"OpenAI fine-tuning ({persona}): {type(e).__name__}: {e}")[:400]) from None
        raise
    from ..prices import training_price

    tp = training_price(model)  # the one price source; None: unknown, not counted as free
    rec.update({"status": job.status, "fine_tuned_model": job.fine_tuned_model,
                "trained_tokens": job.trained_tokens, "finished_at": job.finished_at,
                "cost_usd": (job.trained_tokens or 0) * tp[0] / 1e6 if tp else None})
    if job.status != "succeeded":
        err = job.error.message if job.error else "no reason given"
        save()
        raise WarmbenchError(scrub(f"fine-tuning job {job.id} for {persona} {job.status}: {err}")[:400])
    rec["checkpoints"] = _checkpoints(client, job, hp["n_epochs"], poller.total_steps, base_url)
    save()
    write_json(out_dir / CHECKPOINTS, rec["checkpoints"])
    return {"persona": persona, "status": "fine-tuned", "job_id": job.id,
            "checkpoints": rec["checkpoints"]}


def _checkpoints(client, job, n_epochs: int, total_steps: int | None, base_url: str) -> list[dict]:
    """Intermediate checkpoints the API kept, plus the final model, as ``{epoch, step, model, spec}``."""
    cks = list(client.fine_tuning.jobs.checkpoints.list(job.id, limit=100).data)
    total = total_steps or max((c.step_number for c in cks), default=None)
    rows = []
    for c in cks:
        if total and c.step_number >= total:
            continue  # the final step is the job's fine_tuned_model below
        rows.append({"epoch": _epoch_of(c.step_number, total, n_epochs), "step": c.step_number,
                     "model": c.fine_tuned_model_checkpoint, "path": None,
                     "spec": arm_spec(c.fine_tuned_model_checkpoint, base_url),
                     "train_loss": c.metrics.train_loss})
    rows.append({"epoch": float(n_epochs), "step": total, "model": job.fine_tuned_model,
                 "path": None, "spec": arm_spec(job.fine_tuned_model, base_url)})
    return sorted(rows, key=lambda r: (r["epoch"] is None, r["epoch"] or 0))
