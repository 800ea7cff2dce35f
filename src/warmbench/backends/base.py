"""The one protocol every text producer implements, and the spec-string registry."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol, runtime_checkable

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


# Backends that can answer with a constrained choice (``SamplingParams.choices``): they score
# the candidate texts themselves. API backends cannot, and must not silently generate freely.
CHOICE_BACKENDS = ("hf", "scripted")


def refuse_choices(spec: ModelSpec, params: SamplingParams) -> None:
    if params.choices:
        from ..errors import WarmbenchError

        raise WarmbenchError(
            f"{spec.text}: constrained choices (judge.constrained) need a local backend "
            f"({', '.join(CHOICE_BACKENDS)}); the {spec.backend} backend generates freely")


# Per-backend default options from the experiment config (``backend_options:`` in YAML, e.g.
# ``{vllm: {tensor_parallel_size: 4}, openai: {timeout: 120}}``); explicit options win.
_DEFAULTS: dict[str, dict] = {}


def set_backend_defaults(options: dict[str, dict] | None) -> None:
    _DEFAULTS.clear()
    for name, opts in (options or {}).items():
        _DEFAULTS[name] = dict(opts or {})


def get_backend(spec: str | ModelSpec, **options) -> Backend:
    """Build a backend from a spec string. Heavy imports happen only here, lazily."""
    ms = parse_spec(spec) if isinstance(spec, str) else spec
    options = {**_DEFAULTS.get(ms.backend, {}), **options}
    if ms.backend == "scripted":
        from .scripted import ScriptedBackend

        return ScriptedBackend(ms, **options)
    if ms.backend == "hf":
        from .hf import HFBackend

        return HFBackend(ms, **options)
    if ms.backend == "openai":
        from .openai_backend import OpenAIBackend

        return OpenAIBackend(ms, **options)
    if ms.backend == "vllm":
        from .vllm_backend import VLLMBackend

        return VLLMBackend(ms, **options)
    raise AssertionError(ms.backend)  # parse_spec already rejected unknown names
