"""``warmbench generate``: ad hoc generation from any backend, JSONL out, resumable."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import typer

from ..errors import InputError, WarmbenchError
from ..jsonl import read_jsonl
from ..records import ChatMessage, ChatRequest, SamplingParams

KIND = "generate"
_ROLES = ("system", "user", "assistant")


def read_requests(path: Path, system: str | None = None) -> list[tuple[str, ChatRequest]]:
    """Parse a JSONL file of ``{"prompt": ...}`` or ``{"messages": [...]}`` lines.

    An optional ``"id"`` names the row in the output (default: its line number); a
    ``"system"`` field (or ``--system``) adds a system turn to a ``prompt`` line. Any bad
    line stops with an error naming the file, the line and the field.
    """
    if not path.exists():
        raise WarmbenchError(f"{path}: no such file")
    rows: list[tuple[str, ChatRequest]] = []
    for n, obj in read_jsonl(path):
        rows.append((_row_id(path, n, obj), _row_request(path, n, obj, system)))
    if not rows:
        raise WarmbenchError(f"{path}: no requests (expected JSONL lines with 'prompt' or 'messages')")
    return rows


def _row_id(path: Path, n: int, obj: dict[str, Any]) -> str:
    rid = obj.get("id", n)
    if not isinstance(rid, str | int) or isinstance(rid, bool):
        raise InputError(path, f"line {n}", "id", "must be a string or an integer")
    return str(rid)


def _row_request(path: Path, n: int, obj: dict[str, Any], system: str | None) -> ChatRequest:
    where = f"line {n}"
    if "messages" in obj:
        msgs = obj["messages"]
        if not isinstance(msgs, list) or not msgs:
            raise InputError(path, where, "messages", "must be a non-empty list")
        out = []
        for j, m in enumerate(msgs):
            if not isinstance(m, dict):
                raise InputError(path, where, f"messages[{j}]", "must be an object with role and content")
            if m.get("role") not in _ROLES:
                raise InputError(path, where, f"messages[{j}].role",
                                 f"{m.get('role')!r} is not one of {', '.join(_ROLES)}")
            if not isinstance(m.get("content"), str):
                raise InputError(path, where, f"messages[{j}].content", "must be a string")
            out.append(ChatMessage(role=m["role"], content=m["content"]))
        if system and out[0].role != "system":
            out.insert(0, ChatMessage(role="system", content=system))
        return ChatRequest(messages=tuple(out))
    if "prompt" in obj:
        if not isinstance(obj["prompt"], str) or not obj["prompt"].strip():
            raise InputError(path, where, "prompt", "must be a non-empty string")
        sys_text = obj.get("system", system)
        if sys_text is not None and not isinstance(sys_text, str):
            raise InputError(path, where, "system", "must be a string")
        return ChatRequest.from_user(obj["prompt"], system=sys_text or None)
    raise InputError(path, where, "prompt", "missing: each line needs 'prompt' or 'messages'")


def run_generate(model: str, rows: list[tuple[str, ChatRequest]], params: SamplingParams, *,
                 samples: int = 1, run_dir: Path, batch_size: int | None = None,
                 progress_enabled: bool | None = None) -> list[dict[str, Any]]:
    """Generate (or fetch from the store) every row x sample; return the output records."""
    from ..backends import get_backend, parse_spec
    from ..generation import cached_generate
    from ..manifest import update_manifest
    from ..progress import Progress
    from ..store import RunStore

    spec = parse_spec(model)
    options: dict[str, Any] = {}
    if batch_size is not None and spec.backend in ("hf", "vllm"):
        options["batch_size"] = batch_size
    backend = get_backend(spec, **options)
    requests = [r for _, r in rows]
    out: list[dict[str, Any]] = []
    try:
        with RunStore(run_dir) as store, Progress(progress_enabled) as progress:
            update_manifest(run_dir, generate={"model": spec.text, "model_identity":
                                               spec.identity(), "params": params.model_dump(),
                                               "samples": samples, "requests": len(rows)})
            per_sample = [
                cached_generate(store, backend, requests, params, kind=KIND, sample_index=s,
                                progress=progress, description=f"generate · {spec.text} · s{s}")
                for s in range(samples)
            ]
    finally:
        backend.close()
    for (rid, _), *by_sample in zip(rows, *per_sample, strict=True):
        for s, c in enumerate(by_sample):
            out.append({"id": rid, "sample_index": s, "model": spec.text, "text": c.text if c.ok
                        else None, "finish_reason": c.finish_reason,
                        "prompt_tokens": c.usage.prompt_tokens,
                        "completion_tokens": c.usage.completion_tokens, "error": c.error})
    return out


def generate(
    model: str = typer.Option(..., "--model", "-m", help="Model spec, e.g. hf:smollm2-135m, "
                              "hf:BASE+ADAPTER_DIR, openai:gpt-4o-mini, scripted:echo."),
    prompt: str | None = typer.Option(None, "--prompt", "-p", help="One user message."),
    input: Path | None = typer.Option(None, "--input", "-i", help="JSONL file: one "
                                      "{\"prompt\": ...} or {\"messages\": [...]} per line, "
                                      "optional \"id\" and \"system\"."),
    system: str | None = typer.Option(None, "--system", help="System prompt added to each request."),
    temperature: float = typer.Option(0.0, "--temperature", min=0.0, help="0 = greedy."),
    max_tokens: int = typer.Option(256, "--max-tokens", min=1, help="Most new tokens per reply."),
    top_p: float = typer.Option(1.0, "--top-p", min=0.0, max=1.0, help="Nucleus sampling mass."),
    seed: int = typer.Option(0, "--seed", help="Base seed; sample k uses seed + k."),
    samples: int = typer.Option(1, "--samples", min=1, help="Replies per request."),
    run_dir: Path = typer.Option(Path("runs/generate"), "--run-dir", help="Run directory whose "
                                 "store caches replies: re-running does only what is missing."),
    output: Path | None = typer.Option(None, "--output", "-o", help="Write JSONL here "
                                       "(default: stdout)."),
    batch_size: int | None = typer.Option(None, "--batch-size", min=1, help="Prompts per batch "
                                          "for local backends (hf default 16)."),
    no_progress: bool = typer.Option(False, "--no-progress", help="Hide the progress bar."),
) -> None:
    """Generate replies for one prompt or a JSONL file of requests; print JSONL records
    (id, sample_index, model, text, finish_reason, token counts, error)."""
    if (prompt is None) == (input is None):
        raise WarmbenchError("generate: give exactly one of --prompt or --input")
    if top_p <= 0:
        raise WarmbenchError("generate: --top-p must be > 0")
    rows = ([("1", ChatRequest.from_user(prompt, system=system))] if prompt is not None
            else read_requests(input, system))  # type: ignore[arg-type]
    params = SamplingParams(temperature=temperature, max_tokens=max_tokens, top_p=top_p, seed=seed)
    records = run_generate(model, rows, params, samples=samples, run_dir=run_dir,
                           batch_size=batch_size, progress_enabled=False if no_progress else None)
    lines = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
    if output is None:
        sys.stdout.write(lines)
        sys.stdout.flush()
    else:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(lines, encoding="utf-8")
    failed = sum(r["error"] is not None for r in records)
    if failed:
        typer.secho(f"{failed} of {len(records)} generations failed; they are stored as failures "
                    "and will be retried when you run the same command again.", fg="yellow",
                    err=True)
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command("generate")(generate)
