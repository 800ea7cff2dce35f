"""Model spec strings: ``BACKEND:MODEL[+ADAPTER]`` or ``openai:http://HOST:PORT/v1#MODEL``."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from ..errors import WarmbenchError
from .registry import BACKENDS

# The spec prefixes: the registry's keys (one place to add a backend).
KNOWN_BACKENDS = tuple(BACKENDS)


@dataclass(frozen=True)
class ModelSpec:
    backend: str
    model: str
    adapter: str | None = None
    base_url: str | None = None

    @property
    def text(self) -> str:
        if self.base_url:
            return f"{self.backend}:{self.base_url}#{self.model}"
        return f"{self.backend}:{self.model}" + (f"+{self.adapter}" if self.adapter else "")

    def with_adapter(self, adapter: str | None) -> ModelSpec:
        return ModelSpec(self.backend, self.model, adapter, self.base_url)

    def identity(self) -> str:
        """What defines the model's weights: the spec plus a hash of the adapter's files.

        Two runs with the same adapter path but retrained weights must not share cached
        generations, so the adapter contributes its content hash, not its path.
        """
        if not self.adapter:
            return self.text
        return f"{self.backend}:{self.model}+adapter@{adapter_hash(self.adapter)}"


def parse_spec(spec: str) -> ModelSpec:
    """Parse a spec string; raise a one-line error naming the bad part."""
    if not isinstance(spec, str) or ":" not in spec:
        raise WarmbenchError(
            f"model spec {spec!r}: expected BACKEND:MODEL (known backends: {', '.join(KNOWN_BACKENDS)})"
        )
    backend, rest = spec.split(":", 1)
    backend = backend.strip().lower()
    if backend not in KNOWN_BACKENDS:
        raise WarmbenchError(
            f"unknown backend {backend!r} (known: {', '.join(KNOWN_BACKENDS)})"
        )
    if not rest:
        raise WarmbenchError(f"model spec {spec!r}: missing model name after '{backend}:'")
    if backend == "openai" and rest.startswith(("http://", "https://")):
        if "#" not in rest:
            raise WarmbenchError(f"model spec {spec!r}: expected openai:URL#MODEL")
        url, model = rest.split("#", 1)
        return ModelSpec("openai", model, None, url.rstrip("/"))
    adapter = None
    if "+" in rest and backend in ("hf", "vllm"):
        rest, adapter = rest.split("+", 1)
    return ModelSpec(backend, rest, adapter or None, None)


_HASH_CACHE: dict[tuple[str, float], str] = {}


def adapter_hash(path: str) -> str:
    """Content hash of an adapter folder's weight and config files (cached by mtime)."""
    p = Path(path)
    if not p.exists():
        return "missing:" + hashlib.sha256(str(p).encode()).hexdigest()[:12]
    files = sorted(f for f in p.iterdir() if f.is_file() and f.suffix in (".safetensors", ".bin", ".json"))
    mtime = max((f.stat().st_mtime for f in files), default=0.0)
    ck = (str(p.resolve()), mtime)
    if ck in _HASH_CACHE:
        return _HASH_CACHE[ck]
    h = hashlib.sha256()
    for f in files:
        if f.name in ("adapter_config.json", "adapter_model.safetensors", "adapter_model.bin"):
            h.update(f.name.encode())
            h.update(f.read_bytes())
    digest = h.hexdigest()[:16]
    _HASH_CACHE[ck] = digest
    return digest
