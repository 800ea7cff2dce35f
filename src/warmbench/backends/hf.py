"""The ``hf`` backend: local transformers models, batched and left-padded.

- Requests are rendered with the model's chat template (a system turn is merged into the
  first user turn when the template rejects the system role), sorted by token length and
  generated in batches, so padding waste stays small.
- Greedy when temperature is 0. Sampling is seeded **per request** (seed, sample index and the
  request's content): each row draws its own Gumbel noise, so a request samples the same
  text whatever batch it lands in. A killed run, resumed, regenerates the missing rows in
  other batches and still ends with the rows of an uninterrupted run.
- Batches are capped by a token budget as well as a count, so a few very long prompts do
  not pad a whole batch to their length.
- ``hf:BASE+ADAPTER_DIR`` attaches a PEFT adapter. Loaded base models are cached in-process
  and every adapter on one base is a named adapter of one ``PeftModel``, so several arms
  on one base never load it twice.
- Embedded names (``smollm2-135m``) resolve to their converted local folder.
"""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pydantic import Field

from ..batching import token_batches
from ..errors import MissingExtraError, WarmbenchError
from ..records import ChatRequest, Completion, SamplingParams, Usage
from .adapter import check_adapter
from .base import ResultCallback, request_seed
from .registry import BackendOptions
from .spec import ModelSpec


@dataclass
class _Loaded:
    """One base model in memory, with the adapters attached to it so far."""

    model: Any
    tokenizer: Any
    device: str
    lock: threading.RLock = field(default_factory=threading.RLock)
    peft: Any = None  # PeftModel wrapping ``model`` once the first adapter is attached
    adapters: dict[str, str] = field(default_factory=dict)  # adapter key -> peft adapter name


_CACHE: dict[tuple[str, str, str], _Loaded] = {}
_CACHE_LOCK = threading.Lock()


def clear_cache() -> None:
    """Drop every cached model (frees memory; the next backend reloads)."""
    with _CACHE_LOCK:
        _CACHE.clear()


def _torch():
    try:
        import torch
        import transformers  # noqa: F401
    except ImportError as e:
        raise MissingExtraError("transformers", "ml", "the hf backend") from e
    return torch


def _pick_device(device: str | None) -> str:
    torch = _torch()
    if device:
        return device
    return "cuda" if torch.cuda.is_available() else "cpu"


def _pick_dtype(dtype: str | None, device: str):
    torch = _torch()
    if dtype:
        try:
            return getattr(torch, dtype)
        except AttributeError:
            raise WarmbenchError(f"hf backend: unknown dtype {dtype!r}") from None
    if device.startswith("cuda"):
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.float32


@lru_cache(maxsize=1)
def hub_reachable(timeout: float = 2.0) -> bool:
    """Whether the Hugging Face Hub answers a TCP connect (False when HF_HUB_OFFLINE is set)."""
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on"):
        return False
    url = urlsplit(os.environ.get("HF_ENDPOINT") or "https://huggingface.co")
    try:
        socket.create_connection((url.hostname or "huggingface.co",
                                  url.port or (443 if url.scheme == "https" else 80)),
                                 timeout=timeout).close()
    except OSError:
        return False
    return True


def _load_base(name: str, device: str, dtype) -> _Loaded:
    from ..embedded import resolve_model

    path = resolve_model(name)
    key = (path, device, str(dtype))
    with _CACHE_LOCK:
        if key in _CACHE:
            return _CACHE[key]
        from transformers import AutoModelForCausalLM, AutoTokenizer
        from transformers.utils import logging as hf_logging

        # transformers' per-load "Loading weights" bars would interleave with ours.
        hf_logging.disable_progress_bar()
        # Offline, a Hub id is read from the local cache only: otherwise the hub client spends
        # ~50-80 s in connection retries before the same error.
        local = Path(path).is_dir() or not hub_reachable()
        try:
            tok = AutoTokenizer.from_pretrained(path, local_files_only=local)
            model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype, local_files_only=local)
        except OSError as e:
            where = "" if Path(path).is_dir() or not local else "not in the local HF cache, " \
                "and the Hub is unreachable; "
            raise WarmbenchError(
                f"hf backend: cannot load model {name!r} ({where}{str(e).splitlines()[0]}); give "
                "a local folder, an embedded name (see `warmbench models`) or a cached Hub id"
            ) from e
        model.to(device).eval()
        tok.padding_side = "left"
        if tok.pad_token is None:
            tok.pad_token = tok.eos_token
        loaded = _Loaded(model=model, tokenizer=tok, device=device)
        _CACHE[key] = loaded
        return loaded


def _attach_adapter(loaded: _Loaded, spec: ModelSpec) -> str:
    """Load the spec's adapter (checked when the backend was built) as a named adapter of the
    base's PeftModel; return its name."""
    assert spec.adapter is not None
    p = Path(spec.adapter)
    # Keyed by the spec's identity (the adapter's content hash), so an adapter retrained in
    # place is loaded afresh.
    akey = spec.identity()
    with loaded.lock:
        if akey in loaded.adapters:
            return loaded.adapters[akey]
        try:
            from peft import PeftModel
        except ImportError as e:
            raise MissingExtraError("peft", "ml", "LoRA adapters") from e
        from ..quiet import silence_peft_deprecations

        silence_peft_deprecations()
        name = f"a{len(loaded.adapters)}"
        if loaded.peft is None:
            loaded.peft = PeftModel.from_pretrained(loaded.model, str(p), adapter_name=name)
        else:
            loaded.peft.load_adapter(str(p), adapter_name=name)
        loaded.peft.to(loaded.device).eval()
        loaded.adapters[akey] = name
        return name


class HFOptions(BackendOptions):
    batch_size: int = Field(16, ge=1, description="Requests generated together (left-padded).")
    device: str | None = Field(None, description="cuda, cuda:1, mps or cpu; default: the best available.")
    dtype: str | None = Field(None, description="float32, bfloat16 or float16; default by device.")
    max_batch_tokens: int | None = Field(
        None, ge=1, description="Padded tokens one batch may hold (default 262,144 on CUDA, 16,384 on a CPU).")


class HFBackend:
    """Local transformers generation (options: :class:`HFOptions`)."""

    Options = HFOptions

    def __init__(self, spec: ModelSpec, options: HFOptions | None = None):
        o = options or HFOptions()
        batch_size, device, dtype, max_batch_tokens = o.batch_size, o.device, o.dtype, o.max_batch_tokens
        if spec.adapter:
            check_adapter(spec.adapter, "hf backend")
        self.spec = spec
        self.batch_size = batch_size
        self.device = _pick_device(device)
        # Padded tokens (prompt + new) one batch may hold: attention and the KV cache grow
        # with it. Generous on GPUs; on a CPU long batches are what makes generation crawl.
        self.max_batch_tokens = max_batch_tokens or (
            262_144 if self.device.startswith("cuda") else 16_384)
        self._dtype = _pick_dtype(dtype, self.device)
        self._state: _Loaded | None = None
        self._adapter: str | None = None
        self._merge_system: bool | None = None

    @property
    def _loaded(self) -> _Loaded:
        """The model, loaded on first use: a re-run served from the store never loads it."""
        if self._state is None:
            loaded = _load_base(self.spec.model, self.device, self._dtype)
            if self.spec.adapter:
                self._adapter = _attach_adapter(loaded, self.spec)
            self._state = loaded
        return self._state

    # -- prompt rendering ----------------------------------------------------------
    def _encode(self, req: ChatRequest) -> list[int]:
        tok = self._loaded.tokenizer
        # Chat templates write their own special tokens (HF's convention); a plain
        # transcript needs the tokenizer's BOS (Gemma degenerates without it).
        return tok(self._render(req), add_special_tokens=not tok.chat_template)["input_ids"]

    def _render(self, req: ChatRequest) -> str:
        tok = self._loaded.tokenizer
        msgs = req.as_dicts()
        if not tok.chat_template:
            # A base model without a template: plain transcript, ending where the reply goes.
            lines = [f"{m['role'].capitalize()}: {m['content']}" for m in msgs]
            return "\n\n".join(lines) + "\n\nAssistant:"
        if self._merge_system:
            msgs = _merge_system(msgs)
        try:
            return tok.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)
        except Exception:
            # Some templates (Gemma, Mistral) raise on a system role: fold it into the
            # first user turn, as their own docs recommend, and remember the choice.
            if msgs and msgs[0]["role"] == "system" and not self._merge_system:
                self._merge_system = True
                return tok.apply_chat_template(_merge_system(msgs), tokenize=False,
                                               add_generation_prompt=True)
            raise

    def _eos_ids(self) -> list[int]:
        ids: set[int] = set()
        g = self._loaded.model.generation_config.eos_token_id
        if isinstance(g, int):
            ids.add(g)
        elif g:
            ids.update(g)
        if self._loaded.tokenizer.eos_token_id is not None:
            ids.add(self._loaded.tokenizer.eos_token_id)
        return sorted(ids)

    # -- generation ----------------------------------------------------------------
    def generate(
        self,
        requests: Sequence[ChatRequest],
        params: SamplingParams,
        *,
        sample_index: int = 0,
        on_result: ResultCallback | None = None,
    ) -> list[Completion]:
        _torch()
        if not requests:
            return []
        encoded = [self._encode(r) for r in requests]
        limit = getattr(self._loaded.model.config, "max_position_embeddings", None)
        out: list[Completion | None] = [None] * len(requests)
        todo = []
        for i, ids in enumerate(encoded):
            if limit and len(ids) + params.max_tokens > limit:
                out[i] = Completion(error=f"prompt of {len(ids)} tokens + max_tokens "
                                          f"{params.max_tokens} exceeds the model's {limit}")
                if on_result:
                    on_result(i, out[i])
            else:
                todo.append(i)
        # Longest first: similar lengths share a batch (little padding), and a batch too
        # big for memory fails at the start rather than after hours.
        todo.sort(key=lambda i: -len(encoded[i]))
        if params.choices:
            self._choose(todo, encoded, params.choices, out, on_result)
            return [c for c in out if c is not None]
        seeds = [request_seed(requests[i], params, sample_index) for i in range(len(requests))]
        for batch in self._batches(todo, encoded, params.max_tokens):
            for i, c in zip(batch, self._run_batch([encoded[i] for i in batch], params,
                                                   [seeds[i] for i in batch]), strict=True):
                out[i] = c
                if on_result:
                    on_result(i, c)
        return [c for c in out if c is not None]

    def _batches(self, order: list[int], encoded: list[list[int]], max_new: int) -> list[list[int]]:
        """Consecutive groups (longest first) within both the count and the token budget."""
        widths = [len(e) + max_new for e in encoded]
        return token_batches(order, widths, self.max_batch_tokens, self.batch_size)

    def _run_batch(self, batch: list[list[int]], params: SamplingParams,
                   seeds: list[int] | None = None) -> list[Completion]:
        torch = _torch()
        from transformers import GenerationConfig, LogitsProcessorList

        tok = self._loaded.tokenizer
        enc = tok.pad({"input_ids": batch}, padding=True, return_tensors="pt")
        enc = {k: v.to(self.device) for k, v in enc.items()}
        eos = self._eos_ids()
        sampling = params.temperature > 0
        seeds = seeds or [params.seed] * len(batch)
        # Sampling is done by our own processor (temperature, top-p, per-row Gumbel noise)
        # followed by greedy selection: argmax(logits/T + Gumbel) is an exact sample from
        # softmax(logits/T), and each row's noise comes from its own seeded generator.
        gcfg = GenerationConfig(
            max_new_tokens=params.max_tokens, do_sample=False,
            pad_token_id=tok.pad_token_id, eos_token_id=eos,
        )
        procs = LogitsProcessorList(
            [PerRowSampler(seeds, params.temperature, params.top_p, self.device)] if sampling else [])
        try:
            with self._loaded.lock, torch.inference_mode():
                gen = self._generate_model()
                seqs = gen(**enc, generation_config=gcfg, logits_processor=procs)
        except torch.cuda.OutOfMemoryError:
            if len(batch) == 1:
                raise
            torch.cuda.empty_cache()
            half = len(batch) // 2
            return (self._run_batch(batch[:half], params, seeds[:half])
                    + self._run_batch(batch[half:], params, seeds[half:]))
        new = seqs[:, enc["input_ids"].shape[1]:].tolist()
        prompt_lens = enc["attention_mask"].sum(dim=1).tolist()
        eos_set = set(eos)
        results = []
        for row, plen in zip(new, prompt_lens, strict=True):
            stop = next((j for j, t in enumerate(row) if t in eos_set), None)
            body = row if stop is None else row[:stop]
            results.append(Completion(
                text=tok.decode(body, skip_special_tokens=True).strip(),
                finish_reason="stop" if stop is not None else "length",
                usage=Usage(prompt_tokens=int(plen),
                            completion_tokens=len(body) + (0 if stop is None else 1)),
            ))
        return results

    def _generate_model(self, forward: bool = False):
        """The callable to generate with (``forward``: the plain forward pass), the right
        adapter active (caller holds the lock)."""
        loaded = self._loaded
        if loaded.peft is None:
            return loaded.model if forward else loaded.model.generate
        fn = loaded.peft if forward else loaded.peft.generate
        if self._adapter is None:
            # LoRA layers live inside the shared base: switch them off for a plain-base call.
            def plain(**kw):
                with loaded.peft.disable_adapter():
                    return fn(**kw)
            return plain
        loaded.peft.set_adapter(self._adapter)
        return fn

    def _choose(self, todo: list[int], encoded: list[list[int]], choices: tuple[str, ...],
                out: list[Completion | None], on_result: ResultCallback | None) -> None:
        """Constrained replies: each request gets the most likely of ``choices``."""
        from .hf_choice import choice_token_ids, pick_choices

        cids = choice_token_ids(self._loaded.tokenizer, choices)
        for batch in self._batches(todo, encoded, max(len(c) for c in cids)):
            with self._loaded.lock:
                picks = pick_choices(self._generate_model(forward=True), self._loaded.tokenizer,
                                     [encoded[i] for i in batch], cids, self.device)
            for i, j in zip(batch, picks, strict=True):
                out[i] = Completion(text=choices[j], finish_reason="stop",
                                    usage=Usage(prompt_tokens=len(encoded[i]),
                                                completion_tokens=len(cids[j])))
                if on_result:
                    on_result(i, out[i])

    def close(self) -> None:
        # The base stays cached for other backends in this process; see ``clear_cache``.
        pass


class PerRowSampler:
    """Logits processor: temperature, nucleus filtering and Gumbel noise drawn per row.

    Used with greedy decoding, it turns the argmax into a sample whose randomness belongs to
    the row (its own ``torch.Generator``), not to the batch: shape of scores (batch, vocab).
    """

    def __init__(self, seeds: list[int], temperature: float, top_p: float, device: str):
        torch = _torch()
        self.temperature, self.top_p = temperature, top_p
        self.gens = []
        for s in seeds:
            g = torch.Generator(device="cpu")
            g.manual_seed(s)
            self.gens.append(g)
        self.device = device

    def __call__(self, input_ids, scores):
        torch = _torch()
        scores = scores.float() / self.temperature
        if self.top_p < 1.0:
            sorted_logits, idx = torch.sort(scores, descending=True, dim=-1)
            probs = sorted_logits.softmax(dim=-1)
            # Drop tokens once the cumulative mass before them exceeds top_p (keep >= 1).
            drop = probs.cumsum(dim=-1) - probs > self.top_p
            sorted_logits = sorted_logits.masked_fill(drop, float("-inf"))
            scores = torch.full_like(scores, float("-inf")).scatter(-1, idx, sorted_logits)
        vocab = scores.shape[-1]
        u = torch.stack([torch.rand(vocab, generator=g) for g in self.gens]).to(scores.device)
        expo = -torch.log(u.clamp_min(1e-20))       # Exp(1) draws
        gumbel = -torch.log(expo.clamp_min(1e-20))  # Gumbel(0, 1) draws
        return scores + gumbel


def _merge_system(msgs: list[dict[str, str]]) -> list[dict[str, str]]:
    if not msgs or msgs[0]["role"] != "system":
        return msgs
    system, rest = msgs[0]["content"], list(msgs[1:])
    if rest and rest[0]["role"] == "user":
        rest[0] = {"role": "user", "content": f"{system}\n\n{rest[0]['content']}"}
    else:
        rest.insert(0, {"role": "user", "content": system})
    return rest
