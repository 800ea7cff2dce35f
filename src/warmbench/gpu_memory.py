"""GPU memory handed back between stages of one process.

``warmbench run`` trains, scores warmth and then starts vLLM in the same process. PyTorch keeps
freed blocks in its caching allocator, and the hf backend and the SocioT metric model keep
their models in process-wide caches; vLLM, which claims ``gpu_memory_utilization x total``
when it starts, then refuses to start on a GPU that is in fact idle. After each stage the
caches that hold GPU weights are dropped, the garbage collector runs (trainers and models sit
in reference cycles) and the allocator's free blocks go back to the driver; the free memory
is logged, so a failing vLLM start can be read against it.

On a machine without CUDA nothing is dropped (CPU runs keep their loaded models between
stages) beyond one ``gc.collect()``.
"""

from __future__ import annotations

import functools
import gc
import logging
import sys
from collections.abc import Callable
from typing import Any

log = logging.getLogger("warmbench.gpu")

GIB = 1024**3


def cuda_in_use() -> bool:
    """CUDA is available to a torch this process has already imported (never imports it)."""
    torch = sys.modules.get("torch")
    try:
        return bool(torch is not None and torch.cuda.is_available())
    except Exception:  # noqa: BLE001 - a broken driver is "no CUDA" here, not a crash
        return False


def drop_model_caches() -> int:
    """Empty the process-wide model caches that hold weights (only modules already loaded);
    returns how many models and engines were let go."""
    n = 0
    hf = sys.modules.get("warmbench.backends.hf")
    if hf is not None:
        n += len(hf._CACHE)
        hf.clear_cache()
    metric = sys.modules.get("warmbench.warmth.metric_model")
    if metric is not None:
        n += len(metric._LOADED)
        metric._LOADED.clear()
    vllm_backend = sys.modules.get("warmbench.backends.vllm_backend")
    if vllm_backend is not None:  # engines still cached after a stage are leaks by then
        n += vllm_backend.shutdown_engines()
    return n


def free_memory() -> list[tuple[int, int]]:
    """(free, total) bytes per visible GPU; empty without CUDA."""
    if not cuda_in_use():
        return []
    torch = sys.modules["torch"]
    return [torch.cuda.mem_get_info(i) for i in range(torch.cuda.device_count())]


def describe_free(mem: list[tuple[int, int]]) -> str:
    return ", ".join(f"GPU {i}: {f / GIB:.1f} of {t / GIB:.1f} GiB free"
                     for i, (f, t) in enumerate(mem)) or "no CUDA device"


def release_gpu_memory(after: str = "", *, cuda: bool | None = None) -> list[tuple[int, int]]:
    """Drop model caches, collect garbage, empty CUDA's cache; log and return free memory.

    ``cuda`` overrides the detection (tests). Without CUDA only the garbage collector runs."""
    cuda = cuda_in_use() if cuda is None else cuda
    dropped = drop_model_caches() if cuda else 0
    gc.collect()
    if not cuda:
        return []
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        torch.cuda.synchronize()
        torch.cuda.empty_cache()
        torch.cuda.ipc_collect()
    mem = free_memory()
    log.info("after %s: %d cached model(s) released; %s", after or "stage", dropped,
             describe_free(mem))
    return mem


def releasing(fn: Callable[..., Any], after: str) -> Callable[..., Any]:
    """``fn`` that releases GPU memory when it returns or fails (a pipeline stage)."""

    @functools.wraps(fn)
    def run(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        finally:
            release_gpu_memory(after)

    return run
