"""Which language model scores SocioT warmth, and loading it.

The study scores warmth with GPT-2 small. No package this project can install offline ships
GPT-2's weights, so ``auto`` uses ``gpt2`` only when it is already in the local Hugging Face
cache and otherwise an offline stand-in. Every score this package writes carries the
``label`` of the model that produced it, so a stand-in's number is never passed off as GPT-2's:
any model that is not GPT-2 — the automatic fallback, an embedded model named explicitly, a hub
id of another model or a local folder — is labelled ``NAME (stand-in for gpt2)``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import MissingExtraError, WarmbenchError

GPT2 = "gpt2"
# Offline stand-ins in order of preference: a base (not chat-tuned) model is closer to what
# GPT-2 is; SmolLM2-135M-Instruct is the last resort.
STAND_INS = ("gemma3-270m", "smollm2-135m")
# The GPT-2 family on the hub, with and without the organisation prefix. Anything else (and any
# local folder that is not a Hugging Face cache snapshot of one of these) is a stand-in.
GPT2_IDS = frozenset(f"{org}{size}" for org in ("", "openai-community/")
                     for size in ("gpt2", "gpt2-medium", "gpt2-large", "gpt2-xl"))


def is_gpt2(name: str) -> bool:
    """Is ``name`` GPT-2: a GPT-2 hub id, or a folder inside the HF cache entry of one?

    A folder is judged by where it lives, not by its config: a random-weight model with GPT-2's
    architecture (the tests', the benchmark's) is not GPT-2.
    """
    if name in GPT2_IDS:
        return True
    parts = Path(name).expanduser().parts
    return any(p in {"models--" + i.replace("/", "--") for i in GPT2_IDS} for p in parts)


@dataclass(frozen=True)
class MetricModel:
    """A resolved metric model: what was asked for, where its files are, how to label it."""

    requested: str
    name: str  # canonical name: 'gpt2', 'gemma3-270m', a hub id or a folder
    path: str  # what ``from_pretrained`` is given
    stand_in: bool  # True for every model that is not GPT-2
    fallback: bool = False  # True when 'auto' fell back because GPT-2 is not cached

    @property
    def label(self) -> str:
        """The name written into every output next to a score (CSV, plot, CLI, manifest)."""
        if self.fallback:
            return f"{self.name} (offline stand-in for gpt2)"
        if self.stand_in:
            return f"{self.name} (stand-in for gpt2)"
        return self.name


def metric_model(requested: str, name: str, path: str, *, fallback: bool = False) -> MetricModel:
    """A MetricModel whose stand-in flag follows from the name (never set by hand)."""
    return MetricModel(requested, name, path, stand_in=fallback or not is_gpt2(name),
                       fallback=fallback)


def gpt2_in_cache() -> bool:
    """Is GPT-2 (config + weights) in the local HF cache? Never touches the network."""
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:  # pragma: no cover - transformers depends on it
        return False
    cfg = try_to_load_from_cache(GPT2, "config.json")
    if not isinstance(cfg, str):
        return False
    return any(isinstance(try_to_load_from_cache(GPT2, f), str)
               for f in ("model.safetensors", "pytorch_model.bin"))


def _resolve_embedded(name: str) -> str:
    """Turn an embedded name (``gemma3-270m``) into a local folder via the embedded module."""
    try:
        from ..embedded import resolve_model
    except ImportError as e:  # the embedded-model module is optional at import time
        raise WarmbenchError(f"metric model {name!r}: embedded models unavailable ({e})") from None
    return str(resolve_model(name))


def resolve_metric_model(name: str = "auto") -> MetricModel:
    """Resolve ``auto``, ``gpt2``, an embedded name, a hub id or a local folder.

    ``auto``: GPT-2 from the cache, else the first stand-in that loads offline.
    ``WARMBENCH_WARMTH_MODEL`` overrides ``auto`` (handy on machines with other caches).
    """
    requested = name
    if name == "auto":
        env = os.environ.get("WARMBENCH_WARMTH_MODEL")
        if env:
            return resolve_metric_model(env)
        if gpt2_in_cache():
            return metric_model(requested, GPT2, GPT2)
        errors = []
        for cand in STAND_INS:
            try:
                return metric_model(requested, cand, _resolve_embedded(cand), fallback=True)
            except Exception as e:  # noqa: BLE001 - try the next stand-in, report all at the end
                errors.append(f"{cand}: {e}")
        raise WarmbenchError("no warmth metric model available offline (gpt2 not cached; "
                             + "; ".join(errors) + "); pass --model PATH")
    # Named explicitly, an embedded model is still not GPT-2: labelled a stand-in all the same.
    if name in STAND_INS:
        return metric_model(requested, name, _resolve_embedded(name))
    if Path(name).expanduser().is_dir():
        p = Path(name).expanduser()
        return metric_model(requested, str(p), str(p))
    # A hub id (gpt2, openai-community/gpt2, ...): loaded from the cache or the hub as
    # the environment allows (HF_HUB_OFFLINE=1 keeps it local).
    return metric_model(requested, name, name)


@dataclass
class LoadedMetricModel:
    """A metric model in memory: the torch module, its tokenizer and its description."""

    info: MetricModel
    model: Any
    tokenizer: Any
    device: str

    @property
    def label(self) -> str:
        return self.info.label

    def identity(self) -> str:
        """Cache key part: the model's label and the folder's config, so a swap re-scores."""
        return f"{self.info.label}|{self.info.path}"


_LOADED: dict[tuple[str, str], LoadedMetricModel] = {}


def default_device() -> str:
    """Where scores are computed when no device is named: 'cuda' if torch sees a GPU."""
    try:
        import torch
    except ImportError:
        return "cpu"
    return "cuda" if torch.cuda.is_available() else "cpu"


def load_metric_model(name: str | MetricModel = "auto", device: str | None = None) -> LoadedMetricModel:
    """Load (once per process) the metric model and tokenizer, in eval mode, float32."""
    info = name if isinstance(name, MetricModel) else resolve_metric_model(name)
    try:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer
    except ImportError as e:
        raise MissingExtraError(e.name or "torch", "ml", "SocioT warmth") from None
    device = device or default_device()
    key = (info.path, device)
    if key in _LOADED:
        return _LOADED[key]
    try:
        tok = AutoTokenizer.from_pretrained(info.path)
        # float32: the scores are differences of ~0.01 nats, bf16 rounding would swamp them.
        model = AutoModelForCausalLM.from_pretrained(info.path, dtype=torch.float32)
    except OSError as e:
        raise WarmbenchError(f"warmth metric model {info.name!r} cannot be loaded from "
                             f"{info.path!r}: {str(e).splitlines()[0]}") from None
    model.to(device).eval()
    loaded = LoadedMetricModel(info, model, tok, device)
    _LOADED[key] = loaded
    return loaded
