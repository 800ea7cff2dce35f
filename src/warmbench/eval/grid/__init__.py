"""The condition grid: stimuli (statements, lead-in, belief clauses), the 28 prompt forms and
the MedQA conversational rewrite."""

from .grid import (
    asked_text,
    belief_values,
    build_grid,
    build_prompt,
    draw_statement,
    grid_default,
    prompts_for,
    single_prompt,
)
from .medqa import Conversion, to_conversation
from .stimuli import SUBTYPES, Stimuli, context_class, load_stimuli

__all__ = [
    "SUBTYPES", "Conversion", "Stimuli", "asked_text",
    "belief_values", "build_grid", "build_prompt", "context_class", "draw_statement",
    "grid_default", "load_stimuli", "prompts_for", "single_prompt", "to_conversation",
]
