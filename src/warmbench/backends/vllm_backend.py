"""``vllm`` backend: vLLM's offline engine, every LoRA checkpoint served from one engine.

Spec forms: ``vllm:BASE`` and ``vllm:BASE+ADAPTER_DIR``. Backends with the same base model and
engine options share one ``vllm.LLM`` (a process-wide cache), so the base model and all its
checkpoints are served by a single engine, each adapter as its own ``LoRARequest``.

Parallelism: ``tensor_parallel_size`` splits the model over GPUs inside one engine (vLLM's own);
``data_parallel_size`` > 1 starts that many engine processes, each pinned to its own
``tensor_parallel_size`` GPUs through ``CUDA_VISIBLE_DEVICES``, and shards every batch between
them (vLLM's recommended layout for offline data parallelism of dense models). The workers are
*not* daemonic, because ``vllm.LLM`` starts its engine core in a child process and Python
forbids daemonic processes to have children (vllm-project/vllm#18308); so they are shut down
explicitly (``close()``) and, failing that, at interpreter exit (``shutdown_engines``), and
each one leaves by itself when its parent dies. Multi-node runs use vLLM's Ray executor, which
is not a vLLM dependency: ``pip install ray`` and pass
``engine_kwargs={"distributed_executor_backend": "ray"}``.

Reproducibility: each request carries its own seed (``request_seed``), but vLLM's
numerics, hence its tokens (greedy ones too, at near ties), can depend on which other requests
share the batch unless the engine runs batch-invariant: ``VLLM_BATCH_INVARIANT=1`` in the
environment (beta in vLLM; compute capability 8.0 or higher).

Everything that maps our records to vLLM's and back is in pure functions (tested without vLLM).
"""

from __future__ import annotations

import atexit
import gc
import importlib
import json
import logging
import multiprocessing as mp
import multiprocessing.util as mp_util
import os
import queue
import re
import sys
import threading
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import Field

from ..errors import MissingExtraError, WarmbenchError
from ..records import ChatRequest, Completion, SamplingParams, Usage
from .adapter import adapter_hash, check_adapter
from .base import ResultCallback, refuse_choices, request_seed
from .registry import BackendOptions
from .spec import ModelSpec

log = logging.getLogger("warmbench.vllm")


def import_vllm() -> Any:
    try:
        import vllm
    except ImportError as exc:
        raise MissingExtraError("vllm", "gpu", "the vllm backend (a CUDA GPU machine)") from exc
    return vllm


# -- pure mapping functions ---------------------------------------------------------------
def sampling_kwargs(params: SamplingParams, request: ChatRequest,
                    sample_index: int = 0) -> dict[str, Any]:
    """Our SamplingParams -> ``vllm.SamplingParams`` keyword arguments for one request.

    The seed follows the one rule of every backend (:func:`request_seed`): derived from the
    request's messages, the base seed and the sample index, so a request samples alike in any
    batch. (vLLM reproduces a per-request seed exactly only with batch-invariant settings;
    see the GPU docs.) Temperature 0 is greedy in vLLM.
    """
    return {"n": 1, "temperature": float(params.temperature), "top_p": float(params.top_p),
            "max_tokens": int(params.max_tokens), "seed": request_seed(request, params, sample_index)}


# vLLM accepts only these LoRA ranks (``vllm.config.lora.MaxLoRARanks``; read from the installed
# vLLM when it has it). A value in between is rounded up: it is an upper bound.
FALLBACK_LORA_RANKS = (1, 8, 16, 32, 64, 128, 256, 320, 512)

# vLLM's tokenizer_mode "auto" switches Mistral repositories to Mistral's own tokenizer, whose
# prompts can differ from the chat template the adapters were trained with; "hf" keeps it.
_MISTRAL = re.compile(r"(?i)(mistral|ministral|magistral|devstral|codestral|pixtral|voxtral)")


def allowed_lora_ranks() -> tuple[int, ...]:
    try:
        from typing import get_args

        ranks = get_args(importlib.import_module("vllm.config.lora").MaxLoRARanks)
    except (ImportError, AttributeError):
        return FALLBACK_LORA_RANKS
    return tuple(sorted(int(r) for r in ranks)) or FALLBACK_LORA_RANKS


def lora_rank_bound(requested: int, ranks: Sequence[int] | None = None) -> int:
    """The smallest rank vLLM allows that is >= ``requested`` (max_lora_rank is a bound)."""
    ranks = sorted(ranks or allowed_lora_ranks())
    fit = [r for r in ranks if r >= int(requested)]
    if int(requested) < 1 or not fit:
        raise WarmbenchError(f"vllm backend: max_lora_rank={requested} is outside vLLM's ranks "
                             f"({', '.join(map(str, ranks))})")
    if fit[0] != int(requested):
        log.info("vllm max_lora_rank %s rounded up to %d (vLLM's allowed ranks)", requested, fit[0])
    return fit[0]


def default_tokenizer_mode(model: str) -> str | None:
    """'hf' for Mistral-family repositories (see ``_MISTRAL``); None leaves vLLM's default."""
    return "hf" if _MISTRAL.search(model) else None


def engine_kwargs(model: str, *, tensor_parallel_size: int = 1, gpu_memory_utilization: float = 0.9,
                  enable_lora: bool = False, max_lora_rank: int = 64, max_loras: int = 4,
                  max_model_len: int | None = None, dtype: str = "auto", seed: int = 0,
                  extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """Keyword arguments of ``vllm.LLM`` for one engine."""
    if tensor_parallel_size < 1:
        raise WarmbenchError(f"vllm backend: tensor_parallel_size must be >= 1, got {tensor_parallel_size}")
    if not 0.0 < gpu_memory_utilization <= 1.0:
        raise WarmbenchError(
            f"vllm backend: gpu_memory_utilization must be in (0, 1], got {gpu_memory_utilization}")
    kw: dict[str, Any] = {"model": model, "tensor_parallel_size": tensor_parallel_size,
                          "gpu_memory_utilization": gpu_memory_utilization, "dtype": dtype,
                          "seed": seed}
    if max_model_len:
        kw["max_model_len"] = int(max_model_len)
    mode = default_tokenizer_mode(model)
    if mode:
        kw["tokenizer_mode"] = mode
    if enable_lora:
        kw.update(enable_lora=True, max_lora_rank=lora_rank_bound(max_lora_rank),
                  max_loras=int(max_loras))
    kw.update(extra or {})
    return kw


class LoRARegistry:
    """Stable ``(name, int_id, path)`` per adapter *content* within one engine.

    vLLM caches adapter weights by integer id, so an id must never be reused for other
    weights: a retrained adapter at the same path (new content hash) gets a new id.
    """

    def __init__(self) -> None:
        self._ids: dict[tuple[str, str], int] = {}
        self._lock = threading.Lock()

    def entry(self, adapter_dir: str) -> tuple[str, int, str]:
        path = str(Path(adapter_dir).resolve())
        digest = adapter_hash(path)
        with self._lock:
            lora_id = self._ids.setdefault((path, digest), len(self._ids) + 1)  # ids start at 1
        return f"{Path(path).name}-{digest[:8]}", lora_id, path


def completion_from_output(output: Any) -> Completion:
    """A ``vllm.RequestOutput`` -> Completion (text, finish reason, token counts)."""
    outs = getattr(output, "outputs", None) or []
    if not outs:
        return Completion(error="vllm returned no output")
    first = outs[0]
    finish = getattr(first, "finish_reason", None)
    if finish == "abort":
        return Completion(error="vllm aborted the request")
    if finish == "error":  # recent vLLM: this request failed inside the engine; no answer
        return Completion(error="vllm finished the request with an error")
    prompt_ids = getattr(output, "prompt_token_ids", None) or []
    token_ids = getattr(first, "token_ids", None) or []
    return Completion(text=first.text or "", finish_reason=finish,
                      usage=Usage(prompt_tokens=len(prompt_ids), completion_tokens=len(token_ids)))


def shard(n: int, k: int) -> list[list[int]]:
    """Split indices 0..n-1 into ``k`` contiguous, nearly equal shards (empty ones dropped)."""
    k = max(1, min(k, n))
    size, extra = divmod(n, k)
    out, start = [], 0
    for r in range(k):
        end = start + size + (1 if r < extra else 0)
        out.append(list(range(start, end)))
        start = end
    return [s for s in out if s]


def gpu_groups(data_parallel_size: int, tensor_parallel_size: int,
               visible: str | None = None) -> list[list[str]]:
    """Which GPUs each data-parallel engine gets (from ``CUDA_VISIBLE_DEVICES`` if set)."""
    need = data_parallel_size * tensor_parallel_size
    ids = [g.strip() for g in visible.split(",") if g.strip()] if visible else [str(i) for i in range(need)]
    if len(ids) < need:
        raise WarmbenchError(
            f"vllm backend: data_parallel_size={data_parallel_size} x tensor_parallel_size="
            f"{tensor_parallel_size} needs {need} GPUs, only {len(ids)} visible")
    return [ids[r * tensor_parallel_size:(r + 1) * tensor_parallel_size] for r in range(data_parallel_size)]


def run_chat(llm: Any, vllm: Any, conversations: list[list[dict[str, str]]],
             sampling: list[dict[str, Any]], lora: tuple[str, int, str] | None) -> list[Completion]:
    """One ``LLM.chat`` call for a batch of conversations (one sampling dict each, for their own
    seeds); one Completion per conversation."""
    lora_request = None
    if lora:
        # positional (name, int_id, path): the path keyword was renamed across vLLM versions
        lora_request = importlib.import_module("vllm.lora.request").LoRARequest(*lora)
    outputs = llm.chat(conversations, [vllm.SamplingParams(**k) for k in sampling], use_tqdm=False,
                       lora_request=lora_request)
    if len(outputs) != len(conversations):
        raise WarmbenchError(f"vllm returned {len(outputs)} outputs for {len(conversations)} requests")
    return [completion_from_output(o) for o in outputs]


# -- engines ------------------------------------------------------------------------------
def _dp_worker(rank: int, gpus: list[str], kwargs: dict[str, Any], inbox: Any, outbox: Any) -> None:
    """One data-parallel engine process: answers jobs until it receives None."""
    os.environ["CUDA_VISIBLE_DEVICES"] = ",".join(gpus)
    try:
        vllm = import_vllm()
        llm = vllm.LLM(**kwargs)
        outbox.put(("ready", rank, None))
    except Exception:
        outbox.put(("ready", rank, traceback.format_exc(limit=5)))
        return
    parent = mp.parent_process()
    while True:
        try:
            job = inbox.get(timeout=5)
        except queue.Empty:
            # Not daemonic, so nothing kills it with its parent: leave when the parent is gone
            # (killed -9), or the engine would hold its GPUs forever.
            if parent is not None and not parent.is_alive():
                break
            continue
        if job is None:
            break
        job_id, conversations, sampling, lora = job
        try:
            res = [c.model_dump() for c in run_chat(llm, vllm, conversations, sampling, lora)]
            outbox.put((job_id, rank, res))
        except Exception:
            outbox.put((job_id, rank, traceback.format_exc(limit=5)))


class _Engine:
    """One model's engine(s): in-process for data_parallel_size 1, else worker processes."""

    def __init__(self, kwargs: dict[str, Any], data_parallel_size: int):
        self.kwargs = kwargs
        self.lora_enabled = bool(kwargs.get("enable_lora"))
        self.loras = LoRARegistry()
        self.users = 0
        self.lock = threading.Lock()
        self.vllm = import_vllm()
        self.llm: Any = None
        self.workers: list[Any] = []
        self._jobs = 0
        _log_free_memory(kwargs.get("gpu_memory_utilization", 0.9))
        if data_parallel_size == 1:
            self.llm = self.vllm.LLM(**kwargs)
            return
        ctx = mp.get_context("spawn")  # CUDA cannot be forked
        self.outbox = ctx.Queue()
        self.inboxes = []
        groups = gpu_groups(data_parallel_size, kwargs.get("tensor_parallel_size", 1),
                            os.environ.get("CUDA_VISIBLE_DEVICES"))
        for rank, gpus in enumerate(groups):
            inbox = ctx.Queue()
            # daemon=False: vllm.LLM starts its engine in a child process, which Python refuses
            # to daemonic processes; shutdown() (and shutdown_engines at exit) ends them.
            p = ctx.Process(target=_dp_worker, args=(rank, gpus, kwargs, inbox, self.outbox),
                            daemon=False, name=f"vllm-dp{rank}")
            p.start()
            self.workers.append(p)
            self.inboxes.append(inbox)
        for _ in groups:
            _, rank, err = self._next_answer()
            if err:
                self.shutdown()
                raise WarmbenchError(f"vllm data-parallel engine {rank} failed to start: "
                                     f"{err.strip().splitlines()[-1]}")

    def chat(self, conversations: list[list[dict[str, str]]], sampling: list[dict[str, Any]],
             lora: tuple[str, int, str] | None, on_shard: Any) -> None:
        """Answer every conversation; ``on_shard(indices, completions)`` as each part is done."""
        with self.lock:  # one batch at a time per engine: vLLM's LLM is not thread-safe
            if self.llm is not None:
                on_shard(list(range(len(conversations))),
                         run_chat(self.llm, self.vllm, conversations, sampling, lora))
                return
            parts = shard(len(conversations), len(self.workers))
            self._jobs += 1
            job = self._jobs
            for rank, idx in enumerate(parts):
                self.inboxes[rank].put((job, [conversations[i] for i in idx],
                                        [sampling[i] for i in idx], lora))
            failures: list[str] = []
            for _ in parts:  # every part is collected, so no stale answer reaches the next job
                got, rank, res = self._next_answer()
                if got != job:
                    failures.append(f"engine {rank}: answer for job {got}, expected {job}")
                elif isinstance(res, str):
                    failures.append(f"engine {rank}: {res.strip().splitlines()[-1]}")
                else:
                    on_shard(parts[rank], [Completion(**d) for d in res])
            if failures:
                raise WarmbenchError("vllm data-parallel batch failed: " + "; ".join(failures))

    def _next_answer(self) -> tuple[Any, int, Any]:
        """The next worker answer; a clear error instead of a hang if a worker died (e.g. OOM)."""
        while True:
            try:
                return self.outbox.get(timeout=5)
            except queue.Empty:
                dead = [p.name for p in self.workers if not p.is_alive()]
                if dead:
                    raise WarmbenchError(
                        f"vllm data-parallel worker(s) {', '.join(dead)} exited (out of memory?)"
                    ) from None

    def shutdown(self) -> None:
        for inbox in getattr(self, "inboxes", []):
            inbox.put(None)
        for p in self.workers:
            p.join(timeout=30)
            if p.is_alive():
                p.terminate()
                p.join(timeout=10)
        self.workers = []
        self.inboxes = []
        self.llm = None
        gc.collect()
        torch = sys.modules.get("torch")  # loaded by vLLM; never imported just for this
        if torch is not None and torch.cuda.is_available():
            torch.cuda.empty_cache()


def _log_free_memory(utilization: float) -> None:
    """Free GPU memory as vLLM starts: it claims ``utilization x total`` and refuses to start
    with less free (another process, or a model an earlier stage left on the GPU)."""
    from ..gpu_memory import GIB, describe_free, free_memory

    mem = free_memory()
    if not mem:
        return
    # stderr, not logging (warmbench configures no log handler): one line, on GPU machines only
    print(f"vllm: before the engine starts, {describe_free(mem)}", file=sys.stderr, flush=True)
    for i, (f, t) in enumerate(mem):
        if f < utilization * t:
            print(f"vllm: GPU {i} has {f / GIB:.1f} GiB free, below gpu_memory_utilization="
                  f"{utilization:.2f} x {t / GIB:.1f} GiB: vLLM may refuse to start; free the GPU "
                  f"or lower gpu_memory_utilization to {max(0.05, f / t - 0.02):.2f}",
                  file=sys.stderr, flush=True)


_ENGINES: dict[str, _Engine] = {}
_ENGINES_LOCK = threading.Lock()


def _engine_key(kwargs: dict[str, Any], dp: int) -> str:
    # LoRA settings are left out: base and adapters must share one engine.
    core = {k: v for k, v in kwargs.items() if k not in ("enable_lora", "max_lora_rank", "max_loras")}
    return json.dumps([core, dp], sort_keys=True, default=str)


class VLLMOptions(BackendOptions):
    tensor_parallel_size: int = Field(1, ge=1, description="GPUs one engine spans.")
    data_parallel_size: int = Field(1, ge=1, description="Engines, each on its own GPUs; requests split between them.")
    gpu_memory_utilization: float = Field(0.9, gt=0, le=1, description="Share of each GPU's memory vLLM may take.")
    max_lora_rank: int = Field(64, ge=1, description="Largest adapter rank the engine accepts.")
    max_loras: int = Field(4, ge=1, description="Adapters resident at once.")
    max_model_len: int | None = Field(None, ge=1, description="Context length cap (default: the model's).")
    dtype: str = Field("auto", description="Weights' dtype (auto, bfloat16, float16).")
    seed: int = Field(0, description="The engine's own seed (requests carry their own, see the seeding rule).")
    enable_lora: bool | None = Field(None, description="Start with LoRA on (default: when the spec has an adapter).")
    engine_kwargs: dict[str, Any] | None = Field(None, description="Extra keyword arguments of vllm.LLM.")


class VLLMBackend:
    """See the module docstring; options: :class:`VLLMOptions`."""

    Options = VLLMOptions

    def __init__(self, spec: ModelSpec, options: VLLMOptions | None = None):
        o = options or VLLMOptions()
        tensor_parallel_size, data_parallel_size = o.tensor_parallel_size, o.data_parallel_size
        gpu_memory_utilization, max_model_len, dtype = o.gpu_memory_utilization, o.max_model_len, o.dtype
        max_lora_rank, max_loras, enable_lora = o.max_lora_rank, o.max_loras, o.enable_lora
        seed, engine_kwargs = o.seed, o.engine_kwargs
        if data_parallel_size < 1:
            raise WarmbenchError(f"vllm backend: data_parallel_size must be >= 1, got {data_parallel_size}")
        import_vllm()  # fail early, with the install hint, before touching adapters or GPUs
        self.spec = spec
        if spec.adapter:
            check_adapter(spec.adapter, "vllm backend", lora_rank_bound(max_lora_rank))
        model = _resolve_model(spec.model)
        lora = bool(spec.adapter) if enable_lora is None else enable_lora
        kw = _engine_kwargs_fn(model, tensor_parallel_size=tensor_parallel_size,
                               gpu_memory_utilization=gpu_memory_utilization, enable_lora=lora,
                               max_lora_rank=max_lora_rank, max_loras=max_loras,
                               max_model_len=max_model_len, dtype=dtype, seed=seed, extra=engine_kwargs)
        key = _engine_key(kw, data_parallel_size)
        with _ENGINES_LOCK:
            eng = _ENGINES.get(key)
            if eng is None:
                log.info("starting vLLM engine for %s (tp=%d, dp=%d, lora=%s)", model,
                         tensor_parallel_size, data_parallel_size, lora)
                eng = _ENGINES[key] = _Engine(kw, data_parallel_size)
            elif spec.adapter and not eng.lora_enabled:
                raise WarmbenchError(
                    f"vllm engine for {spec.model} was started without LoRA: create it with "
                    "enable_lora=True (or build an adapter backend first) to serve adapters")
            eng.users += 1
        self._engine: _Engine | None = eng
        self._key = key
        if spec.adapter and eng.lora_enabled:
            try:  # the engine may have been started by a backend with a smaller bound
                check_adapter(spec.adapter, "vllm backend",
                              int(eng.kwargs.get("max_lora_rank", max_lora_rank)))
            except WarmbenchError:
                self.close()
                raise
        self._lora = eng.loras.entry(spec.adapter) if spec.adapter else None

    @property
    def lora_request(self) -> tuple[str, int, str] | None:
        """(name, int_id, path) of this backend's adapter, as passed to ``LoRARequest``."""
        return self._lora

    def generate(self, requests: Sequence[ChatRequest], params: SamplingParams, *,
                 sample_index: int = 0, on_result: ResultCallback | None = None) -> list[Completion]:
        if self._engine is None:
            raise WarmbenchError("vllm backend used after close()")
        refuse_choices(self.spec, params)
        if not requests:
            return []
        out: list[Completion | None] = [None] * len(requests)

        def on_shard(indices: list[int], comps: list[Completion]) -> None:
            for i, c in zip(indices, comps, strict=True):
                out[i] = c
                if on_result is not None:
                    on_result(i, c)

        self._engine.chat([r.as_dicts() for r in requests],
                          [sampling_kwargs(params, r, sample_index) for r in requests],
                          self._lora, on_shard)
        return [c if c is not None else Completion(error="not generated") for c in out]

    def close(self) -> None:
        eng, self._engine = self._engine, None
        if eng is None:
            return
        with _ENGINES_LOCK:
            eng.users -= 1
            if eng.users > 0:
                return
            _ENGINES.pop(self._key, None)
        eng.shutdown()


_engine_kwargs_fn = engine_kwargs  # the constructor's parameter of the same name shadows it


def shutdown_engines() -> int:
    """Shut down every cached engine (workers joined, GPU memory released); returns how many.

    Registered at exit: non-daemonic data-parallel workers would otherwise keep the interpreter
    waiting for them (multiprocessing joins its children at exit, and they wait for jobs)."""
    with _ENGINES_LOCK:
        engines = list(_ENGINES.values())
        _ENGINES.clear()
    for eng in engines:
        eng.shutdown()
    return len(engines)


# At exit, multiprocessing joins every non-daemonic child before atexit handlers registered
# earlier than its own run; the workers, waiting for jobs, would never end. Its finalizers of
# priority >= 0 run before those joins, so the engines are shut down there; atexit covers
# in-process engines (GPU memory) when no worker was ever started.
mp_util.Finalize(None, shutdown_engines, exitpriority=100)
atexit.register(shutdown_engines)


def _resolve_model(name: str) -> str:
    """Embedded names (``smollm2-135m``) -> their converted local folder; others unchanged."""
    try:
        from ..embedded import resolve_model
    except ImportError:
        return name
    return resolve_model(name)
