"""Fine-tuning endpoints for the local fake OpenAI server (tests and offline trials).

``FakeFineTuning().register(server)`` adds::

    POST /v1/files                                   multipart upload, JSONL checked line by line
    POST /v1/fine_tuning/jobs                        supervised job (method or legacy hyperparameters)
    GET  /v1/fine_tuning/jobs/{job_id}               advances the job one phase per poll
    GET  /v1/fine_tuning/jobs/{job_id}/events        "Step i/N: training loss=..." messages
    GET  /v1/fine_tuning/jobs/{job_id}/checkpoints   the last 3 epoch checkpoints, newest first
    POST /v1/fine_tuning/jobs/{job_id}/cancel

Jobs move validating_files -> queued -> running (``running_polls`` polls, one epoch's steps per
poll spread evenly) -> succeeded, or -> failed when ``fail=True``. Object shapes follow the
OpenAI SDK's types so the real client parses them. The data are never trained on: the
"fine-tuned" model names are made up, deterministic from the job id.
"""

from __future__ import annotations

import itertools
import json
import math
import time
from typing import Any

from .server import FakeRequest, FakeResponse, multipart_fields

KEPT_CHECKPOINTS = 3  # the API keeps the last three epochs' checkpoints


def _err(status: int, message: str, param: str | None = None) -> FakeResponse:
    return FakeResponse(status, {"error": {"message": message, "type": "invalid_request_error",
                                           "param": param, "code": None}})


class FakeFineTuning:
    def __init__(self, *, batch_size: int = 2, running_polls: int = 3, fail: bool = False,
                 org: str = "org-fake"):
        self.batch_size, self.running_polls, self.fail, self.org = batch_size, running_polls, fail, org
        self.files: dict[str, dict[str, Any]] = {}
        self.jobs: dict[str, dict[str, Any]] = {}
        self._ids = itertools.count(1)

    def register(self, server) -> FakeFineTuning:
        server.add_route("POST", "/v1/files", self.upload)
        server.add_route("POST", "/v1/fine_tuning/jobs", self.create)
        server.add_route("GET", "/v1/fine_tuning/jobs/{job_id}", self.retrieve)
        server.add_route("GET", "/v1/fine_tuning/jobs/{job_id}/events", self.events)
        server.add_route("GET", "/v1/fine_tuning/jobs/{job_id}/checkpoints", self.checkpoints)
        server.add_route("POST", "/v1/fine_tuning/jobs/{job_id}/cancel", self.cancel)
        return self

    # -- files -----------------------------------------------------------------------
    def upload(self, req: FakeRequest) -> FakeResponse | dict:
        fields = multipart_fields(req)
        if "file" not in fields:
            return _err(400, "missing file", "file")
        purpose = (fields.get("purpose") or (b"", ""))[0].decode()
        if purpose != "fine-tune":
            return _err(400, f"unsupported purpose {purpose!r}", "purpose")
        blob, filename = fields["file"]
        n = 0
        # split("\n"), not splitlines(): JSON text may hold a raw U+2028 (json.dumps with
        # ensure_ascii=False leaves it), which splitlines() would treat as a line break.
        for i, line in enumerate(blob.decode("utf-8").split("\n"), 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                return _err(400, f"line {i} is not JSON", "file")
            if set(row) != {"messages"} or not isinstance(row["messages"], list):
                return _err(400, f"line {i}: expected only a 'messages' list", "file")
            n += 1
        fid = f"file-{next(self._ids):06d}"
        self.files[fid] = {"id": fid, "object": "file", "bytes": len(blob), "created_at": int(time.time()),
                           "filename": filename or "upload.jsonl", "purpose": "fine-tune",
                           "status": "processed", "n_examples": n}
        return {k: v for k, v in self.files[fid].items() if k != "n_examples"}

    # -- jobs ------------------------------------------------------------------------
    def create(self, req: FakeRequest) -> FakeResponse | dict:
        body = req.json or {}
        f = self.files.get(body.get("training_file", ""))
        if f is None:
            return _err(400, f"file {body.get('training_file')!r} not found", "training_file")
        method = body.get("method") or {"type": "supervised", "supervised": {
            "hyperparameters": body.get("hyperparameters") or {}}}
        hp = dict((method.get("supervised") or {}).get("hyperparameters") or {})
        n_epochs = hp.get("n_epochs", "auto")
        hp["n_epochs"] = 3 if n_epochs == "auto" else int(n_epochs)
        hp["batch_size"] = self.batch_size if hp.get("batch_size", "auto") == "auto" else int(hp["batch_size"])
        if hp.get("learning_rate_multiplier", "auto") == "auto":
            hp["learning_rate_multiplier"] = 1.8
        jid = f"ftjob-{next(self._ids):06d}"
        steps_per_epoch = math.ceil(f["n_examples"] / hp["batch_size"])
        self.jobs[jid] = {
            "id": jid, "object": "fine_tuning.job", "created_at": int(time.time()), "error": None,
            "fine_tuned_model": None, "finished_at": None, "hyperparameters": hp,
            "model": body.get("model"), "organization_id": self.org, "result_files": [],
            "seed": int(body.get("seed") or 0), "status": "validating_files", "trained_tokens": None,
            "training_file": f["id"], "validation_file": body.get("validation_file"),
            "method": {"type": "supervised", "supervised": {"hyperparameters": hp}},
            "suffix": body.get("suffix"),
            "_polls": 0, "_steps_per_epoch": steps_per_epoch, "_step": 0, "_events": [],
        }
        self._event(self.jobs[jid], f"Created fine-tuning job: {jid}")
        return self._public(self.jobs[jid])

    def _public(self, job: dict) -> dict:
        return {k: v for k, v in job.items() if not k.startswith("_") and k != "suffix"}

    def _event(self, job: dict, message: str, level: str = "info") -> None:
        job["_events"].append({"id": f"ftevent-{next(self._ids):06d}", "object": "fine_tuning.job.event",
                               "created_at": int(time.time()), "level": level, "message": message,
                               "type": "message"})

    def _total(self, job: dict) -> int:
        return job["_steps_per_epoch"] * job["hyperparameters"]["n_epochs"]

    def _advance(self, job: dict) -> None:
        if job["status"] in ("succeeded", "failed", "cancelled"):
            return
        job["_polls"] += 1
        if job["status"] == "validating_files":
            job["status"] = "queued"
        elif job["status"] == "queued":
            job["status"] = "running"
            self._event(job, "Fine-tuning job started")
        elif job["status"] == "running":
            if self.fail:
                job["status"], job["finished_at"] = "failed", int(time.time())
                job["error"] = {"code": "invalid_training_file", "param": "training_file",
                                "message": "The job failed due to an invalid training file."}
                self._event(job, "Fine-tuning job failed", "error")
                return
            total = self._total(job)
            job["_step"] = min(total, job["_step"] + math.ceil(total / self.running_polls))
            self._event(job, f"Step {job['_step']}/{total}: training loss={1.0 / job['_step']:.3f}")
            if job["_step"] >= total:
                sfx = job.get("suffix") or "wb"
                job["status"], job["finished_at"] = "succeeded", int(time.time())
                job["fine_tuned_model"] = f"ft:{job['model']}:{self.org}:{sfx}:{job['id'][-6:]}"
                job["trained_tokens"] = 1000 * total
                self._event(job, "The job has successfully completed")

    def retrieve(self, req: FakeRequest) -> FakeResponse | dict:
        job = self.jobs.get(req.params["job_id"])
        if job is None:
            return _err(404, "job not found")
        self._advance(job)
        return self._public(job)

    def cancel(self, req: FakeRequest) -> FakeResponse | dict:
        job = self.jobs.get(req.params["job_id"])
        if job is None:
            return _err(404, "job not found")
        if job["status"] not in ("succeeded", "failed"):
            job["status"] = "cancelled"
        return self._public(job)

    def events(self, req: FakeRequest) -> FakeResponse | dict:
        job = self.jobs.get(req.params["job_id"])
        if job is None:
            return _err(404, "job not found")
        return {"object": "list", "data": list(reversed(job["_events"])), "has_more": False}

    def checkpoints(self, req: FakeRequest) -> FakeResponse | dict:
        job = self.jobs.get(req.params["job_id"])
        if job is None:
            return _err(404, "job not found")
        rows = []
        if job["status"] == "succeeded":
            n, per = job["hyperparameters"]["n_epochs"], job["_steps_per_epoch"]
            sfx = job.get("suffix") or "wb"
            for epoch in range(max(1, n - KEPT_CHECKPOINTS + 1), n + 1):
                step = epoch * per
                rows.append({
                    "id": f"ftckpt-{job['id'][-6:]}-{step}", "object": "fine_tuning.job.checkpoint",
                    "created_at": job["finished_at"], "fine_tuning_job_id": job["id"],
                    "fine_tuned_model_checkpoint": f"ft:{job['model']}:{self.org}:{sfx}:{job['id'][-6:]}:ckpt-step-{step}",
                    "metrics": {"step": float(step), "train_loss": 1.0 / step},
                    "step_number": step,
                })
        return {"object": "list", "data": list(reversed(rows)), "has_more": False,
                "first_id": rows[-1]["id"] if rows else None, "last_id": rows[0]["id"] if rows else None}
