"""Model spec strings: ``BACKEND:MODEL[+ADAPTER]``, ``openai:http://HOST:PORT/v1#MODEL`` or
``inspect:PROVIDER/MODEL`` (any provider of UK AISI Inspect)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import urlsplit, urlunsplit

from pydantic import PlainSerializer, PlainValidator, WithJsonSchema

from ..errors import WarmbenchError
from ..records import ModelIdentity
from .adapter import adapter_hash
from .registry import BACKENDS

# The spec prefixes: the registry's keys (one place to add a backend).
KNOWN_BACKENDS = tuple(BACKENDS)


@dataclass(frozen=True)
class ModelSpec:
    """A parsed model spec: made once (config load, a CLI flag, a checkpoints file) by
    :func:`parse_spec`, then carried as this value; ``str()`` gives the spec text back."""

    backend: str
    model: str
    adapter: str | None = None
    base_url: str | None = None

    @property
    def text(self) -> str:
        if self.base_url:
            return f"{self.backend}:{self.base_url}#{self.model}"
        return f"{self.backend}:{self.model}" + (f"+{self.adapter}" if self.adapter else "")

    def __str__(self) -> str:
        return self.text

    def with_adapter(self, adapter: str | None) -> ModelSpec:
        return ModelSpec(self.backend, self.model, adapter, self.base_url)

    def with_backend(self, backend: str) -> ModelSpec:
        """The same weights served by another local backend (``hf:B+A`` -> ``vllm:B+A``)."""
        return ModelSpec(backend, self.model, self.adapter, self.base_url)

    def with_base(self, base: str) -> ModelSpec:
        """``{base}`` (``base_models``) replaced by ``base``: a new spec, parsed as one."""
        return parse_spec(self.text.replace("{base}", base)) if base and "{base}" in self.text else self

    def identity(self) -> str:
        """What defines the model's weights: the spec plus a hash of the adapter's files.

        Two runs with the same adapter path but retrained weights must not share cached
        generations, so the adapter contributes its content hash, not its path.
        """
        if not self.adapter:
            return self.text
        return f"{self.backend}:{self.model}+adapter@{adapter_hash(self.adapter)}"

    def identity_record(self) -> ModelIdentity:
        """:meth:`identity` as a record's field: the spec's parts and the adapter's hash."""
        return ModelIdentity(backend=self.backend, model=self.model, base_url=self.base_url,
                             adapter=self.adapter,
                             adapter_hash=adapter_hash(self.adapter) if self.adapter else None)

    @classmethod
    def from_identity(cls, identity: ModelIdentity) -> ModelSpec:
        return cls(identity.backend, identity.model, identity.adapter, identity.base_url)


def parse_spec(spec: str | ModelSpec) -> ModelSpec:
    """Parse a spec string (a ModelSpec is returned as it is); raise a one-line error naming
    the bad part."""
    if isinstance(spec, ModelSpec):
        return spec
    if isinstance(spec, str) and _looks_like_inspect(spec):
        raise WarmbenchError(f"model spec {spec!r} is written Inspect's way: use "
                             f"'inspect:{spec.strip()}' to run it through Inspect")
    if not isinstance(spec, str) or ":" not in spec:
        raise WarmbenchError(
            f"model spec {spec!r}: expected BACKEND:MODEL (known backends: {', '.join(KNOWN_BACKENDS)})"
        )
    backend, rest = spec.split(":", 1)
    backend = backend.strip().lower()
    if backend not in KNOWN_BACKENDS:
        raise WarmbenchError(
            f"unknown backend {backend!r} (known: {', '.join(KNOWN_BACKENDS)}; other providers "
            f"through Inspect: inspect:{backend}/MODEL)"
        )
    if not rest:
        raise WarmbenchError(f"model spec {spec!r}: missing model name after '{backend}:'")
    if backend == "inspect" and ("/" not in rest or rest.startswith("/") or rest.endswith("/")):
        raise WarmbenchError(f"model spec {spec!r}: expected inspect:PROVIDER/MODEL "
                             "(e.g. inspect:anthropic/claude-sonnet-4-0, inspect:mockllm/model)")
    if backend == "openai" and rest.startswith(("http://", "https://")):
        if "#" not in rest:
            raise WarmbenchError(f"model spec {spec!r}: expected openai:URL#MODEL")
        url, model = rest.split("#", 1)
        _refuse_url_credentials(url)
        return ModelSpec("openai", model, None, url.rstrip("/"))
    adapter = None
    if "+" in rest and backend in ("hf", "vllm"):
        rest, adapter = rest.split("+", 1)
    return ModelSpec(backend, rest, adapter or None, None)


def api_model_spec(api_model: str) -> ModelSpec:
    """``train.api_model``: the OpenAI fine-tuning API's own model name (``gpt-4o-2024-08-06``),
    or an ``openai:`` spec naming a compatible server (``openai:http://HOST/v1#MODEL``)."""
    if api_model.startswith("openai:"):
        return parse_spec(api_model)
    return ModelSpec("openai", api_model)


def _refuse_url_credentials(url: str) -> None:
    """A spec is recorded everywhere (store, manifest, report, regressions.csv), so a
    ``user:password@`` in its URL would be too: refused, with the secret masked."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return
    masked = urlunsplit(parts._replace(netloc="***@" + parts.netloc.rsplit("@", 1)[-1]))
    raise WarmbenchError(
        f"model spec URL {masked} carries credentials (got them masked here): they would be "
        "written to the store, manifest and report; remove 'user:password@' and put the key "
        "in OPENAI_API_KEY or .env")


def _looks_like_inspect(spec: str) -> bool:
    """``openai/gpt-4o``, ``anthropic/claude-3-5-sonnet``: PROVIDER/MODEL with no backend prefix
    (a ``:`` may only follow the slash, as in ``ollama/llama3:8b``)."""
    head, _, tail = spec.strip().partition("/")
    return bool(tail) and re.fullmatch(r"[a-z][a-z0-9_-]*", head) is not None


def _validate_spec(v: Any) -> ModelSpec:
    try:
        return parse_spec(v)
    except WarmbenchError as e:
        raise ValueError(str(e)) from None


# A config or record field holding a model spec: written (YAML, JSON, ``model_dump``) as the
# spec text, held as a parsed ModelSpec. A bad spec is a validation error naming the field.
SpecField = Annotated[
    ModelSpec,
    PlainValidator(_validate_spec),
    PlainSerializer(lambda s: s.text, return_type=str),
    WithJsonSchema({"type": "string", "description": "BACKEND:MODEL[+ADAPTER] model spec"}),
]

__all__ = ["KNOWN_BACKENDS", "ModelSpec", "SpecField", "adapter_hash", "api_model_spec", "parse_spec"]
