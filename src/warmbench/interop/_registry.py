"""Inspect's entry point (``[project.entry-points.inspect_ai]`` in pyproject.toml): importing
this registers warmbench's tasks, so ``inspect eval warmbench/persona_reliability`` finds them."""

from .task import persona_reliability, warmbench_judge, warmbench_scorer

__all__ = ["persona_reliability", "warmbench_judge", "warmbench_scorer"]
