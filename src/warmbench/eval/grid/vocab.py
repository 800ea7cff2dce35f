"""The grid's vocabulary: the study's 9 contexts and 4 prompt forms (no imports, so the config
can use them without loading the grid)."""

from __future__ import annotations

ALL_CONTEXTS = (
    "unmodified", "emotion:anger", "emotion:happy", "emotion:sad", "relation:close",
    "relation:hierarchical_down", "relation:hierarchical_up", "stake:high", "stake:low",
)
ALL_FORMS = ("original", "incorrect", "correct", "original_neutral")
# Forms a config may add; not among the 28 asked by default (the study files' two-choice form).
OPTIONAL_FORMS = ("mcq",)
# A context added in YAML is named by its class, which picks its join template.
CONTEXT_PREFIXES = ("emotion:", "relation:", "stake:")
