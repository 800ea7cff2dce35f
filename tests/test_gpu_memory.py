"""GPU memory released between pipeline stages, and free memory reported as vLLM starts."""

from __future__ import annotations

import pytest

from warmbench import gpu_memory
from warmbench.backends import hf
from warmbench.backends import vllm_backend as vb
from warmbench.pipeline import STAGES
from warmbench.warmth import metric_model


def test_release_drops_weight_caches_only_when_cuda_is_in_use(monkeypatch):
    monkeypatch.setattr(hf, "_CACHE", {("m", "cuda", "x"): object()})
    monkeypatch.setattr(metric_model, "_LOADED", {("gpt2", "cuda"): object()})
    monkeypatch.setattr(vb, "_ENGINES", {})
    assert gpu_memory.release_gpu_memory("train", cuda=False) == []
    assert hf._CACHE and metric_model._LOADED  # CPU runs keep their models between stages
    gpu_memory.release_gpu_memory("warmth", cuda=True)  # no device here: caches still dropped
    assert not hf._CACHE and not metric_model._LOADED


def test_every_stage_releases_after_it_returns_or_fails(monkeypatch):
    calls: list[str] = []
    monkeypatch.setattr(gpu_memory, "release_gpu_memory", lambda after="", **_: calls.append(after))

    def stage(ok: bool) -> str:
        if not ok:
            raise RuntimeError("stage broke")
        return "done"

    assert gpu_memory.releasing(stage, "train")(True) == "done"
    with pytest.raises(RuntimeError):
        gpu_memory.releasing(stage, "warmth")(False)
    assert calls == ["train", "warmth"]
    train = next(s for s in STAGES if s.name == "train").load()
    assert train.__wrapped__.__name__ == "run_train"  # the pipeline's stages are wrapped


def test_vllm_start_reports_free_memory_and_a_shortfall(monkeypatch, capsys):
    gib = gpu_memory.GIB
    monkeypatch.setattr(gpu_memory, "free_memory", lambda: [(70 * gib, 80 * gib), (30 * gib, 80 * gib)])
    vb._log_free_memory(0.8)
    err = capsys.readouterr().err
    assert "GPU 0: 70.0 of 80.0 GiB free, GPU 1: 30.0 of 80.0 GiB free" in err
    assert "GPU 1 has 30.0 GiB free, below gpu_memory_utilization=0.80 x 80.0 GiB" in err
    assert "lower gpu_memory_utilization to 0.35" in err and "GPU 0 has" not in err
    monkeypatch.setattr(gpu_memory, "free_memory", lambda: [])
    vb._log_free_memory(0.9)
    assert capsys.readouterr().err == ""  # silent without CUDA
