"""The study's stimuli as data: statements, lead-in, prompt forms and belief clauses.

They ship in ``warmbench/resources/stimuli.yaml`` (with provenance); a custom YAML file can
replace any top-level key, typically ``amendments`` (sub-type -> list of statements).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from ...errors import InputError, WarmbenchError
from ...yamlfile import read_yaml_mapping
from .vocab import ALL_CONTEXTS

SUBTYPES = tuple(c for c in ALL_CONTEXTS if c != "unmodified")
FORMS = ("original", "incorrect", "correct")
_CONTEXT_CLASSES = ("unmodified", "emotion_or_relation", "stake")


def context_class(context: str) -> str:
    """unmodified / emotion_or_relation / stake: the key of a prompt form's template."""
    if context == "unmodified":
        return "unmodified"
    if context.startswith("stake:"):
        return "stake"
    if context.startswith(("emotion:", "relation:")):
        return "emotion_or_relation"
    raise WarmbenchError(f"unknown context {context!r} (known: {', '.join(ALL_CONTEXTS)})")


@dataclass(frozen=True)
class Stimuli:
    lead_in: str
    amendments: dict[str, tuple[str, ...]]
    prompt_forms: dict[str, Any]
    belief_clauses: dict[str, dict[str, str]]
    general_prompts: dict[str, str]
    provenance: dict[str, str] = field(default_factory=dict)
    source: str = "builtin"
    dataset_prompt_forms: dict[str, dict[str, Any]] = field(default_factory=dict)

    def template(self, form: str, context: str, variant: str | None = None) -> str:
        """The join template of one (form, context) cell of the grid; ``variant`` names a
        partial override in ``dataset_prompt_forms`` (e.g. 'medqa_released')."""
        if variant is not None and variant not in self.dataset_prompt_forms:
            raise WarmbenchError(f"unknown prompt-form variant {variant!r} "
                                 f"(known: {', '.join(self.dataset_prompt_forms) or 'none'})")
        cls = context_class(context)
        key = "unmodified" if cls == "unmodified" else ("context" if form == "original" else cls)
        for spec in ((self.dataset_prompt_forms[variant].get(form),) if variant else ()) + \
                (self.prompt_forms[form],):
            if isinstance(spec, str):
                return spec
            if isinstance(spec, dict) and key in spec:
                return spec[key]
        raise WarmbenchError(f"prompt_forms.{form}: no template for {key!r}")

    def clauses(self, dataset: str) -> dict[str, str]:
        return self.belief_clauses.get(dataset) or self.belief_clauses["default"]


def _builtin_text() -> str:
    return resources.files("warmbench").joinpath("resources/stimuli.yaml").read_text("utf-8")


def _validate(data: dict[str, Any], where: str) -> None:
    """Check the shape so a bad custom file fails here, naming the key, not mid-run."""
    if not isinstance(data.get("neutral_lead_in"), str):
        raise InputError(where, None, "neutral_lead_in", "must be a string")
    am = data.get("amendments")
    if not isinstance(am, dict):
        raise InputError(where, None, "amendments", "must map sub-type -> list of statements")
    for sub, pool in am.items():
        if sub not in SUBTYPES:
            raise InputError(where, None, f"amendments.{sub}",
                             f"unknown sub-type (known: {', '.join(SUBTYPES)})")
        if not isinstance(pool, list) or not pool or not all(isinstance(s, str) and s for s in pool):
            raise InputError(where, None, f"amendments.{sub}", "must be a non-empty list of strings")
    forms = data.get("prompt_forms")
    if not isinstance(forms, dict) or not isinstance(forms.get("original_neutral"), str):
        raise InputError(where, None, "prompt_forms.original_neutral", "must be a string template")
    for f, keys in (("original", ("unmodified", "context")), ("incorrect", _CONTEXT_CLASSES),
                    ("correct", _CONTEXT_CLASSES)):
        spec = forms.get(f)
        for k in keys:
            if not isinstance(spec, dict) or not isinstance(spec.get(k), str):
                raise InputError(where, None, f"prompt_forms.{f}.{k}", "must be a string template")
    bc = data.get("belief_clauses")
    if not isinstance(bc, dict) or "default" not in bc:
        raise InputError(where, None, "belief_clauses", "must map dataset -> {incorrect, correct} "
                         "and include 'default'")
    for ds, c in bc.items():
        if not isinstance(c, dict) or not all(isinstance(c.get(k), str) for k in ("incorrect", "correct")):
            raise InputError(where, None, f"belief_clauses.{ds}", "needs 'incorrect' and 'correct' strings")


def load_stimuli(path: str | Path | None = None) -> Stimuli:
    """The built-in stimuli, with the top-level keys of ``path`` (if given) replacing theirs."""
    data = yaml.safe_load(_builtin_text())
    source = "builtin"
    if path is not None:
        p = Path(path)
        custom = read_yaml_mapping(p, "statements file")
        # A bare mapping of sub-types is accepted as the amendments themselves.
        if custom and set(custom) <= set(SUBTYPES):
            custom = {"amendments": custom}
        if "amendments" in custom and isinstance(custom["amendments"], dict):
            # Sub-types the file leaves out keep the study's statements.
            custom["amendments"] = {**data["amendments"], **custom["amendments"]}
        data.update(custom)
        source = str(p)
    _validate(data, source)
    return Stimuli(
        lead_in=data["neutral_lead_in"],
        amendments={k: tuple(v) for k, v in data["amendments"].items()},
        prompt_forms=data["prompt_forms"],
        belief_clauses=data["belief_clauses"],
        general_prompts=data.get("general_prompts") or {},
        dataset_prompt_forms=data.get("dataset_prompt_forms") or {},
        provenance=data.get("provenance") or {},
        source=source,
    )
