"""The one reader of user YAML files (configs, statements, query-type rules, judge rubrics), so
every such file gets the same one-line errors: not found, not UTF-8, not valid YAML, not a
mapping. The JSON Lines counterpart is ``warmbench.jsonl``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from .errors import InputError, WarmbenchError


def read_text_file(path: str | Path, what: str) -> str:
    """The file's UTF-8 text; ``what`` names the file in the not-found error ("config file")."""
    p = Path(path)
    if not p.is_file():
        raise WarmbenchError(f"{what} not found: {p}")
    try:
        return p.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise InputError(p, None, None, f"not UTF-8 text (byte {e.object[e.start]:#04x} at offset {e.start}); save it as UTF-8") from None


def parse_yaml_mapping(text: str, where: str | Path) -> dict[str, Any]:
    """``text`` parsed as a YAML mapping (an empty document is an empty mapping)."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise WarmbenchError(f"{where}: not valid YAML: {_one_line(e)}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise WarmbenchError(f"{where}: top level must be a mapping, got {type(data).__name__}")
    return data


def read_yaml_mapping(path: str | Path, what: str) -> dict[str, Any]:
    """A user YAML file that holds a mapping, or a one-line error naming the file."""
    return parse_yaml_mapping(read_text_file(path, what), path)


def _one_line(e: yaml.YAMLError) -> str:
    """PyYAML's message spans lines (context, a caret under the text); keep the problem and
    where it is."""
    mark = getattr(e, "problem_mark", None)
    problem = getattr(e, "problem", None) or str(e)
    where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
    return " ".join(f"{problem}{where}".split())
