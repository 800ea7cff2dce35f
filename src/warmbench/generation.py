"""Cached, resumable generation: the one path every stage uses to call a backend."""

from __future__ import annotations

from collections.abc import Sequence

from .backends.base import Backend, ResultCallback
from .backends.spec import ModelSpec
from .progress import Progress
from .records import ChatRequest, Completion, SamplingParams
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
