"""What ``run --dry-run`` checks and counts before a long run: tokenizers, GPU-hours, keys, models.

- Token counts: the model's own tokenizer when it is available offline (an HF tokenizer in the
  local cache or an embedded model; tiktoken's encoding file when already cached), otherwise
  a character estimate (4 characters a token) that is labelled as such everywhere it is shown.
- GPU-hours: from the parameter count (the model's cached ``config.json``, else the size in its
  name, e.g. ``8B``) and the token volume, at a stated throughput (``THROUGHPUT``).
- Checks: an API key is set for every api.openai.com model; every hub model is in the local
  cache, or (when online) reachable on the hub. Nothing here downloads anything.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from .backends.spec import ModelSpec, parse_spec

CHARS_PER_TOKEN = 4.0
CHAR_ESTIMATE = "≈ chars/4 (no tokenizer offline)"

# Assumed throughput, stated in every plan: one 80 GB H100-class GPU doing ~989 TFLOP/s dense
# bf16. Training (LoRA) costs ~6·N FLOPs per token (forward, backward through the frozen base)
# at 35 % utilisation; batched inference (vLLM) ~2·N FLOPs per token at 20 % (decode is
# memory-bound). Real runs vary by 2× either way: the figure sizes a job, it does not bill it.
PEAK_TFLOPS = 989.0
THROUGHPUT = {"train": (6.0, 0.35), "infer": (2.0, 0.20)}
THROUGHPUT_NOTE = ("GPU-hours assume one H100-class GPU (989 TFLOP/s bf16): training 6·N FLOPs/token at "
                   "35% utilisation, inference 2·N FLOPs/token at 20%")

# Models whose names do not carry their size (parameters, from their model cards).
KNOWN_PARAMS = {
    "mistralai/Mistral-Small-Instruct-2409": 22.2e9,
    "gpt2": 124e6,
}


@dataclass(frozen=True)
class Check:
    what: str
    ok: bool
    detail: str


# -- tokens -------------------------------------------------------------------------------
def _char_count(text: str) -> int:
    return max(1, round(len(text) / CHARS_PER_TOKEN)) if text else 0


@cache
def token_counter(spec: str | ModelSpec) -> tuple[Callable[[str], int], str]:
    """(count(text) -> tokens, label) for a model spec; never downloads."""
    ms = parse_spec(spec)
    if ms.backend == "openai" and not ms.base_url:
        enc = _tiktoken_offline(ms.model)
        if enc is not None:
            return (lambda t: len(enc.encode(t, disallowed_special=()))), f"tiktoken {enc.name}"
    if ms.backend in ("hf", "vllm"):
        tok = _hf_tokenizer_offline(ms.model)
        if tok is not None:
            return (lambda t: len(tok(t, add_special_tokens=False)["input_ids"])), f"{ms.model} tokenizer"
    return _char_count, CHAR_ESTIMATE


def _tiktoken_offline(model: str):
    """tiktoken's encoding when its file is already cached (tiktoken would download it)."""
    try:
        import hashlib
        import tempfile

        import tiktoken
        from tiktoken.model import encoding_name_for_model
    except ImportError:
        return None
    try:
        name = encoding_name_for_model(model)
    except KeyError:
        return None
    base = os.environ.get("TIKTOKEN_CACHE_DIR") or os.environ.get("DATA_GYM_CACHE_DIR") or \
        os.path.join(tempfile.gettempdir(), "data-gym-cache")
    blob = f"https://openaipublic.blob.core.windows.net/encodings/{name}.tiktoken"
    if not Path(base, hashlib.sha1(blob.encode()).hexdigest()).is_file():
        return None
    try:
        return tiktoken.get_encoding(name)
    except Exception:
        return None


def _hf_tokenizer_offline(model: str):
    from .embedded import EMBEDDED, is_prepared, model_dir

    try:
        if model in EMBEDDED:
            if not is_prepared(model):
                return None
            path = str(model_dir(model))
        else:
            path = model
        from transformers import AutoTokenizer

        return AutoTokenizer.from_pretrained(path, local_files_only=True)
    except Exception:  # not cached, not a tokenizer, transformers missing: use the estimate
        return None


# -- parameters and GPU-hours -------------------------------------------------------------
def hub_cached_file(repo: str, filename: str) -> Path | None:
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return None
    try:
        p = try_to_load_from_cache(repo, filename)
    except Exception:
        return None
    return Path(p) if isinstance(p, str) else None


def _params_from_config(cfg: dict) -> float | None:
    """Dense decoder parameters from a config.json (embeddings + layers), ~1 % accurate."""
    try:
        h, n, v = int(cfg["hidden_size"]), int(cfg["num_hidden_layers"]), int(cfg["vocab_size"])
        inter = int(cfg.get("intermediate_size") or 4 * h)
        heads = int(cfg.get("num_attention_heads") or 1)
        kv = int(cfg.get("num_key_value_heads") or heads)
        head_dim = int(cfg.get("head_dim") or h // heads)
    except (KeyError, TypeError, ValueError):
        return None
    attn = h * head_dim * heads * 2 + h * head_dim * kv * 2
    mlp = 3 * h * inter
    emb = v * h * (1 if cfg.get("tie_word_embeddings") else 2)
    return float(n * (attn + mlp) + emb)


def param_count(model: str) -> tuple[float | None, str]:
    """(parameters, how we know) for an hf/vllm model name, a local folder or an embedded model."""
    from .embedded import EMBEDDED, is_prepared, model_dir

    folder: Path | None = None
    if model in EMBEDDED and is_prepared(model):
        folder = model_dir(model)
    elif Path(model).is_dir():
        folder = Path(model)
    cfg_file = folder / "config.json" if folder else hub_cached_file(model, "config.json")
    if cfg_file is not None and cfg_file.is_file():
        try:
            n = _params_from_config(json.loads(cfg_file.read_text(encoding="utf-8")))
        except (OSError, ValueError):
            n = None
        if n:
            return n, "config.json"
    if model in KNOWN_PARAMS:
        return KNOWN_PARAMS[model], "model card"
    m = re.search(r"(?<![\d.])(\d+(?:\.\d+)?)\s*([BbMm])(?![a-zA-Z])", model.split("/")[-1])
    if m:
        return float(m.group(1)) * (1e9 if m.group(2).lower() == "b" else 1e6), "size in name"
    return None, "unknown size"


def gpu_hours(params: float, tokens: float, kind: str) -> float:
    """GPU-hours to push ``tokens`` through a ``params`` model (``kind``: train or infer)."""
    flops_per_token, utilisation = THROUGHPUT[kind]
    return flops_per_token * params * tokens / (PEAK_TFLOPS * 1e12 * utilisation) / 3600


# -- checks -------------------------------------------------------------------------------
def check_key(ms: ModelSpec) -> Check | None:
    """An API model needs a key (env or .env); local endpoints need none."""
    if ms.backend != "openai":
        return None
    from .errors import WarmbenchError
    from .secrets import is_local_url, resolve_api_key, resolve_base_url

    url = resolve_base_url(ms.base_url)
    if is_local_url(url):
        return Check(f"key for {ms.text}", True, "local endpoint, no key needed")
    try:
        resolve_api_key(url, None)
    except WarmbenchError as e:
        return Check(f"key for {ms.text}", False, str(e))
    return Check(f"key for {ms.text}", True, "set (not shown)")


def check_hub_model(model: str) -> Check:
    """A hub model is cached locally, or, when online, reachable (a metadata call, no download)."""
    from .embedded import EMBEDDED

    what = f"model {model}"
    if model in EMBEDDED or Path(model).exists():
        return Check(what, True, "embedded / local folder")
    if hub_cached_file(model, "config.json") is not None:
        return Check(what, True, "in the local HF cache")
    if os.environ.get("HF_HUB_OFFLINE", "0") not in ("", "0", "false", "False"):
        return Check(what, False, "not in the local HF cache (HF_HUB_OFFLINE set: hub not checked)")
    try:
        from huggingface_hub import model_info

        model_info(model, timeout=5)
    except Exception as e:  # gated, missing, no network: the run would fail at load time
        return Check(what, False, f"not cached and not reachable on the hub ({type(e).__name__})")
    return Check(what, True, "reachable on the hub (will download)")
