"""Shared fixtures. Tests are deterministic and offline; tests that need ../shared skip without it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("WARMBENCH_SHARED", REPO.parent / "shared"))


@pytest.fixture(autouse=True)
def _fresh_dataset_registry():
    """A config's custom eval sets are registered process-wide; no test sees another's."""
    yield
    from warmbench.eval import registry

    registry.reset()


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """Path to ../shared (real data files); skips the test when absent."""
    if not (SHARED / "data").is_dir():
        pytest.skip("../shared is not present")
    return SHARED


@pytest.fixture(scope="session")
def tiny_llama(tmp_path_factory) -> Path:
    from warmbench.testing import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny") / "llama", "llama")


@pytest.fixture(scope="session")
def tiny_gpt2(tmp_path_factory) -> Path:
    from warmbench.testing import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny") / "gpt2", "gpt2")


@pytest.fixture(scope="module")
def tiny_gpt2_lm(tiny_gpt2):
    """The tiny GPT-2 loaded as a warmth metric model on the CPU, with one torch thread for
    the module: on a shared, oversubscribed CPU, torch's thread pool makes a tiny model's
    forward pass ~30x slower than a single thread does."""
    torch = pytest.importorskip("torch")
    from warmbench.warmth.metric_model import load_metric_model

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield load_metric_model(str(tiny_gpt2), device="cpu")
    torch.set_num_threads(n)
