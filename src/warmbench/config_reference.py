"""The config reference of the README, generated from the pydantic models so it stays true.

``python -m warmbench.config_reference > docs/config.md``; a test checks the
committed file matches.
"""

from __future__ import annotations

import functools
import json
import operator
import types
import typing

from pydantic import BaseModel

from .backends.spec import ModelSpec
from .config import ExperimentConfig

HEADER = """# Config reference

An experiment is one YAML file (`examples/quickstart.yaml`, `examples/study.yaml`). Every field is
optional except each arm's `name` and `model`; a bad field is reported as
`FILE: section.field: problem (got VALUE)`. Model specs are `hf:NAME[+ADAPTER]`, `vllm:NAME[+ADAPTER]`,
`openai:MODEL`, `openai:http://HOST:PORT/v1#MODEL` or `scripted:echo|hash|constant=TEXT`.
This table is generated from the code (`python -m warmbench.config_reference`).

In Python, `warmbench.config.load_config(PATH)` reads one, and
`cfg.with_overrides({"train.limit": 3, "arms.0.model": "hf:smollm2-135m"})` returns a new,
validated config with values replaced by dotted path (what the commands' options do; a bad path
or value is one error line naming it).
"""


def _shown(ann: object) -> object:
    """The annotation as a user writes the value: a model spec (``SpecField``) is text."""
    origin, args = typing.get_origin(ann), typing.get_args(ann)
    if ann is ModelSpec or (origin is typing.Annotated and args[0] is ModelSpec):
        return str
    if origin in (typing.Union, types.UnionType):
        shown = [_shown(a) for a in args]
        if shown != list(args):
            return functools.reduce(operator.or_, shown)
    return ann


def _type_name(ann: object) -> str:
    s = str(_shown(ann)).replace("typing.", "").replace("warmbench.config.", "")
    return s.replace("<class '", "").replace("'>", "").replace("|", "\\|")


def _default(field) -> str:
    if field.default_factory is not None:
        try:
            v = field.default_factory()
        except TypeError:
            return ""
        if isinstance(v, BaseModel):
            return "(section)"
        return json.dumps(v, default=str)
    if field.is_required():
        return "required"
    return json.dumps(field.default, default=str)


def _rows(model: type[BaseModel], prefix: str) -> list[str]:
    rows = []
    for name, field in model.model_fields.items():
        ann = field.annotation
        origin = typing.get_origin(ann)
        args = typing.get_args(ann)
        path = f"{prefix}{name}"
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            rows += _rows(ann, path + ".")
            continue
        if origin is list and args and isinstance(args[0], type) and issubclass(args[0], BaseModel):
            rows.append(f"| `{path}` | list | `[]` | {field.description or ''} |")
            rows += _rows(args[0], path + "[].")
            continue
        desc = (field.description or "").replace("|", "\\|").replace("\n", " ")
        rows.append(f"| `{path}` | {_type_name(ann)} | `{_default(field)}` | {desc} |")
    return rows


def reference_markdown() -> str:
    lines = [HEADER, "| field | type | default | meaning |", "|---|---|---|---|"]
    lines += _rows(ExperimentConfig, "")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(reference_markdown(), end="")
