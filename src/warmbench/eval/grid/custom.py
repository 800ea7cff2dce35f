"""Custom grids from YAML: contexts added with their own statements (``eval.grid.add_contexts``).

A context is named by its class (``emotion:``, ``relation:`` or ``stake:``), which picks the
join template of each form, exactly as the built-in sub-types do.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace

from .stimuli import Stimuli
from .vocab import ALL_CONTEXTS


def with_added_contexts(stimuli: Stimuli, added: Mapping[str, Sequence[str]]) -> Stimuli:
    """The stimuli with each added context's statement pool (the config checked the names)."""
    if not added:
        return stimuli
    pools = {**stimuli.amendments, **{k: tuple(v) for k, v in added.items()}}
    return replace(stimuli, amendments=pools)


def ordered_contexts(contexts: Sequence[str]) -> list[str]:
    """The study's contexts in the study's order, then added ones in config order."""
    return [c for c in ALL_CONTEXTS if c in contexts] + [c for c in contexts if c not in ALL_CONTEXTS]
