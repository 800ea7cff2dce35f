"""Model spec strings: ``BACKEND:MODEL[+ADAPTER]``, ``openai:http://HOST:PORT/v1#MODEL`` or
``inspect:PROVIDER/MODEL`` (any provider of UK AISI Inspect)."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

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
