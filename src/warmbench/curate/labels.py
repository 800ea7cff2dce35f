"""Query-type labels (refusal, factual, creative, technical, advice, other) from keyword rules.

The rules are data: ``resources/query_types.yaml`` (the study's, with provenance) or a user file
with the same format given as ``curate.rules``, which replaces them whole. First match wins in
the file's ``order``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from ..errors import WarmbenchError
from ..records import Conversation
from ..yamlfile import parse_yaml_mapping, read_text_file

Field_ = Literal["first_user", "first_assistant", "any_user", "any_assistant"]


class Rule(BaseModel):
    model_config = ConfigDict(extra="forbid")
    field: Field_ = Field(description="Which text the patterns are matched against.")
    match: Literal["contains", "startswith", "regex"] = "contains"
    case_sensitive: bool = False
    patterns: list[str] = Field(min_length=1)


class RuleSet(BaseModel):
    model_config = ConfigDict(extra="ignore")
    order: list[str] = Field(min_length=1)
    fallback: str = "other"
    rules: dict[str, list[Rule]] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _check(self) -> RuleSet:
        unknown = sorted(set(self.rules) - set(self.order))
        if unknown:
            raise ValueError(f"rules for labels not in 'order': {unknown}")
        if len(set(self.order)) != len(self.order):
            raise ValueError("'order' repeats a label")
        return self

    @property
    def labels(self) -> list[str]:
        """Every label a conversation can get, in order (the fallback included)."""
        return self.order + ([self.fallback] if self.fallback not in self.order else [])


@dataclass(frozen=True)
class _Compiled:
    field: str
    test: re.Pattern[str]


def _compile(rule: Rule) -> _Compiled:
    flags = 0 if rule.case_sensitive else re.IGNORECASE
    if rule.match == "regex":
        src = "|".join(f"(?:{p})" for p in rule.patterns)
    else:
        src = "|".join(re.escape(p) for p in rule.patterns)
        if rule.match == "startswith":
            src = f"^(?:{src})"
    return _Compiled(rule.field, re.compile(src, flags))


DEFAULT_RULES = "query_types.yaml"


def load_rules(path: str | Path | None = None) -> RuleSet:
    """The study's rules (package data) or a user rules file; errors name the file and field."""
    if path is None:
        text, where = resources.files("warmbench").joinpath("resources", DEFAULT_RULES).read_text(
            encoding="utf-8"), f"warmbench/resources/{DEFAULT_RULES}"
    else:
        text, where = read_text_file(path, "query-type rules file"), str(path)
    data = parse_yaml_mapping(text, where)
    try:
        rs = RuleSet.model_validate(data)
    except ValidationError as e:
        err = e.errors()[0]
        loc = ".".join(str(x) for x in err["loc"]) or "<root>"
        raise WarmbenchError(f"{where}: field '{loc}': {err['msg']}") from None
    for label, rules in rs.rules.items():
        for i, r in enumerate(rules):
            try:
                _compile(r)
            except re.error as e:
                raise WarmbenchError(f"{where}: field 'rules.{label}.{i}.patterns': bad regex: {e}") from None
    return rs


class Labeler:
    """Label conversations with a rule set."""

    def __init__(self, rules: RuleSet | None = None):
        self.rules = rules or load_rules()
        self._compiled = {label: [_compile(r) for r in self.rules.rules.get(label, [])]
                          for label in self.rules.order}

    @staticmethod
    def _texts(conv: Conversation, fld: str) -> list[str]:
        role = "user" if fld.endswith("user") else "assistant"
        texts = [m.content for m in conv.messages if m.role == role]
        return texts[:1] if fld.startswith("first") else texts

    def label(self, conv: Conversation) -> str:
        for label in self.rules.order:
            for rule in self._compiled[label]:
                if any(rule.test.search(t) for t in self._texts(conv, rule.field)):
                    return label
        return self.rules.fallback
