"""Persona rewrite: every assistant turn restyled warm / cold by an LLM, checked, SFT JSONL out."""

from .run import run_rewrite

__all__ = ["run_rewrite"]
