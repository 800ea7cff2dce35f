"""The GPU smoke script's CPU-only parts run here, so the script cannot rot without a GPU.

benchmarks/device/gpu_smoke.py --cpu: builds the tiny Llama, trains it interrupted and resumed
(the launched step without its launcher) with every check the GPU run makes, generates with
the adapter and scores SocioT on the CPU; the GPU-only steps report why they skip.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "benchmarks" / "device" / "gpu_smoke.py"


def test_gpu_smoke_cpu_parts(tmp_path):
    pytest.importorskip("trl")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(REPO / "src"), *filter(None, [os.environ.get("PYTHONPATH")])]),
           "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}
    p = subprocess.run([sys.executable, str(SCRIPT), "--cpu", "--work", str(tmp_path),
                        "--steps", "model,ddp,zero3,generate,sociot,vllm"],
                       capture_output=True, text=True, env=env, timeout=600, check=False)
    lines = {ln.split()[0]: ln for ln in p.stdout.splitlines() if ln.strip()}
    assert p.returncode == 0, p.stdout + p.stderr[-3000:]
    assert "ok    tiny Llama" in lines["model"]
    # interrupted after 3 steps, resumed, checkpoints at the fractional epochs' exact steps
    assert "interrupted after step 3, steps {0.5: 2, 1.0: 3, 1.5: 5, 2.0: 6}, resumed from " \
           "checkpoint-" in lines["ddp"] and "fp32, no activation checkpointing" in lines["ddp"]
    assert "ok    3 answers with adapter checkpoint-epoch-2 on cpu" in lines["generate"]
    assert "ok    16 texts scored on CPU" in lines["sociot"]
    assert "skip  DeepSpeed ZeRO-3 needs a GPU" in lines["zero3"]
    assert "skip  vLLM needs a GPU" in lines["vllm"]
    assert lines["smoke:"].startswith("smoke: 4 ok, 2 skipped, 0 failed (CPU mode)")
    assert (tmp_path / "logs" / "ddp-resumed.log").exists()


def test_gpu_smoke_rejects_unknown_steps(tmp_path):
    p = subprocess.run([sys.executable, str(SCRIPT), "--work", str(tmp_path), "--steps", "nope"],
                       capture_output=True, text=True, timeout=120, check=False,
                       env={**os.environ, "PYTHONPATH": str(REPO / "src")})
    assert p.returncode == 2 and "unknown step(s) ['nope']" in p.stderr
