"""Cached, resumable generation: the one path every stage uses to call a backend; and
``warmbench generate``'s ad hoc generation from a prompt or a JSONL file of requests."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .backends.base import Backend, ResultCallback
from .backends.spec import ModelSpec
from .errors import InputError, WarmbenchError
from .jsonl import chat_messages, read_jsonl
from .progress import Progress
from .records import ChatMessage, ChatRequest, Completion, SamplingParams
from .store import RunStore, completion_key


class CacheOnlyBackend:
    """Stands in for a backend whose every generation is already stored, so a finished arm or
    checkpoint never loads its model (nor starts a vLLM engine) again."""

    def __init__(self, spec: ModelSpec):
        self.spec = spec

    def generate(self, requests: Sequence[ChatRequest], params: SamplingParams, *,
                 sample_index: int = 0, on_result: ResultCallback | None = None) -> list[Completion]:
        raise AssertionError("cache-only backend asked to generate")

    def close(self) -> None:
        pass


def cached_generate(
    store: RunStore,
    backend: Backend,
    requests: Sequence[ChatRequest],
    params: SamplingParams,
    *,
    kind: str,
    sample_index: int = 0,
    chunk_size: int = 64,
    progress: Progress | None = None,
    description: str | None = None,
) -> list[Completion]:
    """Return a completion per request, generating only those the store lacks.

    Results are committed one by one as the backend reports them, so a killed run loses at
    most what was in flight. Failed requests are stored with their error and come back as
    ``Completion(error=...)``; the next call retries them.
    """
    identity = backend.spec.identity()
    keys = [completion_key(identity, r, params, sample_index) for r in requests]
    done = store.done_keys(keys)
    out: list[Completion | None] = [store.get_completion(k) if k in done else None for k in keys]
    todo = [i for i, k in enumerate(keys) if k not in done]
    # The same request twice in one call is generated once.
    first_of: dict[str, int] = {}
    unique = [i for i in todo if first_of.setdefault(keys[i], i) == i]
    bar = progress.task(description or f"{kind} · {backend.spec.text}", total=len(unique)) \
        if progress and unique else None
    # A backend may ask for bigger chunks: the async API backend loses its concurrency to
    # each chunk's slowest request otherwise (results are committed one by one either way).
    chunk_size = max(chunk_size, int(getattr(backend, "preferred_chunk_size", 0) or 0))
    for start in range(0, len(unique), chunk_size):
        chunk = unique[start : start + chunk_size]

        def commit(j: int, c: Completion, chunk: list[int] = chunk) -> None:
            i = chunk[j]
            store.put_completion(keys[i], model=backend.spec.text, kind=kind, request=requests[i],
                                 params=params, sample_index=sample_index, completion=c)
            out[i] = c
            if bar:
                bar.advance()

        backend.generate([requests[i] for i in chunk], params, sample_index=sample_index,
                         on_result=commit)
    for i in todo:
        if out[i] is None:
            out[i] = out[first_of[keys[i]]] or Completion(error="not generated")
    if bar:
        bar.close()
    return [c for c in out if c is not None]


GENERATE_KIND = "generate"  # the store kind of `warmbench generate`'s replies


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
        out = [ChatMessage(**m) for m in chat_messages(path, where, obj["messages"])]
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


def run_generate(spec: ModelSpec, rows: list[tuple[str, ChatRequest]], params: SamplingParams, *,
                 samples: int = 1, run_dir: Path, batch_size: int | None = None,
                 progress: Progress | None = None) -> list[dict[str, Any]]:
    """``warmbench generate``: generate (or fetch from the run's store) every row x sample;
    return the output records (id, sample_index, model, text, finish_reason, token counts,
    error). The store caches replies, so a repeat does only what is missing."""
    from .backends import get_backend
    from .manifest import update_manifest

    options: dict[str, Any] = {}
    if batch_size is not None and spec.backend in ("hf", "vllm"):
        options["batch_size"] = batch_size
    backend = get_backend(spec, **options)
    requests = [r for _, r in rows]
    out: list[dict[str, Any]] = []
    try:
        with RunStore(run_dir) as store, (progress or Progress()) as prog:
            update_manifest(run_dir, generate={"model": spec.text, "model_identity":
                                               spec.identity(), "params": params.model_dump(),
                                               "samples": samples, "requests": len(rows)})
            per_sample = [
                cached_generate(store, backend, requests, params, kind=GENERATE_KIND, sample_index=s,
                                progress=prog, description=f"generate · {spec.text} · s{s}")
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
