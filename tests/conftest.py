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
