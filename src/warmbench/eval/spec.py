"""What a dataset *is*, in one record: ``DatasetSpec``.

Every table that used to be keyed by dataset name (loader, sample file, study size, grid or not,
reference scorer, judge rubric, family, token estimates, AdvBench's refusal rule) is a field
here; the seven built-ins are entries of ``registry.BUILTINS`` and users add their own in YAML.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Kind = Literal["gridded", "multiple_choice", "numeric", "open"]
Family = Literal["reliability", "general", "safety"]
Scorer = Literal["alias", "embedding", "choice", "number", "refusal"]
KINDS: tuple[str, ...] = ("gridded", "multiple_choice", "numeric", "open")

# Custom names appear in file names and store keys.
NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_-]{0,63}$")

# Canonical fields a custom set maps its own columns to, per kind (required, optional).
KIND_FIELDS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "gridded": (("question", "correct", "incorrect"), ("id", "aliases")),
    "multiple_choice": (("question", "choices", "answer"), ("id", "subject")),
    "numeric": (("question", "answer"), ("id",)),
    "open": (("question",), ("id",)),
}
# Per kind: (family, reference scorer, judged by the LLM judge, built-in rubric, the
# stimuli.yaml general_prompts key, answered with the structured settings, refusal = correct).
KIND_DEFAULTS: dict[str, tuple[Family, Scorer, bool, str | None, str | None, bool, bool]] = {
    "gridded": ("reliability", "alias", True, "answer", None, False, False),
    "multiple_choice": ("general", "choice", False, None, "multiple_choice", True, False),
    "numeric": ("general", "number", False, None, "numeric", True, False),
    "open": ("safety", "refusal", True, "harmful", "open", False, True),
}


class DatasetSpec(BaseModel):
    """One evaluation set: where it comes from and how it is asked, scored and analysed."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(description="Dataset name (also in file names and store keys).")
    kind: Kind = Field(description="gridded (28 forms, correct + incorrect answer), "
                                   "multiple_choice, numeric, or open (e.g. harmful requests).")
    family: Family = Field(description="reliability / general / safety: which analyses include it.")
    loader: str = Field("custom", description="Row mapper: a built-in loader name or 'custom'.")
    source: str | None = Field(None, description="Custom sets: a file path or hub:ORG/NAME[:config][@split].")
    fields: dict[str, str | list[str]] = Field(default_factory=dict,
                                               description="Canonical field -> the file's column(s).")
    sample: str | None = Field(None, description="Built-in sample file (resources/samples/NAME.jsonl).")
    study_n: int | None = Field(None, description="Items the study drew (None: all).")
    full_size: int = Field(500, description="Items in the full set (plan estimates).")
    grid: bool = Field(False, description="Asked in the 28 forms by default.")
    structured: bool = Field(False, description="Answered with eval.structured settings.")
    prompt_format: str | None = Field(None, description="Key of a stimuli.yaml general_prompts wrapper.")
    scorer: Scorer = Field("alias", description="Offline reference scorer.")
    judged: bool = Field(True, description="Scored by the LLM judge when one is configured.")
    judge_rubric: str | None = Field(None, description="'builtin:NAME' or a rubric file path.")
    refusal_correct: bool = Field(False, description="A refusal counts as the right behaviour.")
    scorer_refusal: bool = Field(False, description="The scorer's own decision is the refusal "
                                                    "(open sets: AdvBench), not the phrase detector.")
    tokens_question: int = Field(60, description="Average prompt tokens of one question (plan).")
    regression_reference: bool = Field(False, description="The reference level of the dataset "
                                                          "fixed effect in the regressions.")
    published_name: str | None = Field(None, description="Name in the published tables (compat).")
    published_key: str | None = Field(None, description="Pairing-key column of the study's "
                                                        "released CSVs (stats published).")

    @property
    def rubric(self) -> str | None:
        """The rubric that judges this set (None: reference scorers only)."""
        return self.judge_rubric if self.judged else None
