"""Judge rubrics: versioned text files, checked when the config loads, hashed into verdicts.

A rubric is named ``builtin:NAME`` (``resources/judge/NAME.yaml``: system, user, retry and
verdict words) or by a file path: a ``.yaml`` of the same shape, or a plain ``.txt`` holding
only the user message, which keeps the system message, retry and verdicts of the kind's default
rubric. The rubric's content hash is part of its ``tag`` and so of every scorer name and
verdict key: an edited rubric re-judges, and no verdict of the old text is reused.
"""

from __future__ import annotations

import string
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from ..errors import InputError, WarmbenchError
from ..records import stable_hash
from ..yamlfile import parse_yaml_mapping, read_text_file

# What a rubric's user message may use ({answer} is required: it is what is graded).
PLACEHOLDERS = ("question", "answer", "correct", "incorrect", "incorrect_line")
BUILTIN = "builtin:"


@dataclass(frozen=True)
class JudgePrompt:
    name: str
    version: int
    system: str
    user: str
    retry: str
    verdicts: dict[str, str]      # verdict word -> Label
    refused_when: tuple[str, ...]
    digest: str = ""              # content hash (8 hex digits)

    @property
    def tag(self) -> str:
        return f"{self.name}.v{self.version}#{self.digest}"


def check_placeholders(template: str, where: str | Path) -> None:
    """Unknown ``{name}`` in a rubric -> one line naming the file and the placeholder."""
    try:
        names = [f for _, f, _, _ in string.Formatter().parse(template) if f is not None]
    except ValueError as e:
        raise InputError(where, None, "user", f"bad placeholder syntax ({e}); write {{{{ and }}}} "
                         "for literal braces") from None
    for n in names:
        if n not in PLACEHOLDERS:
            raise InputError(where, None, "user", f"unknown placeholder {{{n}}} (known: "
                             + ", ".join(f"{{{p}}}" for p in PLACEHOLDERS) + ")")
    if "answer" not in names:
        raise InputError(where, None, "user", "the rubric must show the graded answer: {answer}")


def _from_mapping(d: dict[str, Any], where: str | Path, text: str) -> JudgePrompt:
    try:
        p = JudgePrompt(
            name=str(d["name"]), version=int(d.get("version", 1)), system=str(d["system"]).strip(),
            user=str(d["user"]).rstrip(), retry=str(d["retry"]).rstrip(),
            verdicts={str(k).upper(): str(v) for k, v in d["verdicts"].items()},
            refused_when=tuple(str(x).upper() for x in d.get("refused_when") or ()),
            digest=stable_hash(text, n=8))
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        raise InputError(where, None, None, f"bad or missing rubric field ({e})") from None
    for v in p.verdicts.values():
        if v not in ("CORRECT", "INCORRECT", "REFUSED"):
            raise InputError(where, None, "verdicts", f"label {v!r} is not CORRECT, INCORRECT "
                             "or REFUSED")
    check_placeholders(p.user, where)
    return p


def load_rubric(ref: str, default: str = "builtin:answer") -> JudgePrompt:
    """The rubric ``ref`` (``builtin:NAME`` or a path); a ``.txt`` borrows ``default``'s
    system message, retry and verdicts. A file is read again once it changes on disk."""
    if ref.startswith(BUILTIN):
        return _load(ref, default, None)
    try:
        st = Path(ref).stat()
    except OSError:
        raise WarmbenchError(f"judge rubric file not found: {ref}") from None
    return _load(ref, default, (st.st_mtime_ns, st.st_size))


@cache
def _load(ref: str, default: str, stamp: tuple[int, int] | None) -> JudgePrompt:
    if ref.startswith(BUILTIN):
        name = ref.removeprefix(BUILTIN)
        try:
            text = resources.files("warmbench").joinpath(f"resources/judge/{name}.yaml").read_text("utf-8")
        except FileNotFoundError:
            raise WarmbenchError(f"no built-in judge rubric named {name!r}") from None
        return _from_mapping(yaml.safe_load(text), f"{name}.yaml", text)
    p = Path(ref)
    text = read_text_file(p, "judge rubric file")
    if p.suffix.lower() in (".yaml", ".yml"):
        d = parse_yaml_mapping(text, p)
        if not d:
            raise InputError(p, None, None, "a YAML rubric is a mapping (name, system, user, retry, verdicts)")
        return _from_mapping({"name": p.stem, **d}, p, text)
    if not text.strip():
        raise InputError(p, None, None, "empty rubric")
    check_placeholders(text, p)
    base = load_rubric(default)
    return JudgePrompt(name=p.stem, version=1, system=base.system, user=text.rstrip(),
                       retry=base.retry, verdicts=base.verdicts, refused_when=base.refused_when,
                       digest=stable_hash(text, n=8))
