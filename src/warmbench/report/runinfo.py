"""What kind of run the report describes: which arm is what, whether the models are toys, how
many of the 28 prompt forms were asked.

The words matter: a system-prompt arm is not a fine-tuned model, and a 135M model's numbers are
not the study's finding. Both are decided here from the run's own config, never guessed from
arm names.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd

from ..eval import registry

STUDY_FORMS = 28  # 9 contexts x {original, incorrect, correct} + the neutral control
FORM_WORDS = {"original": "plain question", "incorrect": "user states a wrong answer",
              "correct": "user doubts the right answer", "original_neutral": "neutral lead-in"}


def reliability_sets() -> tuple[str, ...]:
    """The datasets the headline and belief tables cover: family reliability (custom sets too)."""
    return registry.in_family("reliability")


def context_words(context: str) -> str:
    """'unmodified' -> 'no context'; 'emotion:sad' -> 'emotion: sad'."""
    return "no context" if context == "unmodified" else context.replace(":", ": ").replace("_", " ")


@dataclass(frozen=True)
class ArmInfo:
    name: str
    kind: str            # "baseline", "fine-tuned", "system prompt", "fine-tuned + system prompt", "persona"
    model: str = ""
    system_prompt: str | None = None

    @property
    def label(self) -> str:
        """'the warm arm (fine-tuned)'; the baseline is 'the original model' style."""
        if self.kind == "baseline":
            return f"the {self.name} model" if self.name == "original" else f"the {self.name} arm (baseline)"
        if self.kind == "persona":   # no run config (e.g. published rows): kind unknown
            return f"the {self.name} arm"
        return f"the {self.name} arm ({self.kind})"


def arm_infos(cfg: dict[str, Any], baseline: str, arms: list[str]) -> dict[str, ArmInfo]:
    """One ArmInfo per arm named in the config, else per arm the statistics compared."""
    out: dict[str, ArmInfo] = {}
    for a in cfg.get("arms") or []:
        name = str(a.get("name"))
        model = str(a.get("model") or "")
        tuned = bool(a.get("persona")) or "+" in model
        sp = a.get("system_prompt")
        if name == baseline:
            kind = "baseline"
        elif tuned and sp:
            kind = "fine-tuned + system prompt"
        elif sp:
            kind = "system prompt"
        elif tuned:
            kind = "fine-tuned"
        else:
            kind = "persona"
        out[name] = ArmInfo(name, kind, model, str(sp) if sp else None)
    for name in [baseline, *arms]:
        if name and name not in out:
            out[name] = ArmInfo(name, "baseline" if name == baseline else "persona")
    return out


def effect_noun(infos: dict[str, ArmInfo], arms: list[str]) -> str:
    """What the compared arms change: 'fine-tuning', 'the system prompt', or 'the persona'."""
    kinds = {infos[a].kind for a in arms if a in infos}
    if kinds == {"fine-tuned"}:
        return "fine-tuning"
    if kinds == {"system prompt"}:
        return "the system prompt"
    return "the persona (fine-tuning or system prompt, per arm)" if len(kinds) > 1 else "the persona"


def toy_models(cfg: dict[str, Any]) -> list[str]:
    """Readable names of the embedded / scripted models the run's arms use (empty: none)."""
    from ..embedded import EMBEDDED

    names: list[str] = []
    for a in cfg.get("arms") or []:
        spec = str(a.get("model") or "")
        prefix, _, rest = spec.partition(":")
        base = rest.split("+", 1)[0] if rest else spec
        if prefix == "scripted":
            name = f"the scripted test backend ({spec})"
        elif base in EMBEDDED:
            purpose = EMBEDDED[base].purpose
            full = purpose[purpose.find("(") + 1:purpose.rfind(")")] if "(" in purpose else base
            name = f"{full} ({prefix}:{base})"
        elif "tiny" in base.lower():
            name = f"a tiny test model ({prefix}:{base})"
        else:
            continue
        if name not in names:
            names.append(name)
    return names


def forms_note(scored: pd.DataFrame | None) -> str | None:
    """'This run asked 6 of the study's 28 prompt forms: ...' when it asked fewer; else None."""
    if scored is None or not {"dataset", "context", "form"}.issubset(scored.columns):
        return None
    rel = scored[scored["dataset"].astype(str).str.lower().isin(reliability_sets())]
    if rel.empty:
        return None
    asked = sorted({(str(c), str(f)) for c, f in zip(rel["context"], rel["form"], strict=True)})
    if len(asked) >= STUDY_FORMS:
        return None
    shown = "; ".join(f"{FORM_WORDS.get(f, f)} ({context_words(c)})" for c, f in asked)
    return (f"This run asked {len(asked)} of the study's {STUDY_FORMS} prompt forms: {shown}. "
            "Effects of the forms it did not ask are not measured here.")
