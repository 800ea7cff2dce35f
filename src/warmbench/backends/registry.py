"""The backend registry: a spec's prefix names a class, and the class declares its options.

One dict from prefix to ``module:Class``, imported lazily (torch, vLLM and the OpenAI SDK load
only inside the backend that needs them; the modules themselves import nothing heavy). Each
backend class carries an ``Options`` pydantic model (``extra="forbid"``), so a misspelt key in a
config's ``backend_options`` is an error at config load, not a silently ignored setting.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from ..errors import WarmbenchError

BACKENDS: dict[str, str] = {
    "hf": "warmbench.backends.hf:HFBackend",
    "vllm": "warmbench.backends.vllm_backend:VLLMBackend",
    "openai": "warmbench.backends.openai_backend:OpenAIBackend",
    "scripted": "warmbench.backends.scripted:ScriptedBackend",
    "inspect": "warmbench.backends.inspect_backend:InspectBackend",
}


class BackendOptions(BaseModel):
    """Base of every backend's ``Options``: unknown keys are errors, values are validated."""

    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)


def backend_class(prefix: str) -> Any:
    try:
        target = BACKENDS[prefix]
    except KeyError:
        raise WarmbenchError(f"unknown backend {prefix!r} (known: {', '.join(BACKENDS)})") from None
    module, _, name = target.partition(":")
    return getattr(importlib.import_module(module), name)


def options_model(prefix: str) -> type[BackendOptions]:
    return backend_class(prefix).Options


def parse_options(prefix: str, values: Mapping[str, Any] | None) -> BackendOptions:
    """Validate one backend's options; a bad key or value is one line naming it."""
    model = options_model(prefix)
    try:
        return model.model_validate(dict(values or {}))
    except ValidationError as e:
        err = e.errors()[0]
        key = ".".join(str(p) for p in err["loc"]) or "options"
        if err["type"] == "extra_forbidden":
            known = ", ".join(model.model_fields)
            raise WarmbenchError(
                f"{prefix} backend: unknown option {key!r} (known: {known})") from None
        raise WarmbenchError(f"{prefix} backend: option {key!r}: {err['msg']}") from None
