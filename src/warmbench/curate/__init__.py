"""Persona-data curation: chat logs -> NSFW-filtered, query-type-balanced conversations."""

from .run import run_curate

__all__ = ["run_curate"]
