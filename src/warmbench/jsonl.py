"""The one JSON Lines reader: every input file of JSON objects goes through it, so every such
file gets the same one-line errors (file, line, problem) and the same tolerance (a UTF-8 byte
order mark, blank lines)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .errors import InputError


def read_jsonl(path: str | Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield ``(line_number, object)`` for each non-blank line; a line that is not a JSON
    object, or bytes that are not UTF-8, raise :class:`InputError` naming the line."""
    path = Path(path)
    with path.open("rb") as f:
        for n, raw in enumerate(f, 1):
            try:
                line = raw.decode("utf-8-sig" if n == 1 else "utf-8")
            except UnicodeDecodeError as e:
                raise InputError(path, f"line {n}", None,
                                 f"not UTF-8 text (byte {raw[e.start]:#04x} at column {e.start + 1}); "
                                 "save the file as UTF-8") from None
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as e:
                raise InputError(path, f"line {n}", None, f"not valid JSON ({e.msg})") from None
            if not isinstance(obj, dict):
                raise InputError(path, f"line {n}", None, "expected a JSON object")
            yield n, obj


CHAT_ROLES = ("system", "user", "assistant")


def chat_messages(path: str | Path, where: str, value: Any) -> list[dict[str, str]]:
    """A row's ``messages`` field checked as a non-empty list of ``{role, content}`` (chat
    requests to generate, conversations to train on): ``[{role, content}]``, or an
    :class:`InputError` naming the file, the line and the message."""
    if not isinstance(value, list) or not value:
        raise InputError(path, where, "messages", "must be a non-empty list of {role, content}")
    out = []
    for i, m in enumerate(value):
        if not isinstance(m, dict):
            raise InputError(path, where, f"messages[{i}]", "must be an object {role, content}")
        role, content = m.get("role"), m.get("content")
        if role not in CHAT_ROLES:
            raise InputError(path, where, f"messages[{i}].role",
                             f"{role!r} is not one of {', '.join(CHAT_ROLES)}")
        if not isinstance(content, str):
            raise InputError(path, where, f"messages[{i}].content",
                             f"must be a string (got {type(content).__name__})")
        out.append({"role": role, "content": content})
    return out
