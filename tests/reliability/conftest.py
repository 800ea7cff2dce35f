"""Fixtures of the reliability tests (the project-wide ones live in tests/conftest.py)."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _no_ambient_keys(monkeypatch):
    """The fake server needs no key; a developer's real key or base URL must not leak in."""
    for name in ("OPENAI_API_KEY", "WARMBENCH_API_KEY", "OPENAI_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
