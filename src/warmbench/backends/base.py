"""The one protocol every text producer implements, and ``get_backend`` that builds one."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

from ..records import ChatRequest, Completion, SamplingParams
from .spec import ModelSpec, parse_spec

# Called once per finished request with its index in the batch, so callers can commit
# results as they arrive (a killed run loses at most the requests in flight).
ResultCallback = Callable[[int, Completion], None]

# How an API backend's error starts when the reply was still empty after every retry: a
# failure (retried by the next run), which the rewrite checks count as ``empty``.
EMPTY_CONTENT_ERROR = "empty content"


@runtime_checkable
class Backend(Protocol):
    spec: ModelSpec

    def generate(
        self,
        requests: Sequence[ChatRequest],
        params: SamplingParams,
        *,
        sample_index: int = 0,
        on_result: ResultCallback | None = None,
    ) -> list[Completion]:
        """Complete every request; failures come back as ``Completion(error=...)``."""
        ...

    def close(self) -> None: ...


def request_seed(request: ChatRequest, params: SamplingParams, sample_index: int = 0) -> int:
    """The seeding rule of every backend: a request's seed is derived from its messages, the
    base seed and the sample index (63 bits of a SHA-256), never from its position in a batch.

    So the same request samples alike whatever batch, order or resumed run it lands in, and
    repeated samples (sample_index 0, 1, ...) differ. hf draws its own noise per row from this
    seed; vLLM and OpenAI-compatible servers receive it as the request's ``seed`` (honoured
    exactly by vLLM with batch-invariant settings, best-effort by hosted APIs).
    """
    blob = json.dumps([request.as_dicts(), params.seed, sample_index]).encode()
    return int.from_bytes(hashlib.sha256(blob).digest()[:8], "little") & ((1 << 63) - 1)


# Backends that can answer with a constrained choice (``SamplingParams.choices``): they score
# the candidate texts themselves. API backends cannot, and must not silently generate freely.
CHOICE_BACKENDS = ("hf", "scripted")


def refuse_choices(spec: ModelSpec, params: SamplingParams) -> None:
    if params.choices:
        from ..errors import WarmbenchError

        raise WarmbenchError(
            f"{spec.text}: constrained choices (judge.constrained) need a local backend "
            f"({', '.join(CHOICE_BACKENDS)}); the {spec.backend} backend generates freely")


def get_backend(spec: str | ModelSpec, options: Mapping[str, Mapping[str, Any]] | None = None,
                **overrides: Any) -> Backend:
    """Build a backend from a spec.

    ``options`` is a config's ``backend_options`` (``{backend: {option: value}}``); the entry
    for this spec's backend applies, and keyword ``overrides`` win over it. Both are checked
    against the backend's ``Options`` model: an unknown key is an error, never ignored.
    """
    from .registry import backend_class, parse_options

    ms = parse_spec(spec)   # a string from a caller's edge; a ModelSpec passes through
    merged = {**((options or {}).get(ms.backend) or {}), **overrides}
    return backend_class(ms.backend)(ms, parse_options(ms.backend, merged))
